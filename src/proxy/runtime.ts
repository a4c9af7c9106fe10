/**
 * The live proxy: listeners, TLS termination, the root actor and the event stream between them.
 *
 *   accept ─► ACCEPTED ─► TLS (Node verifies the client certificate) ─► TLS_OK / TLS_FAILED ─► …
 *
 * Every event enters the actors through one RxJS stream (EventBus), which is where observers and the event
 * log tap in. With `[proxy] user` the process drops root once its files are read and its listeners bound
 * (process/privileges.ts); sockets accepted before that wait.
 */
import type net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import { createActor, type Actor, type InspectionEvent, type Observer } from 'xstate';
import { connectionMachine } from '../../machines/connection.js';
import { proxyMachine, type ProxyEvent } from '../../machines/proxy.js';
import { ConnectionRegistry, superviseWith } from '../../machines/registry.js';
import { Authorizer } from '../auth/rules.js';
import { systemClock, type Clock } from '../clock.js';
import type { AdminConfig, ProxyConfig } from '../config/types.js';
import { TlsMaterialError } from '../errors.js';
import { connMeta, silentLogger, type Logger } from '../log.js';
import { listen, type Listening } from '../net/listeners.js';
import { lifecycle$ } from '../net/socketEvents.js';
import { loadTlsMaterial } from '../net/tlsMaterial.js';
import { createTlsTerminator, type TlsMaterial } from '../net/tlsTerminator.js';
import { checkLogDirectory, dropPrivileges, prepareLogDirectory } from '../process/privileges.js';
import { formatHostPort } from '../shared/address.js';
import { EventRecorder } from '../eventlog/recorder.js';
import type { Inspector } from '../inspect/index.js';
import { EventBus } from './bus.js';
import { createEffects, type Pair } from './effects.js';

export interface ProxyOptions {
  config: ProxyConfig;
  logger?: Logger;
  clock?: Clock;
  /** Log each accept/decline/link/unlink at info level (`--report dispatch`). */
  reportDispatch?: boolean;
  /** Certificates in memory instead of the files named by config.tls (embedding, tests). */
  tls?: TlsMaterial;
  /** Sees every event in the order the actors receive it (tests, observers). */
  onEvent?: (event: ProxyEvent) => void;
  /**
   * XState's inspection observer for the root's actor system, every pair included (`createActor(root,
   * { inspect })`). XState then builds several objects per event and action of every actor; unset, it does none
   * of that.
   */
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
}

export interface ProxyStats {
  accepted: number;
  /** Pairs whose actor has not reached its final state yet. */
  active: number;
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
  /** The admin endpoint's bound address ("host:port"), when config.admin is set. */
  readonly adminAddress: string | undefined;
}

