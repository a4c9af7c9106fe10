/**
 * The root supervisor's children, by connection id, held by whoever runs the root (runtime, replay, tests).
 *
 * XState keeps spawned children in the immutable snapshot and copies that map on every spawn and stop, which
 * makes each accept O(open pairs): 2 ms per connection at 2,000 idle pairs, measured. A proxy holds thousands
 * of long-lived pairs, so the children live here instead: O(1) spawn, route and forget. They are still inside
 * the root's actor system (parent = the root, systemId = the connection id), so `root.system.get(id)` and
 * XState's inspection find every pair, while the root's own snapshot stays plain data.
 *
 * ActorRegistry holds any pair machine; ConnectionRegistry is the proxy's, ForwardRegistry (./forwarder.ts)
 * the forwarder's.
 */
import {
  assertEvent,
  createActor,
  type Actor,
  type AnyActorRef,
  type AnyStateMachine,
  type EventFromLogic,
  type InputFrom,
  type OutputFrom,
} from 'xstate';
import { CHILD_ACTOR_ID, type WithId } from '../src/shared/events.js';
import type { connectionMachine, ConnectionEvent, ConnectionInput, ConnectionOutput } from './connection.js';
import { proxyMachine, type ProxyEvent } from './proxy.js';

type ConnectionLogic = typeof connectionMachine;

/**
 * Told after a child has taken each event (and once at its start, `on` = "xstate.init"): how the event log
 * and replay see state transitions. Much cheaper than XState's inspection stream, which builds several
 * objects per event and per action for every actor.
 */
export type ChildStepObserver = (id: string, snapshot: { value: unknown; status: string }, on: string) => void;

/** One observer for those given (the event log's, the inspector's); undefined when none is. */
export function observeAll(...observers: (ChildStepObserver | undefined)[]): ChildStepObserver | undefined {
  const given = observers.filter((o): o is ChildStepObserver => o !== undefined);
  if (given.length <= 1) return given[0];
  return (id, snapshot, on) => {
    for (const o of given) o(id, snapshot, on);
  };
}

export interface RegistryOptions<TOutput = ConnectionOutput> {
  /** Sees each child's snapshot after every event it took. */
  observe?: ChildStepObserver | undefined;
  /** Told once per pair when it has ended and been forgotten (logging, counters). */
  finished?: ((output: TOutput) => void) | undefined;
}

/**
 * How a root tells the registry that a child ended: its output, or the error its machine threw. Which child is
 * the registry's to know (see CHILD_ACTOR_ID): ends reach the root in the order the children ended.
 */
export type ActorEnd<TOutput> = { output: TOutput | undefined; error: unknown };


/**
 * The children of a root, any pair machine: the proxy's connections (ConnectionRegistry below) or the
 * forwarder's pairs (machines/forwarder.ts). `failedOutput` is what a child whose machine threw is reported as.
 */
export class ActorRegistry<TLogic extends AnyStateMachine> {
  private readonly children = new Map<string, Actor<TLogic>>();
  /** Kept so a child that failed can still be reported with its peer. */
  private readonly inputs = new Map<string, InputFrom<TLogic>>();
  /** Children that have ended, in order, until the root takes their end events (which arrive in that order). */
  private readonly ended: string[] = [];
  private readonly observe: ChildStepObserver | undefined;
  private readonly finished: ((output: OutputFrom<TLogic>) => void) | undefined;

  constructor(
    /** The machine each child runs: with live effects provided, or bare (replay, tests). */
    private readonly logic: TLogic,
    private readonly failedOutput: (input: InputFrom<TLogic>, reason: string) => OutputFrom<TLogic>,
    opts: RegistryOptions<OutputFrom<TLogic>> = {},
  ) {
    this.observe = opts.observe;
    this.finished = opts.finished;
  }

  get size(): number {
    return this.children.size;
  }

  ids(): IterableIterator<string> {
    return this.children.keys();
  }

  get(id: string): Actor<TLogic> | undefined {
    return this.children.get(id);
  }

  has(id: string): boolean {
    return this.children.has(id);
  }

