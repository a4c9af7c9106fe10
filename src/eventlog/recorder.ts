/**
 * The live side of the event log, for the proxy and for a forwarder alike: every event as it enters the root
 * actor, every microstep of every actor (XState's inspection, ./transitions.ts), every effect a pair's machine
 * asks for (./effects.ts), each pair's output, inputs the machines did not take, and at `traffic`/`payload`
 * level every forwarded chunk. Appends are synchronous and cheap; the writer buffers and flushes at least
 * every 100 ms.
 *
 * Anyone who can open TCP can make pairs, so a pair's records are held in memory until its client has proved
 * a certificate (TLS_OK), then written in their order. A pair that ends before that is written only within a
 * budget (UNAUTHENTICATED_BUDGET: 100 at once, then 1 a second); beyond it, its records are dropped and
 * counted, and a `d` record says how many every 10 s. At SHUTDOWN every held pair is written: the root's own transitions wait for those pairs to end, so
 * replay needs them. Sequence numbers are given when a record is written, so the log has no gaps; timestamps
 * are those of the moment it happened. See docs/eventlog.md.
 */
import os from 'node:os';
import { createRequire } from 'node:module';
import type { Clock, TimerHandle } from '../clock.js';
import { EventLogWriter, type EventLogWriterStats } from './writer.js';
import type { EventLogLevel } from '../shared/eventLogLevel.js';
import { TokenBucket, type Rate } from '../shared/tokenBucket.js';
import { LOG_FORMAT, LOG_VERSION, rootIdOf, type HeaderRecord, type LogMachine, type LogRecord, type LoggedEvent } from './records.js';
import { MicrostepTracker } from './transitions.js';

const pkg = createRequire(import.meta.url)('../../../package.json') as { version: string };

export interface RecorderOptions {
  path: string;
  level: EventLogLevel;
  /** Rotate at this size (bytes); undefined: never. */
  maxBytes?: number;
  /** Files kept, the current one included. */
  files?: number;
  clock: Clock;
  /** Whose events these are (the header says so, replay picks the machines by it); default the proxy's. */
  machine?: LogMachine;
  /** A write failure (disk full, permissions): reported once, the proxy goes on without its log. */
  onError?: (err: Error) => void;
  /** The worker process this is (`[proxy] workers` > 1): the header says so, replay names it. */
  worker?: number;
  /** Pairs ending before TLS_OK whose records are still written (default UNAUTHENTICATED_BUDGET). */
  unauthenticatedBudget?: Rate;
  /** How often a `d` record sums up what was dropped (default 10 s). */
  droppedSummaryMs?: number;
}

/**
 * A pair that ends before TLS costs ~0.3 KiB of log. At 1/s a sustained flood takes ~13 days to fill 5 × 64 MiB
 * (at 50/s it would take 6 hours); the burst keeps a real incident whole, e.g. many clients whose certificates
 * expired at once.
 */
export const UNAUTHENTICATED_BUDGET: Rate = { count: 1, per: 's', burst: 100 };
export const DROPPED_SUMMARY_MS = 10_000;
/** Ids of dropped pairs remembered, so an event arriving after the pair ended is dropped with it. */
const DROPPED_IDS_KEPT = 4096;

export interface RecorderStats {
  seq: number;
  /** Pairs whose records are held until TLS_OK. */
  held: number;
  /** Pairs that ended before TLS_OK and were not written (over the budget), since start. */
  droppedPairs: number;
  droppedRecords: number;
}

export class EventRecorder {
  private seq = 0;
  private readonly tracker: MicrostepTracker;
  /** Records of pairs accepted and not yet past TLS_OK, in order, stamped but not numbered. */
  private readonly held = new Map<string, LogRecord[]>();
  /** Recently dropped pairs, oldest first. */
  private readonly droppedIds = new Set<string>();
  /** Off after SHUTDOWN: from then on everything is written at once. */
  private holding = true;
  private readonly budget: TokenBucket;
  private readonly budgetRate: Rate;
  private readonly summaryMs: number;
  private summaryTimer: TimerHandle | undefined;
  /** Dropped since the last `d` record. */
  private pending = { pairs: 0, records: 0, since: 0 };
  private totals = { pairs: 0, records: 0 };

