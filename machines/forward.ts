/**
 * One pair of `mxproxy forward` as a state machine: a local client accepted on a forward port, and its upstream
 * (the proxy, or with mxProxy = "none" the target itself).
 *
 *   linking ─────────────────────────────► forwarding ─► teardown ─► closed
 *   (connecting ─► requesting)             (piped)        (closing | aborting)
 *    dial, failover  mxproxy/1 request, reply
 *
 * How it relates to machines/connection.ts: it is the other end of the same story, told in the same words.
 * Where the proxy's pair dials a backend, this one dials its upstream with the same events and guard
 * (BACKEND_CONNECTED/BACKEND_FAILED/CONNECT_TIMEOUT per attempt, stale attempts ignored, the next address on
 * failure); CLIENT_* is the local client and SERVER_* the upstream, as the proxy's client and backend; teardown
 * is the same (first reason wins, a `teardown` deadline, done when both sides reported closed) and so are the
 * reasons. What is new: `requesting` (the proxy's reply: PROXY_REPLY_OK, PROXY_DECLINED), and the ways the
 * forwarder says no — it has no reply frame to send its client, so every refusal resets the local client
 * (`aborting`), and a pair whose upstream never answered ends `unreachable`. SHUTDOWN resets a pair not yet
 * linked; a linked pair drains as the proxy's does: it goes on until it closes by itself, its drain deadline
 * (DRAIN_TIMEOUT) or a SHUTDOWN with `now`, which then reset it (the forwarder has no graceful stop to offer).
 *
 * Pure: no sockets, timers, files or clocks. Everything nondeterministic arrives as an event (the event log
 * records exactly these) and every side effect is a named action that src/forward/ provides; the defaults below
 * do nothing, which is what replay and the machine tests run with.
 */
import { and, assertEvent, assign, setup } from 'xstate';
import type {
  CloseMode,
  ForwardContext,
  ForwardEvent,
  ForwardInput,
  ForwardOutput,
  ForwardTimerName,
} from '../src/shared/events.js';

export type {
  CloseMode,
  ForwardContext,
  ForwardEvent,
  ForwardEventType,
  ForwardInput,
  ForwardOutput,
  ForwardTimerName,
} from '../src/shared/events.js';

/** The reason of a pair whose upstream never answered: every address refused, failed or timed out. */
export const UNREACHABLE = 'unreachable';

