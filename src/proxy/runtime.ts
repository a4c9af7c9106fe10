/**
 * The live proxy: listeners, TLS termination, the root actor and the event stream between them.
 *
 *   accept ─► limits (./limits.ts: refused sockets are reset here) ─► ACCEPTED ─► TLS (Node verifies the
 *   client certificate) ─► TLS_OK / TLS_FAILED ─► …
 *
 * Every event enters the actors through one RxJS stream (EventBus), which is where observers and the event
 * log tap in. With `[proxy] user` the process drops root once its files are read and its listeners bound
 * (process/privileges.ts); sockets accepted before that wait.
 */
import type net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import { createActor, type Actor } from 'xstate';
import { connectionMachine } from '../../machines/connection.js';
import { proxyMachine, type ProxyEvent } from '../../machines/proxy.js';
import { ConnectionRegistry, superviseWith } from '../../machines/registry.js';
import { Authorizer } from '../auth/rules.js';
import { systemClock, type Clock, type TimerHandle } from '../clock.js';
import type { ProxyConfig } from '../config/types.js';
import { EventLogError, TlsMaterialError } from '../errors.js';
import { connMeta, silentLogger, type Logger } from '../log.js';
import { listen, type Listening } from '../net/listeners.js';
import { lifecycle$ } from '../net/socketEvents.js';
import { loadTlsMaterial } from '../net/tlsMaterial.js';
import { createTlsTerminator, rotateTicketKeys, type TlsMaterial } from '../net/tlsTerminator.js';
import { checkLogDirectory, dropPrivileges, prepareLogDirectory } from '../process/privileges.js';
import { formatHostPort, sourceAddress } from '../shared/address.js';
import { rateLabel } from '../shared/tokenBucket.js';
import { configSnapshot } from '../config/snapshot.js';
import { EventRecorder } from '../eventlog/recorder.js';
import { workerLogPath } from '../eventlog/workerSeries.js';
import { EventBus } from './bus.js';
import { createEffects, type Pair } from './effects.js';
import { AcceptGate, PairLimits, resolveLimits, type Admission, type ProxyLimits } from './limits.js';
import { RefusalLog, type RefusalCounts } from './refusals.js';

export interface ProxyOptions {
  config: ProxyConfig;
  logger?: Logger;
  clock?: Clock;
  /** Log each accept/decline/link/unlink at info level (`--report dispatch`). */
  reportDispatch?: boolean;
  /** Certificates in memory instead of the files named by config.tls (embedding, tests). */
  tls?: TlsMaterial;
  /** The first session-ticket key (48 bytes) instead of a random one: proxies started with the same key resume
   * each other's sessions until either rotates (tests, embedding). */
  ticketKeys?: Buffer;
  /** Sees every event in the order the actors receive it (tests, observers). */
  onEvent?: (event: ProxyEvent) => void;
  /** The rate limit of TLS refusal and decline warnings, ms per summary (default 60 s; tests). */
  warnIntervalMs?: number;
  /** This process is worker N of `[proxy] workers` (src/cluster): its event log is `<name>.w<N>.<ext>`. */
  worker?: number;
  /** The session-ticket key is replaced only through rotateTicketKeys(key) (a cluster primary keeps the
   * workers' keys the same, so a session resumes on any of them): no rotation on this process's clock. */
  externalTicketRotation?: boolean;
}

export interface ProxyStats {
  accepted: number;
  /** Pairs whose actor has not reached its final state yet. */
  active: number;
  /** Client sockets counted against maxConnections. */
  open: number;
  /** Of those, not yet past TLS and the request frame (maxPendingHandshakes). */
  pending: number;
  /** Source addresses in the per-source table (bounded, see limits.ts). */
  sources: number;
  /** Connections refused at accept, and pairs declined with ERR_OVERLOADED, by reason, since start. */
  refused: RefusalCounts;
}