  private constructor(
    private readonly writer: EventLogWriter,
    readonly level: EventLogLevel,
    private readonly clock: Clock,
    opts: Pick<RecorderOptions, 'unauthenticatedBudget' | 'droppedSummaryMs' | 'machine'>,
  ) {
    this.tracker = new MicrostepTracker((t) => this.route({ k: 'x', s: 0, t: 0, ...t }, t.id), rootIdOf(opts.machine ?? 'proxy'));
    // Only the proxy's port faces the network before a certificate is shown; a forwarder's pairs are its own
    // local clients and have no TLS_OK to wait for.
    this.holding = (opts.machine ?? 'proxy') === 'proxy';
    this.budgetRate = opts.unauthenticatedBudget ?? UNAUTHENTICATED_BUDGET;
    this.budget = new TokenBucket(this.budgetRate, clock.now());
    this.summaryMs = opts.droppedSummaryMs ?? DROPPED_SUMMARY_MS;
  }

  static async open(opts: RecorderOptions): Promise<EventRecorder> {
    const header: HeaderRecord = {
      kind: 'header',
      format: LOG_FORMAT,
      version: LOG_VERSION,
      level: opts.level,
      started: opts.clock.now(),
      host: os.hostname(),
      pid: process.pid,
      mxproxy: pkg.version,
      // Only a forwarder's log says whose it is: a proxy's header stays as it always was.
      ...(opts.machine === 'forwarder' ? { machine: opts.machine } : {}),
      ...(opts.worker !== undefined ? { worker: opts.worker } : {}),
    };
    const writer = await EventLogWriter.open({
      path: opts.path,
      header,
      ...(opts.maxBytes !== undefined ? { maxBytes: opts.maxBytes } : {}),
      ...(opts.files !== undefined ? { files: opts.files } : {}),
      ...(opts.onError ? { onError: opts.onError } : {}),
    });
    return new EventRecorder(writer, opts.level, opts.clock, opts);
  }

  get path(): string {
    return this.writer.path;
  }

  /** For the root's `observeChild` input: each child's first state, and its end. */
  get observeChild(): MicrostepTracker['child'] {
    return this.tracker.child;
  }

  /** For the root actor's snapshots (its first one too: subscribe does not replay it). */
  get observeRoot(): MicrostepTracker['root'] {
    return this.tracker.root;
  }

  /** For `createActor(root, { inspect })`: the microsteps of every actor in the root's system. */
  get inspect(): MicrostepTracker['inspect'] {
    return this.tracker.inspect;
  }

  /** For recordEffects (./effects.ts): an effect pair `id`'s machine asked for. */
  readonly effect = (id: string, name: string, params: unknown): void => {
    this.route(params === undefined ? { k: 'f', s: 0, t: 0, id, name } : { k: 'f', s: 0, t: 0, id, name, params }, id);
  };

  /** Pair `id` ended with `output` (before `ended`, so a held pair's output is held with it). */
  output(id: string, output: object): void {
    this.route({ k: 'o', s: 0, t: 0, id, o: output as Record<string, unknown> }, id);
  }

  /** An input of pair `id` that does not go to the machines (`why`: see NotedRecord). */
  noted(id: string, e: { type: string } & Record<string, unknown>, why: string): void {
    this.route({ k: 'n', s: 0, t: 0, id, e, why }, id);
  }

  private append(r: LogRecord): void {
    r.t = this.clock.now();
    this.write(r);
  }

  /** Numbers a stamped record and hands it to the writer. */
  private write(r: LogRecord): void {
    r.s = ++this.seq;
    this.writer.append(r);
  }

