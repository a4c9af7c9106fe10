/**
 * The page's replay view: an event log goes through the same machines as `mxproxy replay` (src/replay's
 * Replayer, bare machines, every recorded transition checked), and each event becomes one step with the
 * transitions it caused, for the page to walk through on the diagram.
 *
 * It runs in a worker thread (./worker.ts) and is bounded: uploads by MAX_UPLOAD_BYTES, every log by MAX_STEPS
 * events (what the page gets must stay a few MB), and it yields every YIELD_EVERY records. Everything read from
 * the log is untrusted text and leaves here as `printable` output.
 */
import { lstat, realpath } from 'node:fs/promises';
import path from 'node:path';
import { iterateEventLogFile, listLogFiles, type EventLogStop } from '../eventlog/index.js';
import { MAGIC_BYTES, checkMagic, readFrame } from '../eventlog/format.js';
import { ROOT_ID, asLogRecord, isHeader, machineOf, type LogRecord } from '../eventlog/records.js';
import { versionOf } from '../replay/run.js';
import { Replayer, type ReplayedTransition } from '../replay/engine.js';
import { printable } from '../shared/printable.js';

export const MAX_UPLOAD_BYTES = 8 * 1024 * 1024;
export const MAX_STEPS = 20_000;
const YIELD_EVERY = 256;
/** Cut for a value shown in a step (characters of escaped text). */
const DETAIL_MAX = 200;

export interface StepTransition {
  /** Connection id, or "#proxy" for the root. */
  id: string;
  from: string | null;
  to: string;
  on: string;
}

export interface ReplayStep {
  /** Sequence number and time (ms since the epoch) of the event record. */
  s: number;
  t: number;
  type: string;
  /** The connection the event is for; null for the proxy's own (SHUTDOWN). */
  id: string | null;
  detail: string;
  transitions: StepTransition[];
}

export interface ReplayView {
  source: string;
  header: { host: string; pid: number; started: number; level: string; mxproxy: string } | null;
  steps: ReplayStep[];
  /** Stopped after MAX_STEPS events. */
  truncated: boolean;
  /** Where reading ended and why ("end" when the whole log was read). */
  stop: { reason: string; message: string };
  /** The first place where the machines did not do what the log recorded. */
  divergence: string | null;
  connections: number;
}

type LogEnd = { header: unknown; stop: EventLogStop };
type RecordIterator = AsyncIterator<unknown, LogEnd> | Iterator<unknown, LogEnd>;

/** The records of a log held in memory (an upload), decoded one at a time: nothing past MAX_STEPS is decoded. */
function* bufferRecords(buf: Buffer, onHeader: (h: unknown) => void): Generator<unknown, LogEnd> {
  const magic = checkMagic(buf);
  if (magic.kind === 'not-a-log') return { header: undefined, stop: { offset: 0, reason: 'not-a-log', message: magic.message } };
  if (magic.kind === 'incomplete') {
    const message = buf.length === 0 ? 'log is empty (0 bytes)' : 'log ends inside the magic';
    return { header: undefined, stop: { offset: 0, reason: 'truncated', message } };
  }
  let header: unknown;
  let pos = MAGIC_BYTES;
  let first = true;
  while (pos < buf.length) {
    const f = readFrame(buf, pos);
    if (f.kind === 'incomplete') return { header, stop: { offset: pos, reason: 'truncated', message: `log ends inside the record at byte ${pos}` } };
    if (f.kind === 'corrupt') return { header, stop: { offset: pos, reason: 'corrupt', message: `record at byte ${pos} is corrupt: ${f.message}` } };
    pos = f.end;
    if (first) {
      first = false;
      header = f.value;
      onHeader(header);
      continue;
    }
    yield f.value;
  }
  if (first) return { header, stop: { offset: pos, reason: 'truncated', message: 'log ends before its header record' } };
  return { header, stop: { offset: pos, reason: 'end', message: '' } };
}

/** Replays an uploaded log. */
export function replayBuffer(buf: Buffer, source: string): Promise<ReplayView> {
  let header: unknown;
  return replayRecords(bufferRecords(buf, (h) => (header = h)), source, () => header);
}

export interface LogFileEntry {
  name: string;
  bytes: number;
}

/** Event log series: one path, or several (a cluster primary: one series per worker), all in one directory. */
export type EventLogSeries = string | readonly string[] | undefined;

const seriesOf = (eventLog: EventLogSeries): readonly string[] => (eventLog === undefined ? [] : typeof eventLog === 'string' ? [eventLog] : eventLog);

/** The files of the configured event log's series (`events.mxlog.N … events.mxlog`), oldest first, series by series. */
export async function listLogs(eventLog: EventLogSeries): Promise<LogFileEntry[]> {
  const out: LogFileEntry[] = [];
  for (const series of seriesOf(eventLog)) {
    for (const file of await listLogFiles(series)) {
      const st = await lstat(file).catch(() => undefined);
      if (st?.isFile()) out.push({ name: path.basename(file), bytes: st.size });
    }
  }
  return out;
}

