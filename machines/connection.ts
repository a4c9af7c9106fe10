/**
 * One client/server connection pair as a state machine.
 *
 *   handshake ─► authorization ─► connecting ─► forwarding ─► teardown ─► closed
 *   (TLS, request)  (rules)        (dial, failover)  (piped;      (declining | closing | aborting)
 *                                                     idle, half-close and drain deadlines)
 *
 * SHUTDOWN declines a pair not yet linked; a linked pair drains: it keeps forwarding until it closes by itself,
 * its drain deadline (DRAIN_TIMEOUT) or a SHUTDOWN with `now`. REVOKED (a reload whose rules or CRL no longer
 * admit the pair) cuts an authorized pair at once.
 *
 * Pure: no sockets, timers, files or clocks in here. Everything nondeterministic arrives as an event (the event
 * log records exactly these), and every side effect is a named action that src/ provides; the defaults below do
 * nothing, which is what replay and machine tests run with.
 */
import { and, assertEvent, assign, setup } from 'xstate';
import { ReplyCode } from '../src/shared/codes.js';
import type {
  CloseMode,
  ConnectionContext,
  ConnectionEvent,
  ConnectionInput,
  ConnectionOutput,
  TimerName,
} from '../src/shared/events.js';

export type {
  ByteCounts,
  CloseMode,
  ConnectionContext,
  ConnectionEvent,
  ConnectionEventType,
  ConnectionInput,
  ConnectionOutput,
  Side,
  TimerName,
  WithId,
} from '../src/shared/events.js';

