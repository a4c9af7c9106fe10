/**
 * The primary of `[proxy] workers` > 1: it holds no pairs. It reads the certificates, forks the workers
 * (node:cluster) and hands them the certificates and the session-ticket key, binds the listeners for them (the
 * cluster module does, at a worker's listen()), writes their log records, forwards signals, restarts a worker
 * that dies, and keeps each worker's latest counters (stats()) for whoever aggregates them. With adminListen,
 * the admin endpoint is the primary's (src/inspect/cluster.ts, loaded only then): it asks each worker for its
 * figures over the IPC channel (ask()), and the workers bind nothing.
 *
 * Connections are handed out by the primary in turn (cluster's round-robin, the default on Linux): measured
 * in docs/performance.md against the shared listening socket (NODE_CLUSTER_SCHED_POLICY=none).
 *
 * Signals: SIGHUP is passed on to every worker that is listening. SIGTERM or SIGINT sends SIGTERM to every
 * worker (a Ctrl-C reaches the workers only through here: they ignore SIGINT), a second one sends it again (the
 * workers' second signal); the primary exits once every worker has, 0 when all of them exited 0.
 *
 * Privileges (`[proxy] user`): the primary binds the listeners (as root: ports below 1024), each worker drops
 * to the account once it listens, and the primary drops too once every worker has: a worker it forks later
 * starts as the account (the listening sockets are kept by the other workers; the certificates come from here).
 */