export async function startProxy(opts: ProxyOptions): Promise<ProxyHandle> {
  const config = opts.config;
  const logger = opts.logger ?? silentLogger();
  const clock = opts.clock ?? systemClock;
  let material = opts.tls;
  if (!material) {
    if (!config.tls) throw new TlsMaterialError('ERR_TLS_SETUP', `${config.file}: no sslCertificate entry in [proxy]`);
    material = loadTlsMaterial(config.tls, { crlFile: config.crlFile, warn: (m) => logger.warn(m) });
  }
  const runAs = config.runAs;

  // The event log opens before the first event can exist; a write failure later only costs the log.
  const logConfig = config.eventLog;
  if (logConfig) {
    const dir = path.dirname(logConfig.path);
    let created: boolean;
    try {
      created = prepareLogDirectory(dir, runAs);
    } catch (err) {
      throw Object.assign(new Error(`cannot create the event log directory ${dir}: ${(err as Error).message}`), {
        code: (err as NodeJS.ErrnoException).code,
      });
    }
    if (created) logger.info(`created the event log directory ${dir}` + (runAs ? ` for user ${runAs.user}` : ''));
  }
  const recorder = logConfig
    ? await EventRecorder.open({
        ...logConfig,
        clock,
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
  const configLoadedAt = clock.now();
  let listening: Listening | undefined;
  let accepted = 0;
  // Loaded only when asked for: a proxy without the admin endpoint carries neither prom-client nor Graphviz.
  const inspector = config.admin ? await createInspector(config.admin) : undefined;
  async function createInspector(admin: AdminConfig): Promise<Inspector> {
    const { Inspector } = await import('../inspect/index.js');
    return new Inspector({
      admin,
      logger,
      now: () => clock.now(),
      bytesOf: (id) => {
        const server = pairs.get(id)?.server;
        return server ? { up: server.bytesWritten, down: server.bytesRead } : undefined;
      },
      stats,
      refused: () => refusedOf(stats()),
      eventLog: () => (recorder && logConfig ? { path: logConfig.path, ...recorder.stats(), backlogBytes: recorder.backlogBytes() } : undefined),
      listeners: () => listening?.addresses ?? [],
      configFile: () => config.file,
      configLoadedAt: () => configLoadedAt,
    });
  }
  const ids = new WeakMap<net.Socket, string>();
  const authorizer = new Authorizer(config);
  const effects = createEffects({
    pairs,
    bus,
    config: () => config,
    authorizer: () => authorizer,
    clock,
    logger,
    reportDispatch: opts.reportDispatch ?? false,
    onChunk: recorder && recorder.level !== 'lifecycle' ? (id, d, chunk) => recorder.chunk(id, d, chunk) : undefined,
  });

  // The runtime holds the pairs; the root's actions reach them through it (machines/registry.ts).
  const observeRecorder = recorder?.observeChild;
  const observeInspector = inspector?.step;
  const registry = new ConnectionRegistry(connectionMachine.provide({ actions: effects.actions }), {
    observe:
      observeRecorder && observeInspector
        ? (id, snapshot, on) => {
            observeRecorder(id, snapshot, on);
            observeInspector(id, snapshot, on);
          }
        : (observeRecorder ?? observeInspector),
    finished: (output) => {
      effects.finished(output);
      inspector?.finished(output);
    },
  });
  const root = createActor(superviseWith(registry), opts.inspect ? { inspect: opts.inspect } : undefined);
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
    recorder?.event(event);
    inspector?.event(event);
    onEvent?.(event);
    root.send(event);
  });

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
  });

  function stats(): ProxyStats {
    return { accepted, active: pairs.size };
  }

  let nextId = 0;
  const dispatchLevel = opts.reportDispatch ? 'info' : 'debug';
  const accept = (raw: net.Socket) => {
    // An error before TLS owns the socket (a reset right after accept) must not crash the process.
    raw.on('error', () => {});
    const id = (++nextId).toString(36);
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

  let adminAddress: string | undefined;
  try {
    listening = await listen(config.listen, onSocket);
    // Bound before the drop, like the listeners: a port below 1024 works.
    if (inspector) adminAddress = await inspector.listen();
    if (runAs) {
      dropPrivileges(runAs);
      if (logConfig) checkLogDirectory(path.dirname(logConfig.path), runAs);
      logger.info(`running as user ${runAs.user} (${runAs.uid}), group ${runAs.group} (${runAs.gid})`);
    }
  } catch (err) {
    for (const raw of held ?? []) raw.destroy();
    await listening?.close();
    await inspector?.close();
    subscription.unsubscribe();
    root.stop();
    await recorder?.close();
    process.off('exit', flushOnExit);
    throw err;
  }
  const waiting = held ?? [];
  held = null;
  for (const raw of waiting) accept(raw);
  const bound = listening;
  logger.info(`mxproxy listening on ${bound.addresses.join(', ')}`, {
    servers: [...config.servers.keys()].join(','),
    rules: config.allow.length,
  });

  let stopping: Promise<void> | null = null;
  stop = () => {
    stopping ??= (async () => {
      const closed = bound.close();
      bus.emit({ type: 'SHUTDOWN' }); // through the bus, so the event log has it
      await rootDone;
      await closed;
      await inspector?.close();
      subscription.unsubscribe();
      bus.complete();
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
    addresses: bound.addresses,
    stats,
    stop: () => stop!(),
    stopped,
    root,
    registry,
    recorder,
    adminAddress,
  };
}

/** Refusals at accept, by reason, when the runtime counts them (the connection limits' `refused`). */
function refusedOf(stats: ProxyStats): Record<string, number> | undefined {
  if (!('refused' in stats)) return undefined;
  const refused: unknown = stats.refused;
  if (typeof refused !== 'object' || refused === null) return undefined;
  return Object.fromEntries(Object.entries(refused).filter((e): e is [string, number] => typeof e[1] === 'number'));
}
