/**
 * The one formatter for hostile text: anything a client controls (the target it asks for, the CN and SAN
 * names of its certificate, messages that quote them) and anything read back from a file (an event log) is
 * passed through here before it is printed — in text log lines and in `mxproxy replay` output. Values are
 * escaped where they are printed, never where they are stored: events, the event log and replies keep the
 * raw value (only cut, see `truncate`), so nothing is escaped twice.
 *
 * `printable(s, max)` escapes
 *
 *   - C0 controls U+0000–U+001F, DEL U+007F and C1 controls U+0080–U+009F as `\xNN` (two lowercase hex
 *     digits): a newline is `\x0a`, ESC `\x1b`, NUL `\x00`;
 *   - the backslash itself as `\\`, so that every backslash in the output starts an escape and the output can
 *     be read back unambiguously;
 *   - format characters (Unicode category Cf: the bidi embeddings and overrides U+202A–U+202E, the isolates
 *     U+2066–U+2069, LRM/RLM/ALM, zero-width spaces and joiners, soft hyphen, BOM, …), the line and paragraph
 *     separators U+2028/U+2029, and lone surrogates as `\u{hex}` (lowercase hex, no padding: `\u{202e}`);
 *
 * and keeps everything else as it is (printable ASCII, letters of any script, emoji, quotes).
 *
 * A value whose escaped form is longer than `max` characters is cut: at most `max` characters of escaped
 * text are kept (an escape is never split), then `…(+N chars)`, where N is the number of characters
 * (code points) of the original value that were left out. The output is therefore at most
 * `max + 20` characters long, contains no control character, no line break and nothing that changes the
 * direction of the text around it. Within `max`, `printable` is reversible (see the tests' `unescape`).
 *
 * Nothing here imports from outside src/shared.
 */

/** The default `max` for a value: a CN, a SAN name, a target. */
export const PRINTABLE_MAX = 256;

/** What is escaped; the backslash only by `printable`, not by `singleLine`. */
const HOSTILE = /[\x00-\x1f\x7f-\x9f\\\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;
const CONTROL_G = /[\x00-\x1f\x7f-\x9f\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

/** The escape for one code point (as a string) that HOSTILE matches. */
function escapeOne(ch: string): string {
  if (ch === '\\') return '\\\\';
  const cp = ch.codePointAt(0)!;
  if (cp <= 0x9f) return `\\x${cp.toString(16).padStart(2, '0')}`;
  return `\\u{${cp.toString(16)}}`;
}

/** The cut marker: how many characters of the original were left out. */
export const cutMarker = (omitted: number): string => `…(+${omitted} chars)`;

/** Code points in `s` from code unit `from` on. */
function codePointsFrom(s: string, from: number): number {
  let n = 0;
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // a high surrogate followed by a low one is one code point
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/**
 * `s` escaped for printing on one line of a terminal or a log file, cut after `max` characters of escaped
 * text. Non-strings are first turned into text with String().
 */
export function printable(value: unknown, max: number = PRINTABLE_MAX): string {
  const s = typeof value === 'string' ? value : String(value);
  // The common case: nothing to escape, short enough.
  if (s.length <= max && !HOSTILE.test(s)) return s;
  let out = '';
  let i = 0;
  while (i < s.length) {
    const cp = s.codePointAt(i)!;
    const ch = String.fromCodePoint(cp);
    // a lone surrogate: codePointAt gives the surrogate itself, one code unit (escaped: it is in Cs)
    const width = cp > 0xffff ? 2 : 1;
    const piece = HOSTILE.test(ch) ? escapeOne(ch) : ch;
    if (out.length + piece.length > max) return out + cutMarker(codePointsFrom(s, i));
    out += piece;
    i += width;
  }
  return out;
}

/**
 * `s` on one line: the characters `printable` escapes, except the backslash, as `printable` escapes them;
 * nothing is cut. For whole messages in a text log line, which may already hold `printable` output (a second
 * `printable` would double its backslashes): it is a no-op on that output, and turns anything else (a stack
 * trace, a message that quotes a client's value without `printable`) into one line. Not reversible.
 */
export function singleLine(s: string): string {
  return s.replace(CONTROL_G, escapeOne);
}

/** `printable(s, max)` in double quotes, with `"` inside written `\"`. */
export function quoted(value: unknown, max: number = PRINTABLE_MAX): string {
  return `"${printable(value, max).replace(/"/g, '\\"')}"`;
}

/**
 * `s` cut to at most `max` characters (code points), then `…(+N chars)`; nothing escaped. For values that
 * are stored or sent rather than printed (JSON log fields, reply messages), whose readers escape them.
 */
export function truncate(s: string, max: number = PRINTABLE_MAX): string {
  if (s.length <= max) return s;
  let i = 0;
  for (let kept = 0; kept < max && i < s.length; kept++) i += (s.codePointAt(i)! > 0xffff ? 2 : 1);
  if (i >= s.length) return s;
  return s.slice(0, i) + cutMarker(codePointsFrom(s, i));
}

/**
 * A JSON text with every character `printable` would escape (other than the backslash, which JSON already
 * escapes) written as a JSON `\uXXXX` escape: the same value for a JSON reader, and nothing for a terminal
 * to act on (JSON.stringify leaves DEL, C1 controls, U+2028/U+2029 and bidi overrides as they are).
 */
export function jsonSafe(json: string): string {
  return json.replace(CONTROL_G, (ch) => {
    let out = '';
    for (let i = 0; i < ch.length; i++) out += `\\u${ch.charCodeAt(i).toString(16).padStart(4, '0')}`;
    return out;
  });
}
