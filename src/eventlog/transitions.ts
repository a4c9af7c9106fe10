/**
 * State transitions for the event log. TransitionTracker is version 1 (what replay of a version-1 log
 * compares with): for the root supervisor and every connection actor, one `{ id, from, to, on }` each time its
 * state path changes; MicrostepTracker below is version 2, every microstep. The live recorder and replay use this same code,
 * so what is compared is produced the same way on both sides.
 *
 * Children report through the registry's step observer (after each event they take); the root through its
 * snapshot subscription, with `on` the type of the event being handed to it (a root transition caused by a
 * child finishing is attributed to the outside event whose handling finished it).
 */
import { CHILD_ACTOR_ID } from '../shared/events.js';
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

/** The parts of XState's `@xstate.microstep` inspection event the tracker reads. */
export interface MicrostepInspection {
  type: string;
  rootId: string;
  actorRef: { sessionId: string };
  event?: { type: string; output?: unknown };
  snapshot?: unknown;
  _transitions?: readonly { target?: readonly unknown[] | undefined; source?: unknown; reenter?: boolean }[];
}

/**
 * Every microstep of every actor that entered a state (version 2 of the log): a change of the state path, or a
 * re-entry (`connecting → connecting` on failover, `teardown.aborting → teardown.aborting` on a second error),
 * each with the event that caused it — an eventless step (`teardown.closing → closed`) with the event whose
 * handling led to it, a root step caused by a child's end with `xstate.done.actor.<id>`. Transitions that enter
 * no state (targetless, or a self-target without `reenter`) are not steps here: what they do shows in the
 * effects.
 *
 * The steps come from XState's inspection (`inspect` of the root actor, which sees every actor of its
 * system); a pair's first state from the registry's step observer (`child`, at spawn), the root's from `root`.
 * Live recorder and replay use this same code, so what is compared is produced the same way on both sides.
 */
export class MicrostepTracker {
  private readonly last = new Map<string, string>();
  private rootStarted = false;

  constructor(
    private readonly onTransition: (t: Transition) => void,
    private readonly rootId: string = ROOT_ID,
  ) {}

  /** For the root's `observeChild` input: a pair's first state, and its end (to forget it). */
  readonly child = (id: string, snapshot: Snapshot, on: string): void => {
    if (on === 'xstate.init') this.step(id, snapshot, on, false);
    else if (snapshot.status !== 'active') this.last.delete(id);
  };

  /** For `root.subscribe` (and once after start): only the root's first state is taken from here. */
  readonly root = (snapshot: Snapshot): void => {
    if (this.rootStarted) return;
    this.rootStarted = true;
    this.step(this.rootId, snapshot, 'xstate.init', false);
  };

  /** For `createActor(root, { inspect })`. Cheap for everything that is not a microstep. */
  readonly inspect = (ev: MicrostepInspection): void => {
    if (ev.type !== '@xstate.microstep') return;
    const transitions = ev._transitions;
    if (!transitions || transitions.length === 0) return;
    // A targeted transition exits and enters states unless it targets its own source without `reenter`
    // (XState's transition domain): one to an ancestor re-enters it whatever its flag says.
    let entered = false;
    for (const t of transitions) {
      if (!t.target || t.target.length === 0) continue;
      if (t.reenter || t.target.some((n) => n !== t.source)) entered = true;
    }
    if (!entered) return;
    const isRoot = ev.actorRef.sessionId === ev.rootId;
    const id = isRoot ? this.rootId : actorId(ev.actorRef);
    if (id === undefined) return;
    this.step(id, ev.snapshot as Snapshot, causeOf(ev.event), true);
  };

  /** One step of actor `id`: recorded when the path changed or (`entered`) states were exited and entered. */
  private step(id: string, snapshot: Snapshot, on: string, entered: boolean): void {
    const to = statePath(snapshot.value);
    const from = this.last.get(id) ?? null;
    if (snapshot.status === 'active') this.last.set(id, to);
    else this.last.delete(id);
    if (from !== to || entered) this.onTransition({ id, from, to, on });
  }
}

/** A pair's id: the systemId the registry created its actor with (the inspection type only promises a
 * sessionId; every pair's actor id is the same, machines/registry.ts src/shared/events.ts CHILD_ACTOR_ID). */
function actorId(ref: { sessionId: string }): string | undefined {
  const id = (ref as { systemId?: unknown }).systemId;
  return typeof id === 'string' ? id : undefined;
}

/**
 * A child's end as the root took it, named after the pair (`xstate.done.actor.<pair id>`), as logs have always
 * shown it: every child's actor id is the same, so XState's own event type no longer says which pair ended.
 */
function causeOf(event: { type: string; output?: unknown } | undefined): string {
  if (!event) return 'unknown';
  if (event.type === `xstate.done.actor.${CHILD_ACTOR_ID}`) {
    const id = (event.output as { id?: unknown } | undefined)?.id;
    if (typeof id === 'string') return `xstate.done.actor.${id}`;
  }
  return event.type;
}
