/**
 * The live implementations of the connection machine's named actions. Each reads and changes only the
 * src-side resources of one pair (sockets, timers, early bytes) and reports outcomes as events on the bus;
 * no decision is taken here that the machine should see.
 */
import type net from 'node:net';
import type tls from 'node:tls';
import type { CloseMode, ConnectionOutput, TimerName } from '../../machines/connection.js';
import type { Authorizer } from '../auth/rules.js';
import type { Clock, TimerHandle } from '../clock.js';
import type { ProxyConfig } from '../config/types.js';
import { connMeta, type Logger } from '../log.js';
import { dial, type Dial } from '../net/dial.js';
import { lifecycle$ } from '../net/socketEvents.js';
import { formatHostPort } from '../shared/address.js';
import { ReplyCode } from '../shared/codes.js';
import { FrameReader, OK_REPLY, decodeBody, encodeReply, parseRequest } from '../protocol/frame.js';
import type { EventBus } from './bus.js';

/** What src/ holds for one pair besides its actor. */
export interface Pair {
  id: string;
  peer: string;
  raw: net.Socket;
  client: tls.TLSSocket | null;
  server: net.Socket | null;
  dial: Dial | null;
  /** Bytes the client sent right after its request frame, delivered to the server at link time. */
  early: Buffer | null;
  stopReading: (() => void) | null;
  timers: Partial<Record<TimerName, TimerHandle>>;
  identity: string | null;
  target: string | null;
  acceptedAt: number;
}

export interface EffectsDeps {
  pairs: Map<string, Pair>;
  bus: EventBus;
  config: () => ProxyConfig;
  authorizer: () => Authorizer;
  clock: Clock;
  logger: Logger;
  /** `--report dispatch`: accepts, declines, links and unlinks at info level instead of debug. */
  reportDispatch: boolean;
  /** Limits on pairs, asked after an allow rule matched (maxConnectionsPerIdentity, …): a decline, or
   * undefined to go on. The decline goes through DECLINED like any other, so the machine and the log see it. */
  admit?: ((id: string, identity: string, target: string) => { code: ReplyCode; message: string } | undefined) | undefined;
  /** Sees every forwarded chunk (event log at traffic/payload level); unset, nothing is added per chunk. */
  onChunk?: ((id: string, direction: 'up' | 'down', chunk: Buffer) => void) | undefined;
}

type Args = { context: { id: string; attempt: number } };

const TIMER_MS: Record<TimerName, (c: ProxyConfig) => number> = {
  handshake: (c) => c.handshakeTimeout,
  connect: (c) => c.connectTimeout,
  teardown: (c) => c.teardownTimeout,
};

/** Declines a plant operator should see without asking for them. */
const LOUD_DECLINES = new Set<string>([ReplyCode.NOT_ALLOWED, ReplyCode.UNKNOWN_TARGET, ReplyCode.TARGET_UNREACHABLE]);

