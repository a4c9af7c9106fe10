/**
 * The open-files limit of this process and the `maxConnections` default derived from it.
 *
 * Node raises its soft RLIMIT_NOFILE to the hard limit when it starts, so `ulimit -n` in the shell that started
 * the proxy says less than the process may open: the limit is read from the running process
 * (`/proc/self/limits`, Linux). Node has no getrlimit; elsewhere the common default soft limit is assumed.
 */
import fs from 'node:fs';

/** Assumed where /proc is not there (macOS, Windows): the usual soft limit, so the derived value is safe. */
export const FALLBACK_OPEN_FILES = 1024;
/** Descriptors kept free for listeners, the log, the event log and its rotation, DNS, the CRL reload … */
export const RESERVED_FILES = 64;

/** The soft "Max open files" of this process; undefined when it cannot be read. */
export function openFilesLimit(limitsText?: string): number | undefined {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = fs.readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const line = text.split('\n').find((l) => l.startsWith('Max open files'));
  const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
  if (soft === undefined) return undefined;
  if (soft === 'unlimited') return Number.MAX_SAFE_INTEGER;
  const n = Number(soft);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** floor((limit − 64) / 2), at least 1, at most 1,000,000: each pair holds two sockets (client and server). */
export function derivedMaxConnections(limit = openFilesLimit() ?? FALLBACK_OPEN_FILES): number {
  return Math.min(1_000_000, Math.max(1, Math.floor((limit - RESERVED_FILES) / 2)));
}

/** How the default was reached, for `--dbg work` and the start line. */
export function describeDerivedMaxConnections(limit = openFilesLimit()): string {
  const known = limit !== undefined;
  const l = limit ?? FALLBACK_OPEN_FILES;
  return `floor((open files ${known ? l : `${l}, assumed`} - ${RESERVED_FILES}) / 2) = ${derivedMaxConnections(l)}`;
}
