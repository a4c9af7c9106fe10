/**
 * The allow-rule glob matcher (src/auth/glob.ts): correct against a plain reference, and its work bounded by
 * counted comparisons (no timing) on adversarial names — many stars, thousands of characters.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { compileGlob, matchGlob, type StepCounter } from '../../src/auth/glob.js';

/** The textbook dynamic programme over code points: O(n·m), obviously right. */
function reference(pattern: string, text: string): boolean {
  const p = [...pattern];
  const t = [...text];
  let prev = new Array<boolean>(t.length + 1).fill(false);
  prev[0] = true;
  for (let i = 1; i <= p.length; i++) {
    const cur = new Array<boolean>(t.length + 1).fill(false);
    const c = p[i - 1];
    if (c === '*') cur[0] = prev[0]!;
    for (let j = 1; j <= t.length; j++) {
      if (c === '*') cur[j] = prev[j]! || cur[j - 1]!;
      else cur[j] = prev[j - 1]! && (c === '?' || c === t[j - 1]);
    }
    prev = cur;
  }
  return prev[t.length]!;
}

function run(pattern: string, text: string): { match: boolean; steps: number } {
  const counter: StepCounter = { steps: 0 };
  const match = matchGlob(compileGlob(pattern), text, counter);
  return { match, steps: counter.steps };
}

const len = (s: string) => [...s].length;

describe('glob matching', () => {
  it('* matches any run (also / and :), ? one character, everything else itself', () => {
    const cases: [string, string, boolean][] = [
      ['hmi-*', 'hmi-1', true],
      ['hmi-*', 'hmi-', true],
      ['hmi-*', 'hmi', false],
      ['op-?', 'op-1', true],
      ['op-?', 'op-12', false],
      ['op-?', 'op-😀', true],
      ['a.b', 'a.b', true],
      ['a.b', 'axb', false],
      ['(x)+[y]', '(x)+[y]', true],
      ['spiffe://plant/*', 'spiffe://plant/area/7', true],
      ['*', '', true],
      ['**', 'x', true],
      ['', '', true],
      ['', 'x', false],
      ['*.plant.local', 'hmi.plant.local', true],
      ['*.plant.local', '.plant.local', true],
      ['*.plant.local', 'plant.local', false],
      ['a*a', 'a', false],
      ['a*a', 'aa', true],
      ['*a*b*', 'xxbxxa', false],
      ['h?-*-?', 'hm-x-y-z', true],
      ['line*', 'line\nbreak', true],
    ];
    for (const [p, t, want] of cases) assert.equal(run(p, t).match, want, `${JSON.stringify(p)} ~ ${JSON.stringify(t)}`);
  });

  it('agrees with the reference on small inputs (property)', () => {
    const alphabet = fc.constantFrom('a', 'b', '-', '😀');
    const text = fc.array(alphabet, { maxLength: 14 }).map((a) => a.join(''));
    const pattern = fc.array(fc.oneof(alphabet, fc.constant('*'), fc.constant('?')), { maxLength: 10 }).map((a) => a.join(''));
    fc.assert(
      fc.property(pattern, text, (p, t) => {
        assert.equal(run(p, t).match, reference(p, t), `${JSON.stringify(p)} ~ ${JSON.stringify(t)}`);
      }),
      { numRuns: 5000 },
    );
  });

  it('agrees with the reference on texts built to match or nearly match the pattern (property)', () => {
    const alphabet = fc.constantFrom('a', 'b');
    const pattern = fc.array(fc.oneof(alphabet, fc.constant('*'), fc.constant('?')), { minLength: 1, maxLength: 8 }).map((a) => a.join(''));
    fc.assert(
      fc.property(pattern, fc.array(fc.array(alphabet, { maxLength: 4 }), { maxLength: 8 }), fc.nat(), (p, fills, seed) => {
        // every * and ? filled in: a match; then one character changed: often not
        let i = 0;
        const t = [...p].map((c) => (c === '*' ? (fills[i++ % Math.max(fills.length, 1)] ?? []).join('') : c === '?' ? 'b' : c)).join('');
        assert.equal(run(p, t).match, true);
        const chars = [...t];
        if (chars.length > 0) {
          const k = seed % chars.length;
          chars[k] = chars[k] === 'a' ? 'b' : 'a';
          const u = chars.join('');
          assert.equal(run(p, u).match, reference(p, u), `${JSON.stringify(p)} ~ ${JSON.stringify(u)}`);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('adversarial star patterns take at most 2n + m comparisons', () => {
    const cases: [string, string][] = [
      // the one that blocked the event loop with a RegExp
      ['hmi-*-*-*-panel', `hmi-${'-'.repeat(3000)}`],
      ['hmi-*-*-*-panel', `hmi-${'-'.repeat(3000)}panel`],
      [`${'*a'.repeat(200)}*b`, 'a'.repeat(5000)],
      [`*${'a'.repeat(60)}b*`, 'a'.repeat(6000)],
      [`*${'ab'.repeat(30)}c*`, 'ab'.repeat(3000)],
      ['*'.repeat(500), 'x'.repeat(4000)],
      [`${'a*'.repeat(300)}`, 'a'.repeat(4000)],
      [`*${'-*'.repeat(100)}x`, '-'.repeat(4000)],
    ];
    for (const [p, t] of cases) {
      const { match, steps } = run(p, t);
      assert.equal(match, reference(p, t), `${p.slice(0, 30)}… ~ ${t.length} chars`);
      const n = len(t);
      const m = len(p);
      assert.ok(steps <= 2 * n + m, `${p.slice(0, 30)}…: ${steps} steps > 2n + m = ${2 * n + m}`);
    }
  });

  it('patterns with ? between stars take at most (n + 1)·m comparisons', () => {
    const cases: [string, string][] = [
      [`*${'a?'.repeat(20)}b*`, 'a'.repeat(3000)],
      ['*?-?-?-?*panel', '-'.repeat(4000)],
      [`${'?*'.repeat(100)}z`, 'y'.repeat(3000)],
    ];
    for (const [p, t] of cases) {
      const { match, steps } = run(p, t);
      assert.equal(match, reference(p, t));
      const n = len(t);
      const m = len(p);
      assert.ok(steps <= (n + 1) * m, `${p.slice(0, 30)}…: ${steps} steps > (n + 1)·m = ${(n + 1) * m}`);
    }
  });

  it('star-only patterns stay within 2n + m on random inputs too (property)', () => {
    const alphabet = fc.constantFrom('a', 'b');
    const pattern = fc.array(fc.oneof(alphabet, fc.constant('*')), { maxLength: 40 }).map((a) => a.join(''));
    const text = fc.array(alphabet, { maxLength: 300 }).map((a) => a.join(''));
    fc.assert(
      fc.property(pattern, text, (p, t) => {
        const { steps } = run(p, t);
        assert.ok(steps <= 2 * t.length + p.length, `${steps} steps`);
      }),
      { numRuns: 2000 },
    );
  });
});
