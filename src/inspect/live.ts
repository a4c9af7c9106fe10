/**
 * What the inspector knows about the pairs: how many are in each state of the pair machine (the proxy's
 * connection machine, or the forwarder's forward machine), and for each pair its peer, identity, target,
 * state and last transitions. Fed per event (the bus tap and the registry's step observer) and per finished
 * pair, never per forwarded chunk; bytes of live pairs are read from their sockets only when a view is built.
 *
 * Bounded: at most MAX_TRACKED live pairs are listed (the others are only counted), each with its last
 * HISTORY_LENGTH transitions; ended pairs stay listed for GONE_KEEP_MS, at most MAX_GONE of them.
 *
 * Client-controlled text (identity, target, decline messages) is stored as `printable` output, so every view
 * built from here is one line of inert text; the page HTML-escapes it on top.
 */
import type { ForwarderEvent } from '../../machines/forwarder.js';
import type { ProxyEvent } from '../../machines/proxy.js';
import { statePath } from '../eventlog/records.js';
import type { ByteCounts, ConnectionOutput } from '../shared/events.js';
import { printable } from '../shared/printable.js';
import { Ring } from './history.js';

export const HISTORY_LENGTH = 64;
export const MAX_TRACKED = 10_000;
export const GONE_KEEP_MS = 60_000;
export const MAX_GONE = 256;
/** Cut for a decline message shown on the page (characters of escaped text). */
const MESSAGE_MAX = 512;

export interface HistoryEntry {
  /** ms since the epoch. */
  t: number;
  from: string | null;
  to: string;
  /** The event that caused it. */
  on: string;
}

/** Bytes forwarded: up = client → server (written to the server), down = server → client (read from it). */
export interface Forwarded {
  up: number;
  down: number;
}

interface PairView {
  id: string;
  peer: string;
  local: string;
  identity: string | null;
  target: string | null;
  backend: string | null;
  state: string;
  /** When it entered `state`. */
  since: number;
  acceptedAt: number;
  history: Ring<HistoryEntry>;
  endedAt: number | null;
  reason: string | null;
  message: string | null;
  bytes: Forwarded | null;
}

/** One row of the connections table. */
export interface ConnectionRow {
  /** The pair's id; in a cluster primary's view `<worker>-<id>` (ids are numbered per worker). */
  id: string;
  /** The worker that holds the pair (a cluster primary's view only). */
  worker?: number;
  peer: string;
  identity: string | null;
  target: string | null;
  backend: string | null;
  state: string;
  since: number;
  acceptedAt: number;
  up: number;
  down: number;
  /** Set once the pair has ended. */
  endedAt: number | null;
  reason: string | null;
}

export interface ConnectionDetail extends ConnectionRow {
  local: string;
  message: string | null;
  history: HistoryEntry[];
  /** Older transitions that no longer fit the ring. */
  dropped: number;
}

export interface LiveTotals {
  /** Live pairs, listed or not. */
  live: number;
  /** Live pairs beyond MAX_TRACKED: counted by state, not listed. */
  untracked: number;
  gone: number;
}

export const forwardedOf = (out: { client: ByteCounts; server: ByteCounts }): Forwarded => ({ up: out.server.written, down: out.server.read });

/** The events the live view reads details from: the proxy's, or the forwarder's. */
export type LiveEvent = ProxyEvent | ForwarderEvent;

/** How a pair ended, whichever machine it ran: what the table keeps of it. */
export interface PairEnd {
  id: string;
  reason: string | null;
  message: string | null;
  identity: string | null;
  target: string | null;
  bytes: Forwarded;
}

/** A proxy pair's output as a PairEnd. */
export const proxyPairEnd = (out: ConnectionOutput): PairEnd => ({
  id: out.id,
  reason: out.reason,
  message: out.message,
  identity: out.identity,
  target: out.target,
  bytes: forwardedOf(out),
});

export class LiveState {
  private readonly views = new Map<string, PairView>();
  /** State of each live pair that is not listed. */
  private readonly untracked = new Map<string, string>();
  /** Ended pairs, oldest first (Map keeps insertion order). */
  private readonly gone = new Map<string, PairView>();
  private readonly counts = new Map<string, number>();

  constructor(
    private readonly now: () => number,
    private readonly maxTracked = MAX_TRACKED,
  ) {}

  /**
   * Details the events carry that the machine's snapshot does not show (peer, identity, target, backend; for a
   * forward pair the target comes with ACCEPTED and the backend is its upstream).
   */
  event(e: LiveEvent): void {
    switch (e.type) {
      case 'ACCEPTED': {
        if (this.views.size >= this.maxTracked) {
          this.untracked.set(e.id, '');
          return;
        }
        const t = this.now();
        this.views.set(e.id, {
          id: e.id,
          peer: printable(e.peer),
          local: printable(e.local),
          identity: null,
          target: 'target' in e ? printable(e.target) : null,
          backend: null,
          state: '',
          since: t,
          acceptedAt: t,
          history: new Ring(HISTORY_LENGTH),
          endedAt: null,
          reason: null,
          message: null,
          bytes: null,
        });
        return;
      }
      case 'TLS_OK': {
        const v = this.views.get(e.id);
        if (v) v.identity = printable(e.identity);
        return;
      }
      case 'REQUEST': {
        const v = this.views.get(e.id);
        if (v) v.target = printable(e.target);
        return;
      }
      case 'BACKEND_CONNECTED': {
        const v = this.views.get(e.id);
        if (v) v.backend = printable(e.address);
        return;
      }
    }
  }