  /** A record of pair `id` (or of the root): held, dropped or written. */
  private route(r: LogRecord, id: string | undefined): void {
    const held = id === undefined ? undefined : this.held.get(id);
    if (held) {
      r.t = this.clock.now();
      held.push(r);
    } else if (id !== undefined && this.droppedIds.has(id)) {
      this.dropped(0, 1, this.clock.now()); // a late event of a dropped pair (a close after its end)
    } else {
      this.append(r);
    }
  }

  /** An event, as it is handed to the root actor. */
  event(e: LoggedEvent): void {
    const r: LogRecord = { k: 'e', s: 0, t: 0, e };
    if (e.type === 'SHUTDOWN') {
      this.holding = false;
      for (const id of [...this.held.keys()]) this.release(id);
      this.append(r);
      return;
    }
    const id = 'id' in e && typeof e.id === 'string' ? e.id : undefined;
    if (e.type === 'ACCEPTED' && id !== undefined && this.holding) this.held.set(id, []);
    else if (e.type === 'TLS_OK' && id !== undefined) this.release(id);
    this.route(r, id);
  }

  /** Writes what is held for pair `id`, in order, and stops holding it. */
  private release(id: string): void {
    const records = this.held.get(id);
    if (!records) return;
    this.held.delete(id);
    for (const r of records) this.write(r);
  }

  /**
   * Pair `id` has finished (the runtime's `finished`). If it never got past TLS_OK its records are written
   * within the budget, or else dropped and counted for the next `d` record.
   */
  ended(id: string): void {
    const records = this.held.get(id);
    if (!records) return;
    if (this.budget.take(this.budgetRate, this.clock.now())) {
      this.release(id);
      return;
    }
    this.held.delete(id);
    this.droppedIds.add(id);
    if (this.droppedIds.size > DROPPED_IDS_KEPT) {
      const oldest = this.droppedIds.values().next();
      if (!oldest.done) this.droppedIds.delete(oldest.value);
    }
    this.dropped(1, records.length, records[0]?.t ?? this.clock.now());
  }

  private dropped(pairs: number, records: number, at: number): void {
    if (this.pending.pairs === 0 && this.pending.records === 0) this.pending.since = at;
    this.pending.pairs += pairs;
    this.pending.records += records;
    this.totals.pairs += pairs;
    this.totals.records += records;
    if (!this.summaryTimer) {
      const t = this.clock.setTimeout(() => {
        this.summaryTimer = undefined;
        this.summarize();
      }, this.summaryMs);
      if (typeof t === 'object' && 'unref' in t && typeof t.unref === 'function') t.unref();
      this.summaryTimer = t;
    }
  }

  /** The `d` record for what was dropped since the last one, if anything was. */
  private summarize(): void {
    const { pairs, records, since } = this.pending;
    if (pairs === 0 && records === 0) return;
    this.pending = { pairs: 0, records: 0, since: 0 };
    this.write({ k: 'd', s: 0, t: this.clock.now(), pairs, records, since });
  }

  private stopSummaries(): void {
    if (this.summaryTimer) this.clock.clearTimeout(this.summaryTimer);
    this.summaryTimer = undefined;
    this.summarize();
  }

  /** A forwarded chunk (only called at traffic/payload level). */
  chunk(id: string, d: 'up' | 'down', data: Buffer): void {
    if (this.level === 'payload') this.append({ k: 'c', s: 0, t: 0, id, d, n: data.length, b: data });
    else this.append({ k: 'c', s: 0, t: 0, id, d, n: data.length });
  }

  stats(): EventLogWriterStats & RecorderStats {
    return {
      ...this.writer.stats(),
      seq: this.seq,
      held: this.held.size,
      droppedPairs: this.totals.pairs,
      droppedRecords: this.totals.records,
    };
  }

  /** Bytes recorded and not yet handed to a write. */
  backlogBytes(): number {
    return this.writer.backlogBytes();
  }

  flushSync(): void {
    this.stopSummaries();
    this.writer.flushSync();
  }

  close(): Promise<void> {
    this.stopSummaries();
    return this.writer.close();
  }
}