export const connectionMachine = setup({
  types: {
    context: {} as ConnectionContext,
    events: {} as ConnectionEvent,
    input: {} as ConnectionInput,
    output: {} as ConnectionOutput,
  },
  actions: {
    // Side effects, implemented in src/proxy/effects.ts. No-ops here: tests and replay run the bare machine.
    startTimer: (_, _params: { timer: TimerName }) => {},
    cancelTimer: (_, _params: { timer: TimerName }) => {},
    /** Start reading the request frame from the client. */
    readRequest: () => {},
    /** Decide from the rules whether identity may reach target; answers AUTHORIZED or DECLINED. */
    authorize: (_, _params: { identity: string; identities: string[]; target: string }) => {},
    /** Dial one backend address; answers BACKEND_CONNECTED or BACKEND_FAILED for this attempt. */
    dialBackend: (_, _params: { attempt: number; address: string }) => {},
    /** Abandon the dial in progress (timeout, client gone); it reports nothing afterwards. */
    abortDial: () => {},
    /** Send the ok reply, hand over early bytes, pipe both ways. Bytes never pass through the actor. */
    link: () => {},
    /** Send the decline reply frame, then end the client side. */
    sendDecline: (_, _params: { code: ReplyCode; message: string }) => {},
    closeSockets: (_, _params: { mode: CloseMode }) => {},
    // Context updates, named so diagrams and transition records read well.
    decline: assign((_, params: { code: ReplyCode; message: string }) => ({
      code: params.code,
      message: params.message,
      reason: `declined:${params.code}`,
    })),
    declineFromEvent: assign(({ event }) => {
      assertEvent(event, ['DECLINED', 'REQUEST_INVALID']);
      return { code: event.code, message: event.message, reason: `declined:${event.code}` };
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
    revoked: assign(({ context, event }) => {
      assertEvent(event, 'REVOKED');
      return { reason: context.reason ?? `revoked:${event.reason}` };
    }),
  },
  guards: {
    hasNextAddress: ({ context }) => context.attempt + 1 < context.addresses.length,
    isCurrentAttempt: ({ context, event }) => {
      assertEvent(event, ['BACKEND_CONNECTED', 'BACKEND_FAILED', 'CONNECT_TIMEOUT']);
      return event.attempt === context.attempt;
    },
    bothClosed: ({ context }) => !context.clientOpen && !context.serverOpen,
    isHalfClosed: ({ context }) => context.halfClosedBy !== null,
    notHalfClosed: ({ context }) => context.halfClosedBy === null,
    shutdownNow: ({ event }) => {
      assertEvent(event, 'SHUTDOWN');
      return event.now === true;
    },
    isDraining: ({ context }) => context.draining,
    notDraining: ({ context }) => !context.draining,
  },
}).createMachine({
  id: 'connection',
  // Fields named one by one: a spread of the input made V8 build each pair's context the slow way (10 % of the
  // machine's own time per pair, measured), and every assign copies the context.
  context: ({ input }) => ({
    id: input.id,
    peer: input.peer,
    local: input.local,
    identity: null,
    identities: [],
    target: null,
    addresses: [],
    attempt: 0,
    backend: null,
    clientOpen: true,
    serverOpen: false,
    halfClosedBy: null,
    draining: false,
    reason: null,
    code: null,
    message: null,
    client: { read: 0, written: 0 },
    server: { read: 0, written: 0 },
  }),
  initial: 'handshake',
  output: ({ context }) => ({
    id: context.id,
    peer: context.peer,
    identity: context.identity,
    target: context.target,
    backend: context.backend,
    reason: context.reason,
    code: context.code,
    message: context.message,
    client: context.client,
    server: context.server,
  }),
  states: {
    handshake: {
      entry: { type: 'startTimer', params: { timer: 'handshake' } },
      exit: { type: 'cancelTimer', params: { timer: 'handshake' } },
      initial: 'tls',
      states: {
        tls: {
          on: {
            TLS_OK: {
              target: 'awaitingRequest',
              actions: assign({ identity: ({ event }) => event.identity, identities: ({ event }) => event.identities }),
            },
            // Node has already destroyed the socket when the TLS handshake fails.
            TLS_FAILED: {
              target: '#connection.teardown.closing',
              actions: assign({
                clientOpen: false,
                reason: ({ event }) => `tls-failed:${event.code}`,
                message: ({ event }) => event.message,
              }),
            },
            // Before TLS is done there is no channel to send a reply on: just close.
            HANDSHAKE_TIMEOUT: {
              target: '#connection.teardown.closing',
              actions: assign({ reason: 'timeout:handshake', message: 'TLS handshake not complete within handshakeTimeout' }),
            },
            SHUTDOWN: { target: '#connection.teardown.closing', actions: assign({ reason: 'shutdown' }) },
          },
        },
        awaitingRequest: {
          entry: 'readRequest',
          on: {
            REQUEST: {
              target: '#connection.authorization',
              actions: assign({ target: ({ event }) => event.target }),
            },
            REQUEST_INVALID: { target: '#connection.teardown.declining', actions: 'declineFromEvent' },
            CLIENT_END: {
              target: '#connection.teardown.declining',
              actions: { type: 'decline', params: { code: ReplyCode.BAD_REQUEST, message: 'connection half-closed before a complete request frame' } },
            },
            HANDSHAKE_TIMEOUT: {
              target: '#connection.teardown.declining',
              actions: { type: 'decline', params: { code: ReplyCode.HANDSHAKE_TIMEOUT, message: 'no complete request frame within handshakeTimeout' } },
            },
            SHUTDOWN: {
              target: '#connection.teardown.declining',
              actions: { type: 'decline', params: { code: ReplyCode.SHUTTING_DOWN, message: 'the proxy is shutting down' } },
            },
          },
        },
      },
      on: {
        CLIENT_CLOSED: { target: 'teardown.closing', actions: 'clientClosed' },
        CLIENT_ERROR: { target: 'teardown.aborting', actions: 'clientFailed' },
      },
    },
    authorization: {
      entry: {
        type: 'authorize',
        params: ({ context }) => ({ identity: context.identity ?? '', identities: context.identities, target: context.target ?? '' }),
      },
      on: {
        AUTHORIZED: {
          target: 'connecting',
          actions: assign({ addresses: ({ event }) => event.addresses, attempt: 0 }),
        },
        DECLINED: { target: 'teardown.declining', actions: 'declineFromEvent' },
        SHUTDOWN: { target: 'teardown.declining', actions: { type: 'decline', params: { code: ReplyCode.SHUTTING_DOWN, message: 'the proxy is shutting down' } } },
        // A security cut: no reply, the client is reset.
        REVOKED: { target: 'teardown.aborting', actions: 'revoked' },
        CLIENT_CLOSED: { target: 'teardown.closing', actions: 'clientClosed' },
        CLIENT_ERROR: { target: 'teardown.aborting', actions: 'clientFailed' },
      },
    },
    connecting: {
      entry: [
        {
          type: 'dialBackend',
          params: ({ context }) => ({ attempt: context.attempt, address: context.addresses[context.attempt] ?? '' }),
        },
        { type: 'startTimer', params: { timer: 'connect' } },
      ],
      exit: { type: 'cancelTimer', params: { timer: 'connect' } },
      on: {
        BACKEND_CONNECTED: {
          guard: 'isCurrentAttempt',
          target: 'forwarding',
          actions: assign({ backend: ({ event }) => event.address, serverOpen: true }),
        },
        BACKEND_FAILED: [
          // redundant servers: try the next address
          {
            guard: and(['isCurrentAttempt', 'hasNextAddress']),
            target: 'connecting',
            reenter: true,
            actions: assign({ attempt: ({ context }) => context.attempt + 1 }),
          },
          {
            guard: 'isCurrentAttempt',
            target: 'teardown.declining',
            actions: { type: 'decline', params: { code: ReplyCode.TARGET_UNREACHABLE, message: 'no address of the target accepted the connection' } },
          },
        ],
        CONNECT_TIMEOUT: [
          {
            guard: and(['isCurrentAttempt', 'hasNextAddress']),
            target: 'connecting',
            reenter: true,
            actions: ['abortDial', assign({ attempt: ({ context }) => context.attempt + 1 })],
          },
          {
            guard: 'isCurrentAttempt',
            target: 'teardown.declining',
            actions: ['abortDial', { type: 'decline', params: { code: ReplyCode.TARGET_UNREACHABLE, message: 'no address of the target answered within connectTimeout' } }],
          },
        ],
        SHUTDOWN: {
          target: 'teardown.declining',
          actions: ['abortDial', { type: 'decline', params: { code: ReplyCode.SHUTTING_DOWN, message: 'the proxy is shutting down' } }],
        },
        REVOKED: { target: 'teardown.aborting', actions: ['abortDial', 'revoked'] },
        CLIENT_CLOSED: { target: 'teardown.closing', actions: ['abortDial', 'clientClosed'] },
        CLIENT_ERROR: { target: 'teardown.aborting', actions: ['abortDial', 'clientFailed'] },
      },
    },
    forwarding: {
      entry: ['link', { type: 'startTimer', params: { timer: 'idle' } }],
      // Cancelling a timer that never started is a no-op (src/proxy/effects.ts), like clearTimeout.
      exit: [
        { type: 'cancelTimer', params: { timer: 'idle' } },
        { type: 'cancelTimer', params: { timer: 'halfClose' } },
        { type: 'cancelTimer', params: { timer: 'drain' } },
      ],
      on: {
        // Half-close: the pipe passes the FIN on by itself. The first FIN starts a deadline for the pair to
        // close: a peer that half-closed and vanished would otherwise hold both sockets forever. A second FIN
        // does not restart it.
        CLIENT_END: {
          guard: 'notHalfClosed',
          actions: [assign({ halfClosedBy: 'client' }), { type: 'startTimer', params: { timer: 'halfClose' } }],
        },
        SERVER_END: {
          guard: 'notHalfClosed',
          actions: [assign({ halfClosedBy: 'server' }), { type: 'startTimer', params: { timer: 'halfClose' } }],
        },
        // Only a deadline that was started counts: a stray timer event (replay of a damaged log) changes nothing.
        HALF_CLOSE_TIMEOUT: { guard: 'isHalfClosed', target: 'teardown.aborting', actions: assign({ reason: 'timeout:half-close' }) },
        IDLE_TIMEOUT: { target: 'teardown.aborting', actions: assign({ reason: 'timeout:idle' }) },
        CLIENT_CLOSED: { target: 'teardown.closing', actions: 'clientClosed' },
        SERVER_CLOSED: { target: 'teardown.closing', actions: 'serverClosed' },
        CLIENT_ERROR: { target: 'teardown.aborting', actions: 'clientFailed' },
        SERVER_ERROR: { target: 'teardown.aborting', actions: 'serverFailed' },
        // Drain: the pair goes on until it closes by itself or the deadline; a second drain SHUTDOWN does not
        // restart the deadline, one with `now` closes at once.
        SHUTDOWN: [
          { guard: 'shutdownNow', target: 'teardown.closing', actions: assign({ reason: 'shutdown' }) },
          { guard: 'notDraining', actions: [assign({ draining: true }), { type: 'startTimer', params: { timer: 'drain' } }] },
        ],
        // Only a deadline that was started counts (as for HALF_CLOSE_TIMEOUT).
        DRAIN_TIMEOUT: { guard: 'isDraining', target: 'teardown.closing', actions: assign({ reason: 'shutdown' }) },
        REVOKED: { target: 'teardown.aborting', actions: 'revoked' },
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
        // A TLS failure reported late (the handshake deadline destroyed the socket first) means the client is gone.
        TLS_FAILED: { actions: assign({ clientOpen: false }) },
        CLIENT_ERROR: { target: '.aborting', actions: 'clientFailed' },
        SERVER_ERROR: { target: '.aborting', actions: 'serverFailed' },
        // Deadline: destroy whatever is left and finish; late socket events find no actor and are dropped.
        TEARDOWN_TIMEOUT: {
          target: 'closed',
          actions: [{ type: 'closeSockets', params: { mode: 'abort' } }, assign({ reason: ({ context }) => context.reason ?? 'timeout:teardown' })],
        },
      },
      states: {
        /** Send the decline reply and end the client side; the client closes after reading it. */
        declining: {
          entry: {
            type: 'sendDecline',
            params: ({ context }) => ({ code: context.code ?? ReplyCode.INTERNAL, message: context.message ?? '' }),
          },
        },
        /** Flush and close both sides in order. */
        closing: {
          entry: { type: 'closeSockets', params: { mode: 'graceful' } },
        },
        /** Destroy both sides now. */
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

export type ConnectionMachine = typeof connectionMachine;
