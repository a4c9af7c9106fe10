/**
 * `mxproxy forward`: unmodified TCP clients (psql, redis-cli, a SCADA client) connect to a local port; each
 * connection gets its own mxproxy/1 connection to the named target and the two are linked. With the proxy
 * switched off (mxProxy = "none") it connects straight to the target's own addresses instead.
 *
 * Built like the proxy's runtime (src/proxy/runtime.ts): every pair is an actor (machines/forward.ts) under one
 * root (machines/forwarder.ts); every input — accepts, socket lifecycle, dial outcomes, the proxy's reply,
 * timers from the injected clock — enters through one RxJS stream (EventBus), which the event log taps; the
 * machine decides dial, failover and teardown, src/forward/effects.ts carries them out.
 *
 * reload() (SIGHUP) puts a new [client] section in force: new forwards start listening, removed ones stop
 * listening (their open pairs go on until they end), a changed target, direct addresses, mxProxy, certificate or
 * connectTimeout applies to the next connection. A forward is the same forward while its listen address is.
 * stop({ drain: true }) lets linked pairs finish within drainTimeout; stop() resets them at once.
 *
 * With `[client] adminListen` it serves the admin endpoint (src/inspect, loaded only then): the forward
 * machine's diagram with its pairs, /metrics (`mxforward_…`) and /status, fed like the proxy's.
 */
import net from 'node:net';
import { createActor, type Actor } from 'xstate';
import { forwardMachine } from '../../machines/forward.js';
import { ForwardRegistry, forwarderMachine, superviseForwardsWith, type ForwarderEvent } from '../../machines/forwarder.js';
import { observeAll } from '../../machines/registry.js';
import { systemClock, type Clock } from '../clock.js';
import { formatIssue, type AdminConfig, type ClientConfig, type ForwardRule } from '../config/index.js';
import { TlsMaterialError } from '../errors.js';
import { recordEffects } from '../eventlog/effects.js';
import { EventRecorder } from '../eventlog/recorder.js';
import type { ForwardInspector } from '../inspect/index.js';
import type { Logger } from '../log.js';
import { lifecycle$ } from '../net/socketEvents.js';
import type { TlsMaterial } from '../net/tlsTerminator.js';
import { EventBus } from '../proxy/bus.js';
import { drainingStop } from '../process/drainingStop.js';
import { addressKey, formatHostPort, type HostPort } from '../shared/address.js';
import { TlsSessionCache } from '../client/sessionCache.js';
import { createForwardEffects, type ForwardPair, type ForwardStats } from './effects.js';
import { readClientForReload } from './reload.js';

export interface ForwarderOptions {
  config: ClientConfig;
  /** Client certificate, key and CA; required unless the proxy is off. */
  tls: TlsMaterial | undefined;
  logger: Logger;
  /** ms a closing pair may take to close by itself before both sockets are destroyed. Default 2000. */
  graceMs?: number;
  clock?: Clock;
  /** Sees every event in the order the actors receive it (tests, observers). */
  onEvent?: (event: ForwarderEvent) => void;
  /** TLS sessions to resume with; default a cache of its own, for the forwarder's lifetime. */
  sessionCache?: TlsSessionCache;
}

export interface ForwarderStats {
  /** Local connections accepted, currently open, linked, and refused (declined by the proxy or unreachable). */
  accepted: number;
  active: number;
  linked: number;
  refused: number;
}

export interface ForwarderReloadSource {
  config: ClientConfig;
  /** Client certificate, key and CA; required unless the proxy is off. */
  tls: TlsMaterial | undefined;
}

export type ForwarderReloadResult =
  | { ok: true; added: number; removed: number; changed: number }
  | { ok: false; problems: string[] };

export interface Forwarder {
  /** The bound local addresses, in config order (port 0 in the config resolves here); a reload changes them. */
  readonly addresses: { target: string; address: HostPort }[];
  stats(): ForwarderStats;
  /**
   * Stops listening; resets connections not yet linked, and linked ones too unless `drain` (then they may go on
   * for up to drainTimeout ms). A stop() without drain while a drain runs resets the rest at once.
   */
  stop(opts?: { drain?: boolean }): Promise<void>;
  /** Re-reads the config file given at start (or takes `source`); a config with problems is rejected, logged. */
  reload(source?: ForwarderReloadSource): Promise<ForwarderReloadResult>;
  /** The root supervisor actor (inspection); each pair is in its system under its id. */
  readonly root: Actor<typeof forwarderMachine>;
  /** The event log, when config.eventLog is set. */
  readonly recorder: EventRecorder | undefined;
  /** The admin endpoint's bound address ("host:port"), when config.admin is set. */
  readonly adminAddress: string | undefined;
}

