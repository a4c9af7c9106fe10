/**
 * Per-worker event logs (`[proxy] workers` > 1): each worker writes its own rotated series, named after the
 * configured file with `.w<N>` before its extension — `events.mxlog` → `events.w1.mxlog`, `events.w2.mxlog`
 * (and their `.1`, `.2`, … when rotated). One writer per file, and a worker's pairs are its own, so each series
 * replays on its own.
 */
import { readdir } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { listLogFiles } from './files.js';

/** `events.mxlog` → `events.w<n>.mxlog`; a name without extension gets the suffix at its end. */
export function workerLogPath(path: string, worker: number): string {
  const ext = extname(path);
  return `${path.slice(0, path.length - ext.length)}.w${worker}${ext}`;
}

export interface WorkerSeries {
  /** The worker's current file (`events.w1.mxlog`), whether it exists or only rotated members do. */
  path: string;
  worker: number;
  /** Oldest first: `events.w1.mxlog.N … .1, events.w1.mxlog`. */
  files: string[];
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The workers' series of the configured path `base`, by worker number; none when it never ran with workers. */
export async function listWorkerSeries(base: string): Promise<WorkerSeries[]> {
  const dir = dirname(base);
  const ext = extname(base);
  const stem = basename(base).slice(0, basename(base).length - ext.length);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  // `<stem>.w<N><ext>` and its rotated members `<stem>.w<N><ext>.<k>`.
  const re = new RegExp(`^${escapeRe(stem)}\\.w([1-9][0-9]*)${escapeRe(ext)}(?:\\.[1-9][0-9]*)?$`);
  const workers = new Set<number>();
  for (const name of names) {
    const m = re.exec(name);
    if (m) workers.add(Number(m[1]));
  }
  const out: WorkerSeries[] = [];
  for (const worker of [...workers].sort((a, b) => a - b)) {
    const path = join(dir, workerLogPath(basename(base), worker));
    out.push({ path, worker, files: await listLogFiles(path) });
  }
  return out.filter((s) => s.files.length > 0);
}

/**
 * The series a file belongs to, from its name: its current file, the worker that wrote it (undefined for a
 * file not named like a worker's), and its place in the rotation (0: current, k: `.k`, older with k).
 */
export function seriesOfFile(file: string): { current: string; worker: number | undefined; rotation: number } {
  const rotated = /^(.*)\.([1-9][0-9]*)$/.exec(file);
  const worker = (name: string): number | undefined => {
    const m = /\.w([1-9][0-9]*)(?:\.[^./]*)?$/.exec(basename(name));
    return m ? Number(m[1]) : undefined;
  };
  // `events.w1.mxlog.3` is rotation 3 of `events.w1.mxlog`; `events.w1.3` too, of `events.w1`.
  if (rotated && worker(rotated[1]!) !== undefined) return { current: rotated[1]!, worker: worker(rotated[1]!), rotation: Number(rotated[2]) };
  return { current: file, worker: worker(file), rotation: 0 };
}