export function createEffects(deps: EffectsDeps) {
  const { pairs, bus, clock, logger } = deps;
  const dispatchLevel = deps.reportDispatch ? 'info' : 'debug';

  /** `extra` is a function so that nothing is built for a line that is not logged (the per-connection path). */
  const log = (level: string, message: string, p: Pair, extra?: () => Record<string, unknown>) => {
    if (logger.isLevelEnabled(level)) logger.log(level, message, connMeta(p, extra?.()));
  };

  /**
   * A fault in an effect must not stop the actor system: it becomes an error of that pair's client side, and
   * the machine tears the pair down like any other failure.
   */
  function guarded<P>(name: string, fn: (p: Pair, args: Args, params: P) => void) {
    return (args: Args, params: P): void => {
      const p = pairs.get(args.context.id);
      if (!p) return;
      try {
        fn(p, args, params);
      } catch (err) {
        logger.error(`internal error in ${name}: ${(err as Error).stack ?? String(err)}`, connMeta(p));
        queueMicrotask(() =>
          bus.emit({ type: 'CLIENT_ERROR', id: p.id, code: ReplyCode.INTERNAL, message: `${name}: ${(err as Error).message}` }),
        );
      }
    };
  }

  const actions = {
    startTimer: guarded<{ timer: TimerName }>('startTimer', (p, { context }, { timer }) => {
      const previous = p.timers[timer];
      if (previous) clock.clearTimeout(previous);
      const attempt = context.attempt;
      p.timers[timer] = clock.setTimeout(() => {
        delete p.timers[timer];
        if (timer === 'handshake') bus.emit({ type: 'HANDSHAKE_TIMEOUT', id: p.id });
        else if (timer === 'connect') bus.emit({ type: 'CONNECT_TIMEOUT', id: p.id, attempt });
        else bus.emit({ type: 'TEARDOWN_TIMEOUT', id: p.id });
      }, TIMER_MS[timer](deps.config()));
    }),

    cancelTimer: guarded<{ timer: TimerName }>('cancelTimer', (p, _args, { timer }) => {
      const handle = p.timers[timer];
      if (handle) clock.clearTimeout(handle);
      delete p.timers[timer];
    }),

    readRequest: guarded('readRequest', (p) => {
      const client = p.client;
      if (!client) throw new Error('no TLS socket to read the request from');
      const reader = new FrameReader(deps.config().maxRequestBytes);
      const stop = () => {
        client.pause();
        client.off('data', onData);
        p.stopReading = null;
      };
      const onData = (chunk: Buffer) => {
        const r = reader.push(chunk);
        if (r.kind === 'incomplete') return;
        stop();
        if (r.kind === 'error') {
          bus.emit({ type: 'REQUEST_INVALID', id: p.id, code: ReplyCode.BAD_REQUEST, message: r.message });
          return;
        }
        let target: string;
        try {
          target = parseRequest(decodeBody(r.body)).target;
        } catch (err) {
          bus.emit({ type: 'REQUEST_INVALID', id: p.id, code: ReplyCode.BAD_REQUEST, message: (err as Error).message });
          return;
        }
        if (r.rest.length > 0) p.early = r.rest;
        p.target = target;
        bus.emit({ type: 'REQUEST', id: p.id, target, earlyBytes: r.rest.length });
      };
      p.stopReading = stop;
      client.on('data', onData);
    }),

    authorize: guarded<{ identity: string; identities: string[]; target: string }>('authorize', (p, _args, params) => {
      const d = deps.authorizer().decide(params.identities, params.target);
      const no = d.ok ? deps.admit?.(p.id, params.identity, params.target) : d;
      if (no) bus.emit({ type: 'DECLINED', id: p.id, code: no.code, message: no.message });
      else if (d.ok) bus.emit({ type: 'AUTHORIZED', id: p.id, addresses: d.addresses });
    }),

    dialBackend: guarded<{ attempt: number; address: string }>('dialBackend', (p, _args, { attempt, address }) => {
      p.dial = dial(
        address,
        (socket) => {
          p.dial = null;
          p.server = socket;
          bus.emit({ type: 'BACKEND_CONNECTED', id: p.id, attempt, address });
          bus.attach(lifecycle$(socket, 'server', p.id));
        },
        (code, message) => {
          p.dial = null;
          log('info', `backend ${address} failed: ${code}`, p, () => ({ attempt }));
          bus.emit({ type: 'BACKEND_FAILED', id: p.id, attempt, address, code, message });
        },
      );
    }),

    abortDial: guarded('abortDial', (p) => {
      p.dial?.abort();
      p.dial = null;
    }),

    link: guarded('link', (p) => {
      const { client, server } = p;
      if (!client || !server) throw new Error('link without both sockets');
      // The reply goes out on its own, first: with noDelay on both sockets the client's first answer is not
      // held back by Nagle or a delayed ACK.
      client.write(OK_REPLY);
      if (p.early) {
        deps.onChunk?.(p.id, 'up', p.early);
        server.write(p.early);
        p.early = null;
      }
      client.pipe(server);
      server.pipe(client);
      const onChunk = deps.onChunk;
      if (onChunk) {
        client.on('data', (chunk: Buffer) => onChunk(p.id, 'up', chunk));
        server.on('data', (chunk: Buffer) => onChunk(p.id, 'down', chunk));
      }
      log(dispatchLevel, 'link', p, () => ({ backend: server.remoteAddress ? formatHostPort({ host: server.remoteAddress, port: server.remotePort ?? 0 }) : undefined }));
    }),

    sendDecline: guarded<{ code: ReplyCode; message: string }>('sendDecline', (p, _args, { code, message }) => {
      p.stopReading?.();
      log(LOUD_DECLINES.has(code) ? 'warn' : dispatchLevel, `decline ${code}: ${message}`, p);
      const client = p.client;
      if (!client) {
        p.raw.destroy();
        return;
      }
      client.end(encodeReply({ v: 1, ok: false, code, message }));
      // Read and drop whatever else it sends, so its FIN is seen and the socket closes.
      client.resume();
    }),

    closeSockets: guarded<{ mode: CloseMode }>('closeSockets', (p, _args, { mode }) => {
      p.stopReading?.();
      p.dial?.abort();
      p.dial = null;
      const client = p.client ?? p.raw;
      if (mode === 'abort') {
        client.destroy();
        p.server?.destroy();
        return;
      }
      // Graceful: queued bytes are flushed, then FIN. The other side is gone or going, so what it still sends
      // is read and dropped, which lets its FIN arrive and the socket close.
      if (!p.client) p.raw.destroy();
      for (const s of [p.client, p.server]) {
        if (!s || s.destroyed) continue;
        if (!s.writableEnded) s.end();
        s.resume();
      }
    }),
  };

  /** The pair's actor reached its final state: release what src/ held for it. */
  function finished(out: ConnectionOutput): void {
    const p = pairs.get(out.id);
    if (!p) return;
    pairs.delete(out.id);
    for (const handle of Object.values(p.timers)) if (handle) clock.clearTimeout(handle);
    p.dial?.abort();
    p.client?.destroy();
    p.server?.destroy();
    p.raw.destroy();
    if (out.reason?.startsWith('tls-failed:')) {
      const quiet = out.reason === 'tls-failed:ECONNRESET';
      log(quiet ? 'debug' : 'info', `tls refused: ${out.message ?? out.reason}`, p, () => ({ reason: out.reason }));
      return;
    }
    log(dispatchLevel, 'unlink', p, () => ({
      reason: out.reason,
      backend: out.backend ?? undefined,
      clientIn: out.client.read,
      clientOut: out.client.written,
      serverIn: out.server.read,
      serverOut: out.server.written,
      ms: Math.round((clock.now() - p.acceptedAt) * 100) / 100,
    }));
  }

  return { actions, finished };
}
