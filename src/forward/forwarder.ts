/**
 * `mxproxy forward`: unmodified TCP clients (psql, redis-cli, a SCADA client) connect to a local port; each
 * connection gets its own mxproxy/1 connection to the named target and the two are linked. With the proxy
 * switched off (mxProxy = "none") it connects straight to the target's own addresses instead.
 *
 * Built like the proxy's runtime (src/proxy/runtime.ts): every pair is an actor (machines/forward.ts) under one
 * root (machines/forwarder.ts); every input — accepts, socket lifecycle, dial outcomes, the proxy's reply,
 * timers from the injected clock — enters through one RxJS stream (EventBus), which the event log taps; the
 * machine decides dial, failover and teardown, src/forward/effects.ts carries them out.
 */
import net from 'node:net';
import { createActor, type Actor } from 'xstate';
import { forwardMachine } from '../../machines/forward.js';
import { ForwardRegistry, forwarderMachine, superviseForwardsWith, type ForwarderEvent } from '../../machines/forwarder.js';
import { systemClock, type Clock } from '../clock.js';
import type { ClientConfig, ForwardRule } from '../config/index.js';
import { TlsMaterialError } from '../errors.js';
import { recordEffects } from '../eventlog/effects.js';
import { EventRecorder } from '../eventlog/recorder.js';
import type { Logger } from '../log.js';
import { lifecycle$ } from '../net/socketEvents.js';
import type { TlsMaterial } from '../net/tlsTerminator.js';
import { EventBus } from '../proxy/bus.js';
import { formatHostPort, type HostPort } from '../shared/address.js';
import { createForwardEffects, type ForwardPair, type ForwardStats } from './effects.js';

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
}

export interface ForwarderStats {
  /** Local connections accepted, currently open, linked, and refused (declined by the proxy or unreachable). */
  accepted: number;
  active: number;
  linked: number;
  refused: number;
}

export interface Forwarder {
  /** The bound local addresses, in config order (port 0 in the config resolves here). */
  addresses: { target: string; address: HostPort }[];
  stats(): ForwarderStats;
  /** Stops listening and destroys open connections. */
  stop(): Promise<void>;
  /** The root supervisor actor (inspection); each pair is in its system under its id. */
  readonly root: Actor<typeof forwarderMachine>;
  /** The event log, when config.eventLog is set. */
  readonly recorder: EventRecorder | undefined;
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

export async function startForwarder(opts: ForwarderOptions): Promise<Forwarder> {
  const { config, logger } = opts;
  const clock = opts.clock ?? systemClock;
  const proxy = config.proxy;
  if (proxy && !opts.tls) {
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
    tls: opts.tls,
    clock,
    logger,
    stats: counts,
    connectTimeout: config.connectTimeout,
    teardownMs: opts.graceMs ?? 2000,
    onChunk: recorder && recorder.level !== 'lifecycle' ? (id, d, chunk) => recorder.chunk(id, d, chunk) : undefined,
  });
  // With a log, each effect is recorded as it is called, and every microstep seen through XState's inspection
  // (as in the proxy's runtime).
  const actions = recorder ? recordEffects(effects.actions, recorder.effect) : effects.actions;
  const registry = new ForwardRegistry(forwardMachine.provide({ actions }), {
    observe: recorder?.observeChild,
    finished: (output) => {
      recorder?.output(output.id, output);
      effects.finished(output);
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
    onEvent?.(event);
    root.send(event);
  });

  let nextId = 0;
  const onConnection = (rule: ForwardRule, via: string, local: string) => (socket: net.Socket) => {
    // The client may speak first: its bytes wait in the kernel until the upstream is linked.
    socket.pause();
    socket.setNoDelay(true);
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

  const servers: net.Server[] = [];
  const addresses: Forwarder['addresses'] = [];
  try {
    for (const rule of config.forwards) {
      const server = net.createServer({ allowHalfOpen: true, noDelay: true });
      servers.push(server);
      const via = proxy ? `proxy ${formatHostPort(proxy)}` : `direct ${rule.direct.map(formatHostPort).join(' ')}`;
      const bound = await listen(server, rule.listen);
      server.on('connection', onConnection(rule, via, formatHostPort(bound)));
      addresses.push({ target: rule.target, address: bound });
      logger.info(`forwarding ${formatHostPort(bound)} → ${rule.target} via ${via}`);
    }
  } catch (err) {
    for (const s of servers) s.close();
    subscription.unsubscribe();
    root.stop();
    await recorder?.close();
    process.off('exit', flushOnExit);
    throw err;
  }
  if (!proxy) {
    logger.warn('mxProxy is "none": the proxy is switched off, connecting straight to each target (no TLS, no authorization)');
  }

  let stopping: Promise<void> | undefined;
  return {
    addresses,
    stats: () => ({ ...counts, active: pairs.size }),
    stop: () =>
      (stopping ??= (async () => {
        const closing = servers.map((s) => new Promise<void>((r) => s.close(() => r())));
        // Through the bus, so the event log has it: every pair aborts, the root stops when all have closed.
        bus.emit({ type: 'SHUTDOWN' });
        await rootDone;
        await Promise.all(closing);
        subscription.unsubscribe();
        bus.complete();
        await recorder?.close();
        process.off('exit', flushOnExit);
      })()),
    root,
    recorder,
  };
}
