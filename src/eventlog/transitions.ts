/**
 * State transitions for the event log: for the root supervisor and every connection actor, one
 * `{ id, from, to, on }` each time its state path changes. The live recorder and replay use this same code,
 * so what is compared is produced the same way on both sides.
 *
 * Children report through the registry's step observer (after each event they take); the root through its
 * snapshot subscription, with `on` the type of the event being handed to it (a root transition caused by a
 * child finishing is attributed to the outside event whose handling finished it).
 */
import { ROOT_ID, statePath } from './records.js';

export interface Transition {
  id: string;
  from: string | null;
  to: string;
  on: string;
}

interface Snapshot {
  value: unknown;
  status: string;
}

export class TransitionTracker {
  /** Last state path per actor; forgotten when the actor is done, so finished pairs cost nothing. */
  private readonly last = new Map<string, string>();
  /** The type of the event being handed to the root; the cause of root transitions. */
  private current = 'xstate.init';

  constructor(
    private readonly onTransition: (t: Transition) => void,
    /** The id the root's transitions are recorded under: ROOT_ID, or FORWARDER_ROOT_ID in a forwarder's log. */
    private readonly rootId: string = ROOT_ID,
  ) {}

  /** For the root's `observeChild` input. */
  readonly child = (id: string, snapshot: Snapshot, on: string): void => this.step(id, snapshot, on);

  /** Call before an event is sent to the root. */
  entering(type: string): void {
    this.current = type;
  }

  /** For `root.subscribe`. */
  readonly root = (snapshot: Snapshot): void => this.step(this.rootId, snapshot, this.current);

  private step(id: string, snapshot: Snapshot, on: string): void {
    const to = statePath(snapshot.value);
    const from = this.last.get(id) ?? null;
    if (snapshot.status === 'active') this.last.set(id, to);
    else this.last.delete(id);
    if (from !== to) this.onTransition({ id, from, to, on });
  }
}
