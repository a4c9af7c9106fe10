/**
 * The live implementations of the connection machine's named actions. Each reads and changes only the
 * src-side resources of one pair (sockets, timers, early bytes) and reports outcomes as events on the bus;
 * no decision is taken here that the machine should see.
 */
import type net from 'node:net';
import type tls from 'node:tls';
import type { ByteCounts, CloseMode, ConnectionEvent, ConnectionOutput, TimerName } from '../../machines/connection.js';
import { CERTIFICATE_WHY, decideNames, decisionEvent, type Authorizer } from '../auth/rules.js';
import type { ConnectionEffect } from '../eventlog/effects.js';
import type { Clock, TimerHandle } from '../clock.js';
import type { ProxyConfig } from '../config/types.js';
import { InternalError } from '../errors.js';
import { connMeta, type Logger } from '../log.js';
import { RateLimiter } from '../log/rateLimited.js';
import { dial, type Dial } from '../net/dial.js';
import { lifecycle$ } from '../net/socketEvents.js';
import { formatHostPort, parseHostPort } from '../shared/address.js';
import { ReplyCode } from '../shared/codes.js';
import { printable, truncate } from '../shared/printable.js';
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
  timers: Partial<Record<ClockTimer, TimerHandle>>;
  /** Disarms the idle timer on both sockets; set while it is armed. */
  idle?: (() => void) | undefined;
  identity: string | null;
  /** Every name of the client certificate as TLS_OK carries them (`cn:…`, `dns:…`): a reload decides again with them. */
  identities: string[];
  /** The client certificate, for a reload's new CRL and for expiry; null before TLS_OK. */
  cert: PeerCertInfo | null;
  target: string | null;
  /** Once authorized: the name that matched (`dns:hmi.plant.local`) and the rule's `file:line`. */
  matched: string | null;
  rule: string | null;
  acceptedAt: number;
}

export interface PeerCertInfo {
  /** Hex, as OpenSSL prints it. */
  serial: string;
  /** ms since the epoch. */
  notAfter: number;
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
  /** Per client address and kind, one TLS refusal or decline warning at once, then one summary per this many ms. */
  warnIntervalMs?: number | undefined;
  /**
   * Why the pair's certificate is no longer good (revoked by a CRL loaded since its handshake, or expired), or
   * undefined. A pair whose handshake passed before a reload and whose request comes after it is held to the
   * new CRL here.
   */
  certificateProblem?: ((p: Pair) => string | undefined) | undefined;
}

export const WARN_INTERVAL_MS = 60_000;

type Args = { context: { id: string; attempt: number } };

/** Timers run on the clock; `idle` is the sockets' own inactivity timer instead (see armIdle). */
type ClockTimer = Exclude<TimerName, 'idle'>;

/** Read from the config in force each time a timer starts. 0 turns halfClose and idle off. */
const TIMER_MS: Record<TimerName, (c: ProxyConfig) => number> = {
  handshake: (c) => c.handshakeTimeout,
  connect: (c) => c.connectTimeout,
  teardown: (c) => c.teardownTimeout,
  halfClose: (c) => c.halfCloseTimeout,
  idle: (c) => c.idleTimeout,
  drain: (c) => c.drainTimeout,
};

/** Longest decline or refusal message in a log line (characters of escaped text). */
const MESSAGE_MAX = 512;

function timeoutEvent(timer: ClockTimer, id: string, attempt: number): ConnectionEvent {
  switch (timer) {
    case 'handshake':
      return { type: 'HANDSHAKE_TIMEOUT', id };
    case 'connect':
      return { type: 'CONNECT_TIMEOUT', id, attempt };
    case 'teardown':
      return { type: 'TEARDOWN_TIMEOUT', id };
    case 'halfClose':
      return { type: 'HALF_CLOSE_TIMEOUT', id };
    case 'drain':
      return { type: 'DRAIN_TIMEOUT', id };
  }
}

const bytesMoved = (s: net.Socket): number => s.bytesRead + s.bytesWritten;

/** Declines that are the proxy's own doing, not the client's: not warned about. */
const QUIET_DECLINES = new Set<string>([ReplyCode.SHUTTING_DOWN]);

/** The client gave up during the handshake (health checks, port scans): not a refusal. */
const QUIET_TLS_FAILURES = new Set<string>(['tls-failed:ECONNRESET']);

