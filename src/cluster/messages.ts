/**
 * What the cluster primary and its workers say over the IPC channel (`[proxy] workers` > 1). Every message
 * carries `mx` so that node:cluster's own messages (`cmd: 'NODE_CLUSTER'`) are told apart.
 *
 * A worker's messages are checked field by field before the primary acts on them: a worker faces the network
 * and may be taken over, the primary must not be through it (it only logs and counts what workers say).
 */
import type { TlsMaterial } from '../net/tlsTerminator.js';

/** The environment variable that makes a `mxproxy start` process worker N (set by the primary at fork). */
export const WORKER_ENV = 'MXPROXY_WORKER';

/** A worker's counters, sent every STATS_INTERVAL_MS (and what the admin endpoint can add up). */
export interface WorkerStats {
  /** Connections accepted since the worker started. */
  accepted: number;
  /** Pairs whose actor has not finished. */
  active: number;
  /** Client sockets counted against maxConnections. */
  open: number;
  /** Of those, not yet past TLS and the request frame. */
  pending: number;
  /** Connections refused at accept and pairs declined ERR_OVERLOADED, by reason, since the worker started. */
  refused: Record<string, number>;
}

export const STATS_INTERVAL_MS = 1000;

/** Worker → primary. */
export type WorkerMessage =
  /** The worker listens for messages now (the channel drops what comes before): the primary sends `setup`. */
  | { mx: 'ready' }
  /** A log record, level and message and fields, for the primary's transports (one writer per file). */
  | { mx: 'log'; info: Record<string, unknown> }
  /** The proxy has started: listening (and privileges dropped). */
  | { mx: 'listening'; addresses: string[] }
  | { mx: 'stats'; stats: WorkerStats }
  /** The answer to an `admin` question (`ok` false: the worker has no admin figures, or failed to gather them).
   * Its value is checked by whoever asked (src/inspect/cluster.ts), which knows its shape. */
  | { mx: 'admin-reply'; id: number; ok: boolean; value: unknown };

/** What the primary's admin endpoint asks a worker (`[proxy] adminListen` with workers > 1). */
export type AdminQuestion =
  /** The worker's metrics as prom-client JSON (getMetricsAsJSON), its process's included. */
  | { ask: 'metrics' }
  /** Its /status. */
  | { ask: 'status' }
  /** Its pairs by state and its table (the page's picture). */
  | { ask: 'picture' }
  /** One pair with its transitions. */
  | { ask: 'connection'; conn: string };

/** Primary → worker. */
export type PrimaryMessage =
  /** Before the worker starts its proxy: the certificates read by the primary (as root, before it dropped
   * privileges: a restarted worker may not be able to read the key) and the session-ticket key in force. */
  | { mx: 'setup'; tls: TlsMaterial; ticketKey: string }
  /** A new session-ticket key for every worker at once (base64, 48 bytes). */
  | { mx: 'ticket-key'; key: string }
  /** A question of the primary's admin endpoint; the worker answers `admin-reply` with the same id. */
  | ({ mx: 'admin'; id: number } & AdminQuestion);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function asStats(v: unknown): WorkerStats | undefined {
  if (!isObject(v) || !isCount(v.accepted) || !isCount(v.active) || !isCount(v.open) || !isCount(v.pending) || !isObject(v.refused)) return undefined;
  const refused: Record<string, number> = {};
  for (const [k, n] of Object.entries(v.refused).slice(0, 32)) if (isCount(n)) refused[k.slice(0, 64)] = n;
  return { accepted: v.accepted, active: v.active, open: v.open, pending: v.pending, refused };
}

/** A worker's message as the primary may act on it, or undefined (not ours, or malformed). */
export function asWorkerMessage(v: unknown): WorkerMessage | undefined {
  if (!isObject(v)) return undefined;
  switch (v.mx) {
    case 'ready':
      return { mx: 'ready' };
    case 'log':
      return isObject(v.info) && typeof v.info.level === 'string' && typeof v.info.message === 'string' ? { mx: 'log', info: v.info } : undefined;
    case 'listening':
      return Array.isArray(v.addresses) && v.addresses.every((a) => typeof a === 'string')
        ? { mx: 'listening', addresses: (v.addresses as string[]).slice(0, 64) }
        : undefined;
    case 'stats': {
      const stats = asStats(v.stats);
      return stats ? { mx: 'stats', stats } : undefined;
    }
    case 'admin-reply':
      return isCount(v.id) && typeof v.ok === 'boolean' ? { mx: 'admin-reply', id: v.id, ok: v.ok, value: v.value } : undefined;
    default:
      return undefined;
  }
}

/** The primary's message as a worker takes it, or undefined. */
export function asPrimaryMessage(v: unknown): PrimaryMessage | undefined {
  if (!isObject(v)) return undefined;
  if (v.mx === 'ticket-key' && typeof v.key === 'string') return { mx: 'ticket-key', key: v.key };
  if (v.mx === 'admin' && isCount(v.id)) {
    if (v.ask === 'metrics' || v.ask === 'status' || v.ask === 'picture') return { mx: 'admin', id: v.id, ask: v.ask };
    if (v.ask === 'connection' && typeof v.conn === 'string') return { mx: 'admin', id: v.id, ask: 'connection', conn: v.conn };
    return undefined;
  }
  if (v.mx === 'setup' && typeof v.ticketKey === 'string' && isObject(v.tls)) {
    const t = v.tls;
    if (typeof t.cert !== 'string' || typeof t.key !== 'string' || typeof t.ca !== 'string') return undefined;
    const crl = Array.isArray(t.crl) && t.crl.every((c) => typeof c === 'string') ? (t.crl as string[]) : undefined;
    return { mx: 'setup', ticketKey: v.ticketKey, tls: { cert: t.cert, key: t.key, ca: t.ca, ...(crl ? { crl } : {}) } };
  }
  return undefined;
}
