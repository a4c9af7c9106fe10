/**
 * The worker side of `[proxy] workers` > 1: a `mxproxy start` process the primary forked (src/cluster/primary.ts),
 * running the same start-up as a single process (src/cli/start.ts) with three differences:
 *
 *   - its log records go to the primary over the IPC channel, which writes them (stdout, log file, syslog)
 *     with `worker=<n>`: one writer per file, and lines of several processes never interleave mid-line;
 *   - its certificates and first session-ticket key come from the primary (the `setup` message), which read
 *     them as root before it dropped privileges: a worker restarted later may not be able to read the key;
 *   - it reports `listening` and its counters (every STATS_INTERVAL_MS) to the primary, and takes the
 *     session-ticket keys the primary rotates, so that a session resumes on every worker.
 */
import cluster from 'node:cluster';
import winston from 'winston';
import TransportStream from 'winston-transport';
import type { Logger } from '../log.js';
import type { TlsMaterial } from '../net/tlsTerminator.js';
import type { ProxyHandle } from '../proxy/runtime.js';
import { asPrimaryMessage, STATS_INTERVAL_MS, WORKER_ENV, type WorkerMessage } from './messages.js';

/** N when this process is worker N of a cluster started by `mxproxy start`, else undefined. */
export function workerIndex(): number | undefined {
  const n = process.env[WORKER_ENV];
  return cluster.isWorker && n !== undefined && /^[1-9][0-9]*$/.test(n) ? Number(n) : undefined;
}

function send(message: WorkerMessage, done?: () => void): void {
  if (!process.send || !process.connected) {
    done?.();
    return;
  }
  try {
    process.send(message, undefined, {}, () => done?.());
  } catch {
    done?.(); // a value the channel cannot serialize: the record is lost, not the worker
  }
}

/** Hands each record to the primary; finished (closeLogger) once the last one has been written to the channel. */
class PrimaryTransport extends TransportStream {
  readonly name = 'primary';

  override log(info: Record<string, unknown>, next: () => void): void {
    const fields: Record<string, unknown> = {};
    // String keys only: winston's own (Symbol) keys stay here.
    for (const [k, v] of Object.entries(info)) if (typeof v !== 'bigint' && typeof v !== 'function') fields[k] = v;
    fields.message = String(info.message);
    if (!process.connected) {
      // The primary is gone (the worker exits at once then): the line is not lost without a trace.
      process.stderr.write(`${String(info.level)} ${String(info.message)}\n`);
      next();
      return;
    }
    send({ mx: 'log', info: fields }, next);
  }
}

/** A worker's logger: everything goes to the primary, which formats and writes it. */
export function workerLogger(level: string): Logger {
  return winston.createLogger({ level, transports: [new PrimaryTransport()] });
}

export interface WorkerSetup {
  tls: TlsMaterial;
  ticketKey: Buffer;
}

/** The latest ticket key the primary sent, kept from the first message on: one may come while the proxy starts. */
let latestTicketKey: Buffer | undefined;
let applyTicketKey: ((key: Buffer) => void) | undefined;

const TICKET_KEY_BYTES = 48;

/**
 * Asks the primary for its `setup` and resolves with it; takes the ticket keys it sends from then on. SIGINT is
 * ignored from here: a Ctrl-C in a terminal reaches every process of the group, and the primary passes it on
 * as SIGTERM — taken twice, it would be a worker's second signal.
 */
export function workerSetup(): Promise<WorkerSetup> {
  process.on('SIGINT', () => {});
  return new Promise((resolve) => {
    let setUp = false;
    process.on('message', (raw: unknown) => {
      const m = asPrimaryMessage(raw);
      if (!m) return;
      if (m.mx === 'setup' && !setUp) {
        setUp = true;
        latestTicketKey ??= Buffer.from(m.ticketKey, 'base64');
        resolve({ tls: m.tls, ticketKey: latestTicketKey });
      } else if (m.mx === 'ticket-key') {
        const key = Buffer.from(m.key, 'base64');
        if (key.length !== TICKET_KEY_BYTES) return;
        latestTicketKey = key;
        applyTicketKey?.(key);
      }
    });
    send({ mx: 'ready' });
  });
}

/** Tells the primary the proxy is listening, then reports its counters; returns the function that stops that. */
export function reportToPrimary(proxy: ProxyHandle, startedWith: Buffer): () => void {
  applyTicketKey = (key) => proxy.rotateTicketKeys(key);
  // A key rotated while the proxy was starting.
  if (latestTicketKey && !latestTicketKey.equals(startedWith)) proxy.rotateTicketKeys(latestTicketKey);
  send({ mx: 'listening', addresses: proxy.addresses });
  const report = () => {
    const s = proxy.stats();
    send({ mx: 'stats', stats: { accepted: s.accepted, active: s.active, open: s.open, pending: s.pending, refused: { ...s.refused } } });
  };
  report();
  const timer = setInterval(report, STATS_INTERVAL_MS);
  timer.unref();
  return () => {
    clearInterval(timer);
    applyTicketKey = undefined;
  };
}
