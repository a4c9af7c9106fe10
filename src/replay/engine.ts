/**
 * Replay: the recorded events go back through the same machines — bare, with no effects, so no socket, timer
 * or file is touched — and every state transition they make is checked against the recorded one.
 *
 * Machines never read a clock: timeouts are events in the log like any other, so the order of the events is
 * all replay needs. The records' timestamps drive `now`, for filters and output.
 */
import { createActor, type Actor } from 'xstate';
import { connectionMachine } from '../../machines/connection.js';
import type { proxyMachine } from '../../machines/proxy.js';
import { ConnectionRegistry, superviseWith } from '../../machines/registry.js';
import { ROOT_ID, type LogRecord, type TransitionRecord } from '../eventlog/records.js';
import { TransitionTracker, type Transition } from '../eventlog/transitions.js';

/** A transition replay made, with the sequence number of the event that caused it. */
export interface ReplayedTransition extends Transition {
  cause: number;
}

export interface Divergence {
  /** The connection (or ROOT_ID). */
  id: string;
  /** The recorded transition that did not match, or null when replay made one the log does not have. */
  expected: TransitionRecord | null;
  /** What replay did instead, or null when it made no transition there. */
  actual: ReplayedTransition | null;
  /** Sequence number of the record where it was found. */
  at: number;
  message: string;
}

export interface ReplaySummary {
  events: number;
  transitions: number;
  chunks: number;
  /** Connections accepted within the log. */
  connections: number;
  /** Connections whose ACCEPTED is not in the log (it began in a file rotated away), or that were open
   * across a gap in the sequence numbers: not checked. */
  preexisting: number;
  /** Transitions replay made after the last record (a log cut off by power loss): not checked. */
  unchecked: number;
  divergence: Divergence | undefined;
}

const same = (a: Transition, b: Transition): boolean => a.from === b.from && a.to === b.to && a.on === b.on;

export const describeTransition = (t: Transition): string => `${t.from ?? '(start)'} → ${t.to} on ${t.on}`;

export class Replayer {
  private readonly root: Actor<typeof proxyMachine>;
  private readonly tracker: TransitionTracker;
  /** Transitions replay made and the log has not confirmed yet, per actor. */
  private readonly pending = new Map<string, ReplayedTransition[]>();
  private readonly accepted = new Set<string>();
  /** Accepted and not yet seen reaching `closed` in the log. */
  private readonly open = new Set<string>();
  private readonly skipped = new Set<string>();
  private cause = 0;
  private first = true;
  /** False after a gap: the root waits for pairs whose end replay never saw, so it is not checked. */
  private rootChecked = true;
  private counts = { events: 0, transitions: 0, chunks: 0 };
  divergence: Divergence | undefined;
  /** The time of the record being replayed (ms since the epoch). */
  now = 0;

  /** `onTransition` sees each transition the machines make, as they make it (the inspector's replay view). */
  constructor(opts: { onTransition?: (t: ReplayedTransition) => void } = {}) {
    const onTransition = opts.onTransition;
    this.tracker = new TransitionTracker((t) => {
      const replayed = { ...t, cause: this.cause };
      const list = this.pending.get(t.id) ?? [];
      list.push(replayed);
      this.pending.set(t.id, list);
      onTransition?.(replayed);
    });
    // The same wiring as the live runtime (src/proxy/runtime.ts), minus the effects.
    this.root = createActor(superviseWith(new ConnectionRegistry(connectionMachine, { observe: this.tracker.child })));
    this.root.subscribe({ next: this.tracker.root, error: () => undefined });
    this.root.start();
    this.tracker.root(this.root.getSnapshot());
  }

  /** Feeds one record; returns false once a divergence was found (later records are not replayed). */
  feed(r: LogRecord): boolean {
    if (this.divergence) return false;
    this.now = r.t;
    if (this.first) {
      this.first = false;
      // The run's first file was rotated away: the root's start is not in the log.
      if (r.s !== 1) this.pending.delete(ROOT_ID);
    }
    switch (r.k) {
      case 'e': {
        this.counts.events++;
        const e = r.e;
        const id = 'id' in e && typeof e.id === 'string' && e.type !== 'SHUTDOWN' ? e.id : undefined;
        if (e.type === 'ACCEPTED' && id !== undefined) {
          this.accepted.add(id);
          this.open.add(id);
        } else if (id !== undefined && !this.accepted.has(id)) {
          this.skipped.add(id);
          return true;
        }
        this.cause = r.s;
        this.tracker.entering(e.type);
        this.root.send(e);
        return true;
      }
      case 'x':
        this.counts.transitions++;
        if (r.id !== ROOT_ID && !this.accepted.has(r.id)) {
          this.skipped.add(r.id);
          return true;
        }
        if (r.id === ROOT_ID && !this.rootChecked) return true;
        if (r.to === 'closed') this.open.delete(r.id);
        return this.check(r);
      case 'c':
        this.counts.chunks++;
        if (!this.accepted.has(r.id)) this.skipped.add(r.id);
        return true;
    }
  }

  /**
   * Records are missing here (a sequence gap: a file deleted from the middle of a series). Pairs open across
   * the gap missed events, so they are no longer checked; pairs accepted after it are.
   */
  gap(): void {
    for (const id of this.open) {
      this.accepted.delete(id);
      this.skipped.add(id);
      this.pending.delete(id);
    }
    this.open.clear();
    this.pending.delete(ROOT_ID);
    this.rootChecked = false;
  }

  private check(expected: TransitionRecord): boolean {
    const list = this.pending.get(expected.id);
    const actual = list?.shift();
    if (list && list.length === 0) this.pending.delete(expected.id);
    if (actual && same(actual, expected)) return true;
    this.divergence = {
      id: expected.id,
      expected,
      actual: actual ?? null,
      at: expected.s,
      message: actual
        ? `${expected.id === ROOT_ID ? 'the proxy' : `connection ${expected.id}`}: recorded ${describeTransition(expected)}, ` +
          `replay made ${describeTransition(actual)} (caused by event #${actual.cause})`
        : `${expected.id === ROOT_ID ? 'the proxy' : `connection ${expected.id}`}: recorded ${describeTransition(expected)}, ` +
          'replay made no transition there',
    };
    return false;
  }

  /**
   * Ends the replay. Transitions replay made that the log never confirmed are a divergence — unless the log
   * was cut off (`truncated`), where the records after the cut are simply missing.
   */
  finish(truncated: boolean): ReplaySummary {
    let unchecked = 0;
    if (!this.divergence) {
      for (const [id, list] of this.pending) {
        const actual = list[0];
        if (!actual || (id === ROOT_ID && !this.rootChecked)) continue;
        if (truncated) {
          unchecked += list.length;
          continue;
        }
        this.divergence = {
          id,
          expected: null,
          actual,
          at: actual.cause,
          message: `${id === ROOT_ID ? 'the proxy' : `connection ${id}`}: replay made ${describeTransition(actual)} ` +
            `(caused by event #${actual.cause}), which the log does not record`,
        };
        break;
      }
    }
    this.root.stop();
    return {
      ...this.counts,
      connections: this.accepted.size,
      preexisting: this.skipped.size,
      unchecked,
      divergence: this.divergence,
    };
  }
}
