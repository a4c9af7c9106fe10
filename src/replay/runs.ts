/**
 * Replaying a list of files that may span several runs of the proxy. A proxy that starts rotates the previous
 * log away, so `events.mxlog.1` can be the end of the run before a restart (a power loss, an upgrade): its
 * sequence numbers start again at 1 and its connection ids are used again. Files are grouped into runs by
 * their header (host, pid, start time) and each run is replayed on its own, with fresh machines.
 */
import { stat } from 'node:fs/promises';
import { iterateEventLogFile } from '../eventlog/index.js';
import { isHeader, LOG_VERSION, type HeaderRecord, type LogRecord } from '../eventlog/records.js';
import type { Divergence, Replayer, ReplayerOptions } from './engine.js';
import { replayFiles, type FileProblem, type ReplayFilesResult } from './run.js';

export interface LogRun {
  /** 1, 2, … in the order replayed. */
  index: number;
  header: HeaderRecord | undefined;
  files: string[];
  /** The worker whose run it is (`[proxy] workers` > 1): from the header, else the file name. */
  worker?: number;
}

export interface RunPlan {
  runs: LogRun[];
  /** A file that could not be opened (missing, a directory, no permission): nothing from it on is replayed. */
  unreadable: FileProblem | undefined;
}

const IO_WORDS: Record<string, string> = {
  ENOENT: 'no such file',
  EISDIR: 'is a directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ENOTDIR: 'a part of the path is not a directory',
};

/** "cannot read <file>: no such file (ENOENT)". */
export function ioProblem(file: string, err: unknown): FileProblem {
  const code = (err as NodeJS.ErrnoException)?.code;
  const what = code && IO_WORDS[code] ? `${IO_WORDS[code]} (${code})` : (code ?? (err as Error)?.message ?? String(err));
  return { file, stop: { offset: 0, reason: 'not-a-log', message: `cannot read ${file}: ${what}` } };
}

/** The header record of a log file (undefined if it has none that can be read); rejects on I/O errors. */
export async function readLogHeader(file: string): Promise<unknown> {
  let header: unknown;
  const it = iterateEventLogFile(file, { chunkBytes: 64 * 1024, onHeader: (h) => (header = h) });
  try {
    const step = await it.next();
    if (step.done) header ??= step.value.header;
  } finally {
    await it.return(undefined as never);
  }
  return header;
}

const runKey = (h: unknown): string | undefined => (isHeader(h) ? JSON.stringify([h.host, h.pid, h.started, h.machine ?? 'proxy']) : undefined);

/**
 * Groups `files` (in replay order) into runs by their headers. A file without a usable header stays with the
 * run before it: replaying it reports what is wrong with it.
 */
export async function planRuns(files: string[]): Promise<RunPlan> {
  const runs: LogRun[] = [];
  let key: string | undefined;
  for (const file of files) {
    let header: unknown;
    try {
      header = await readLogHeader(file);
    } catch (err) {
      return { runs, unreadable: ioProblem(file, err) };
    }
    const k = runKey(header);
    const current = runs.at(-1);
    if (current && (k === undefined || k === key || key === undefined)) {
      current.files.push(file);
      if (key === undefined && k !== undefined) {
        key = k;
        current.header = header as HeaderRecord;
      }
      continue;
    }
    key = k;
    runs.push({ index: runs.length + 1, header: isHeader(header) ? header : undefined, files: [file] });
  }
  return { runs, unreadable: undefined };
}

/**
 * The runs of several series (one per worker, ./series.ts), one after the other: a run never spans two
 * series, so each worker's pairs replay on machines of their own. Stops at the first unreadable file.
 */
export async function planSeries(series: { worker: number | undefined; files: string[] }[]): Promise<RunPlan> {
  const runs: LogRun[] = [];
  for (const s of series) {
    const plan = await planRuns(s.files);
    for (const run of plan.runs) {
      const recorded: unknown = run.header?.worker; // from a file: checked
      const worker = typeof recorded === 'number' && Number.isSafeInteger(recorded) && recorded > 0 ? recorded : s.worker;
      runs.push({ ...run, index: runs.length + 1, ...(worker !== undefined ? { worker } : {}) });
    }
    if (plan.unreadable) return { runs, unreadable: plan.unreadable };
  }
  return { runs, unreadable: undefined };
}

