/**
 * Groups the records of a replayed log by connection for output, and applies the filter. Two modes:
 *
 *   block   a shown connection is handed over whole once it has reached `closed` (plus a short grace period
 *           of log time for late socket events), or at the end of the log; chunks are kept only while there
 *           are few (the timeline lists those and summarises the rest)
 *   stream  each record of a shown connection is handed over as soon as the connection is known to be shown
 *           (JSON lines)
 *
 * Memory stays bounded by the connections open at a time, not by the size of the log.
 */
import { isRootId, type LogRecord } from '../eventlog/records.js';
import { decide, showsRoot, type Decision, type ReplayFilter } from './filter.js';

/** Chunks listed one per line up to this many per connection; above it, only counted. */
export const CHUNK_LIST_LIMIT = 20;
/** Records (not chunks) kept per connection for the context of a divergence. */
export const CONTEXT_RECORDS = 12;
/** Log time a closed connection waits for late records (socket events after a teardown deadline). */
export const LATE_GRACE_MS = 1000;
/** Log time a finished connection is remembered, so a very late record is not taken for a new one. */
const REMEMBER_MS = 5 * 60_000;
/** Finished connections whose context is kept, for a divergence found after they closed. */
const RECENT_CONTEXTS = 256;

export interface ChunkCount {
  count: number;
  bytes: number;
}

export interface ConnectionView {
  id: string;
  /** Its ACCEPTED is not in the log (it began in a file rotated away): shown, but not replayed. */
  preexisting: boolean;
  peer: string | null;
  local: string | null;
  identity: string | null;
  target: string | null;
  backend: string | null;
  /** Time of its first and latest record (ms since the epoch). */
  first: number;
  last: number;
  /** Time of its transition to `closed`, if it got there. */
  closedAt: number | null;
  /** Records kept for output, in log order. Block mode: events, transitions, and chunks while they are few. */
  records: LogRecord[];
  /** Whether `records` still holds every chunk (block mode: at most CHUNK_LIST_LIMIT of them). */
  chunksListed: boolean;
  chunks: { up: ChunkCount; down: ChunkCount };
  /** The last CONTEXT_RECORDS events and transitions. */
  tail: LogRecord[];
  decision: Decision;
}

export interface TrackerSink {
  /** Block mode: a shown connection, whole. `open`: it had not reached `closed` when the log ended. */
  connection?(view: ConnectionView, open: boolean): void;
  /** Stream mode: one record of a shown connection. */
  record?(r: LogRecord): void;
  /** Block mode: a record for a shown connection that was already handed over. */
  late?(r: LogRecord, first: number, id: string): void;
  /** A record of the proxy itself (root transitions, SHUTDOWN) that the filter shows. */
  root?(r: LogRecord): void;
}

export type TrackerMode = 'block' | 'stream';

