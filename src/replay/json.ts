/** JSON lines for `mxproxy replay --format json`: records as they are, bytes as base64. */
import { jsonSafe } from '../shared/printable.js';
import type { ReplayRunsResult } from './runs.js';

/**
 * One value as a JSON line: Buffers/typed arrays as base64 strings, bigints as strings, and what JSON leaves raw
 * for a terminal to act on (DEL, C1 controls, U+2028/9, bidi overrides) as `\uXXXX` (the same value). Never throws.
 */
export function jsonLine(value: unknown): string {
  return jsonSafe(JSON.stringify(value, function (this: Record<string, unknown>, key, v: unknown) {
    const original = this[key];
    if (original instanceof Uint8Array) return Buffer.from(original.buffer, original.byteOffset, original.byteLength).toString('base64');
    if (typeof v === 'bigint') return String(v);
    return v;
  }));
}

/** The final `{"summary": …}` object. */
export function jsonSummary(r: ReplayRunsResult, shown: number): { summary: Record<string, unknown> } {
  const d = r.divergence?.divergence;
  return {
    summary: {
      files: r.files,
      runs: r.runs.length,
      // 1: states only were recorded and checked; 2: states, effects, outputs and decisions.
      version: r.version,
      workers: [...new Set(r.runs.map((run) => run.run.worker).filter((w) => w !== undefined))],
      events: r.events,
      transitions: r.transitions,
      effects: r.effects,
      outputs: r.outputs,
      decisions: r.decisions,
      undecided: r.undecided,
      noted: r.noted,
      chunks: r.chunks,
      connections: r.connections,
      shown,
      preexisting: r.preexisting,
      unchecked: r.unchecked,
      unrecorded: r.unrecorded,
      match: !d && !r.error,
      divergence: d ? { kind: d.kind, at: d.at, id: d.id, worker: r.divergence?.run.worker ?? null, message: d.message, expected: d.expected, actual: d.actual } : null,
      truncated: r.truncated.map((t) => ({ file: t.file, offset: t.stop.offset, message: t.stop.message })),
      error: r.error ? { file: r.error.file, offset: r.error.stop.offset, reason: r.error.stop.reason, message: r.error.stop.message } : null,
      gaps: r.gaps.map((g) => ({ run: g.run.index, after: g.after, next: g.next })),
    },
  };
}
