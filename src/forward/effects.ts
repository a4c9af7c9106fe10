/**
 * The live implementations of the forward machine's named actions (machines/forward.ts), as
 * src/proxy/effects.ts is for the connection machine. Each reads and changes only the src-side resources of one
 * pair (sockets, the dial, timers) and reports outcomes as events on the bus; every decision is the machine's.
 */
import type net from 'node:net';
import type tls from 'node:tls';
import type { CloseMode, ForwardOutput, ForwardTimerName } from '../../machines/forward.js';
import type { ForwarderEvent } from '../../machines/forwarder.js';
import { clientSecureContext, dialProxy, requestTarget } from '../client/connect.js';
import type { TlsSessionCache } from '../client/sessionCache.js';
import type { Clock, TimerHandle } from '../clock.js';
import type { ForwardEffect } from '../eventlog/effects.js';
import { InternalError, ProtocolError } from '../errors.js';
import type { Logger } from '../log.js';
import { dial } from '../net/dial.js';
import { errorCode, lifecycle$ } from '../net/socketEvents.js';
import type { TlsMaterial } from '../net/tlsTerminator.js';
import type { EventBus } from '../proxy/bus.js';
import { ReplyCode } from '../shared/codes.js';
import { printable } from '../shared/printable.js';

/** What src/ holds for one forward pair besides its actor. */
export interface ForwardPair {
  id: string;
  peer: string;
  target: string;
  /** How the forward reaches its target, for log lines: `proxy 127.0.0.1:5678`, `direct 10.0.0.5:4897 …`. */
  via: string;
  local: net.Socket;
  /** Once connected: the TLS socket to the proxy, or the TCP socket to the target. */
  upstream: net.Socket | null;
  dial: { abort(): void } | null;
  /** Stops reading the proxy's reply (a reply that arrives after teardown began is not reported). */
  stopReading: (() => void) | null;
  timers: Partial<Record<ForwardTimerName, TimerHandle>>;
  acceptedAt: number;
  linked: boolean;
}

export interface ForwardStats {
  accepted: number;
  linked: number;
  refused: number;
}

export interface ForwardEffectsDeps {
  pairs: Map<string, ForwardPair>;
  bus: EventBus<ForwarderEvent>;
  /**
   * Client certificate, key and CA for the proxy (undefined when it is switched off), in force at each dial. Its
   * TLS context is made once per material object (a reload puts a new one in force) and used for every dial.
   */
  tls: () => TlsMaterial | undefined;
  /** Sessions to resume with, when dialling the proxy. */
  sessionCache?: TlsSessionCache | undefined;
  clock: Clock;
  logger: Logger;
  stats: ForwardStats;
  /** ms of one dial attempt (through the proxy: with its reply), read when it starts (a reload changes it). */
  connectTimeout: () => number;
  /** ms a linked pair may go on after a drain SHUTDOWN. */
  drainTimeout: () => number;
  /** ms of a closing pair's flush. */
  teardownMs: number;
  /** Sees every forwarded chunk (event log at traffic/payload level); unset, nothing is added per chunk. */
  onChunk?: ((id: string, direction: 'up' | 'down', chunk: Buffer) => void) | undefined;
}

type Args = { context: { id: string; attempt: number } };