  spawn(input: InputFrom<TLogic> & WithId, supervisor: AnyActorRef): void {
    if (this.children.has(input.id)) return;
    // With the supervisor as parent the child joins its actor system (one system, not one per pair), found
    // there by its systemId, and reports its end as xstate.done.actor.pair or, if its machine throws,
    // xstate.error.actor.pair.
    const child = createActor(this.logic, { id: CHILD_ACTOR_ID, systemId: input.id, input, parent: supervisor });
    this.children.set(input.id, child);
    this.inputs.set(input.id, input);
    // Told before XState relays the end to the root (Actor.update, Actor._error); an error observer also
    // keeps XState from reporting the error as unhandled.
    const ended = () => this.ended.push(input.id);
    child.subscribe({ complete: ended, error: ended });
    child.start();
    this.observe?.(input.id, child.getSnapshot(), 'xstate.init');
  }

  /** The child that ended first and is not forgotten yet (final state or error): forget it and report what
   * it ended with. */
  forget({ output, error }: ActorEnd<OutputFrom<TLogic>>): void {
    const id = this.ended.shift();
    if (id === undefined) return;
    const input = this.inputs.get(id);
    if (!this.children.delete(id) || !input) return;
    this.inputs.delete(id);
    const reported =
      error !== undefined
        ? this.failedOutput(input, `internal-error:${error instanceof Error ? error.message : String(error)}`)
        : (output ?? this.failedOutput(input, 'no-output'));
    this.finished?.(reported);
  }

  send(event: EventFromLogic<TLogic> & WithId): boolean {
    const child = this.children.get(event.id);
    if (!child) return false;
    // Synchronous: an idle child has finished with the event when send returns (events its effects emit
    // meanwhile wait in the supervisor's mailbox), so the snapshot read here is the event's outcome.
    child.send(event);
    this.observe?.(event.id, child.getSnapshot(), event.type);
    return true;
  }

  broadcast(event: EventFromLogic<TLogic> & WithId): void {
    for (const [id, child] of [...this.children]) {
      child.send({ ...event, id });
      this.observe?.(id, child.getSnapshot(), event.type);
    }
  }
}

/** The proxy's registry: connection machines. */
export class ConnectionRegistry extends ActorRegistry<ConnectionLogic> {
  constructor(logic: ConnectionLogic, opts: RegistryOptions = {}) {
    super(logic, failedOutput, opts);
  }
}

/**
 * The root machine with its children kept in `registry`: the one way to run the supervisor, live, in replay
 * and in tests.
 */
export function superviseWith(registry: ConnectionRegistry) {
  return proxyMachine.provide({
    actions: {
      spawnConnection: ({ self }, input) => registry.spawn(input, self),
      routeToConnection: ({ event }) => {
        if (namesAPair(event)) registry.send(event);
      },
      shutdownConnections: (_, { id, now }) => {
        // `now` only when set, so a drain SHUTDOWN reads (and is recorded) as it always was.
        const event = now ? { type: 'SHUTDOWN' as const, id, now } : { type: 'SHUTDOWN' as const, id };
        if (id === '') registry.broadcast(event);
        else registry.send(event);
      },
      forgetConnection: (_, end) => registry.forget(end),
    },
    guards: {
      isNewConnection: ({ event }) => {
        assertEvent(event, 'ACCEPTED');
        return !registry.has(event.id);
      },
    },
  });
}

/** Events that name a pair; the root's own (ACCEPTED, SHUTDOWN, child ends) are not routed. */
function namesAPair(event: ProxyEvent): event is ConnectionEvent {
  return 'id' in event && typeof event.id === 'string' && event.type !== 'ACCEPTED' && event.type !== 'SHUTDOWN';
}

function failedOutput(input: ConnectionInput, reason: string): ConnectionOutput {
  return {
    id: input.id,
    peer: input.peer,
    identity: null,
    target: null,
    backend: null,
    reason,
    code: null,
    message: null,
    client: { read: 0, written: 0 },
    server: { read: 0, written: 0 },
  };
}
