/**
 * State transitions from XState's inspection stream: for the root supervisor and every connection actor, one
 * `{ id, from, to, on }` each time its state path changes. The live recorder and replay use this same code,
 * so what is compared is produced the same way on both sides.
 */
import type { InspectionEvent } from 'xstate';
import { ROOT_ID, statePath } from './records.js';

export interface Transition {
  id: string;
  from: string | null;
  to: string;
  on: string;
}

export class TransitionTracker {
  /** Last state path per actor; forgotten when the actor is done, so finished pairs cost nothing. */
  private readonly last = new Map<object, string>();
  /** The root actor, once created (its transitions are recorded as ROOT_ID). */
  root: object | undefined;

  constructor(private readonly onTransition: (t: Transition) => void) {}

  readonly inspect = (ev: InspectionEvent): void => {
    if (ev.type !== '@xstate.snapshot') return;
    const snapshot = ev.snapshot as { value?: unknown; status?: string };
    if (snapshot.value === undefined) return; // not a state machine
    const to = statePath(snapshot.value);
    const ref = ev.actorRef;
    const from = this.last.get(ref) ?? null;
    if (snapshot.status === 'done' || snapshot.status === 'error' || snapshot.status === 'stopped') this.last.delete(ref);
    else this.last.set(ref, to);
    if (from === to) return;
    this.onTransition({ id: ref === this.root ? ROOT_ID : ((ref as { id?: string }).id ?? '?'), from, to, on: ev.event.type });
  };
}