function listen(server: net.Server, at: HostPort): Promise<HostPort> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: at.host, port: at.port }, () => {
      server.off('error', reject);
      const a = server.address() as net.AddressInfo;
      resolve({ host: a.address, port: a.port });
    });
  });
}

/** One forward's listener; `rule` is read at each accept, so a reload changes what the next connection gets. */
interface Listener {
  rule: ForwardRule;
  server: net.Server;
  bound: HostPort;
}

/**
 * Forwards by listen address: what a reload matches. Port 0 (any free port) cannot be matched by address, so
 * such forwards are matched by their order among those of the same host.
 */
function forwardKeys(forwards: readonly ForwardRule[]): string[] {
  const seen = new Map<string, number>();
  return forwards.map((f) => {
    const key = addressKey(f.listen);
    if (f.listen.port !== 0) return key;
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    return `${key}#${n}`;
  });
}

const sameRule = (a: ForwardRule, b: ForwardRule): boolean =>
  a.target === b.target && a.direct.map(formatHostPort).join(' ') === b.direct.map(formatHostPort).join(' ');

export async function startForwarder(opts: ForwarderOptions): Promise<Forwarder> {
  const { logger } = opts;
  const clock = opts.clock ?? systemClock;
  // The configuration in force: read at each accept and each dial, so a reload swaps this and nothing else.
  const live = { config: opts.config, tls: opts.tls };
  const config = opts.config;
  if (config.proxy && !opts.tls) {
    throw new TlsMaterialError('ERR_TLS_SETUP', 'the forwarder needs a client certificate to use the proxy (sslCertificate)');
  }

  // The event log opens before the first event can exist; a write failure later only costs the log.
  const logConfig = config.eventLog;
  const recorder = logConfig
    ? await EventRecorder.open({
        ...logConfig,
        clock,
        machine: 'forwarder',
        onError: (err) => logger.error(`event log ${logConfig.path}: ${err.message}; recording stopped, the forwarder goes on`),
      })
    : undefined;
  if (logConfig) {
    logger[logConfig.level === 'payload' ? 'warn' : 'info'](
      `event log ${logConfig.path} at level ${logConfig.level}` +
        (logConfig.level === 'payload' ? ': forwarded bytes are written to disk, for debugging only' : ''),
    );
  }
  const flushOnExit = () => recorder?.flushSync();
  if (recorder) process.once('exit', flushOnExit);

  const bus = new EventBus<ForwarderEvent>();
  const pairs = new Map<string, ForwardPair>();
  const counts: ForwardStats = { accepted: 0, linked: 0, refused: 0 };
  const effects = createForwardEffects({
    pairs,
    bus,
    tls: () => live.tls,
    // One cache for the forwarder's life (used only when it dials the proxy): every pair after the first resumes.
    // Nothing here reads the proxy's certificate on a resumed connection: sessions without it are cheaper to offer.
    sessionCache: opts.sessionCache ?? new TlsSessionCache({ keepPeerCertificate: false }),
    clock,
    logger,
    stats: counts,
    connectTimeout: () => live.config.connectTimeout,
    drainTimeout: () => live.config.drainTimeout,
    teardownMs: opts.graceMs ?? 2000,
    onChunk: recorder && recorder.level !== 'lifecycle' ? (id, d, chunk) => recorder.chunk(id, d, chunk) : undefined,
  });
  // Loaded only when asked for: a forwarder without the admin endpoint carries neither prom-client nor Graphviz.
  const startedAt = clock.now();
  let configLoadedAt = startedAt;
  /** In config order; a reload rebuilds it. */
  let listeners = new Map<string, Listener>();
  const admin = config.admin;
  const inspector = admin ? await createInspector(admin) : undefined;
  async function createInspector(admin: AdminConfig): Promise<ForwardInspector> {
    const { ForwardInspector } = await import('../inspect/index.js');
    return new ForwardInspector({
      admin,
      logger,
      now: () => clock.now(),
      // The local client's socket: what it sent (up) and what it was sent (down), as a pair's output counts.
      bytesOf: (id) => {
        const local = pairs.get(id)?.local;
        return local ? { up: local.bytesRead, down: local.bytesWritten } : undefined;
      },
      stats: () => ({ ...counts, active: pairs.size }),
      eventLog: () => (recorder && logConfig ? { path: logConfig.path, ...recorder.stats(), backlogBytes: recorder.backlogBytes() } : undefined),
      listeners: () => [...listeners.values()].map((l) => formatHostPort(l.bound)),
      forwards: () => [...listeners.values()].map((l) => ({ listen: formatHostPort(l.bound), target: l.rule.target, via: viaOf(l.rule) })),
      configFile: () => live.config.file,
      configLoadedAt: () => configLoadedAt,
    });
  }

  // With a log, each effect is recorded as it is called, and every microstep seen through XState's inspection
  // (as in the proxy's runtime).
  const actions = recorder ? recordEffects(effects.actions, recorder.effect) : effects.actions;
  const registry = new ForwardRegistry(forwardMachine.provide({ actions }), {
    observe: observeAll(recorder?.observeChild, inspector?.step),
    finished: (output) => {
      recorder?.output(output.id, output);
      effects.finished(output);
      inspector?.finished(output);
    },
  });
  const root = createActor(superviseForwardsWith(registry), recorder ? { inspect: recorder.inspect } : {});
  let resolveRootDone!: () => void;
  const rootDone = new Promise<void>((r) => (resolveRootDone = r));
  const observeRoot = recorder?.observeRoot;
  root.subscribe({
    next: (snapshot) => {
      observeRoot?.(snapshot);
      if (snapshot.status === 'done') resolveRootDone();
    },
    error: (err) => {
      // Effects are guarded, so this is a bug in a machine: say so, and let stop() finish.
      logger.error(`root actor failed: ${(err as Error).stack ?? String(err)}`);
      resolveRootDone();
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

  const viaOf = (rule: ForwardRule): string => {
    const proxy = live.config.proxy;
    return proxy ? `proxy ${formatHostPort(proxy)}` : `direct ${rule.direct.map(formatHostPort).join(' ')}`;
  };
  let nextId = 0;
  const onConnection = (listener: Listener) => (socket: net.Socket) => {
    // The client may speak first: its bytes wait in the kernel until the upstream is linked.
    socket.pause();
    socket.setNoDelay(true);
    const { rule } = listener;
    const proxy = live.config.proxy;
    const via = viaOf(rule);
    const local = formatHostPort(listener.bound);
    const id = (++nextId).toString(36);
    const peer = formatHostPort({ host: socket.remoteAddress ?? '?', port: socket.remotePort ?? 0 });
    counts.accepted++;
    pairs.set(id, {
      id,
      peer,
      target: rule.target,
      via,
      local: socket,
      upstream: null,
      dial: null,
      stopReading: null,
      timers: {},
      acceptedAt: clock.now(),
      linked: false,
    });
    const addresses = proxy ? [formatHostPort(proxy)] : rule.direct.map(formatHostPort);
    bus.emit({ type: 'ACCEPTED', id, peer, local, target: rule.target, proxy: proxy ? formatHostPort(proxy) : null, addresses });
    bus.attach(lifecycle$(socket, 'client', id));
  };

  /** Listeners a reload removed, still closing (their servers wait for their open sockets). */
  const retired: Promise<void>[] = [];
  /** Opens the listeners of `rules` (keys alongside); on a failure closes those it opened and throws. */
  const open = async (rules: { key: string; rule: ForwardRule }[]): Promise<Map<string, Listener>> => {
    const opened = new Map<string, Listener>();
    try {
      for (const { key, rule } of rules) {
        const server = net.createServer({ allowHalfOpen: true, noDelay: true });
        const listener: Listener = { rule, server, bound: rule.listen };
        opened.set(key, listener);
        listener.bound = await listen(server, rule.listen);
      }
    } catch (err) {
      for (const l of opened.values()) l.server.close();
      throw err;
    }
    for (const l of opened.values()) l.server.on('connection', onConnection(l));
    return opened;
  };
  const announce = (l: Listener) => logger.info(`forwarding ${formatHostPort(l.bound)} → ${l.rule.target} via ${viaOf(l.rule)}`);
  let adminAddress: string | undefined;
  try {
    const keys = forwardKeys(config.forwards);
    listeners = await open(config.forwards.map((rule, i) => ({ key: keys[i]!, rule })));
    if (inspector) adminAddress = await inspector.listen();
    for (const l of listeners.values()) announce(l);
  } catch (err) {
    for (const l of listeners.values()) l.server.close();
    await inspector?.close();
    subscription.unsubscribe();
    root.stop();
    await recorder?.close();
    process.off('exit', flushOnExit);
    throw err;
  }
  const warnProxyOff = () => {
    if (!live.config.proxy) {
      logger.warn('mxProxy is "none": the proxy is switched off, connecting straight to each target (no TLS, no authorization)');
    }
  };
  warnProxyOff();

  let stopping = false;
  const stop = drainingStop({
    hurry: () => {
      logger.info(`resetting the ${pairs.size} remaining connection(s) now`);
      bus.emit({ type: 'SHUTDOWN', now: true });
    },
    run: async (drain, drained) => {
      stopping = true;
      const closing = [...listeners.values()].map((l) => new Promise<void>((r) => l.server.close(() => r())));
      if (drain) logger.info(`draining: no new connections; linked ones may go on for up to ${live.config.drainTimeout} ms`);
      // Through the bus, so the event log has it; the root stops when every pair has closed.
      bus.emit(drain ? { type: 'SHUTDOWN' } : { type: 'SHUTDOWN', now: true });
      await rootDone;
      drained();
      await Promise.all([...closing, ...retired]);
      await inspector?.close();
      subscription.unsubscribe();
      bus.complete();
      await recorder?.close();
      process.off('exit', flushOnExit);
    },
  });

  const reload = async (source?: ForwarderReloadSource): Promise<ForwarderReloadResult> => {
    const reject = (problems: string[]): ForwarderReloadResult => {
      for (const problem of problems) logger.error(`reload rejected: ${problem}`);
      logger.error(`reload rejected: ${problems.length} problem(s); the configuration in force is unchanged`);
      return { ok: false, problems };
    };
    if (stopping) return reject(['the forwarder is stopping']);
    let next: ForwarderReloadSource;
    if (source) {
      next = source;
    } else {
      const read = readClientForReload(live.config.file);
      if (!read.ok) return reject(read.issues.map(formatIssue));
      next = read;
    }
    if (next.config.proxy && !next.tls) return reject([`${next.config.file}: the forwarder needs a client certificate to use the proxy (sslCertificate)`]);
    const was = live.config.eventLog;
    const now = next.config.eventLog;
    if ((was ? `${was.path} ${was.level} ${was.maxBytes} ${was.files}` : 'none') !== (now ? `${now.path} ${now.level} ${now.maxBytes} ${now.files}` : 'none')) {
      logger.warn(`reload: eventLog changed (${was?.path ?? 'none'} → ${now?.path ?? 'none'}): that needs a restart; the forwarder keeps ${was?.path ?? 'none'} until then`);
    }
    const keys = forwardKeys(next.config.forwards);
    const wanted = new Map(next.config.forwards.map((rule, i) => [keys[i]!, rule]));
    let added: Map<string, Listener>;
    try {
      added = await open([...wanted].filter(([key]) => !listeners.has(key)).map(([key, rule]) => ({ key, rule })));
    } catch (err) {
      return reject([(err as Error).message]);
    }
    if (stopping) {
      for (const l of added.values()) l.server.close();
      return reject(['the forwarder is stopping']);
    }
    const adminWas = live.config.admin;
    const adminNow = next.config.admin;
    const adminKey = (a: AdminConfig | undefined) => (a ? `${formatHostPort(a.listen)} ${a.token ?? ''}` : 'none');
    if (adminKey(adminWas) !== adminKey(adminNow)) {
      logger.warn('reload: adminListen or adminToken changed: that needs a restart; the admin endpoint stays as it is until then');
    }
    // The swap: the config and certificate in force, then the listeners in the new config's order.
    live.config = { ...next.config, eventLog: was, admin: adminWas };
    configLoadedAt = clock.now();
    live.tls = next.tls;
    let changed = 0;
    const rebuilt = new Map<string, Listener>();
    for (const [key, rule] of wanted) {
      const kept = listeners.get(key);
      const l = kept ?? added.get(key)!;
      if (kept && !sameRule(kept.rule, rule)) {
        changed++;
        logger.info(`reload: ${formatHostPort(kept.bound)} now forwards to ${rule.target} via ${viaOf(rule)} (open connections keep theirs)`);
      }
      l.rule = rule;
      rebuilt.set(key, l);
    }
    let removed = 0;
    for (const [key, l] of listeners) {
      if (wanted.has(key)) continue;
      removed++;
      logger.info(`reload: stopped listening on ${formatHostPort(l.bound)} (${l.rule.target}); its open connections go on`);
      retired.push(new Promise<void>((r) => l.server.close(() => r())));
    }
    listeners = rebuilt;
    for (const l of added.values()) announce(l);
    warnProxyOff();
    logger.info(`reload: configuration in force, ${listeners.size} forward(s): ${added.size} added, ${removed} removed, ${changed} changed`);
    return { ok: true, added: added.size, removed, changed };
  };

  return {
    get addresses() {
      return [...listeners.values()].map((l) => ({ target: l.rule.target, address: l.bound }));
    },
    stats: () => ({ ...counts, active: pairs.size }),
    stop,
    reload,
    root,
    recorder,
    adminAddress,
  };
}
