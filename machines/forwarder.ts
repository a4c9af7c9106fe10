/**
 * The forwarder's root supervisor: the proxy's root (./proxy.ts) in shape and behaviour, over forward pairs
 * (./forward.ts). One child per accepted local client, events routed by pair id, finished children forgotten.
 *
 *   running ──SHUTDOWN──► stopping ──(every accepted pair finished)──► stopped
 *
 * As the proxy's root: SHUTDOWN, and a second one with `now`, reach every pair.
 *
 * A root of its own rather than the proxy's made generic: the two differ only in their child's input and
 * events, and keeping proxy.ts as it is keeps its diagrams and its tests untouched. The children live in an
 * ActorRegistry held by whoever runs the root (src/forward/forwarder.ts, replay, tests), handed to the root's
 * actions with `superviseForwardsWith(registry)`.
 */
import { assertEvent, assign, setup, type DoneActorEvent, type ErrorActorEvent } from 'xstate';
import type { ForwardEvent, ForwardInput, ForwardOutput, ShutdownEvent } from '../src/shared/events.js';
import { forwardMachine } from './forward.js';
import { ActorRegistry, type ActorEnd, type RegistryOptions } from './registry.js';

/** A local client accepted on a forward port: the pair's input, as recorded. */
export type ForwardAcceptedEvent = { type: 'ACCEPTED' } & ForwardInput;
export type ForwardChildDoneEvent = DoneActorEvent<ForwardOutput, string>;
export type ForwardChildErrorEvent = ErrorActorEvent<unknown, string>;
export type ForwarderEvent = ForwardAcceptedEvent | ForwardEvent | ShutdownEvent | ForwardChildDoneEvent | ForwardChildErrorEvent;

export interface ForwarderContext {
  /** Pairs spawned. */
  accepted: number;
  /** Pairs that reached their final state (or failed) and were forgotten. */
  finished: number;
}

const isChildEnd = (event: ForwarderEvent): event is ForwardChildDoneEvent | ForwardChildErrorEvent =>
  event.type.startsWith('xstate.done.actor.') || event.type.startsWith('xstate.error.actor.');

export const forwarderMachine = setup({
  types: {
    context: {} as ForwarderContext,
    events: {} as ForwarderEvent,
  },
  actions: {
    // Provided by superviseForwardsWith; no-ops in the bare machine.
    spawnPair: (_, _params: ForwardInput) => {},
    /** Route by pair id; an event for a pair that has finished finds no child and is dropped. */
    routeToPair: () => {},
    /** SHUTDOWN (with `now` when given) to every child (`id` empty) or to one. */
    shutdownPairs: (_, _params: { id: string; now: boolean }) => {},
    forgetPair: (_, _params: ActorEnd<ForwardOutput>) => {},
    countAccepted: assign({ accepted: ({ context }) => context.accepted + 1 }),
    countFinished: assign({ finished: ({ context }) => context.finished + 1 }),
  },
  guards: {
    isNewPair: () => true,
    allFinished: ({ context }) => context.finished === context.accepted,
  },
}).createMachine({
  id: 'forwarder',
  context: { accepted: 0, finished: 0 },
  initial: 'running',
  on: {
    '*': { actions: 'routeToPair' },
    'xstate.done.actor.*': {
      actions: [{ type: 'forgetPair', params: ({ event }) => childEnd(event) }, 'countFinished'],
    },
    'xstate.error.actor.*': {
      actions: [{ type: 'forgetPair', params: ({ event }) => childEnd(event) }, 'countFinished'],
    },
  },
  states: {
    running: {
      on: {
        ACCEPTED: { guard: 'isNewPair', actions: [{ type: 'spawnPair', params: ({ event }) => inputOf(event) }, 'countAccepted'] },
        SHUTDOWN: { target: 'stopping' },
      },
    },
    stopping: {
      entry: { type: 'shutdownPairs', params: ({ event }) => ({ id: '', now: isNow(event) }) },
      always: { guard: 'allFinished', target: 'stopped' },
      on: {
        SHUTDOWN: { actions: { type: 'shutdownPairs', params: ({ event }) => ({ id: '', now: isNow(event) }) } },
        // A client accepted just before the listeners closed: give it its actor, then stop it.
        ACCEPTED: {
          guard: 'isNewPair',
          actions: [
            { type: 'spawnPair', params: ({ event }) => inputOf(event) },
            'countAccepted',
            { type: 'shutdownPairs', params: ({ event }) => ({ id: inputOf(event).id, now: false }) },
          ],
        },
      },
    },
    stopped: { type: 'final' },
  },
});

export type ForwarderMachine = typeof forwarderMachine;

function inputOf(event: ForwarderEvent): ForwardInput {
  assertEvent(event, 'ACCEPTED');
  return { id: event.id, peer: event.peer, local: event.local, target: event.target, proxy: event.proxy, addresses: event.addresses };
}

function isNow(event: ForwarderEvent): boolean {
  assertEvent(event, 'SHUTDOWN');
  return event.now === true;
}

function childEnd(event: ForwarderEvent): ActorEnd<ForwardOutput> {
  if (!isChildEnd(event)) return { output: undefined, error: undefined };
  return 'output' in event
    ? { output: event.output, error: undefined }
    : { output: undefined, error: event.error ?? 'unknown' };
}

/** The forwarder's registry: forward pairs. */
export class ForwardRegistry extends ActorRegistry<typeof forwardMachine> {
  constructor(logic: typeof forwardMachine, opts: RegistryOptions<ForwardOutput> = {}) {
    super(logic, failedOutput, opts);
  }
}

/** The root with its children kept in `registry`: live, in replay and in tests. */
export function superviseForwardsWith(registry: ForwardRegistry) {
  return forwarderMachine.provide({
    actions: {
      spawnPair: ({ self }, input) => registry.spawn(input, self),
      routeToPair: ({ event }) => {
        if (namesAPair(event)) registry.send(event);
      },
      shutdownPairs: (_, { id, now }) => {
        const event = now ? { type: 'SHUTDOWN' as const, id, now } : { type: 'SHUTDOWN' as const, id };
        if (id === '') registry.broadcast(event);
        else registry.send(event);
      },
      forgetPair: (_, end) => registry.forget(end),
    },
    guards: {
      isNewPair: ({ event }) => {
        assertEvent(event, 'ACCEPTED');
        return !registry.has(event.id);
      },
    },
  });
}

/** Events that name a pair; the root's own (ACCEPTED, SHUTDOWN, child ends) are not routed. */
function namesAPair(event: ForwarderEvent): event is ForwardEvent {
  return 'id' in event && typeof event.id === 'string' && event.type !== 'ACCEPTED' && event.type !== 'SHUTDOWN';
}

function failedOutput(input: ForwardInput, reason: string): ForwardOutput {
  return {
    id: input.id,
    peer: input.peer,
    target: input.target,
    via: input.proxy ?? 'direct',
    upstream: null,
    reason,
    code: null,
    message: null,
    up: 0,
    down: 0,
  };
}