export const forwardMachine = setup({
  types: {
    context: {} as ForwardContext,
    events: {} as ForwardEvent,
    input: {} as ForwardInput,
    output: {} as ForwardOutput,
  },
  actions: {
    // Side effects, implemented in src/forward/effects.ts. No-ops here: tests and replay run the bare machine.
    startTimer: (_, _params: { timer: ForwardTimerName }) => {},
    cancelTimer: (_, _params: { timer: ForwardTimerName }) => {},
    /** Dial one address (through the proxy: TCP and TLS); answers BACKEND_CONNECTED or BACKEND_FAILED for this attempt. */
    dialUpstream: (_, _params: { attempt: number; address: string; viaProxy: boolean }) => {},
    /** Abandon the dial in progress; it reports nothing afterwards. */
    abortDial: () => {},
    /** Send the mxproxy/1 request and read the reply: PROXY_REPLY_OK or PROXY_DECLINED. */
    sendRequest: (_, _params: { target: string }) => {},
    /** Pipe both ways, the local client's waiting bytes first. Bytes never pass through the actor. */
    link: () => {},
    /** graceful: flush and end both sides; abort: reset the local client, destroy the upstream. */
    closeSockets: (_, _params: { mode: CloseMode }) => {},
    // Context updates, named so diagrams and transition records read well.
    nextAttempt: assign({ attempt: ({ context }) => context.attempt + 1 }),
    connected: assign(({ event }) => {
      assertEvent(event, 'BACKEND_CONNECTED');
      return { upstream: event.address, serverOpen: true };
    }),
    /** The last attempt failed: its error is the pair's. */
    unreachable: assign(({ event }) => {
      assertEvent(event, 'BACKEND_FAILED');
      return { reason: UNREACHABLE, code: event.code, message: event.message };
    }),
    timedOut: assign((_, params: { message: string }) => ({ reason: UNREACHABLE, code: 'ETIMEDOUT', message: params.message })),
    declined: assign(({ event }) => {
      assertEvent(event, 'PROXY_DECLINED');
      return { reason: `declined:${event.code}`, code: event.code, message: event.message };
    }),
    /** The first reason wins: a pair ends for one cause, what follows is its consequence. */
    clientClosed: assign(({ context, event }) => {
      assertEvent(event, 'CLIENT_CLOSED');
      return { clientOpen: false, client: { read: event.read, written: event.written }, reason: context.reason ?? 'client-closed' };
    }),
    serverClosed: assign(({ context, event }) => {
      assertEvent(event, 'SERVER_CLOSED');
      return { serverOpen: false, server: { read: event.read, written: event.written }, reason: context.reason ?? 'server-closed' };
    }),
    clientFailed: assign(({ context, event }) => {
      assertEvent(event, 'CLIENT_ERROR');
      return { reason: context.reason ?? `client-error:${event.code}` };
    }),
    serverFailed: assign(({ context, event }) => {
      assertEvent(event, 'SERVER_ERROR');
      return { reason: context.reason ?? `server-error:${event.code}` };
    }),
    shutdown: assign({ reason: ({ context }) => context.reason ?? 'shutdown' }),
  },
  guards: {
    viaProxy: ({ context }) => context.proxy !== null,
    hasNextAddress: ({ context }) => context.attempt + 1 < context.addresses.length,
    isCurrentAttempt: ({ context, event }) => {
      assertEvent(event, ['BACKEND_CONNECTED', 'BACKEND_FAILED', 'CONNECT_TIMEOUT']);
      return event.attempt === context.attempt;
    },
    bothClosed: ({ context }) => !context.clientOpen && !context.serverOpen,
    shutdownNow: ({ event }) => {
      assertEvent(event, 'SHUTDOWN');
      return event.now === true;
    },
    isDraining: ({ context }) => context.draining,
    notDraining: ({ context }) => !context.draining,
  },
}).createMachine({
  id: 'forward',
  // Fields named one by one, not spread: see the connection machine's context.
  context: ({ input }) => ({
    id: input.id,
    peer: input.peer,
    local: input.local,
    target: input.target,
    proxy: input.proxy,
    addresses: input.addresses,
    attempt: 0,
    upstream: null,
    clientOpen: true,
    serverOpen: false,
    draining: false,
    reason: null,
    code: null,
    message: null,
    client: { read: 0, written: 0 },
    server: { read: 0, written: 0 },
  }),
  initial: 'linking',
  output: ({ context }) => ({
    id: context.id,
    peer: context.peer,
    target: context.target,
    via: context.proxy ?? 'direct',
    upstream: context.upstream,
    reason: context.reason,
    code: context.code,
    message: context.message,
    up: context.client.read,
    down: context.client.written,
  }),
  states: {
    /**
     * Until the upstream is ready to carry bytes. One `connect` deadline per attempt covers the dial and, through
     * the proxy, its reply (as connectTimeout is documented); a failover re-enters `linking`, which restarts it.
     */
    linking: {
      entry: { type: 'startTimer', params: { timer: 'connect' } },
      exit: { type: 'cancelTimer', params: { timer: 'connect' } },
      initial: 'connecting',
      // The local client is paused until linked, so its FIN waits in the socket: CLIENT_END comes after `link`.
      states: {
        connecting: {
          entry: {
            type: 'dialUpstream',
            params: ({ context }) => ({
              attempt: context.attempt,
              address: context.addresses[context.attempt] ?? '',
              viaProxy: context.proxy !== null,
            }),
          },
          on: {
            BACKEND_CONNECTED: [
              { guard: and(['isCurrentAttempt', 'viaProxy']), target: 'requesting', actions: 'connected' },
              { guard: 'isCurrentAttempt', target: '#forward.forwarding', actions: 'connected' },
            ],
            BACKEND_FAILED: [
              // redundant addresses (direct mode): try the next one
              { guard: and(['isCurrentAttempt', 'hasNextAddress']), target: '#forward.linking', reenter: true, actions: 'nextAttempt' },
              { guard: 'isCurrentAttempt', target: '#forward.teardown.aborting', actions: 'unreachable' },
            ],
            CONNECT_TIMEOUT: [
              {
                guard: and(['isCurrentAttempt', 'hasNextAddress']),
                target: '#forward.linking',
                reenter: true,
                actions: ['abortDial', 'nextAttempt'],
              },
              {
                guard: 'isCurrentAttempt',
                target: '#forward.teardown.aborting',
                actions: ['abortDial', { type: 'timedOut', params: { message: 'no answer within connectTimeout' } }],
              },
            ],
            // The dial in progress is abandoned; teardown closes what exists.
            CLIENT_CLOSED: { target: '#forward.teardown.closing', actions: ['abortDial', 'clientClosed'] },
            CLIENT_ERROR: { target: '#forward.teardown.aborting', actions: ['abortDial', 'clientFailed'] },
            SHUTDOWN: { target: '#forward.teardown.aborting', actions: ['abortDial', 'shutdown'] },
          },
        },
        /** Through the proxy only: the request is sent, the reply decides. */
        requesting: {
          entry: { type: 'sendRequest', params: ({ context }) => ({ target: context.target }) },
          on: {
            PROXY_REPLY_OK: { target: '#forward.forwarding' },
            PROXY_DECLINED: { target: '#forward.teardown.aborting', actions: 'declined' },
            CONNECT_TIMEOUT: {
              guard: 'isCurrentAttempt',
              target: '#forward.teardown.aborting',
              actions: { type: 'timedOut', params: { message: 'no reply from the proxy within connectTimeout' } },
            },
            // The proxy hung up (or sent a bad reply, reported as a SERVER_ERROR) before saying ok: a refusal too.
            SERVER_CLOSED: { target: '#forward.teardown.aborting', actions: 'serverClosed' },
            SERVER_ERROR: { target: '#forward.teardown.aborting', actions: 'serverFailed' },
            CLIENT_CLOSED: { target: '#forward.teardown.closing', actions: 'clientClosed' },
            CLIENT_ERROR: { target: '#forward.teardown.aborting', actions: 'clientFailed' },
            SHUTDOWN: { target: '#forward.teardown.aborting', actions: 'shutdown' },
          },
        },
      },
    },
    forwarding: {
      entry: 'link',
      // Cancelling a timer that never started is a no-op (src/forward/effects.ts).
      exit: { type: 'cancelTimer', params: { timer: 'drain' } },
      on: {
        // Half-close: the pipe passes the FIN on by itself; the pair lives until a side closes.
        CLIENT_END: {},
        SERVER_END: {},
        CLIENT_CLOSED: { target: 'teardown.closing', actions: 'clientClosed' },
        SERVER_CLOSED: { target: 'teardown.closing', actions: 'serverClosed' },
        CLIENT_ERROR: { target: 'teardown.aborting', actions: 'clientFailed' },
        SERVER_ERROR: { target: 'teardown.aborting', actions: 'serverFailed' },
        SHUTDOWN: [
          { guard: 'shutdownNow', target: 'teardown.aborting', actions: 'shutdown' },
          { guard: 'notDraining', actions: [assign({ draining: true }), { type: 'startTimer', params: { timer: 'drain' } }] },
        ],
        DRAIN_TIMEOUT: { guard: 'isDraining', target: 'teardown.aborting', actions: 'shutdown' },
      },
    },
    teardown: {
      entry: { type: 'startTimer', params: { timer: 'teardown' } },
      exit: { type: 'cancelTimer', params: { timer: 'teardown' } },
      // Always entered through one of its sub-states; `closing` is only the formal default.
      initial: 'closing',
      always: { guard: 'bothClosed', target: 'closed' },
      on: {
        CLIENT_CLOSED: { actions: 'clientClosed' },
        SERVER_CLOSED: { actions: 'serverClosed' },
        CLIENT_ERROR: { target: '.aborting', actions: 'clientFailed' },
        SERVER_ERROR: { target: '.aborting', actions: 'serverFailed' },
        // Deadline: destroy whatever is left and finish; late socket events find no actor and are dropped.
        TEARDOWN_TIMEOUT: {
          target: 'closed',
          actions: [{ type: 'closeSockets', params: { mode: 'abort' } }, assign({ reason: ({ context }) => context.reason ?? 'timeout:teardown' })],
        },
      },
      states: {
        /** Flush and end both sides; each closes when its peer has closed too. */
        closing: {
          entry: { type: 'closeSockets', params: { mode: 'graceful' } },
        },
        /** Reset the local client (a refusal must not look like an empty answer), destroy the upstream. */
        aborting: {
          entry: { type: 'closeSockets', params: { mode: 'abort' } },
        },
      },
    },
    closed: {
      type: 'final',
    },
  },
});

export type ForwardMachine = typeof forwardMachine;