import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import type { ProxyConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import { loadTlsMaterial } from '../net/tlsMaterial.js';
import { TICKET_KEY_BYTES, type TlsMaterial } from '../net/tlsTerminator.js';
import { withOpensslConfig } from '../process/opensslConfig.js';
import { checkLogDirectory, dropPrivileges, prepareLogDirectory } from '../process/privileges.js';
import { asWorkerMessage, WORKER_ENV, type AdminQuestion, type PrimaryMessage, type WorkerStats } from './messages.js';

export interface RestartPolicy {
  /** Restarts allowed within `windowMs`; one more death and the primary gives up. */
  max: number;
  windowMs: number;
  /** Delay before the first restart in the window, doubled for each further one, up to maxDelayMs. */
  delayMs: number;
  maxDelayMs: number;
}

export const RESTART_POLICY: RestartPolicy = { max: 5, windowMs: 60_000, delayMs: 250, maxDelayMs: 5000 };

export interface PrimaryOptions {
  config: ProxyConfig;
  logger: Logger;
  workers: number;
  /** The module the workers run (the CLI's main.js) and its arguments (`start -c …` as given). */
  exec: string;
  args: string[];
  restart?: RestartPolicy;
  /** Called once the pool exists (tests read stats() through it). */
  started?: (pool: WorkerPool) => void;
  /**
   * Starts the admin endpoint for the pool (src/inspect/cluster.ts: it reads stats() and ask()s the workers),
   * before any worker is forked; a rejection stops the start. What it resolves with is closed once every worker
   * has exited.
   */
  admin?: (pool: WorkerPool) => Promise<{ close(): Promise<void> }>;
}

export interface WorkerView {
  worker: number;
  pid: number | undefined;
  listening: boolean;
  /** The worker's latest counters (at most STATS_INTERVAL_MS old), undefined before its first report. */
  stats: WorkerStats | undefined;
  /** ms since the epoch of that report. */
  statsAt: number | undefined;
  /** Times this worker was restarted since the primary started. */
  restarts: number;
}

/** A question to one worker awaiting its answer. */
interface Pending {
  slot: Slot;
  resolve: (answer: { ok: boolean; value: unknown } | undefined) => void;
  timer: NodeJS.Timeout;
}

interface Slot {
  index: number;
  worker: Worker | undefined;
  pid: number | undefined;
  listening: boolean;
  stats: WorkerStats | undefined;
  statsAt: number | undefined;
  restarts: number;
  restartTimer: NodeJS.Timeout | undefined;
}

const LOG_LEVELS = new Set(['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly']);

const describeExit = (code: number | null, signal: string | null): string => (signal ? signal : `exit code ${code ?? '?'}`);

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/** PEM text: what the IPC channel carries as it is. */
const pem = (v: string | Buffer): string => (typeof v === 'string' ? v : v.toString('utf8'));

export class WorkerPool {
  private readonly slots: Slot[];
  private readonly policy: RestartPolicy;
  private readonly logger: Logger;
  private readonly config: ProxyConfig;
  private readonly tls: TlsMaterial;
  private ticketKey = randomBytes(TICKET_KEY_BYTES);
  private ticketTimer: NodeJS.Timeout | undefined;
  /** Deaths within the restart window, ms since the epoch, over all workers. */
  private deaths: number[] = [];
  /** Every worker has listened once: from then on a death is a restart, not a failed start. */
  private started = false;
  private stopping = false;
  private signals = 0;
  private exitCode = 0;
  private resolveDone!: (code: number) => void;
  readonly done: Promise<number>;
  /** Admin questions in flight, by id. */
  private readonly pending = new Map<number, Pending>();
  private nextQuestion = 0;

  constructor(private readonly opts: PrimaryOptions) {
    this.policy = opts.restart ?? RESTART_POLICY;
    this.logger = opts.logger;
    this.config = opts.config;
    this.done = new Promise((r) => (this.resolveDone = r));
    const tls = this.config.tls;
    if (!tls) throw new Error(`${this.config.file}: no sslCertificate entry in [proxy]`);
    // Read and checked once, here, as the account the primary started with (see the module comment).
    this.tls = loadTlsMaterial(tls, { crlFile: this.config.crlFile, warn: (m) => this.logger.warn(m) });
    this.slots = Array.from({ length: opts.workers }, (_, i) => ({
      index: i + 1,
      worker: undefined,
      pid: undefined,
      listening: false,
      stats: undefined,
      statsAt: undefined,
      restarts: 0,
      restartTimer: undefined,
    }));
  }

  /** Each worker's latest state and counters. */
  stats(): WorkerView[] {
    return this.slots.map((s) => ({
      worker: s.index,
      pid: s.pid,
      listening: s.listening,
      stats: s.stats,
      statsAt: s.statsAt,
      restarts: s.restarts,
    }));
  }

  /** How many workers the pool runs. */
  get size(): number {
    return this.slots.length;
  }

  /**
   * Asks worker `index` (1-based) an admin question; resolves with its answer, or undefined when it is not
   * running, does not answer within `timeoutMs`, or exits first. The value is as the worker sent it: unchecked.
   */
  ask(index: number, question: AdminQuestion, timeoutMs: number): Promise<{ ok: boolean; value: unknown } | undefined> {
    const slot = this.slots[index - 1];
    const worker = slot?.worker;
    if (!slot || !worker || !slot.listening || !worker.isConnected()) return Promise.resolve(undefined);
    const id = ++this.nextQuestion;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.settle(id, undefined), timeoutMs);
      timer.unref();
      this.pending.set(id, { slot, resolve, timer });
      this.send(worker, { mx: 'admin', id, ...question });
    });
  }

  private settle(id: number, answer: { ok: boolean; value: unknown } | undefined): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.resolve(answer);
  }

  start(): void {
    // The workers would race to create it: made here, once, for the account they run as.
    const eventLog = this.config.eventLog;
    if (eventLog) {
      const dir = path.dirname(eventLog.path);
      if (prepareLogDirectory(dir, this.config.runAs)) this.logger.info(`created the event log directory ${dir}`);
    }
    // The workers get the shipped OpenSSL settings (one session ticket per handshake) unless this process was
    // given an OpenSSL configuration of the operator's.
    cluster.setupPrimary({ exec: this.opts.exec, args: this.opts.args, execArgv: withOpensslConfig(process.execArgv) });
    const policy = cluster.schedulingPolicy === cluster.SCHED_RR ? 'handed out in turn by the primary (round-robin)' : 'accepted by the workers from a shared socket';
    this.logger.info(`starting ${plural(this.slots.length, 'worker')}; connections are ${policy}`);
    for (const slot of this.slots) this.fork(slot);
    this.scheduleTicketRotation();
  }

  private fork(slot: Slot): void {
    slot.restartTimer = undefined;
    slot.listening = false;
    slot.stats = undefined;
    slot.statsAt = undefined;
    const worker = cluster.fork({ [WORKER_ENV]: String(slot.index) });
    slot.worker = worker;
    slot.pid = worker.process.pid;
    // EPIPE on a send to a worker that just died: its 'exit' says what happened.
    worker.on('error', () => {});
    worker.on('message', (raw: unknown) => this.onMessage(slot, worker, raw));
    worker.once('exit', (code: number | null, signal: string | null) => this.onExit(slot, worker, code, signal));
  }

  private send(worker: Worker, message: PrimaryMessage): void {
    if (!worker.isConnected()) return;
    try {
      worker.send(message);
    } catch {
      /* the channel closed under us: 'exit' follows */
    }
  }

  private onMessage(slot: Slot, worker: Worker, raw: unknown): void {
    if (slot.worker !== worker) return; // a late message of a worker already replaced
    const m = asWorkerMessage(raw);
    if (!m) return;
    switch (m.mx) {
      case 'ready':
        this.send(worker, {
          mx: 'setup',
          tls: { cert: pem(this.tls.cert), key: pem(this.tls.key), ca: pem(this.tls.ca), ...(this.tls.crl ? { crl: this.tls.crl } : {}) },
          ticketKey: this.ticketKey.toString('base64'),
        });
        break;
      case 'log': {
        // The primary's transports write it; `worker` is set here, from the channel it came on.
        const level = LOG_LEVELS.has(String(m.info.level)) ? String(m.info.level) : 'info';
        this.logger.log({ ...m.info, level, message: String(m.info.message), worker: slot.index });
        break;
      }
      case 'listening':
        slot.listening = true;
        this.logger.info(`worker ${slot.index} (pid ${slot.pid ?? '?'}) listening`, { addresses: m.addresses.join(',') });
        if (!this.started && this.slots.every((s) => s.listening)) this.allListening(m.addresses);
        break;
      case 'stats':
        slot.stats = m.stats;
        slot.statsAt = Date.now();
        break;
      case 'admin-reply': {
        // Only the worker that was asked may answer.
        const p = this.pending.get(m.id);
        if (p && p.slot === slot) this.settle(m.id, { ok: m.ok, value: m.value });
        break;
      }
    }
  }

  private allListening(addresses: string[]): void {
    this.started = true;
    if (this.stopping) return;
    const runAs = this.config.runAs;
    if (runAs && process.getuid?.() === 0) {
      try {
        dropPrivileges(runAs);
        const logFile = this.config.log.file;
        if (logFile) checkLogDirectory(path.dirname(logFile.path), runAs, 'log file');
      } catch (err) {
        this.logger.error(`primary: ${(err as Error).message}; stopping`);
        this.exitCode = 1;
        this.stop('privilege drop failed');
        return;
      }
      this.logger.info(`primary running as user ${runAs.user} (${runAs.uid}), group ${runAs.group} (${runAs.gid})`);
    }
    const pids = this.slots.map((s) => s.pid ?? '?').join(', ');
    this.logger.info(`mxproxy listening on ${addresses.join(', ')} with ${plural(this.slots.length, 'worker')} (pids ${pids})`);
  }

  private onExit(slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    if (slot.worker !== worker) return;
    const pid = slot.pid ?? '?';
    const wasListening = slot.listening;
    slot.worker = undefined;
    slot.listening = false;
    for (const [id, p] of this.pending) if (p.slot === slot) this.settle(id, undefined);
    if (this.stopping) {
      // SIGTERM is what the primary sent (SIGINT what a terminal sent the whole group): a worker that had not
      // installed its handler yet ends by it.
      if (code !== 0 && signal !== 'SIGTERM' && signal !== 'SIGINT') {
        this.logger.error(`worker ${slot.index} (pid ${pid}) ended with ${describeExit(code, signal)} while stopping`);
        this.exitCode = 1;
      }
      this.finishIfDone();
      return;
    }
    if (!this.started && !wasListening) {
      // The start failed (a port in use, a certificate the worker cannot use): restarting will not help.
      this.logger.error(`worker ${slot.index} (pid ${pid}) could not start: ${describeExit(code, signal)}; stopping`);
      this.exitCode = code === 1 || code === 2 ? code : 1;
      this.stop('start failed');
      return;
    }
    const lost = wasListening ? (slot.stats?.active ?? 0) : 0;
    this.logger.error(`worker ${slot.index} (pid ${pid}) died: ${describeExit(code, signal)}; its ${plural(lost, 'open pair')} ${lost === 1 ? 'was' : 'were'} lost`);
    const now = Date.now();
    this.deaths = [...this.deaths.filter((t) => t > now - this.policy.windowMs), now];
    if (this.deaths.length > this.policy.max) {
      this.logger.error(
        `workers died ${this.deaths.length} times within ${this.policy.windowMs / 1000} s, more than the ${this.policy.max} restarts allowed: ` +
          'giving up, stopping the other workers',
      );
      this.exitCode = 1;
      this.stop('gave up');
      return;
    }
    const delay = Math.min(this.policy.delayMs * 2 ** (this.deaths.length - 1), this.policy.maxDelayMs);
    this.logger.warn(`restarting worker ${slot.index} in ${delay} ms (${this.deaths.length} of ${this.policy.max} restarts within ${this.policy.windowMs / 1000} s)`);
    slot.restarts++;
    slot.restartTimer = setTimeout(() => this.fork(slot), delay);
  }

  /** SIGHUP to every worker that is listening (one still starting reads the config file as it is anyway). */
  forward(signal: 'SIGHUP'): void {
    const live = this.slots.filter((s) => s.worker && s.listening);
    this.logger.info(`${signal}: passed on to ${plural(live.length, 'worker')}`);
    for (const s of live) s.worker!.process.kill(signal);
  }

  /** The first call stops every worker (SIGTERM), each further one sends SIGTERM again. */
  stop(reason: string): void {
    this.signals++;
    const live = this.slots.filter((s) => s.worker);
    if (!this.stopping) {
      this.stopping = true;
      if (this.ticketTimer) clearTimeout(this.ticketTimer);
      for (const s of this.slots) if (s.restartTimer) clearTimeout(s.restartTimer);
      this.logger.info(`${reason}: stopping ${plural(live.length, 'worker')}`);
    } else {
      this.logger.info(`${reason} again: passed on to ${plural(live.length, 'worker')}`);
    }
    for (const s of live) s.worker!.process.kill('SIGTERM');
    this.finishIfDone();
  }

  private finishIfDone(): void {
    if (!this.stopping || this.slots.some((s) => s.worker)) return;
    this.logger.info(`mxproxy stopped (${plural(this.slots.length, 'worker')})`);
    this.resolveDone(this.exitCode);
  }

  /** One key for all workers, replaced here on the config's schedule, so a session resumes on any of them. */
  private scheduleTicketRotation(): void {
    this.ticketTimer = setTimeout(() => {
      this.ticketKey = randomBytes(TICKET_KEY_BYTES);
      const key = this.ticketKey.toString('base64');
      for (const s of this.slots) if (s.worker) this.send(s.worker, { mx: 'ticket-key', key });
      this.logger.debug('session ticket key rotated on every worker');
      this.scheduleTicketRotation();
    }, this.config.sessionTicketRotation);
    this.ticketTimer.unref();
  }
}