  /** The registry's step observer: a pair's snapshot after each event it took. */
  readonly step = (id: string, snapshot: { value: unknown; status: string }, on: string): void => {
    const to = statePath(snapshot.value);
    const active = snapshot.status === 'active';
    const view = this.views.get(id);
    const from = view ? view.state : this.untracked.get(id);
    if (from === undefined) return; // not accepted through event(): a pair from before the inspector existed
    if (from === to && active) return;
    if (from !== '') this.add(from, -1);
    if (active) this.add(to, 1);
    if (!view) {
      if (active) this.untracked.set(id, to);
      else this.untracked.delete(id);
      return;
    }
    const t = this.now();
    view.history.push({ t, from: from === '' ? null : from, to, on });
    view.state = to;
    view.since = t;
  };

  /** A proxy pair ended and was forgotten by the root. */
  finished(out: ConnectionOutput): void {
    this.ended(proxyPairEnd(out));
  }

  /** The pair ended and was forgotten by the root: keep it listed for a while, with its totals. */
  ended(out: PairEnd): void {
    // A pair that failed inside its machine reports no final snapshot: its last state is still counted.
    const last = this.untracked.get(out.id);
    if (last !== undefined) {
      this.untracked.delete(out.id);
      if (last !== '') this.add(last, -1);
    }
    const view = this.views.get(out.id);
    if (!view) return;
    this.views.delete(out.id);
    if (view.state !== 'closed' && view.state !== '') this.add(view.state, -1);
    view.endedAt = this.now();
    view.reason = out.reason === null ? null : printable(out.reason);
    view.message = out.message === null ? null : printable(out.message, MESSAGE_MAX);
    view.bytes = { ...out.bytes };
    if (out.identity !== null && view.identity === null) view.identity = printable(out.identity);
    if (out.target !== null && view.target === null) view.target = printable(out.target);
    this.gone.set(out.id, view);
    this.prune();
  }

  /** Pairs in each state now (states with none are absent). */
  stateCounts(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [state, n] of this.counts) if (n !== 0) out.set(state, n);
    return out;
  }

  totals(): LiveTotals {
    return { live: this.views.size + this.untracked.size, untracked: this.untracked.size, gone: this.gone.size };
  }

  /**
   * Up to `maxLive` listed live pairs and `maxGone` ended ones, newest first. `bytesOf` reads a live pair's
   * bytes from its sockets.
   */
  rows(bytesOf: (id: string) => Forwarded | undefined, maxLive: number, maxGone: number): ConnectionRow[] {
    this.prune();
    const out: ConnectionRow[] = [];
    const live = [...this.views.values()];
    for (let i = live.length - 1; i >= 0 && out.length < maxLive; i--) out.push(rowOf(live[i]!, bytesOf));
    const gone = [...this.gone.values()];
    for (let i = gone.length - 1, n = 0; i >= 0 && n < maxGone; i--, n++) out.push(rowOf(gone[i]!, bytesOf));
    return out;
  }

  connection(id: string, bytesOf: (id: string) => Forwarded | undefined): ConnectionDetail | undefined {
    this.prune();
    const v = this.views.get(id) ?? this.gone.get(id);
    if (!v) return undefined;
    return { ...rowOf(v, bytesOf), local: v.local, message: v.message, history: v.history.toArray(), dropped: v.history.dropped };
  }

  // States are a small fixed set: a count that drops to 0 stays (deleting and re-adding Map keys on every
  // pair would leave the Map to rehash its tombstones again and again).
  private add(state: string, delta: number): void {
    this.counts.set(state, (this.counts.get(state) ?? 0) + delta);
  }

  private prune(): void {
    const before = this.now() - GONE_KEEP_MS;
    for (const [id, v] of this.gone) {
      if (this.gone.size <= MAX_GONE && (v.endedAt ?? 0) >= before) break;
      this.gone.delete(id);
    }
  }
}

function rowOf(v: PairView, bytesOf: (id: string) => Forwarded | undefined): ConnectionRow {
  const bytes = v.bytes ?? bytesOf(v.id) ?? { up: 0, down: 0 };
  return {
    id: v.id,
    peer: v.peer,
    identity: v.identity,
    target: v.target,
    backend: v.backend,
    state: v.state,
    since: v.since,
    acceptedAt: v.acceptedAt,
    up: bytes.up,
    down: bytes.down,
    endedAt: v.endedAt,
    reason: v.reason,
  };
}
