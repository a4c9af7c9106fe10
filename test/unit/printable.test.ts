/** The formatter for hostile text (src/shared/printable.ts): what it escapes, how it cuts, and that it is safe. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { jsonSafe, printable, quoted, singleLine, truncate } from '../../src/shared/printable.js';

/** The inverse of printable() for output that was not cut. */
function unescape(s: string): string {
  return s.replace(/\\(?:x([0-9a-f]{2})|u\{([0-9a-f]+)\}|(\\))/g, (_m, x: string | undefined, u: string | undefined) =>
    x !== undefined ? String.fromCharCode(parseInt(x, 16)) : u !== undefined ? String.fromCodePoint(parseInt(u, 16)) : '\\',
  );
}

/** Anything a terminal or a line-oriented reader would act on. */
const UNSAFE = /[\x00-\x1f\x7f-\x9f\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;

/** Strings made of the characters that matter here, plus a little of everything else. */
const hostileChar = fc.oneof(
  fc.constantFrom('\n', '\r', '\x1b', '\x00', '\x7f', '\x85', '\x9b', '\\', '"', '…', '\u2028', '\u2029', '\u202e', '\u2066', '\u200b', '\ufeff', '\ud800', '\udfff', '😀'),
  fc.char(),
  fc.fullUnicode(),
);
const hostileString = fc.array(hostileChar, { maxLength: 60 }).map((a) => a.join(''));

describe('printable', () => {
  it('keeps ordinary text, any script, quotes', () => {
    for (const s of ['hmi-1', 'spiffe://plant/hmi-1', 'ops, "night" shift', 'Störung 東京 😀', '']) assert.equal(printable(s), s);
  });

  it('escapes C0, DEL and C1 controls as \\xNN and the backslash as \\\\', () => {
    assert.equal(printable('a\nb'), 'a\\x0ab');
    assert.equal(printable('\x1b[2J\x00'), '\\x1b[2J\\x00');
    assert.equal(printable('\x7f\x85\x9b'), '\\x7f\\x85\\x9b');
    assert.equal(printable('C:\\certs'), 'C:\\\\certs');
  });

  it('escapes line separators, bidi overrides and isolates, zero-width characters and lone surrogates as \\u{…}', () => {
    assert.equal(printable('a\u2028b\u2029'), 'a\\u{2028}b\\u{2029}');
    assert.equal(printable('\u202aX\u202e'), '\\u{202a}X\\u{202e}');
    assert.equal(printable('\u2066\u2069'), '\\u{2066}\\u{2069}');
    assert.equal(printable('a\u200bb\ufeff'), 'a\\u{200b}b\\u{feff}');
    assert.equal(printable('x\ud800y'), 'x\\u{d800}y');
    assert.equal(printable('\u{e0001}'), '\\u{e0001}');
  });

  it('cuts a long value after max characters of escaped text and says how many were left out', () => {
    const long = `hmi-${'-'.repeat(3000)}`;
    assert.equal(printable(long), `${long.slice(0, 256)}…(+2748 chars)`);
    assert.equal(printable('abcdef', 4), 'abcd…(+2 chars)');
    // an escape is never split, and the omitted count is of original characters
    assert.equal(printable('ab\ncd', 4), 'ab…(+3 chars)');
    assert.equal(printable('😀😀😀', 4), '😀😀…(+1 chars)');
    assert.equal(printable('abc', 0), '…(+3 chars)');
  });

  it('never lets a control character, line break or direction change through, and stays within max + 20', () => {
    fc.assert(
      fc.property(hostileString, fc.integer({ min: 0, max: 80 }), (s, max) => {
        const out = printable(s, max);
        assert.doesNotMatch(out, UNSAFE);
        assert.ok(out.length <= max + 20, `at most max + 20 characters: ${out.length}`);
        if (out.length <= max) assert.equal(unescape(out), s, 'not cut: reversible');
      }),
      { numRuns: 2000 },
    );
  });

  it('is reversible when not cut: unescape(printable(s)) === s, so different values print differently', () => {
    fc.assert(
      fc.property(hostileString, (s) => {
        const out = printable(s, Infinity);
        assert.equal(unescape(out), s);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(hostileString, hostileString, (a, b) => {
        if (a !== b) assert.notEqual(printable(a, Infinity), printable(b, Infinity));
      }),
      { numRuns: 1000 },
    );
  });

  it('says how much was cut: the kept prefix plus the omitted count is the whole value', () => {
    fc.assert(
      fc.property(hostileString, fc.integer({ min: 0, max: 40 }), (s, max) => {
        const out = printable(s, max);
        const m = /…\(\+(\d+) chars\)$/.exec(out);
        if (!m || out === printable(s, Infinity)) return;
        const kept = unescape(out.slice(0, m.index));
        assert.ok(s.startsWith(kept));
        assert.equal([...kept].length + Number(m[1]), [...s].length);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('singleLine, quoted, truncate, jsonSafe', () => {
  it('singleLine escapes controls but leaves backslashes, so printable output passes unchanged', () => {
    assert.equal(singleLine('Error: x\n    at f (a.js:1)'), 'Error: x\\x0a    at f (a.js:1)');
    fc.assert(
      fc.property(hostileString, (s) => {
        const p = printable(s, Infinity);
        assert.equal(singleLine(p), p);
        assert.doesNotMatch(singleLine(s), UNSAFE);
      }),
    );
  });

  it('quoted escapes quotes inside', () => {
    assert.equal(quoted('say "hi"\n'), '"say \\"hi\\"\\x0a"');
  });

  it('truncate cuts by code points without escaping', () => {
    assert.equal(truncate('a\nbcdef', 3), 'a\nb…(+4 chars)');
    assert.equal(truncate('😀😀😀', 2), '😀😀…(+1 chars)');
    assert.equal(truncate('short', 5), 'short');
  });

  it('jsonSafe keeps the JSON value and leaves nothing raw for a terminal', () => {
    fc.assert(
      fc.property(hostileString, (s) => {
        const json = jsonSafe(JSON.stringify({ s }));
        assert.doesNotMatch(json, UNSAFE);
        assert.deepEqual(JSON.parse(json), { s });
      }),
    );
  });
});