/**
 * Runs the primary until every worker has exited; resolves with the exit status (0: all exited 0 after a
 * stop; 1: a worker could not start, died too often, or did not stop cleanly; 2: a worker found the
 * configuration bad at start). Installs the SIGTERM, SIGINT and SIGHUP handlers.
 */
export async function runPrimary(opts: PrimaryOptions): Promise<number> {
  const pool = new WorkerPool(opts);
  const onStop = (signal: string) => () => pool.stop(signal);
  const onHup = () => pool.forward('SIGHUP');
  const handlers = { SIGTERM: onStop('SIGTERM'), SIGINT: onStop('SIGINT') };
  opts.started?.(pool);
  // Before the signal handlers: a failed start (the admin address in use) ends the process as it would anyway.
  const admin = await opts.admin?.(pool);
  process.on('SIGTERM', handlers.SIGTERM).on('SIGINT', handlers.SIGINT).on('SIGHUP', onHup);
  pool.start();
  const code = await pool.done;
  process.off('SIGTERM', handlers.SIGTERM).off('SIGINT', handlers.SIGINT).off('SIGHUP', onHup);
  await admin?.close();
  return code;
}

/** `workers` as configured → a count: "auto" is one per CPU the process may use. */
export function resolveWorkers(workers: number | 'auto'): number {
  return workers === 'auto' ? os.availableParallelism() : workers;
}
