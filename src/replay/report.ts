/**
 * The end of a replay in words: the one-line summary (`replayed 120 events, 11 connections, all transitions
 * match`, then `; …` notes that apply) and the report of a divergence with the records that led to it.
 */
import { FORWARDER_ROOT_ID, machineOf, ROOT_ID, type LogRecord } from '../eventlog/records.js';
import { describeEffect, describeTransition, type Divergence } from './engine.js';
import { printable, singleLine } from '../shared/printable.js';
import type { ReplayRunsResult } from './runs.js';
import { describeEvent, describeRecord, formatTimeOfDay } from './timeline.js';

/** A transition as the report prints it: state names and events come from the log, escaped. */
const transitionText = (t: Parameters<typeof describeTransition>[0]): string => printable(describeTransition(t), 512);

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

export interface ShownCount {
  shown: number;
  total: number;
}

/** The summary line; `shown` when a filter was given. */
export function summaryLine(r: ReplayRunsResult, shown?: ShownCount): string {
  let line = `replayed ${plural(r.events, 'event')}, ${plural(r.connections, 'connection')}, `;
  // A version-1 log recorded state changes only: that is all it is checked for, and the line says so.
  const v1 = r.version < 2;
  // A forwarder decides nothing: its log has no requests to decide again.
  const proxy = r.runs.length === 0 || r.runs.some((run) => machineOf(run.header) === 'proxy');
  const match = v1 ? 'all transitions match' : proxy ? 'all states, effects, outputs and decisions match' : 'all states, effects and outputs match';
  const ofWorker = r.divergence?.run.worker !== undefined ? ` of worker ${r.divergence.run.worker}` : '';
  if (r.divergence) line += `DIVERGENCE at record #${r.divergence.divergence.at}${ofWorker} (${r.divergence.divergence.kind})`;
  else if (r.error) line += r.events > 0 ? `${match} up to the error` : 'nothing to check';
  else line += match;
  const notes: string[] = [];
  if (v1 && r.events > 0) notes.push('a version-1 log: states only (it records no effects, outputs or re-entries; decisions not checked)');
  if (!v1 && r.undecided > 0) {
    notes.push(`${plural(r.undecided, 'request')} not decided again (no CONFIG_LOADED before ${r.undecided === 1 ? 'it' : 'them'} in the log)`);
  }
  if (shown) notes.push(`${shown.shown} of ${plural(shown.total, 'connection')} shown`);
  const workers = new Set(r.runs.map((run) => run.run.worker).filter((w) => w !== undefined)).size;
  if (workers > 1) {
    const restarted = r.runs.length > workers ? `${r.runs.length} runs of ` : '';
    notes.push(`${restarted}${workers} workers (each replayed on its own)`);
  } else if (r.runs.length > 1) notes.push(`${r.runs.length} proxy runs (the proxy restarted; each replayed on its own)`);
  if (r.preexisting > 0) {
    notes.push(`${plural(r.preexisting, 'connection')} began before the log (not replayed)`);
  }
  if (r.unrecorded > 0) notes.push(`${plural(r.unrecorded, 'connection')} that ended before TLS not recorded (over the budget)`);
  for (const t of r.truncated) {
    const unchecked = r.unchecked > 0 ? ` (${plural(r.unchecked, 'replayed step')} unchecked: the log ends before ${r.unchecked === 1 ? 'its record' : 'their records'})` : '';
    notes.push(`log ends inside a record at byte ${t.stop.offset} of ${t.file} (power loss?): replayed up to there${unchecked}`);
  }
  if (r.gaps.length === 1) {
    const g = r.gaps[0]!;
    notes.push(`records #${g.after + 1}–#${g.next - 1} are missing (a file rotated away or deleted?)`);
  } else if (r.gaps.length > 1) {
    const missing = r.gaps.reduce((a, g) => a + g.next - g.after - 1, 0);
    notes.push(`${r.gaps.length} sequence gaps, ${plural(missing, 'record')} missing in all, the first after #${r.gaps[0]!.after}`);
  }
  if (r.error) notes.push(`stopped: ${r.error.stop.message}`);
  return notes.length > 0 ? `${line}; ${notes.join('; ')}` : line;
}

/** The error line for a file that is not a log, damaged or unreadable: what, and where. */
export function errorLine(r: ReplayRunsResult): string | undefined {
  const e = r.error;
  if (!e) return undefined;
  const where = e.stop.message.includes(e.file) ? '' : `${e.file}: `;
  const at = e.stop.offset > 0 && !/\bbyte \d+/.test(e.stop.message) ? ` (at byte ${e.stop.offset})` : '';
  return singleLine(`${where}${e.stop.message}${at}`);
}

/** What replay made, for the report's `replay made:` line. */
function actualText(d: Divergence): string {
  switch (d.kind) {
    case 'state':
      return d.actual ? `${transitionText(d.actual)}, caused by event #${d.actual.cause}` : 'no transition there';
    case 'effect':
      return d.actual ? `${printable(describeEffect(d.actual), 512)}, caused by event #${d.actual.cause}` : 'no effect there';
    case 'output':
      return d.actual ? `ended with ${printable(JSON.stringify(d.actual.o), 512)}, caused by event #${d.actual.cause}` : 'the pair had not ended there';
    case 'authorization':
      return `${describeEvent(d.actual.decision as unknown as Record<string, unknown>)}, decided under ${printable(d.actual.config)}`;
  }
}

/** What the log has, for the report's `the log has:` line. */
function expectedText(d: Divergence): string {
  if (!d.expected) return `no such ${d.kind === 'state' ? 'transition' : d.kind}`;
  switch (d.kind) {
    case 'state':
      return `${transitionText(d.expected)} (record #${d.expected.s})`;
    case 'effect':
      return `${printable(describeEffect(d.expected), 512)} (record #${d.expected.s})`;
    case 'output':
      return `ended with ${printable(JSON.stringify(d.expected.o), 512)} (record #${d.expected.s})`;
    case 'authorization':
      return `${describeEvent(d.expected.e as unknown as Record<string, unknown>)} (record #${d.expected.s})`;
  }
}

/**
 * `DIVERGENCE at record #58 (effect): …`, then the connection's last records as the log has them (the one that
 * did not match marked), then what replay did there.
 */
export function divergenceReport(d: Divergence, context: LogRecord[], worker?: number): string[] {
  const who = d.id === ROOT_ID ? 'the proxy' : d.id === FORWARDER_ROOT_ID ? 'the forwarder' : `connection ${printable(d.id)}`;
  // Each worker numbers its records and connections from 1: the worker says which log.
  const where = worker !== undefined ? ` of worker ${worker}` : '';
  const lines = [`DIVERGENCE at record #${d.at}${where} (${d.kind}): ${printable(d.message, 1024)}`];
  if (context.length > 0) {
    lines.push(`  the log, last ${plural(context.length, 'record')} of ${who}:`);
    const width = Math.max(...context.map((r) => String(r.s).length));
    let lastEvent: string | undefined;
    for (const r of context) {
      const mark = d.expected && r.s === d.expected.s ? '   <- does not match' : '';
      lines.push(`    #${String(r.s).padEnd(width)}  ${formatTimeOfDay(r.t)}  ${describeRecord(r, lastEvent)}${mark}`);
      if (r.k === 'e') lastEvent = r.e.type;
    }
  }
  lines.push(`  replay made:  ${actualText(d)}`);
  lines.push(`  the log has:  ${expectedText(d)}`);
  return lines;
}
