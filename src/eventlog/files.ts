/** Naming and shifting of the rotated series `path.N … path.1, path` (higher N = older). */
import { readdir, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

export const rotatedPath = (path: string, n: number): string => `${path}.${n}`;

const isMissing = (err: unknown): boolean => (err as NodeJS.ErrnoException)?.code === 'ENOENT';

async function ignoreMissing(op: Promise<void>): Promise<void> {
  try {
    await op;
  } catch (err) {
    if (!isMissing(err)) throw err;
  }
}

/**
 * Shifts the series one step so `path` is free: path.(files-1) is deleted, path.n → path.(n+1), path → path.1.
 * With files = 1 nothing old is kept: `path` itself is deleted. Missing members are skipped (gaps are fine).
 */
export async function rotateFiles(path: string, files: number): Promise<void> {
  const keep = files - 1;
  if (keep === 0) return ignoreMissing(unlink(path));
  await ignoreMissing(unlink(rotatedPath(path, keep)));
  for (let n = keep - 1; n >= 1; n--) await ignoreMissing(rename(rotatedPath(path, n), rotatedPath(path, n + 1)));
  await ignoreMissing(rename(path, rotatedPath(path, 1)));
}

/** The series oldest first: `path.N … path.1, path`, only the members that exist (none if the directory is missing). */
export async function listLogFiles(path: string): Promise<string[]> {
  const dir = dirname(path);
  const base = basename(path);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if (isMissing(err)) return [];
    throw err;
  }
  const rotated: number[] = [];
  for (const name of names) {
    if (!name.startsWith(`${base}.`)) continue;
    const suffix = name.slice(base.length + 1);
    if (/^[1-9][0-9]*$/.test(suffix)) rotated.push(Number(suffix));
  }
  rotated.sort((a, b) => b - a);
  const out = rotated.map((n) => rotatedPath(path, n));
  if (names.includes(base)) out.push(path);
  return out;
}

/** Whether `path` exists (any type); other stat errors propagate. */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (isMissing(err)) return false;
    throw err;
  }
}