export function createForwardEffects(deps: ForwardEffectsDeps) {
  const { pairs, bus, clock, logger, stats } = deps;
  /**
   * The dial options of the material in force, with its TLS context: made at its first dial, made again when a
   * reload swapped the material. The same object for every dial, so the session cache's key of it is computed once.
   */
  let dialTls: { material: TlsMaterial; options: TlsMaterial & { secureContext: tls.SecureContext } } | undefined;
  const dialOptionsOf = (material: TlsMaterial) => {
    if (dialTls?.material !== material) dialTls = { material, options: { ...material, secureContext: clientSecureContext(material) } };
    return dialTls.options;
  };

  /** A fault in an effect must not stop the actor system: it becomes an error of the local side. */
  function guarded<P>(name: string, fn: (p: ForwardPair, args: Args, params: P) => void) {
    return (args: Args, params: P): void => {
      const p = pairs.get(args.context.id);
      if (!p) return;
      try {
        fn(p, args, params);
      } catch (err) {
        logger.error(`internal error in ${name}: ${(err as Error).stack ?? String(err)}`, { target: p.target, peer: p.peer });
        queueMicrotask(() =>
          bus.emit({ type: 'CLIENT_ERROR', id: p.id, code: ReplyCode.INTERNAL, message: `${name}: ${(err as Error).message}` }),
        );
      }
    };
  }

  /** The upstream is connected: the machine hears it first, then its lifecycle. */
  function connected(p: ForwardPair, socket: net.Socket, attempt: number, address: string): void {
    p.dial = null;
    p.upstream = socket;
    bus.emit({ type: 'BACKEND_CONNECTED', id: p.id, attempt, address });
    bus.attach(lifecycle$(socket, 'server', p.id));
  }

  // Debug lines (here, at link and unlink) are built only when some transport takes them: winston formats every
  // line it is given before its transports drop those below their level.
  function failed(p: ForwardPair, attempt: number, address: string, code: string, message: string): void {
    p.dial = null;
    if (logger.isDebugEnabled()) logger.debug(`${printable(address)} failed: ${code}`, { target: p.target, peer: p.peer, attempt });
    bus.emit({ type: 'BACKEND_FAILED', id: p.id, attempt, address, code, message });
  }

  const actions = {
    startTimer: guarded<{ timer: ForwardTimerName }>('startTimer', (p, { context }, { timer }) => {
      const previous = p.timers[timer];
      if (previous) clock.clearTimeout(previous);
      const attempt = context.attempt;
      const [ms, event] =
        timer === 'connect'
          ? [deps.connectTimeout(), { type: 'CONNECT_TIMEOUT' as const, id: p.id, attempt }]
          : timer === 'drain'
            ? [deps.drainTimeout(), { type: 'DRAIN_TIMEOUT' as const, id: p.id }]
            : [deps.teardownMs, { type: 'TEARDOWN_TIMEOUT' as const, id: p.id }];
      p.timers[timer] = clock.setTimeout(() => {
        delete p.timers[timer];
        bus.emit(event);
      }, ms);
    }),

    cancelTimer: guarded<{ timer: ForwardTimerName }>('cancelTimer', (p, _args, { timer }) => {
      const handle = p.timers[timer];
      if (handle) clock.clearTimeout(handle);
      delete p.timers[timer];
    }),

    dialUpstream: guarded<{ attempt: number; address: string; viaProxy: boolean }>('dialUpstream', (p, _args, { attempt, address, viaProxy }) => {
      if (!viaProxy) {
        p.dial = dial(
          address,
          (socket) => connected(p, socket, attempt, address),
          (code, message) => failed(p, attempt, address, code, message),
        );
        return;
      }
      const tls = deps.tls();
      if (!tls) throw new InternalError('a dial through the proxy without a client certificate');
      p.dial = dialProxy(
        address,
        dialOptionsOf(tls),
        (socket) => connected(p, socket, attempt, address),
        (err) => failed(p, attempt, address, errorCode(err), err.message),
        { sessionCache: deps.sessionCache },
      );
    }),

    abortDial: guarded('abortDial', (p) => {
      p.dial?.abort();
      p.dial = null;
    }),

    sendRequest: guarded<{ target: string }>('sendRequest', (p, _args, { target }) => {
      const socket = p.upstream;
      if (!socket) throw new InternalError('a request without a connection to the proxy');
      p.stopReading = requestTarget(socket, target, (outcome) => {
        p.stopReading = null;
        if (outcome.kind === 'bad-reply') {
          // The upstream failed: its lifecycle reports SERVER_ERROR ERR_BAD_REPLY, then SERVER_CLOSED.
          socket.destroy(new ProtocolError('ERR_BAD_REPLY', outcome.message));
          return;
        }
        const reply = outcome.reply;
        bus.emit(reply.ok ? { type: 'PROXY_REPLY_OK', id: p.id } : { type: 'PROXY_DECLINED', id: p.id, code: reply.code, message: reply.message });
      });
    }),

    link: guarded('link', (p) => {
      const { local, upstream } = p;
      if (!upstream) throw new InternalError('link without an upstream');
      // Both halves close on their own: a client that sends its request and shuts down its writing side still
      // gets the answer.
      local.allowHalfOpen = true;
      upstream.allowHalfOpen = true;
      upstream.setNoDelay(true);
      const onChunk = deps.onChunk;
      if (onChunk) {
        local.on('data', (chunk: Buffer) => onChunk(p.id, 'up', chunk));
        upstream.on('data', (chunk: Buffer) => onChunk(p.id, 'down', chunk));
      }
      // The local client's bytes waited in its socket (paused since the accept); pipe() lets them flow.
      local.pipe(upstream);
      upstream.pipe(local);
      p.linked = true;
      stats.linked++;
      if (logger.isDebugEnabled()) logger.debug('linked', { target: p.target, peer: p.peer, via: p.via, ms: Math.round(clock.now() - p.acceptedAt) });
    }),

    closeSockets: guarded<{ mode: CloseMode }>('closeSockets', (p, _args, { mode }) => {
      p.stopReading?.();
      p.stopReading = null;
      p.dial?.abort();
      p.dial = null;
      const { local, upstream } = p;
      if (mode === 'abort') {
        // A reset, not a clean end: the local client must not mistake a refusal or a failure for an empty answer.
        if (!local.destroyed) local.resetAndDestroy();
        upstream?.destroy();
        return;
      }
      // Graceful: queued bytes are flushed, then FIN. What the other side still sends is read and dropped, so
      // its FIN arrives and the socket closes.
      for (const s of [local, upstream]) {
        if (!s || s.destroyed) continue;
        if (!s.writableEnded) s.end();
        s.resume();
      }
    }),
  } satisfies Record<ForwardEffect, unknown>;

  /** The pair's actor reached its final state: release what src/ held for it, and say how it ended. */
  function finished(out: ForwardOutput): void {
    const p = pairs.get(out.id);
    if (!p) return;
    pairs.delete(out.id);
    for (const handle of Object.values(p.timers)) if (handle) clock.clearTimeout(handle);
    p.stopReading?.();
    p.dial?.abort();
    p.local.destroy();
    p.upstream?.destroy();
    const refusal = p.linked ? undefined : refusalOf(out);
    if (!refusal) {
      if (logger.isDebugEnabled()) logger.debug('unlinked', { target: p.target, peer: p.peer, up: out.up, down: out.down, reason: out.reason });
      return;
    }
    stats.refused++;
    // `error` quotes the proxy's reply, which quotes this client's target and identity: the log escapes fields.
    logger.warn(`${printable(p.target)}: ${refusal.declined ? 'declined by the proxy' : 'cannot connect'}`, {
      target: p.target,
      peer: p.peer,
      via: p.via,
      code: refusal.code,
      error: refusal.error,
    });
  }

  return { actions, finished };
}

/**
 * How a pair that was never linked was refused, for the log: the proxy's decline, or why no upstream answered.
 * Undefined when the local client went away first, or the forwarder stopped: nobody was refused.
 */
function refusalOf(out: ForwardOutput): { declined: boolean; code: string; error: string } | undefined {
  const reason = out.reason ?? '';
  if (reason.startsWith('declined:')) {
    const code = out.code ?? reason.slice('declined:'.length);
    return { declined: true, code, error: `${code}: ${out.message ?? ''}` };
  }
  if (reason === 'unreachable') return { declined: false, code: out.code ?? 'EUNKNOWN', error: out.message ?? reason };
  if (reason === 'server-closed') return { declined: false, code: 'ECONNRESET', error: 'the proxy closed the connection before replying' };
  if (reason.startsWith('server-error:')) return { declined: false, code: reason.slice('server-error:'.length), error: reason };
  return undefined;
}