/** The connection a record belongs to, or undefined for the proxy itself. */
export function connectionOf(r: LogRecord): string | undefined {
  if (r.k === 'd') return undefined; // about pairs that are not in the log
  if (r.k !== 'e') return isRootId(r.id) ? undefined : r.id;
  const e = r.e as { type: string; id?: unknown };
  return e.type !== 'SHUTDOWN' && typeof e.id === 'string' ? e.id : undefined;
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

export class ConnectionTracker {
  private readonly views = new Map<string, ConnectionView>();
  /** Closed connections waiting out LATE_GRACE_MS (block mode), in the order they closed. */
  private readonly closing: ConnectionView[] = [];
  /** Finished connections: whether shown, and their first record's time (for late records). */
  private readonly done = new Map<string, { shown: boolean; first: number }>();
  /** `done` in the order finished, to forget them (a queue: Map iteration slows down after many deletes). */
  private doneOrder: { id: string; at: number }[] = [];
  private doneHead = 0;
  private readonly recent = new Map<string, LogRecord[]>();
  private rootTail: LogRecord[] = [];
  private now = 0;
  /** Connections seen, shown, and seen without their start (it is in a file rotated away). */
  total = 0;
  shown = 0;
  preexisting = 0;

  constructor(
    private readonly filter: ReplayFilter,
    private readonly mode: TrackerMode,
    private readonly sink: TrackerSink,
  ) {}

  add(r: LogRecord): void {
    this.now = r.t;
    const id = connectionOf(r);
    if (id === undefined) {
      pushTail(this.rootTail, r);
      if (showsRoot(this.filter, r.t)) this.sink.root?.(r);
    } else {
      this.addToConnection(id, r);
    }
    if (this.mode === 'block') this.flushClosed(r.t - LATE_GRACE_MS);
    this.forget(r.t - REMEMBER_MS);
  }

  /** The log ended: hands over every connection still held, closed ones first. */
  end(): void {
    this.flushClosed(Infinity);
    for (const view of [...this.views.values()]) this.finish(view, true);
  }

  /** The last events and transitions of a connection (or of the root, for its id), for a divergence report. */
  context(id: string): LogRecord[] {
    if (isRootId(id)) return [...this.rootTail];
    return [...(this.views.get(id)?.tail ?? this.recent.get(id) ?? [])];
  }

  private addToConnection(id: string, r: LogRecord): void {
    let view = this.views.get(id);
    if (!view) {
      const done = this.done.get(id);
      if (done) {
        if (done.shown) {
          if (this.mode === 'stream') this.sink.record?.(r);
          else this.sink.late?.(r, done.first, id);
        }
        return;
      }
      view = this.open(id, r);
    }
    view.last = r.t;
    if (r.k === 'e') this.learn(view, r.e as unknown as Record<string, unknown>);
    if (r.k === 'c') {
      const c = view.chunks[r.d];
      c.count++;
      c.bytes += r.n;
    } else {
      pushTail(view.tail, r);
    }
    this.keep(view, r);
    if (r.k === 'x' && r.to === 'closed' && view.closedAt === null) {
      view.closedAt = r.t;
      if (this.mode === 'block') this.closing.push(view);
      else this.finish(view, false);
      return;
    }
    if (view.decision === 'pending') this.redecide(view, false);
  }

  private open(id: string, r: LogRecord): ConnectionView {
    const view: ConnectionView = {
      id,
      preexisting: !(r.k === 'e' && r.e.type === 'ACCEPTED'),
      peer: null,
      local: null,
      identity: null,
      target: null,
      backend: null,
      first: r.t,
      last: r.t,
      closedAt: null,
      records: [],
      chunksListed: true,
      chunks: { up: { count: 0, bytes: 0 }, down: { count: 0, bytes: 0 } },
      tail: [],
      decision: 'pending',
    };
    this.views.set(id, view);
    this.total++;
    if (view.preexisting) this.preexisting++;
    this.redecide(view, false);
    return view;
  }

  /** The connection's key facts, from its events. */
  private learn(view: ConnectionView, e: Record<string, unknown>): void {
    switch (e.type) {
      case 'ACCEPTED':
        view.peer = str(e.peer) ?? view.peer;
        view.local = str(e.local) ?? view.local;
        // A forwarder's pair knows its target from the start.
        view.target = str(e.target) ?? view.target;
        break;
      case 'TLS_OK':
        view.identity = str(e.identity) ?? view.identity;
        break;
      case 'REQUEST':
        view.target = str(e.target) ?? view.target;
        break;
      case 'BACKEND_CONNECTED':
        view.backend = str(e.address) ?? view.backend;
        break;
    }
  }

  private keep(view: ConnectionView, r: LogRecord): void {
    if (view.decision === 'no') return;
    if (this.mode === 'stream') {
      if (view.decision === 'yes') this.sink.record?.(r);
      else view.records.push(r);
      return;
    }
    if (r.k !== 'c') {
      view.records.push(r);
      return;
    }
    if (!view.chunksListed) return;
    if (view.chunks.up.count + view.chunks.down.count > CHUNK_LIST_LIMIT) {
      view.chunksListed = false;
      view.records = view.records.filter((x) => x.k !== 'c');
      return;
    }
    view.records.push(r);
  }

  private redecide(view: ConnectionView, ended: boolean): void {
    const before = view.decision;
    view.decision = decide(this.filter, { ...view, ended });
    if (view.decision === before) return;
    if (view.decision === 'no') {
      view.records = [];
    } else if (view.decision === 'yes' && this.mode === 'stream') {
      for (const r of view.records) this.sink.record?.(r);
      view.records = [];
    }
  }

  private flushClosed(before: number): void {
    while (this.closing.length > 0 && this.closing[0]!.closedAt! <= before) this.finish(this.closing.shift()!, false);
  }

  private finish(view: ConnectionView, open: boolean): void {
    if (view.decision === 'pending' || this.mode === 'block') this.redecide(view, true);
    const shown = view.decision === 'yes';
    if (shown) {
      this.shown++;
      if (this.mode === 'block') this.sink.connection?.(view, open);
    }
    this.views.delete(view.id);
    this.done.set(view.id, { shown, first: view.first });
    this.doneOrder.push({ id: view.id, at: this.now });
    this.recent.set(view.id, view.tail);
    if (this.recent.size > RECENT_CONTEXTS) this.recent.delete(this.recent.keys().next().value!);
    view.records = [];
  }

  private forget(before: number): void {
    const order = this.doneOrder;
    while (this.doneHead < order.length && order[this.doneHead]!.at < before) this.done.delete(order[this.doneHead++]!.id);
    if (this.doneHead > 1024 && this.doneHead * 2 > order.length) {
      this.doneOrder = order.slice(this.doneHead);
      this.doneHead = 0;
    }
  }
}

function pushTail(tail: LogRecord[], r: LogRecord): void {
  tail.push(r);
  if (tail.length > CONTEXT_RECORDS) tail.shift();
}