/**
 * A side's byte counts: the machine has them from the CLOSED event, unless the pair ended at the teardown
 * deadline, before the sockets reported. The socket's own counters are final once it is destroyed and never
 * smaller than what it reported, so the larger of the two is right either way.
 */
function finalCounts(socket: net.Socket | null, reported: ByteCounts): ByteCounts {
  if (!socket) return reported;
  return { read: Math.max(reported.read, socket.bytesRead), written: Math.max(reported.written, socket.bytesWritten) };
}

export function createEffects(deps: EffectsDeps) {
  const { pairs, bus, clock, logger } = deps;
  const dispatchLevel = deps.reportDispatch ? 'info' : 'debug';

  /** `extra` is a function so that nothing is built for a line that is not logged (the per-connection path). */
  const log = (level: string, message: string, p: Pair, extra?: () => Record<string, unknown>) => {
    if (logger.isLevelEnabled(level)) logger.log(level, message, connMeta(p, extra?.()));
  };

  const limiter = new RateLimiter({
    clock,
    intervalMs: deps.warnIntervalMs ?? WARN_INTERVAL_MS,
    summary: ({ source, kind, count, last, intervalMs }) =>
      logger.warn(`${count} more ${kind} from ${source} in ${intervalMs / 1000} s (rate-limited)`, { source, suppressed: count, last }),
  });
  /**
   * A warning the client can cause, rate-limited per client address and kind; the lines held back still go
   * out at the dispatch level, so `--report dispatch` (and debug) keeps every one. `detail` is the raw text
   * (the summary's `last` field), escaped where it is printed.
   */
  const warnLimited = (p: Pair, kind: string, detail: string, message: string, extra?: () => Record<string, unknown>) => {
    const host = parseHostPort(p.peer);
    const admitted = limiter.admit(host.ok ? host.value.host : p.peer, kind, truncate(detail, MESSAGE_MAX));
    log(admitted ? 'warn' : dispatchLevel, message, p, extra);
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

  /**
   * The pair's idle timer is Node's inactivity timer of each socket, refreshed inside Node by every read and
   * write, so no byte passes through here. Each socket's 'timeout' notes its byte count; the pair is idle once
   * both have timed out and neither has moved a byte since, which is then reported once as IDLE_TIMEOUT.
   */
  function armIdle(p: Pair, ms: number): void {
    const { client, server } = p;
    p.idle?.();
    if (ms <= 0 || !client || !server) return;
    let clientQuietAt = -1;
    let serverQuietAt = -1;
    const check = () => {
      if (clientQuietAt !== bytesMoved(client) || serverQuietAt !== bytesMoved(server)) return;
      disarm();
      bus.emit({ type: 'IDLE_TIMEOUT', id: p.id });
    };
    const onClient = () => {
      clientQuietAt = bytesMoved(client);
      check();
    };
    const onServer = () => {
      serverQuietAt = bytesMoved(server);
      check();
    };
    const disarm = () => {
      client.setTimeout(0);
      server.setTimeout(0);
      client.off('timeout', onClient);
      server.off('timeout', onServer);
      p.idle = undefined;
    };
    client.on('timeout', onClient);
    server.on('timeout', onServer);
    client.setTimeout(ms);
    server.setTimeout(ms);
    p.idle = disarm;
  }

  const actions = {
    startTimer: guarded<{ timer: TimerName }>('startTimer', (p, { context }, { timer }) => {
      const ms = TIMER_MS[timer](deps.config());
      if (timer === 'idle') {
        armIdle(p, ms);
        return;
      }
      const previous = p.timers[timer];
      if (previous) clock.clearTimeout(previous);
      delete p.timers[timer];
      // 0 turns halfClose off; a drain of 0 ends at once.
      if (ms <= 0 && timer !== 'drain') return;
      const event = timeoutEvent(timer, p.id, context.attempt);
      p.timers[timer] = clock.setTimeout(() => {
        delete p.timers[timer];
        bus.emit(event);
      }, ms);
    }),

    cancelTimer: guarded<{ timer: TimerName }>('cancelTimer', (p, _args, { timer }) => {
      if (timer === 'idle') {
        p.idle?.();
        return;
      }
      const handle = p.timers[timer];
      if (handle) clock.clearTimeout(handle);
      delete p.timers[timer];
    }),

    readRequest: guarded('readRequest', (p) => {
      const client = p.client;
      if (!client) throw new InternalError('no TLS socket to read the request from');
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
      const d = decideNames(deps.authorizer(), params.identities, params.target);
      // A certificate revoked by a CRL loaded (or expired) since its handshake: the rules no longer matter.
      const certProblem = d.ok ? deps.certificateProblem?.(p) : undefined;
      if (certProblem) {
        const message = `the client certificate ${certProblem}`;
        bus.emit({ type: 'DECLINED', id: p.id, code: ReplyCode.NOT_ALLOWED, message, why: `${CERTIFICATE_WHY}${certProblem}` });
        return;
      }
      // Past the rules, the pair limits (per identity, per server) may still say no: ERR_OVERLOADED.
      const over = d.ok ? deps.admit?.(p.id, params.identity, params.target) : undefined;
      if (over) {
        bus.emit({ type: 'DECLINED', id: p.id, code: over.code, message: over.message });
        return;
      }
      const e = decisionEvent(d);
      if (e.type === 'AUTHORIZED') {
        p.matched = e.matched;
        p.rule = e.rule;
        log(dispatchLevel, 'authorized', p, () => ({ matched: p.matched, rule: e.rule, allow: e.ruleText }));
      }
      bus.emit({ ...e, id: p.id });
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
      if (!client || !server) throw new InternalError('link without both sockets');
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
      // A peer that vanished without FIN or RST (power cut, cable pulled) is found by the kernel's probes: its
      // socket then fails with ETIMEDOUT and the pair ends as client-error/server-error. On the TCP socket
      // under TLS, which is where the option lives.
      const keepAlive = deps.config().tcpKeepAlive;
      if (keepAlive > 0) {
        p.raw.setKeepAlive(true, keepAlive);
        server.setKeepAlive(true, keepAlive);
      }
      const onChunk = deps.onChunk;
      if (onChunk) {
        client.on('data', (chunk: Buffer) => onChunk(p.id, 'up', chunk));
        server.on('data', (chunk: Buffer) => onChunk(p.id, 'down', chunk));
      }
      log(dispatchLevel, 'link', p, () => ({
        backend: server.remoteAddress ? formatHostPort({ host: server.remoteAddress, port: server.remotePort ?? 0 }) : undefined,
        matched: p.matched ?? undefined,
        rule: p.rule ?? undefined,
      }));
    }),

    sendDecline: guarded<{ code: ReplyCode; message: string }>('sendDecline', (p, _args, { code, message }) => {
      p.stopReading?.();
      // The message may quote the client's target and identity (and a bad request's own bytes): printed escaped.
      const line = `decline ${code}: ${printable(message, MESSAGE_MAX)}`;
      if (QUIET_DECLINES.has(code)) log(dispatchLevel, line, p);
      else warnLimited(p, `decline ${code}`, message, line);
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
  } satisfies Record<ConnectionEffect, unknown>;

  /** The pair's actor reached its final state: release what src/ held for it. */
  function finished(out: ConnectionOutput): void {
    const p = pairs.get(out.id);
    if (!p) return;
    pairs.delete(out.id);
    for (const handle of Object.values(p.timers)) if (handle) clock.clearTimeout(handle);
    p.idle?.();
    p.dial?.abort();
    p.client?.destroy();
    p.server?.destroy();
    p.raw.destroy();
    if (out.reason?.startsWith('tls-failed:')) {
      const detail = out.message ?? out.reason;
      const line = `tls refused: ${printable(detail, MESSAGE_MAX)}`;
      const extra = () => ({ reason: out.reason });
      if (QUIET_TLS_FAILURES.has(out.reason)) log('debug', line, p, extra);
      else warnLimited(p, 'tls refused', detail, line, extra);
      return;
    }
    log(dispatchLevel, 'unlink', p, () => {
      const client = finalCounts(p.client, out.client);
      const server = finalCounts(p.server, out.server);
      return {
        reason: out.reason,
        backend: out.backend ?? undefined,
        clientIn: client.read,
        clientOut: client.written,
        serverIn: server.read,
        serverOut: server.written,
        ms: Math.round((clock.now() - p.acceptedAt) * 100) / 100,
      };
    });
  }

  /** The proxy stops: what the rate limit still holds back is reported now. */
  function close(): void {
    limiter.close();
  }

  return { actions, finished, close };
}
