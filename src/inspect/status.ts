/** /status: what is running, since when, with which configuration, and how many pairs are where. */
import { createRequire } from 'node:module';

const pkg = createRequire(import.meta.url)('../../../package.json') as { version: string };
export const VERSION = pkg.version;

export interface StatusSources {
  /** ms since the epoch. */
  now: () => number;
  startedAt: number;
  listeners: () => string[];
  admin: () => string | undefined;
  configFile: () => string;
  /** When the configuration in force was taken in (ms since the epoch). */
  configLoadedAt: () => number;
  eventLog: () => string | undefined;
  stats: () => { accepted: number; active: number };
  stateCounts: () => Map<string, number>;
  totals: () => { live: number; untracked: number; gone: number };
}

export interface Status {
  version: string;
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
}

export function statusOf(s: StatusSources): Status {
  const now = s.now();
  const stats = s.stats();
  return {
    version: VERSION,
    pid: process.pid,
    node: process.version,
    startedAt: new Date(s.startedAt).toISOString(),
    uptimeSeconds: Math.round((now - s.startedAt) / 10) / 100,
    listeners: s.listeners(),
    admin: s.admin() ?? null,
    config: { file: s.configFile(), loadedAt: new Date(s.configLoadedAt()).toISOString() },
    eventLog: s.eventLog() ?? null,
    accepted: stats.accepted,
    active: stats.active,
    states: Object.fromEntries([...s.stateCounts()].sort(([a], [b]) => a.localeCompare(b))),
    untracked: s.totals().untracked,
  };
}
