/**
 * Globs for allow rules: `*` matches any run of characters (also `/` and `:`, since identities are CNs, DNS
 * names and URIs such as spiffe://plant/hmi-1), `?` exactly one character (a code point), everything else
 * itself. Path-oriented glob libraries treat `/` specially, which is wrong here; a RegExp (`.*` per star)
 * backtracks: `hmi-*-*-*-panel` against `hmi-` and 3000 dashes took seconds. Hence this matcher, which never
 * backtracks.
 *
 * The pattern is split at its stars into segments, S0 * S1 * … * Sk, each of fixed length (`?` is one
 * character of a segment). Without a star the text must have S0's length and match it position by position.
 * With stars, S0 must match the start of the text and Sk its end (without overlapping), and S1 … Sk-1 are
 * found left to right between them, each at its leftmost occurrence after the previous one. Since every
 * segment has a fixed length, the leftmost occurrence leaves the most room for the segments after it, so a
 * choice never has to be undone.
 *
 * Bound, for a text of n and a pattern of m characters, in character comparisons (`steps`):
 *
 *   - a segment without `?` is searched with Knuth–Morris–Pratt, whose position in the text only moves
 *     forward, and the next segment's search starts where the previous one matched: all these searches
 *     together make at most 2n comparisons; S0 and Sk take at most m. So a pattern whose stars separate plain
 *     text (`hmi-*-*-*-panel`, `*.plant.local`) matches in at most 2n + m steps: linear.
 *   - a segment holding `?` (`hist-?-*`) is searched by trying each start: at most (n + 1)·|S| comparisons
 *     for it. The worst case is O(n·m) then, never worse; with the short segments of real rules it is a small
 *     multiple of n.
 *
 * Compiling (the KMP tables) takes O(m), once per configuration.
 */

/** One star-free piece of a pattern; WILD (`?`) matches any one code point. */
interface Segment {
  cps: Int32Array;
  /** Holds a `?`: searched naively. */
  wild: boolean;
  /** KMP failure table (longest proper border of each prefix), for segments without `?`. */
  fail: Int32Array | null;
}

const WILD = -1;

export interface Glob {
  /** The pattern as written. */
  readonly source: string;
  readonly segments: readonly Segment[];
  /** At least one `*`: segments.length >= 2. */
  readonly star: boolean;
  /** The shortest text that can match: the sum of the segment lengths. */
  readonly minLength: number;
}

/** Counts comparisons when given (tests assert the bound above). */
export interface StepCounter {
  steps: number;
}

function codePoints(s: string): Int32Array {
  const out = new Int32Array(s.length);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const cp = s.codePointAt(i)!;
    if (cp > 0xffff) i++;
    out[n++] = cp;
  }
  return out.subarray(0, n);
}

function failureTable(p: Int32Array): Int32Array {
  const fail = new Int32Array(p.length);
  let k = 0;
  for (let i = 1; i < p.length; i++) {
    while (k > 0 && p[i] !== p[k]) k = fail[k - 1]!;
    if (p[i] === p[k]) k++;
    fail[i] = k;
  }
  return fail;
}

export function compileGlob(pattern: string): Glob {
  const segments: Segment[] = [];
  for (const piece of pattern.split('*')) {
    const cps = codePoints(piece);
    let wild = false;
    for (let i = 0; i < cps.length; i++) {
      if (cps[i] === 0x3f /* ? */) {
        cps[i] = WILD;
        wild = true;
      }
    }
    segments.push({ cps, wild, fail: wild ? null : failureTable(cps) });
  }
  return { source: pattern, segments, star: segments.length > 1, minLength: segments.reduce((a, s) => a + s.cps.length, 0) };
}

/** Whether `seg` matches `t` at `at` (which leaves room for it). */
function matchesAt(seg: Int32Array, t: Int32Array, at: number, c: StepCounter | undefined): boolean {
  for (let j = 0; j < seg.length; j++) {
    if (c) c.steps++;
    const p = seg[j]!;
    if (p !== WILD && p !== t[at + j]) return false;
  }
  return true;
}

/** The leftmost start of `seg` in t[from, to), or -1. */
function find(seg: Segment, t: Int32Array, from: number, to: number, c: StepCounter | undefined): number {
  const p = seg.cps;
  const len = p.length;
  if (len === 0) return from;
  if (seg.wild) {
    for (let s = from; s + len <= to; s++) if (matchesAt(p, t, s, c)) return s;
    return -1;
  }
  // Knuth–Morris–Pratt: i only moves forward; k falls back along the failure table.
  const fail = seg.fail!;
  let k = 0;
  for (let i = from; i < to; i++) {
    if (c) c.steps++;
    while (k > 0 && t[i] !== p[k]) {
      k = fail[k - 1]!;
      if (c) c.steps++;
    }
    if (t[i] === p[k]) k++;
    if (k === len) return i - len + 1;
  }
  return -1;
}

/** Whether the whole of `text` matches the glob. */
export function matchGlob(glob: Glob, text: string, counter?: StepCounter): boolean {
  const t = codePoints(text);
  const n = t.length;
  const segs = glob.segments;
  const first = segs[0]!.cps;
  if (!glob.star) return n === first.length && matchesAt(first, t, 0, counter);
  if (n < glob.minLength) return false;
  const last = segs[segs.length - 1]!.cps;
  if (!matchesAt(first, t, 0, counter) || !matchesAt(last, t, n - last.length, counter)) return false;
  let pos = first.length;
  const end = n - last.length;
  for (let i = 1; i < segs.length - 1; i++) {
    const seg = segs[i]!;
    const at = find(seg, t, pos, end, counter);
    if (at < 0) return false;
    pos = at + seg.cps.length;
  }
  return true;
}
