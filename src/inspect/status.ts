/**
 * /status: what is running (the proxy, or `mxproxy forward`), since when, with which configuration, and how
 * many pairs are where.
 */
import { createRequire } from 'node:module';

const pkg = createRequire(import.meta.url)('../../../package.json') as { version: string };
export const VERSION = pkg.version;

export type AdminRole = 'proxy' | 'forward';

export interface StatusSources {
  role: AdminRole;
  /** ms since the epoch. */
  now: () => number;
  startedAt: number;
  listeners: () => string[];
  admin: () => string | undefined;
  configFile: () => string;
  /** When the configuration in force was taken in (ms since the epoch). */
  configLoadedAt: () => number;
  eventLog: () => string | undefined;
  /** accepted and active, and what else the role counts (the forwarder: linked, refused). */
  stats: () => { accepted: number; active: number } & Record<string, number>;
  stateCounts: () => Map<string, number>;
  totals: () => { live: number; untracked: number; gone: number };
  /** Fields of the role's own, last (the forwarder: its forwards). */
  extra?: () => Record<string, unknown>;
}

export interface Status {
  version: string;
  role: AdminRole;
  pid: number;
  node: string;
  startedAt: string;
  uptimeSeconds: number;
  listeners: string[];
  admin: string | null;
  config: { file: string; loadedAt: string };
  eventLog: string | null;
  accepted: number;
  active: number;
  /** Live pairs by state path. */
  states: Record<string, number>;
  /** Live pairs beyond what the inspector lists (counted in `states` all the same). */
  untracked: number;
  [more: string]: unknown;
}

export function statusOf(s: StatusSources): Status {
  const now = s.now();
  const stats = s.stats();
  return {
    version: VERSION,
    role: s.role,
    pid: process.pid,
    node: process.version,
    startedAt: new Date(s.startedAt).toISOString(),
    uptimeSeconds: Math.round((now - s.startedAt) / 10) / 100,
    listeners: s.listeners(),
    admin: s.admin() ?? null,
    config: { file: s.configFile(), loadedAt: new Date(s.configLoadedAt()).toISOString() },
    eventLog: s.eventLog() ?? null,
    ...stats,
    states: Object.fromEntries([...s.stateCounts()].sort(([a], [b]) => a.localeCompare(b))),
    untracked: s.totals().untracked,
    ...s.extra?.(),
  };
}
