/**
 * Which files `mxproxy replay` reads, as series: a proxy with `[proxy] workers` > 1 writes one rotated series per
 * worker (`events.w1.mxlog`, `events.w2.mxlog`, … see src/eventlog/workerSeries.ts), and each is replayed on its
 * own (a worker's pairs are its own; its connection ids start at 1 like every other worker's), one after the
 * other, worker by worker.
 *
 *   <log> alone             its own rotated series (a single process), then each worker's series of it, if any
 *   several files, a glob   as given; files named like a worker's are grouped into their worker's series, each
 *                           in rotation order (oldest first), so `events.w*.mxlog*` just works
 *   --single                <log> only
 */
import { readdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { UsageError } from '../errors.js';
import { listWorkerSeries, seriesOfFile } from '../eventlog/workerSeries.js';
import { logSeries } from './run.js';
import { listLogFiles } from '../eventlog/files.js';

export interface LogSeries {
  /** The worker that wrote it (from its name; a file's header says so too), undefined for a single process. */
  worker: number | undefined;
  /** Oldest first. */
  files: string[];
}

const GLOB = /[*?]/;

/** `*` and `?` in the last path component, matched against the names in its directory. */
async function expandGlob(pattern: string): Promise<string[]> {
  const dir = dirname(pattern);
  if (GLOB.test(dir)) throw new UsageError(`${pattern}: a pattern may use * and ? in the file name only`);
  const re = new RegExp(`^${[...basename(pattern)].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('')}$`, 's');
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    throw new UsageError(`${pattern}: cannot list ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  const matched = names.filter((n) => re.test(n)).sort();
  if (matched.length === 0) throw new UsageError(`${pattern}: no file matches`);
  return matched.map((n) => join(dir, n));
}

/** Files given on the command line: grouped by worker when any is a worker's, else one series in the order given. */
async function givenFiles(args: string[]): Promise<LogSeries[]> {
  const files: string[] = [];
  for (const a of args) files.push(...(GLOB.test(basename(a)) ? await expandGlob(a) : [a]));
  const unique = [...new Set(files)];
  if (!unique.some((f) => seriesOfFile(f).worker !== undefined)) return [{ worker: undefined, files: unique }];
  const bySeries = new Map<string, { worker: number | undefined; files: { file: string; rotation: number }[] }>();
  for (const file of unique) {
    const s = seriesOfFile(file);
    // Files not named like a worker's stay together, in the order given.
    const key = s.worker === undefined ? '' : s.current;
    const entry = bySeries.get(key) ?? { worker: s.worker, files: [] };
    entry.files.push({ file, rotation: s.worker === undefined ? 0 : s.rotation });
    bySeries.set(key, entry);
  }
  return [...bySeries.values()]
    .sort((a, b) => (a.worker ?? 0) - (b.worker ?? 0))
    .map((s) => ({ worker: s.worker, files: s.files.sort((x, y) => y.rotation - x.rotation).map((f) => f.file) }));
}

export async function seriesToReplay(log: string, more: string[], single: boolean | undefined): Promise<LogSeries[]> {
  if (more.length > 0 || GLOB.test(basename(log))) return givenFiles([log, ...more]);
  if (single) return [{ worker: seriesOfFile(log).worker, files: [log] }];
  try {
    const workers = await listWorkerSeries(log);
    if (workers.length === 0) return [{ worker: seriesOfFile(log).worker, files: await logSeries(log) }];
    // A single process's series of the same name (before workers were configured) comes first.
    const own = await listLogFiles(log);
    return [...(own.length > 0 ? [{ worker: undefined, files: own }] : []), ...workers.map((w) => ({ worker: w.worker, files: w.files }))];
  } catch (err) {
    throw new UsageError(`cannot list the rotated files of ${log}: ${(err as Error).message}`, { cause: err });
  }
}