/** "worker 2, " for a worker's run, "" otherwise: how output names where a run comes from. */
export const workerPrefix = (run: LogRun | undefined): string => (run?.worker !== undefined ? `worker ${run.worker}, ` : '');

export interface RunResult extends ReplayFilesResult {
  run: LogRun;
}

export interface ReplayRunsOptions {
  /** Before the first record of a run. */
  onRunStart?: (run: LogRun) => void;
  onRecord?: (r: LogRecord, replayer: Replayer, run: LogRun) => void;
  /** After a run's last record (its summary is final). */
  onRunEnd?: (result: RunResult) => void;
  /** Bytes read so far over all runs, and the total. */
  onProgress?: (read: number, total: number) => void;
  /** Test-only: the machines and the decider to replay with. */
  replayer?: Omit<ReplayerOptions, 'version'>;
}

export interface ReplayRunsResult {
  files: string[];
  runs: RunResult[];
  events: number;
  transitions: number;
  effects: number;
  outputs: number;
  /** Requests decided again from the logged config and compared; and those with no config to decide by. */
  decisions: number;
  undecided: number;
  noted: number;
  chunks: number;
  connections: number;
  preexisting: number;
  unchecked: number;
  /** Pairs that ended before TLS_OK and were left out of the log (its `d` records). */
  unrecorded: number;
  /** The lowest log version among the runs: below 2 only states were recorded, and checked. */
  version: number;
  divergence: { run: LogRun; divergence: Divergence } | undefined;
  /** Replay stopped here: a file that is not a log, damaged or unreadable. */
  error: FileProblem | undefined;
  /** Files that ended inside a record (power loss), one per run at most. */
  truncated: FileProblem[];
  gaps: { run: LogRun; after: number; next: number }[];
}

/** Replays the runs one after the other; stops at a divergence or an error. */
export async function replayRuns(plan: RunPlan, opts: ReplayRunsOptions = {}): Promise<ReplayRunsResult> {
  const all = plan.runs.flatMap((r) => r.files);
  const sizes = new Map<string, number>();
  for (const f of all) sizes.set(f, await stat(f).then((s) => s.size, () => 0));
  const total = [...sizes.values()].reduce((a, b) => a + b, 0);
  const out: ReplayRunsResult = {
    files: all,
    runs: [],
    events: 0,
    transitions: 0,
    effects: 0,
    outputs: 0,
    decisions: 0,
    undecided: 0,
    noted: 0,
    chunks: 0,
    connections: 0,
    preexisting: 0,
    unchecked: 0,
    unrecorded: 0,
    version: Infinity,
    divergence: undefined,
    error: undefined,
    truncated: [],
    gaps: [],
  };
  let before = 0;
  for (const run of plan.runs) {
    opts.onRunStart?.(run);
    let result: ReplayFilesResult;
    try {
      result = await replayFiles(run.files, {
        onRecord: (r, replayer) => opts.onRecord?.(r, replayer, run),
        onProgress: (read) => opts.onProgress?.(before + read, total),
        ...(opts.replayer ? { replayer: opts.replayer } : {}),
      });
    } catch (err) {
      // An I/O error while reading (the file vanished or became unreadable midway).
      out.error = ioProblem(run.files.join(', '), err);
      break;
    }
    before += run.files.reduce((a, f) => a + (sizes.get(f) ?? 0), 0);
    const s = result.summary;
    out.events += s.events;
    out.transitions += s.transitions;
    out.effects += s.effects;
    out.outputs += s.outputs;
    out.decisions += s.decisions;
    out.undecided += s.undecided;
    out.noted += s.noted;
    out.version = Math.min(out.version, s.version);
    out.chunks += s.chunks;
    out.connections += s.connections;
    out.preexisting += s.preexisting;
    out.unchecked += s.unchecked;
    out.unrecorded += s.unrecorded;
    if (result.truncated) out.truncated.push(result.truncated);
    out.gaps.push(...result.gaps.map((g) => ({ run, ...g })));
    const runResult: RunResult = { ...result, run };
    out.runs.push(runResult);
    opts.onRunEnd?.(runResult);
    if (s.divergence) {
      out.divergence = { run, divergence: s.divergence };
      break;
    }
    if (result.error) {
      out.error = result.error;
      break;
    }
  }
  if (!out.error && !out.divergence && plan.unreadable) out.error = plan.unreadable;
  if (out.version === Infinity) out.version = LOG_VERSION;
  opts.onProgress?.(total, total);
  return out;
}
