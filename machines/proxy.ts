/**
 * The root supervisor. One child connection actor per accepted socket; every event that names a connection id
 * is routed to that child; finished children are forgotten.
 *
 *   running ──SHUTDOWN──► stopping ──(no children left)──► stopped
 *
 * Pure like the connection machine: `src/` feeds it events (from RxJS streams) and provides the named actions
 * and the connection logic (the connection machine with its live effects, or bare for tests and replay).
 */
import { assign, setup, type ActorRefFrom, type DoneActorEvent, type ErrorActorEvent } from 'xstate';
import { connectionMachine, type ConnectionEvent, type ConnectionInput, type ConnectionOutput } from './connection.js';
import { ConnectionRegistry, type ChildStepObserver } from './registry.js';

export type AcceptedEvent = { type: 'ACCEPTED' } & ConnectionInput;
/** What XState sends the parent when a child reaches its final state, or fails. */
export type ChildDoneEvent = DoneActorEvent<ConnectionOutput, string>;
export type ChildErrorEvent = ErrorActorEvent<unknown, string>;
export type ProxyEvent = AcceptedEvent | ConnectionEvent | { type: 'SHUTDOWN' } | ChildDoneEvent | ChildErrorEvent;

export interface ProxyInput {
  /** The connection machine each child runs; src/ passes it with its live effects provided. */
  connection?: typeof connectionMachine;
  /** Sees each child's snapshot after every event it took (event log, replay). */
  observeChild?: ChildStepObserver;
}

export interface ProxyContext {
  registry: ConnectionRegistry;
  accepted: number;
  finished: number;
}

export type ConnectionActor = ActorRefFrom<typeof connectionMachine>;

const proxySetup = setup({
  types: {
    context: {} as ProxyContext,
    events: {} as ProxyEvent,
    input: {} as ProxyInput,
  },
  actions: {
    /** Told about every finished pair (logging, counters); a no-op in the bare machine. */
    connectionFinished: (_, _params: ConnectionOutput) => {},
    spawnConnection: ({ context, event }) => {
      const { id, peer, local } = event as AcceptedEvent;
      context.registry.spawn({ id, peer, local });
    },
    /** Route by connection id. An event for a pair that has already finished (a late close, a timer that
     * raced its cancellation) finds no child and is dropped: the pair's story ended with its final state. */
    route: ({ context, event }) => {
      context.registry.send(event as ConnectionEvent);
    },
    shutdownAll: ({ context }) => context.registry.broadcast({ type: 'SHUTDOWN', id: '' }),
    shutdownOne: ({ context, event }) => {
      const { id } = event as AcceptedEvent;
      context.registry.send({ type: 'SHUTDOWN', id });
    },
    countAccepted: assign({ accepted: ({ context }) => context.accepted + 1 }),
  },
  guards: {
    /** Every child has finished and its CONNECTION_DONE has been handled (not merely queued). */
    allFinished: ({ context }) => context.registry.size === 0 && context.finished === context.accepted,
    isNewConnection: ({ context, event }) => context.registry.get((event as AcceptedEvent).id) === undefined,
  },
});

const childEnded = proxySetup.enqueueActions(({ context, event, enqueue }) => {
  const e = event as ChildDoneEvent | ChildErrorEvent;
  const failed = e.type.startsWith('xstate.error.');
  const output = context.registry.forget(
    e.actorId,
    failed ? undefined : (e as ChildDoneEvent).output,
    failed ? ((e as ChildErrorEvent).error ?? 'unknown') : undefined,
  );
  if (!output) return;
  enqueue({ type: 'connectionFinished', params: output });
  enqueue.assign({ finished: context.finished + 1 });
});

export const proxyMachine = proxySetup.createMachine({
  id: 'proxy',
  context: ({ input, self }) => ({
    registry: new ConnectionRegistry(input?.connection ?? connectionMachine, self, input?.observeChild),
    accepted: 0,
    finished: 0,
  }),
  initial: 'running',
  on: {
    '*': { actions: 'route' },
    // A child ended: forget it, then report it. A child whose machine threw ends alone, reported as
    // internal-error, and the supervisor goes on.
    'xstate.done.actor.*': { actions: childEnded },
    'xstate.error.actor.*': { actions: childEnded },
  },
  states: {
    running: {
      on: {
        ACCEPTED: { guard: 'isNewConnection', actions: ['spawnConnection', 'countAccepted'] },
        SHUTDOWN: { target: 'stopping' },
      },
    },
    stopping: {
      entry: 'shutdownAll',
      always: { guard: 'allFinished', target: 'stopped' },
      on: {
        // A socket accepted just before the listeners closed: give it its actor, then tell it to decline.
        ACCEPTED: { guard: 'isNewConnection', actions: ['spawnConnection', 'countAccepted', 'shutdownOne'] },
      },
    },
    stopped: { type: 'final' },
  },
});

export type ProxyMachine = typeof proxyMachine;
