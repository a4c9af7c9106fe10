/**
 * The live proxy: listeners, TLS termination, the root actor and the event stream between them.
 *
 *   accept ─► limits (./limits.ts: refused sockets are reset here) ─► ACCEPTED ─► TLS (Node verifies the
 *   client certificate) ─► TLS_OK / TLS_FAILED ─► …
 *
 * Every event enters the actors through one RxJS stream (EventBus), which is where observers and the event
 * log tap in. With `[proxy] user` the process drops root once its files are read and its listeners bound
 * (process/privileges.ts); sockets accepted before that wait.
 *
 * reload() swaps the configuration in force (`live`, one place) and announces it with CONFIG_LOADED; with
 * onRuleChange = "close" it then sends REVOKED to each authorized pair the new rules or CRL no longer admit.
 * stop({ drain: true }) lets linked pairs finish within drainTimeout; stop() closes them at once.
 */
import type net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import { createActor, type Actor, type InspectionEvent, type Observer } from 'xstate';
import { connectionMachine } from '../../machines/connection.js';
import { proxyMachine, type ProxyEvent } from '../../machines/proxy.js';
import { ConnectionRegistry, observeAll, superviseWith } from '../../machines/registry.js';
import { Authorizer } from '../auth/rules.js';
import { systemClock, type Clock, type TimerHandle } from '../clock.js';
import { formatIssue, type AdminConfig, type ProxyConfig } from '../config/types.js';
import type { Inspector } from '../inspect/index.js';
import { EventLogError, TlsMaterialError } from '../errors.js';
import { connMeta, silentLogger, type Logger } from '../log.js';
import { listen, type Listening } from '../net/listeners.js';
import { errorCode, lifecycle$ } from '../net/socketEvents.js';
import { RevocationList } from '../net/revocation.js';
import { loadTlsMaterial } from '../net/tlsMaterial.js';
import { createTlsTerminator, reloadTlsTerminator, rotateTicketKeys, type TlsMaterial, type TlsOkInfo } from '../net/tlsTerminator.js';
import { drainingStop } from '../process/drainingStop.js';
import { pidDirectoryProblem, removePidFile, writePidFile } from '../process/pidFile.js';
import { checkLogDirectory, dropPrivileges, prepareLogDirectory } from '../process/privileges.js';
import { formatHostPort, sourceAddress } from '../shared/address.js';
import { decodeIdentity, type Identity } from '../shared/identity.js';
import type { ConnectionEvent, RevokeReason } from '../shared/events.js';
import { rateLabel } from '../shared/tokenBucket.js';
import { configSnapshot } from '../config/snapshot.js';
import { recordEffects } from '../eventlog/effects.js';
import { EventRecorder } from '../eventlog/recorder.js';
import { workerLogPath } from '../eventlog/workerSeries.js';
import { EventBus } from './bus.js';
import { createEffects, type Pair } from './effects.js';
import { AcceptGate, PairLimits, resolveLimits, type Admission, type ProxyLimits } from './limits.js';
import { RefusalLog, type RefusalCounts } from './refusals.js';
import { keepRestartOnly, readForReload } from './reload.js';

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
  /**
   * XState's inspection observer for the root's actor system, every pair included (`createActor(root,
   * { inspect })`). XState then builds several objects per event and action of every actor; unset, it does none
   * of that.
   */
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
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

export interface StopOptions {
  /**
   * Let linked pairs go on for up to drainTimeout ms (the CLI on SIGTERM) instead of closing them now. A stop()
   * without it while a drain runs closes the rest at once (a second signal).
   */
  drain?: boolean;
}

/** What a reload did: taken (how many pairs it cut, which changes wait for a restart), or rejected and why. */
export type ReloadResult = { ok: true; revoked: number; restartNeeded: string[] } | { ok: false; problems: string[] };

export interface ReloadSource {
  config: ProxyConfig;
  /** Certificates in memory; default: read from the files config.tls names. */
  tls?: TlsMaterial;
}

