/**
 * The root supervisor. One child connection actor per accepted socket; every event that names a connection id
 * is routed to that child; finished children are forgotten.
 *
 *   running ──SHUTDOWN──► stopping ──(every accepted pair finished)──► stopped
 *
 * SHUTDOWN is passed to every pair; a second one (`now`: close linked pairs at once) too. A linked pair drains
 * on the first (machines/connection.ts), so `stopping` lasts until the last one has closed.
 *
 * Pure like the connection machine, and its context is plain data (two counters): the children live in a
 * ConnectionRegistry that whoever runs the root holds (the runtime, replay, tests) and hands to the root's
 * actions with `superviseWith(registry)` (./registry.ts). The bare machine spawns nothing: diagrams read it.
 */
import { assertEvent, assign, setup, type ActorRefFrom, type DoneActorEvent, type ErrorActorEvent } from 'xstate';
import { connectionMachine, type ConnectionEvent, type ConnectionInput } from './connection.js';
import type { ConfigLoadedEvent, ConnectionOutput, ShutdownEvent } from '../src/shared/events.js';

export type AcceptedEvent = { type: 'ACCEPTED' } & ConnectionInput;
/** What XState sends the parent when a child reaches its final state, or fails. */
export type ChildDoneEvent = DoneActorEvent<ConnectionOutput, string>;
export type ChildErrorEvent = ErrorActorEvent<unknown, string>;
export type ProxyEvent =
  | AcceptedEvent
  | ConnectionEvent
  | ShutdownEvent
  | ConfigLoadedEvent
  | ChildDoneEvent
  | ChildErrorEvent;

export interface ProxyContext {
  /** Pairs spawned. */
  accepted: number;
  /** Pairs that reached their final state (or failed) and were forgotten. */
  finished: number;
}

/** What the root tells the registry when a child ended: its output, or the error its machine threw (which
 * child it was, the registry knows: ./registry.ts, src/shared/events.ts CHILD_ACTOR_ID). */
export type ChildEnd = { output: ConnectionOutput | undefined; error: unknown };

export type ConnectionActor = ActorRefFrom<typeof connectionMachine>;

const isChildEnd = (event: ProxyEvent): event is ChildDoneEvent | ChildErrorEvent =>
  event.type.startsWith('xstate.done.actor.') || event.type.startsWith('xstate.error.actor.');

export const proxyMachine = setup({
  types: {
    context: {} as ProxyContext,
    events: {} as ProxyEvent,
  },
  actions: {
    // Provided by the registry (superviseWith); no-ops in the bare machine.
    /** Create and start the pair's actor, under the root, with the connection id as its systemId. */
    spawnConnection: (_, _params: ConnectionInput) => {},
    /** Route by connection id. An event for a pair that has already finished (a late close, a timer that raced
     * its cancellation) finds no child and is dropped: the pair's story ended with its final state. */
    routeToConnection: () => {},
    /** SHUTDOWN (with `now` when given) to every child (`id` empty) or to one. */
    shutdownConnections: (_, _params: { id: string; now: boolean }) => {},
    /** Forget an ended child and report how it ended. */
    forgetConnection: (_, _params: ChildEnd) => {},
    countAccepted: assign({ accepted: ({ context }) => context.accepted + 1 }),
    countFinished: assign({ finished: ({ context }) => context.finished + 1 }),
  },
  guards: {
    /** Provided by the registry: no child has this id yet. */
    isNewConnection: () => true,
    /** Every accepted child has ended and been forgotten (not merely queued its end). */
    allFinished: ({ context }) => context.finished === context.accepted,
  },
}).createMachine({
  id: 'proxy',
  context: { accepted: 0, finished: 0 },
  initial: 'running',
  on: {
    '*': { actions: 'routeToConnection' },
    // The config in force, at start and at each reload: recorded with the events it precedes; the rules
    // themselves are applied by src/ (authorize), so the root only takes note.
    CONFIG_LOADED: {},
    // A child ended: forget it, then report it. A child whose machine threw ends alone, reported as
    // internal-error, and the supervisor goes on.
    'xstate.done.actor.*': {
      actions: [
        {
          type: 'forgetConnection',
          params: ({ event }) => (isChildEnd(event) ? childEnd(event) : { output: undefined, error: undefined }),
        },
        'countFinished',
      ],
    },
    'xstate.error.actor.*': {
      actions: [
        {
          type: 'forgetConnection',
          params: ({ event }) => (isChildEnd(event) ? childEnd(event) : { output: undefined, error: undefined }),
        },
        'countFinished',
      ],
    },
  },
  states: {
    running: {
      on: {
        ACCEPTED: {
          guard: 'isNewConnection',
          actions: [{ type: 'spawnConnection', params: ({ event }) => inputOf(event) }, 'countAccepted'],
        },
        SHUTDOWN: { target: 'stopping' },
      },
    },
    stopping: {
      entry: { type: 'shutdownConnections', params: ({ event }) => ({ id: '', now: isNow(event) }) },
      always: { guard: 'allFinished', target: 'stopped' },
      on: {
        // While linked pairs drain: a second SHUTDOWN (`now`: close them at once) reaches them too.
        SHUTDOWN: { actions: { type: 'shutdownConnections', params: ({ event }) => ({ id: '', now: isNow(event) }) } },
        // A socket accepted just before the listeners closed: give it its actor, then tell it to decline.
        ACCEPTED: {
          guard: 'isNewConnection',
          actions: [
            { type: 'spawnConnection', params: ({ event }) => inputOf(event) },
            'countAccepted',
            // Not linked yet: declined whether or not the shutdown is `now`.
            { type: 'shutdownConnections', params: ({ event }) => ({ id: inputOf(event).id, now: false }) },
          ],
        },
      },
    },
    stopped: { type: 'final' },
  },
});

function inputOf(event: ProxyEvent): ConnectionInput {
  assertEvent(event, 'ACCEPTED');
  return { id: event.id, peer: event.peer, local: event.local };
}

function isNow(event: ProxyEvent): boolean {
  assertEvent(event, 'SHUTDOWN');
  return event.now === true;
}

function childEnd(event: ChildDoneEvent | ChildErrorEvent): ChildEnd {
  return 'output' in event
    ? { output: event.output, error: undefined }
    : { output: undefined, error: event.error ?? 'unknown' };
}

export type ProxyMachine = typeof proxyMachine;