export interface ProxyHandle {
  /** Bound listener addresses, "host:port" (port 0 in the config is resolved here). */
  readonly addresses: string[];
  stats(): ProxyStats;
  /** Stop accepting, decline pending requests with ERR_SHUTTING_DOWN, close linked pairs, then resolve. */
  stop(): Promise<void>;
  /** Resolves when the proxy has stopped (after stop(), or a fatal error). */
  readonly stopped: Promise<void>;
  /** The root supervisor actor (inspection); each pair is in its system under its connection id. */
  readonly root: Actor<typeof proxyMachine>;
  /** The live pairs' actors, by connection id. */
  readonly registry: ConnectionRegistry;
  /** The event log, when config.eventLog is set. */
  readonly recorder: EventRecorder | undefined;
  /** The limits in force (maxConnections resolved from the open-files limit when not set). */
  limits(): ProxyLimits;
  /** A new session-ticket key now, `keys` or a random one (the schedule starts over): no session issued
   * before resumes. */
  rotateTicketKeys(keys?: Buffer): void;
}

export async function startProxy(opts: ProxyOptions): Promise<ProxyHandle> {
  // The configuration in force and what is made from it, in one place: everything reads through these
  // accessors at each use, so a reload swaps `live` and nothing else.
  const live = { config: opts.config, limits: resolveLimits(opts.config), authorizer: new Authorizer(opts.config) };
  const config = () => live.config;
  const limits = () => live.limits;
  const logger = opts.logger ?? silentLogger();
  const clock = opts.clock ?? systemClock;
  let material = opts.tls;
  if (!material) {
    const tls = config().tls;
    if (!tls) throw new TlsMaterialError('ERR_TLS_SETUP', `${config().file}: no sslCertificate entry in [proxy]`);
    material = loadTlsMaterial(tls, { crlFile: config().crlFile, warn: (m) => logger.warn(m) });
  }
  const runAs = config().runAs;

  // The event log opens before the first event can exist; a write failure later only costs the log.
  // A worker writes its own series: one writer per file (src/eventlog/workerSeries.ts).
  const configuredLog = config().eventLog;
  const logConfig =
    configuredLog && opts.worker !== undefined ? { ...configuredLog, path: workerLogPath(configuredLog.path, opts.worker) } : configuredLog;
  if (logConfig) {
    const dir = path.dirname(logConfig.path);
    let created: boolean;
    try {
      created = prepareLogDirectory(dir, runAs);
    } catch (err) {
      throw new EventLogError(`cannot create the event log directory ${dir}: ${(err as Error).message}`, { cause: err });
    }
    if (created) logger.info(`created the event log directory ${dir}` + (runAs ? ` for user ${runAs.user}` : ''));
  }
  const recorder = logConfig
    ? await EventRecorder.open({
        ...logConfig,
        clock,
        ...(opts.worker !== undefined ? { worker: opts.worker } : {}),
        onError: (err) => logger.error(`event log ${logConfig.path}: ${err.message}; recording stopped, the proxy goes on`),
      })
    : undefined;
  if (logConfig) {
    logger[logConfig.level === 'payload' ? 'warn' : 'info'](
      `event log ${logConfig.path} at level ${logConfig.level}` +
        (logConfig.level === 'payload' ? ': forwarded bytes are written to disk, for debugging only' : ''),
    );
  }
  // Opened before the drop: the file belongs to the account it runs as, like the ones rotation creates later.
  if (recorder && logConfig && runAs && process.getuid?.() === 0) fs.chownSync(logConfig.path, runAs.uid, runAs.gid);
  const flushOnExit = () => recorder?.flushSync();
  if (recorder) process.once('exit', flushOnExit);

  const bus = new EventBus();
  const pairs = new Map<string, Pair>();
  const ids = new WeakMap<net.Socket, string>();
  const gate = new AcceptGate(limits, clock);
  const pairLimits = new PairLimits(limits);
  const refusals = new RefusalLog(logger, clock);
  /** Each accepted socket's hold on the accept counters, until its pair has finished. */
  const admissions = new Map<string, Admission>();
  const effects = createEffects({
    pairs,
    bus,
    config,
    authorizer: () => live.authorizer,
    clock,
    logger,
    reportDispatch: opts.reportDispatch ?? false,
    admit: (id, identity, target) => {
      const over = pairLimits.admit(id, identity, target);
      if (over) refusals.refused(admissions.get(id)?.source ?? 'unknown', over.reason);
      return over;
    },
    onChunk: recorder && recorder.level !== 'lifecycle' ? (id, d, chunk) => recorder.chunk(id, d, chunk) : undefined,
    warnIntervalMs: opts.warnIntervalMs,
  });

  // The runtime holds the pairs; the root's actions reach them through it (machines/registry.ts).
  const registry = new ConnectionRegistry(connectionMachine.provide({ actions: effects.actions }), {
    observe: recorder?.observeChild,
    finished: (output) => {
      effects.finished(output);
      admissions.get(output.id)?.release();
      admissions.delete(output.id);
      pairLimits.release(output.id);
      recorder?.ended(output.id);
    },
  });
  const root = createActor(superviseWith(registry));
  let accepted = 0;
  // The root has reached its final state (or failed); `stopped` resolves later, once everything is closed.
  let resolveRootDone!: () => void;
  const rootDone = new Promise<void>((r) => (resolveRootDone = r));
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  let rootFailed = false;
  /** Set once the listeners are open; a root that fails before then is stopped right after. */
  let stop: (() => Promise<void>) | undefined;
  const observeRoot = recorder?.observeRoot;
  root.subscribe({
    next: (snapshot) => {
      observeRoot?.(snapshot);
      if (snapshot.status === 'done') resolveRootDone();
    },
    error: (err) => {
      // Effects are guarded, so this is a bug in a machine; without its supervisor the proxy cannot go on.
      logger.error(`root actor failed: ${(err as Error).stack ?? String(err)}`);
      resolveRootDone();
      rootFailed = true;
      void stop?.();
    },
  });
  root.start();
  observeRoot?.(root.getSnapshot());
  const onEvent = opts.onEvent;
  const subscription = bus.events$.subscribe((event) => {
    // A complete request frame: the socket no longer counts as a pending handshake.
    if (event.type === 'REQUEST') admissions.get(event.id)?.passed();
    recorder?.event(event);
    onEvent?.(event);
    root.send(event);
  });
  // The config in force goes into the stream (and so the event log) before the first connection.
  bus.emit({ type: 'CONFIG_LOADED', reason: 'start', config: configSnapshot(config()) });

  const terminator = createTlsTerminator(material, {
    ok(raw, socket, info) {
      const id = ids.get(raw);
      const p = id === undefined ? undefined : pairs.get(id);
      if (!p) {
        socket.destroy();
        return;
      }
      // From here on the halves close independently: a client's FIN is passed on, and the pair decides
      // when both are done (teardown), so data still on its way to a half-closed client is not lost.
      socket.allowHalfOpen = true;
      p.client = socket;
      p.identity = info.identity;
      bus.emit({ type: 'TLS_OK', id: p.id, ...info, identity: info.identity ?? '' });
      bus.attach(lifecycle$(socket, 'client', p.id));
    },
    failed(raw, code, message) {
      const id = ids.get(raw);
      if (id !== undefined) bus.emit({ type: 'TLS_FAILED', id, code, message });
    },
  }, { ticketKeys: opts.ticketKeys });

  // The ticket key is replaced on the clock; the period is read from the config in force at each turn.
  let rotation: TimerHandle | undefined;
  const scheduleRotation = () => {
    if (rotation) clock.clearTimeout(rotation);
    rotation = clock.setTimeout(() => {
      rotateTicketKeys(terminator);
      logger.debug('session ticket key rotated');
      scheduleRotation();
    }, config().sessionTicketRotation);
  };
  const stopRotation = () => {
    if (rotation) clock.clearTimeout(rotation);
    rotation = undefined;
  };

  let nextId = 0;
  const dispatchLevel = opts.reportDispatch ? 'info' : 'debug';
  const accept = (raw: net.Socket) => {
    // An error before TLS owns the socket (a reset right after accept) must not crash the process.
    raw.on('error', () => {});
    // The limits come first: a refused socket gets no TLS, no actor, no id and no event-log record.
    const source = raw.remoteAddress ? sourceAddress(raw.remoteAddress) : 'unknown';
    const admission = gate.admit(source);
    if (typeof admission === 'string') {
      refusals.refused(source, admission);
      // A reset, not a FIN: the peer learns at once, and the socket does not sit in TIME_WAIT here.
      if (typeof raw.resetAndDestroy === 'function') raw.resetAndDestroy();
      else raw.destroy();
      return;
    }
    // The descriptor is free once the socket is closed, whichever comes first of that and the pair's end.
    raw.once('close', () => admission.release());
    const id = (++nextId).toString(36);
    admissions.set(id, admission);
    const peer = raw.remoteAddress ? formatHostPort({ host: raw.remoteAddress, port: raw.remotePort ?? 0 }) : 'unknown';
    const local = raw.localAddress ? formatHostPort({ host: raw.localAddress, port: raw.localPort ?? 0 }) : 'unknown';
    ids.set(raw, id);
    pairs.set(id, {
      id,
      peer,
      raw,
      client: null,
      server: null,
      dial: null,
      early: null,
      stopReading: null,
      timers: {},
      identity: null,
      target: null,
      matched: null,
      rule: null,
      acceptedAt: clock.now(),
    });
    accepted++;
    if (logger.isLevelEnabled(dispatchLevel)) logger.log(dispatchLevel, 'accept', connMeta({ id, peer, identity: null, target: null }, { local }));
    bus.emit({ type: 'ACCEPTED', id, peer, local });
    terminator.emit('connection', raw);
  };
  // Until the privileges are dropped, accepted sockets wait: no client byte is handled as root.
  let held: net.Socket[] | null = runAs ? [] : null;
  const onSocket = (raw: net.Socket) => {
    if (!held) return accept(raw);
    raw.on('error', () => {}); // a reset while it waits must not crash the process either
    held.push(raw);
  };

  let listening: Listening | undefined;
  try {
    listening = await listen(config().listen, onSocket);
    if (runAs) {
      dropPrivileges(runAs);
      if (logConfig) checkLogDirectory(path.dirname(logConfig.path), runAs, 'event log');
      // The log file was opened before the drop (src/cli/start.ts); rotating it needs its directory.
      const logFile = config().log.file;
      if (logFile) checkLogDirectory(path.dirname(logFile.path), runAs, 'log file');
      logger.info(`running as user ${runAs.user} (${runAs.uid}), group ${runAs.group} (${runAs.gid})`);
    }
  } catch (err) {
    for (const raw of held ?? []) raw.destroy();
    await listening?.close();
    subscription.unsubscribe();
    root.stop();
    await recorder?.close();
    process.off('exit', flushOnExit);
    throw err;
  }
  if (!opts.externalTicketRotation) scheduleRotation();
  const waiting = held ?? [];
  held = null;
  for (const raw of waiting) accept(raw);
  const l = limits();
  logger.info(`mxproxy listening on ${listening.addresses.join(', ')}`, {
    servers: [...config().servers.keys()].join(','),
    rules: config().allow.length,
    maxConnections: l.maxConnections,
    maxPendingHandshakes: l.maxPendingHandshakes,
    maxPendingPerSource: l.maxPendingPerSource,
    connectRate: l.connectRate ? rateLabel(l.connectRate) : 'off',
  });

  let stopping: Promise<void> | null = null;
  stop = () => {
    stopping ??= (async () => {
      const closed = listening.close();
      stopRotation();
      bus.emit({ type: 'SHUTDOWN' }); // through the bus, so the event log has it
      await rootDone;
      await closed;
      subscription.unsubscribe();
      bus.complete();
      refusals.close();
      effects.close();
      await recorder?.close();
      process.off('exit', flushOnExit);
      logger.info('mxproxy stopped');
      resolveStopped();
    })();
    return stopping;
  };
  // The root failed while the listeners were opening.
  if (rootFailed) void stop();

  return {
    addresses: listening.addresses,
    stats: () => ({ accepted, active: pairs.size, ...gate.stats(), refused: refusals.totals() }),
    stop: () => stop!(),
    stopped,
    root,
    registry,
    recorder,
    limits,
    rotateTicketKeys: (keys?: Buffer) => {
      rotateTicketKeys(terminator, keys);
      if (rotation) scheduleRotation();
    },
  };
}