/**
 * Replays one file of the configured series, named by its file name alone. Anything else — another path, a
 * `..`, a symbolic link, a file that is not in the series — is refused: the page reads the proxy's own log and
 * nothing else. Resolves undefined when `name` is not one of them.
 */
export async function replayLogFile(eventLog: EventLogSeries, name: string): Promise<ReplayView | undefined> {
  let dir: string | undefined;
  for (const series of seriesOf(eventLog)) {
    if ((await listLogFiles(series)).some((f) => path.basename(f) === name)) {
      dir = path.dirname(series);
      break;
    }
  }
  if (dir === undefined) return undefined;
  const file = path.join(dir, name);
  const st = await lstat(file).catch(() => undefined);
  if (!st?.isFile() || path.dirname(await realpath(file)) !== (await realpath(dir))) return undefined;
  let header: unknown;
  const it = iterateEventLogFile(file, { onHeader: (h) => (header = h) });
  return replayRecords(it, name, () => header);
}

async function replayRecords(it: RecordIterator, source: string, headerSoFar: () => unknown = () => undefined): Promise<ReplayView> {
  const steps: ReplayStep[] = [];
  let current: ReplayStep | undefined;
  // Made at the first record, when the header has said whose log it is and in which version.
  let made: Replayer | undefined;
  const replayer = (): Replayer => {
    const h = headerSoFar();
    const header = isHeader(h) ? h : undefined;
    made ??= new Replayer(machineOf(header), { version: versionOf(header), onTransition: (t) => current?.transitions.push(transitionOf(t)) });
    return made;
  };
  let stop: { reason: string; message: string } = { reason: 'end', message: '' };
  let header: unknown;
  let truncated = false;
  let lastSeq = 0;
  let n = 0;
  let finishedReading = false;
  try {
    for (;;) {
      const r = await it.next();
      if (r.done) {
        header = r.value.header;
        stop = { reason: r.value.stop.reason, message: printable(r.value.stop.message, 512) };
        finishedReading = true;
        break;
      }
      if (++n % YIELD_EVERY === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      const rec = asLogRecord(r.value);
      if (typeof rec === 'string') {
        stop = { reason: 'corrupt', message: printable(`record ${n}: ${rec}`, 512) };
        break;
      }
      if (lastSeq > 0 && rec.s !== lastSeq + 1) replayer().gap();
      lastSeq = rec.s;
      if (rec.k === 'e') {
        if (steps.length >= MAX_STEPS) {
          truncated = true;
          stop = { reason: 'truncated', message: `only the first ${MAX_STEPS} events are shown` };
          break;
        }
        current = stepOf(rec);
        steps.push(current);
      }
      const ok = replayer().feed(rec);
      current = undefined;
      if (!ok) break;
    }
  } finally {
    if (!finishedReading) await it.return?.(undefined as never);
  }
  header ??= headerSoFar();
  const summary = replayer().finish(truncated || stop.reason !== 'end');
  return {
    source: printable(source),
    header: isHeader(header)
      ? {
          host: printable(header.host),
          pid: Number(header.pid),
          started: Number(header.started),
          level: printable(header.level, 32),
          mxproxy: printable(header.mxproxy, 32),
        }
      : null,
    steps,
    truncated,
    stop,
    divergence: summary.divergence ? printable(summary.divergence.message, 1024) : null,
    connections: summary.connections,
  };
}

function transitionOf(t: ReplayedTransition): StepTransition {
  return { id: t.id === ROOT_ID ? ROOT_ID : printable(t.id, 64), from: t.from === null ? null : printable(t.from, 128), to: printable(t.to, 128), on: printable(t.on, 64) };
}

function stepOf(r: LogRecord & { k: 'e' }): ReplayStep {
  const e = r.e as unknown as Record<string, unknown> & { type: string };
  const id = e.type !== 'SHUTDOWN' && typeof e.id === 'string' ? printable(e.id, 64) : null;
  return { s: r.s, t: r.t, type: printable(e.type, 64), id, detail: detailOf(e), transitions: [] };
}

/** The event's fields worth a glance, as one line of escaped text. */
function detailOf(e: Record<string, unknown>): string {
  const keys = ['peer', 'identity', 'target', 'code', 'message', 'address', 'addresses', 'matched', 'rule', 'attempt', 'read', 'written'];
  const parts: string[] = [];
  for (const k of keys) {
    const v = e[k];
    if (v === undefined || v === null || v === '') continue;
    const text = Array.isArray(v) ? v.map((x) => String(x)).join(' ') : typeof v === 'object' ? JSON.stringify(v) : String(v);
    parts.push(`${k}=${printable(text, DETAIL_MAX)}`);
  }
  return parts.join(' ');
}