export interface ProxyHandle {
  /** The admin endpoint's bound address ("host:port"), when config.admin is set. */
  readonly adminAddress: string | undefined;
  /** Bound listener addresses, "host:port" (port 0 in the config is resolved here). */
  readonly addresses: string[];
  stats(): ProxyStats;
  /**
   * Stop accepting, decline pending requests with ERR_SHUTTING_DOWN, close linked pairs (or with `drain`, let
   * them finish within drainTimeout), then resolve. A library stop() closes at once, as it always has.
   */
  stop(opts?: StopOptions): Promise<void>;
  /**
   * Re-read the config file given at start (or take `source`) and put it in force: new rules, servers, limits,
   * timeouts and TLS material for what comes next; established pairs are cut per onRuleChange. A config with
   * problems is rejected and the one in force stays. Logs what it did.
   */
  reload(source?: ReloadSource): ReloadResult;
  /** The configuration in force. */
  config(): ProxyConfig;
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

/** TLS_OK with its fields written out: the machine reads it, and a spread made V8 build it the slow way. */
function tlsOk(id: string, info: TlsOkInfo): ConnectionEvent {
  return {
    type: 'TLS_OK',
    id,
    identity: info.identity ?? '',
    identities: info.identities,
    protocol: info.protocol,
    alpn: info.alpn,
    resumed: info.resumed,
    cert: info.cert,
  };
}

export async function startProxy(opts: ProxyOptions): Promise<ProxyHandle> {
  const logger = opts.logger ?? silentLogger();
  const clock = opts.clock ?? systemClock;
  let startMaterial = opts.tls;
  if (!startMaterial) {
    const tls = opts.config.tls;
    if (!tls) throw new TlsMaterialError('ERR_TLS_SETUP', `${opts.config.file}: no sslCertificate entry in [proxy]`);
    startMaterial = loadTlsMaterial(tls, { crlFile: opts.config.crlFile, warn: (m) => logger.warn(m) });
  }
  // The configuration in force and what is made from it, in one place: everything reads through these
  // accessors at each use, so a reload swaps `live` and nothing else.
  const live = {
    config: opts.config,
    limits: resolveLimits(opts.config),
    authorizer: new Authorizer(opts.config),
    material: startMaterial,
    /** The CRLs' revoked serials: for pairs whose handshake came before the CRL (see certificateProblem). */
    revocations: RevocationList.of(startMaterial),
  };
  const config = () => live.config;
  const limits = () => live.limits;
  const runAs = config().runAs;
  const pidFile = config().pidFile;

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
  const flushOnExit = () => {
    recorder?.flushSync();
    if (pidFile) removePidFile(pidFile);
  };
  if (recorder || pidFile) process.once('exit', flushOnExit);

  const bus = new EventBus();
  const pairs = new Map<string, Pair>();
  const ids = new WeakMap<net.Socket, string>();
  const gate = new AcceptGate(limits, clock);
  const pairLimits = new PairLimits(limits);
  const refusals = new RefusalLog(logger, clock);
  /** Each accepted socket's hold on the accept counters, until its pair has finished. */
  const admissions = new Map<string, Admission>();
  /** Why a pair's client certificate no longer passes (expired, or revoked by the CRL in force). */
  const certificateProblem = (p: Pair): string | undefined => {
    const cert = p.cert;
    if (!cert) return undefined;
    if (cert.notAfter <= clock.now()) return 'has expired';
    // The issuer is asked of the socket only for a listed serial and more than one CA (RevocationList).
    if (live.revocations.revokes(cert.serial, () => p.client?.getPeerX509Certificate())) return 'is revoked by the CRL';
    return undefined;
  };
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
    certificateProblem,
  });

  let configLoadedAt = clock.now();
  let accepted = 0;
  function stats(): ProxyStats {
    return { accepted, active: pairs.size, ...gate.stats(), refused: refusals.totals() };
  }
  // Loaded only when asked for: a proxy without the admin endpoint carries neither prom-client nor Graphviz.
  const admin = config().admin;
  const inspector = admin ? await createInspector(admin) : undefined;
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
      refused: () => stats().refused,
      eventLog: () => (recorder && logConfig ? { path: logConfig.path, ...recorder.stats(), backlogBytes: recorder.backlogBytes() } : undefined),
      listeners: () => listening?.addresses ?? [],
      configFile: () => config().file,
      configLoadedAt: () => configLoadedAt,
    });
  }

  // The runtime holds the pairs; the root's actions reach them through it (machines/registry.ts). With a log,
  // each effect is recorded as it is called: wrapped here, once, so the machines stay pure.
  const actions = recorder ? recordEffects(effects.actions, recorder.effect) : effects.actions;
  const registry = new ConnectionRegistry(connectionMachine.provide({ actions }), {
    observe: observeAll(recorder?.observeChild, inspector?.step),
    finished: (output) => {
      recorder?.output(output.id, output);
      effects.finished(output);
      inspector?.finished(output);
      admissions.get(output.id)?.release();
      admissions.delete(output.id);
      pairLimits.release(output.id);
      recorder?.ended(output.id);
    },
  });
  // XState's inspection is how the log sees every microstep (re-entries and eventless steps too); without a
  // log there is no observer and XState skips building inspection events.
  // XState builds inspection events only when someone observes: the log, an embedder's observer, or both.
  const inspect = [recorder?.inspect, opts.inspect].filter((o) => o !== undefined);
  const root = createActor(
    superviseWith(registry),
    inspect.length === 0 ? {} : { inspect: (e: InspectionEvent) => inspect.forEach((o) => (typeof o === 'function' ? o(e) : o.next?.(e))) },
  );
  // The root has reached its final state (or failed); `stopped` resolves later, once everything is closed.
  let resolveRootDone!: () => void;
  const rootDone = new Promise<void>((r) => (resolveRootDone = r));
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  let rootFailed = false;
  /** Set once the listeners are open; a root that fails before then is stopped right after. */
  let stop: ((opts?: StopOptions) => Promise<void>) | undefined;
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
    inspector?.event(event);
    onEvent?.(event);
    root.send(event);
  });
  // The config in force goes into the stream (and so the event log) before the first connection.
  bus.emit({ type: 'CONFIG_LOADED', reason: 'start', config: configSnapshot(config()) });

  const terminator = createTlsTerminator(live.material, {
    ok(raw, socket, info, cert) {
      const id = ids.get(raw);
      const p = id === undefined ? undefined : pairs.get(id);
      if (!p) {
        socket.destroy();
        // The pair ended while TLS finished (its handshake deadline): the root drops the event as it drops any
        // late one, and the log has it.
        if (id !== undefined) bus.emit(tlsOk(id, info));
        return;
      }
      // From here on the halves close independently: a client's FIN is passed on, and the pair decides
      // when both are done (teardown), so data still on its way to a half-closed client is not lost.
      socket.allowHalfOpen = true;
      p.client = socket;
      p.identity = info.identity;
      p.identities = info.identities;
      p.cert = cert;
      bus.emit(tlsOk(p.id, info));
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
    // An error of the accepted socket before TLS is done is not an event (the TLS outcome reports the failure),
    // but the log keeps it with the pair's records.
    if (recorder) {
      raw.on('error', (err) => {
        const p = pairs.get(id);
        if (p && !p.client) recorder.noted(id, { type: 'CLIENT_ERROR', id, code: errorCode(err), message: err.message }, 'before-tls');
      });
    }
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
      identities: [],
      cert: null,
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
  let adminAddress: string | undefined;
  try {
    listening = await listen(config().listen, onSocket);
    // Bound before the drop, like the listeners: a port below 1024 works.
    if (inspector) adminAddress = await inspector.listen();
    // Before the drop: its directory may be root's to create (it is then given to the account).
    if (pidFile) writePidFile(pidFile, runAs);
    if (runAs) {
      dropPrivileges(runAs);
      if (logConfig) checkLogDirectory(path.dirname(logConfig.path), runAs, 'event log');
      // The log file was opened before the drop (src/cli/start.ts); rotating it needs its directory.
      const logFile = config().log.file;
      if (logFile) checkLogDirectory(path.dirname(logFile.path), runAs, 'log file');
      const problem = pidFile ? pidDirectoryProblem(pidFile, runAs) : undefined;
      if (problem) logger.warn(problem);
      logger.info(`running as user ${runAs.user} (${runAs.uid}), group ${runAs.group} (${runAs.gid})`);
    }
  } catch (err) {
    for (const raw of held ?? []) raw.destroy();
    if (pidFile) removePidFile(pidFile);
    await listening?.close();
    await inspector?.close();
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

  /** Set once stop() has begun: a reload is refused from then on. */
  let stopping = false;
  stop = drainingStop({
    hurry: () => {
      logger.info(`closing the ${pairs.size} remaining pair(s) now`);
      bus.emit({ type: 'SHUTDOWN', now: true });
    },
    run: async (drain, drained) => {
      stopping = true;
      const closed = listening.close();
      stopRotation();
      if (drain) logger.info(`draining: no new connections; linked pairs may go on for up to ${config().drainTimeout} ms`);
      // Through the bus, so the event log has it.
      bus.emit(drain ? { type: 'SHUTDOWN' } : { type: 'SHUTDOWN', now: true });
      await rootDone;
      drained();
      await closed;
      await inspector?.close();
      subscription.unsubscribe();
      bus.complete();
      refusals.close();
      effects.close();
      await recorder?.close();
      process.off('exit', flushOnExit);
      if (pidFile) {
        const problem = removePidFile(pidFile);
        if (problem) logger.warn(problem);
      }
      logger.info('mxproxy stopped');
      resolveStopped();
    },
  });

  /** The pairs past authorization that `next` no longer admits, and why. */
  const toRevoke = (): { p: Pair; reason: RevokeReason; why: string }[] => {
    const out: { p: Pair; reason: RevokeReason; why: string }[] = [];
    for (const p of pairs.values()) {
      if (p.matched === null || p.target === null) continue;
      // Only authorization, connecting and forwarding take REVOKED; a pair already closing is left alone.
      const state = registry.get(p.id)?.getSnapshot().value;
      if (state !== 'authorization' && state !== 'connecting' && state !== 'forwarding') continue;
      const problem = certificateProblem(p);
      if (problem) {
        out.push({ p, reason: 'certificate', why: `the client certificate ${problem}` });
        continue;
      }
      const identities = p.identities.map(decodeIdentity).filter((id): id is Identity => id !== undefined);
      const d = live.authorizer.decide(identities, p.target);
      if (!d.ok) out.push({ p, reason: 'rule', why: d.message });
    }
    return out;
  };

  const reload = (source?: ReloadSource): ReloadResult => {
    const reject = (problems: string[]): ReloadResult => {
      for (const problem of problems) logger.error(`reload rejected: ${problem}`);
      logger.error(`reload rejected: ${problems.length} problem(s); the configuration in force is unchanged`);
      return { ok: false, problems };
    };
    if (stopping) return reject(['the proxy is stopping']);
    let next: ProxyConfig;
    let material: TlsMaterial;
    if (source) {
      next = source.config;
      try {
        material =
          source.tls ?? (next.tls ? loadTlsMaterial(next.tls, { crlFile: next.crlFile, warn: (m) => logger.warn(m) }) : live.material);
      } catch (err) {
        if (!(err instanceof TlsMaterialError)) throw err;
        return reject([`${next.file}: ${err.code}: ${err.message}`]);
      }
    } else {
      const read = readForReload(config().file);
      if (!read.ok) return reject(read.issues.map(formatIssue));
      for (const w of read.warnings) logger.warn(w);
      next = read.config;
      material = read.material;
    }
    const kept = keepRestartOnly(config(), next);
    for (const w of kept.warnings) logger.warn(w);
    let revocations: RevocationList;
    try {
      revocations = RevocationList.of(material);
    } catch (err) {
      return reject([`${next.crlFile ?? next.file}: ${(err as Error).message}`]);
    }
    // The swap: everything made first, then put in force at once.
    const made = { config: kept.config, limits: resolveLimits(kept.config), authorizer: new Authorizer(kept.config), material, revocations };
    try {
      // New handshakes from here on (new ticket key: no session resumes past new material); established
      // sockets keep theirs.
      reloadTlsTerminator(terminator, material);
    } catch (err) {
      return reject([`${next.file}: ERR_TLS_SETUP: ${(err as Error).message}`]);
    }
    Object.assign(live, made);
    configLoadedAt = clock.now();
    const snapshot = configSnapshot(config());
    bus.emit({ type: 'CONFIG_LOADED', reason: 'reload', config: snapshot });
    logger.info(`reload: configuration ${snapshot.hash.slice(0, 12)} in force`, {
      file: config().file,
      servers: [...config().servers.keys()].join(','),
      rules: config().allow.length,
      onRuleChange: config().onRuleChange,
    });
    let revoked = 0;
    if (config().onRuleChange === 'close') {
      for (const { p, reason, why } of toRevoke()) {
        logger.warn(`revoked:${reason}: ${why}; closing the pair`, connMeta(p, { reason: `revoked:${reason}` }));
        bus.emit({ type: 'REVOKED', id: p.id, reason });
        revoked++;
      }
    }
    return { ok: true, revoked, restartNeeded: kept.warnings };
  };
  // The root failed while the listeners were opening.
  if (rootFailed) void stop();

  return {
    addresses: listening.addresses,
    stats,
    adminAddress,
    stop: (stopOpts) => stop!(stopOpts),
    reload,
    config,
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
