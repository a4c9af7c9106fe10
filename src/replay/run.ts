/**
 * Replaying log files: the rotated series (oldest first) or the files given, streamed record by record into a
 * Replayer. Bad bytes never throw: reading stops where the log stops, and says why.
 */
import { stat } from 'node:fs/promises';
import { iterateEventLogFile, listLogFiles, type EventLogEnd, type EventLogStop } from '../eventlog/index.js';
import { asLogRecord, isHeader, LOG_VERSION, machineOf, type HeaderRecord, type LogRecord } from '../eventlog/records.js';
import { Replayer, type ReplayerOptions, type ReplaySummary } from './engine.js';

export interface ReplayFilesOptions {
  /** Called with each valid record after it was replayed (output, filters). */
  onRecord?: (r: LogRecord, replayer: Replayer) => void;
  /** Bytes read so far over all files, and their total size. */
  onProgress?: (read: number, total: number) => void;
  /** Test-only: the machines and the decider to replay with (the log's version comes from its header). */
  replayer?: Omit<ReplayerOptions, 'version'>;
}

/** A log's version from its header; a header without one is from before versions were written: 1. */
export const versionOf = (header: HeaderRecord | undefined): number => (typeof header?.version === 'number' ? header.version : 1);

export interface FileProblem {
  file: string;
  stop: EventLogStop;
}

export interface ReplayFilesResult {
  files: string[];
  header: HeaderRecord | undefined;
  summary: ReplaySummary;
  /** A file that ended inside a record (power loss): replay went up to its last whole record. */
  truncated: FileProblem | undefined;
  /** A file that is not a log, not ours, or damaged: replay stopped there. */
  error: FileProblem | undefined;
  /** Sequence numbers missing between files (a file rotated away or deleted). */
  gaps: { after: number; next: number }[];
}

/** The files to replay for `path`: its rotated series when `path.1` exists, else just `path`. */
export async function logSeries(path: string): Promise<string[]> {
  const series = await listLogFiles(path);
  return series.length > 0 ? series : [path];
}

export async function replayFiles(files: string[], opts: ReplayFilesOptions = {}): Promise<ReplayFilesResult> {
  const sizes = await Promise.all(files.map((f) => stat(f).then((s) => s.size, () => 0)));
  const total = sizes.reduce((a, b) => a + b, 0);
  let done = 0;
  let header: HeaderRecord | undefined;
  // Made at the first record, when the header has said whose machines to replay through.
  let replayer: Replayer | undefined;
  const replayerNow = (): Replayer =>
    (replayer ??= new Replayer(machineOf(header), { ...opts.replayer, version: versionOf(header) }));
  let truncated: FileProblem | undefined;
  let error: FileProblem | undefined;
  let lastSeq = 0;
  const gaps: ReplayFilesResult['gaps'] = [];

  files: for (const [i, file] of files.entries()) {
    const fail = (reason: EventLogStop['reason'], message: string, offset = 0) => {
      error = { file, stop: { offset, reason, message } };
    };
    try {
      await stat(file);
    } catch (err) {
      fail('not-a-log', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      break;
    }
    let fileHeader: unknown;
    const it = iterateEventLogFile(file, {
      onProgress: (read) => opts.onProgress?.(done + read, total),
      onHeader: (h) => {
        fileHeader = h;
        if (isHeader(h) && !header) header = h;
      },
    });
    let end: EventLogEnd | undefined;
    let index = 0;
    for (;;) {
      let step: IteratorResult<unknown, EventLogEnd>;
      try {
        step = await it.next();
      } catch (err) {
        // A read error (EISDIR, EIO): reported like bad bytes, never thrown.
        fail('not-a-log', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        break files;
      }
      if (step.done) {
        end = step.value;
        break;
      }
      index++;
      if (index === 1 && !isHeader(fileHeader)) {
        fail('not-a-log', `${file} is a framed log but its header is not an mxproxy event log header`);
        await it.return(undefined as never);
        break files;
      }
      if (index === 1 && isHeader(fileHeader) && versionOf(fileHeader) > LOG_VERSION) {
        fail('not-a-log', `${file} is an event log of version ${versionOf(fileHeader)}, newer than this mxproxy reads (${LOG_VERSION})`);
        await it.return(undefined as never);
        break files;
      }
      const r = asLogRecord(step.value);
      if (typeof r === 'string') {
        fail('corrupt', `${file}: record ${index}: ${r}`);
        await it.return(undefined as never);
        break files;
      }
      if (lastSeq > 0 && r.s !== lastSeq + 1) {
        if (r.s <= lastSeq) {
          fail('corrupt', `${file}: record ${index} has sequence number ${r.s} after ${lastSeq} (files out of order?)`);
          await it.return(undefined as never);
          break files;
        }
        gaps.push({ after: lastSeq, next: r.s });
        replayerNow().gap();
      }
      lastSeq = r.s;
      const ok = replayerNow().feed(r);
      opts.onRecord?.(r, replayerNow());
      if (!ok) {
        await it.return(undefined as never);
        break files;
      }
    }
    done += sizes[i] ?? 0;
    if (!end) break;
    if (end.header !== undefined && !isHeader(end.header)) {
      fail('not-a-log', `${file}: not an mxproxy event log (its header is from something else)`);
      break;
    }
    if (end.stop.reason === 'truncated' && end.records === 0 && end.header === undefined && end.stop.offset === 0) {
      fail('not-a-log', `${file}: ${end.stop.message}`);
      break;
    }
    if (end.stop.reason === 'truncated') {
      truncated = { file, stop: end.stop };
      break; // a later file would continue after a hole
    }
    if (end.stop.reason !== 'end') {
      fail(end.stop.reason, `${file}: ${end.stop.message}`, end.stop.offset);
      break;
    }
  }
  const summary = replayerNow().finish(truncated !== undefined || error !== undefined);
  return { files, header, summary, truncated, error, gaps };
}
