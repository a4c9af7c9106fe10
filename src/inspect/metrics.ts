/**
 * /metrics: Prometheus text from prom-client, in a registry of the proxy's own (never prom-client's global
 * one, which an embedding program may use for itself). Fed like the rest of the inspector: per event that
 * enters the actors and per finished pair; gauges that describe the present (pairs by state, the event log's
 * backlog, refusals counted elsewhere) are read when scraped.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { AnyStateMachine } from 'xstate';
import { connectionMachine } from '../../machines/connection.js';
import type { ProxyEvent } from '../../machines/proxy.js';
import { walkMachine } from '../diagram/walk.js';
import type { ConnectionOutput } from '../shared/events.js';
import { forwardedOf } from './live.js';

/** Distinct values a label fed from outside (TLS error codes, refusal reasons) may take; the rest are "other". */
const MAX_LABEL_VALUES = 64;

export interface EventLogFigures {
  /** Bytes written to disk, headers included. */
  bytes: number;
  /** Records written. */
  records: number;
  dropped: number;
  /** Records appended so far. */
  seq: number;
  /** Bytes appended and not yet handed to a write. */
  backlogBytes: number;
}

export interface MetricsSources {
  /** ms since the epoch (the proxy's clock). */
  now: () => number;
  /** Pairs by state path, now. */
  stateCounts: () => Map<string, number>;
  /** Connections refused at accept, by reason, when the runtime counts them (stats().refused). */
  refused: () => Record<string, number> | undefined;
  eventLog: () => EventLogFigures | undefined;
  version: string;
}

/** Where a pair is in its dial and handshake, for the duration histograms. */
interface Timing {
  acceptedAt: number;
  target: string;
  addresses: string[];
  attempt: number;
  dialStart: number;
}

/** The states a pair can be in, each a series of `mxproxy_pairs` even at 0 (a dashboard sees them all). */
const PAIR_STATES: string[] = atomicStates(connectionMachine);

// Node's own metrics describe the process, so there is one set per process however many proxies run in it
// (tests, embedding); collectDefaultMetrics also starts an event-loop monitor that is never stopped.
let processRegistry: Registry | undefined;
export function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/**
 * What the admin endpoint needs of a metric set, whichever process it describes (the proxy's pairs, the
 * forwarder's): the text of /metrics, and the same as prom-client JSON for a cluster primary to add up.
 */
export interface PairMetrics<E, O> {
  event(e: E): void;
  finished(out: O): void;
  text(): Promise<string>;
  /** The set and the process's metrics as `getMetricsAsJSON()` gives them (src/inspect/cluster.ts sums them). */
  json(): Promise<MetricObjectWithValues<MetricValue<string>>[]>;
  readonly contentType: string;
}

/** `value`, or "other" once `kind` has MAX_LABEL_VALUES distinct values (a label must not grow without end). */
export class LabelBound {
  private readonly seen = new Map<string, Set<string>>();

  value(kind: string, value: string): string {
    let set = this.seen.get(kind);
    if (!set) this.seen.set(kind, (set = new Set()));
    if (set.has(value)) return value;
    if (set.size >= MAX_LABEL_VALUES) return 'other';
    set.add(value);
    return value;
  }
}

/** `<prefix>_build_info`: 1, the version in its label (the same in every worker: a cluster shows it once). */
export function buildInfo(prefix: string, version: string, registers: Registry[]): void {
  new Gauge({
    name: `${prefix}_build_info`,
    help: 'Always 1; the version of mxproxy in the label',
    labelNames: ['version'],
    registers,
    aggregator: 'first',
    collect() {
      this.set({ version }, 1);
    },
  });
}

/** `<prefix>_pairs{state}`: pairs in each state now, every state of the machine a series even at 0. */
export function pairsByState(prefix: string, help: string, states: readonly string[], counts: () => Map<string, number>, registers: Registry[]): void {
  new Gauge({
    name: `${prefix}_pairs`,
    help,
    labelNames: ['state'],
    registers,
    collect() {
      const now = counts();
      for (const state of new Set([...states, ...now.keys()])) this.set({ state }, now.get(state) ?? 0);
    },
  });
}

/** The non-final atomic states of a machine, by path. */
export function atomicStates(machine: AnyStateMachine): string[] {
  return walkMachine(machine)
    .states.filter((s) => s.type === 'atomic' && !s.final)
    .map((s) => s.path);
}

/** The event log's figures, read when scraped: `<prefix>_eventlog_…`. */
export function eventLogMetrics(prefix: string, source: () => EventLogFigures | undefined, registers: Registry[]): void {
  const logFigure = (name: string, help: string, pick: (f: EventLogFigures) => number, type: 'counter' | 'gauge'): void => {
    const collect = function (this: Counter | Gauge): void {
      const f = source();
      if (!f) return;
      if (this instanceof Counter) {
        this.reset();
        this.inc(pick(f));
      } else {
        this.set(pick(f));
      }
    };
    if (type === 'counter') new Counter({ name: `${prefix}_${name}`, help, registers, collect });
    else new Gauge({ name: `${prefix}_${name}`, help, registers, collect });
  };
  logFigure('eventlog_written_bytes_total', 'Bytes written to the event log, file headers included', (f) => f.bytes, 'counter');
  logFigure('eventlog_records_total', 'Records written to the event log', (f) => f.records, 'counter');
  logFigure('eventlog_dropped_records_total', 'Event log records lost to a write failure', (f) => f.dropped, 'counter');
  logFigure('eventlog_backlog_records', 'Event log write lag: records recorded and not yet on disk', (f) => Math.max(0, f.seq - f.records - f.dropped), 'gauge');
  logFigure('eventlog_backlog_bytes', 'Event log write lag: bytes queued for the next write', (f) => f.backlogBytes, 'gauge');
}

/** The Prometheus text of a set's registry, then the process's. */
export async function metricsText(registry: Registry): Promise<string> {
  return `${await registry.metrics()}\n${await processMetrics().metrics()}`;
}

export async function metricsJson(registry: Registry): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
  return [...(await registry.getMetricsAsJSON()), ...(await processMetrics().getMetricsAsJSON())];
}

export class ProxyMetrics implements PairMetrics<ProxyEvent, ConnectionOutput> {
  readonly registry = new Registry();
  private readonly timings = new Map<string, Timing>();
  private readonly accepts: Counter;
  private readonly declines: Counter<'code'>;
  private readonly tlsRefusals: Counter<'reason'>;
  private readonly ended: Counter<'reason'>;
  private readonly handshake: Histogram<'phase'>;
  private readonly connect: Histogram<'outcome'>;
  private readonly forwarded: Counter<'direction'>;
  private readonly dialFailures: Counter<'target' | 'address'>;
  private readonly labels = new LabelBound();

  constructor(private readonly sources: MetricsSources) {
    const registers = [this.registry];
    buildInfo('mxproxy', sources.version, registers);
    pairsByState('mxproxy', 'Connection pairs in each state of the connection machine now', PAIR_STATES, sources.stateCounts, registers);
    this.accepts = new Counter({ name: 'mxproxy_accepts_total', help: 'TCP connections accepted (each becomes a pair)', registers });
    this.declines = new Counter({
      name: 'mxproxy_declines_total',
      help: 'Pairs declined with a reply code (ERR_NOT_ALLOWED, ERR_UNKNOWN_TARGET, ...)',
      labelNames: ['code'],
      registers,
    });
    this.tlsRefusals = new Counter({
      name: 'mxproxy_tls_refusals_total',
      help: 'Pairs ended because the TLS handshake failed or the client certificate was refused, by reason',
      labelNames: ['reason'],
      registers,
    });
    const bounded = this.bounded.bind(this);
    new Counter({
      name: 'mxproxy_accept_refusals_total',
      help: 'Connections refused at accept, before TLS, by reason (connection limits)',
      labelNames: ['reason'],
      registers,
      collect() {
        const refused = sources.refused();
        if (!refused) return;
        this.reset();
        for (const [reason, n] of Object.entries(refused)) this.inc({ reason: bounded('refused', reason) }, n);
      },
    });
    this.ended = new Counter({
      name: 'mxproxy_pairs_ended_total',
      help: 'Pairs that reached their final state, by the kind of reason (client-closed, declined, tls-failed, timeout, ...)',
      labelNames: ['reason'],
      registers,
    });
    this.handshake = new Histogram({
      name: 'mxproxy_handshake_duration_seconds',
      help: 'From the TCP accept to the end of the TLS handshake (phase="tls") and to a complete request frame (phase="request")',
      labelNames: ['phase'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.connect = new Histogram({
      name: 'mxproxy_connect_duration_seconds',
      help: 'One dial of one backend address, by outcome (connected, failed, timeout)',
      labelNames: ['outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.forwarded = new Counter({
      name: 'mxproxy_forwarded_bytes_total',
      help: 'Bytes forwarded by pairs that have ended: up = client to server, down = server to client',
      labelNames: ['direction'],
      registers,
    });
    this.dialFailures = new Counter({
      name: 'mxproxy_dial_failures_total',
      help: 'Backend dials that failed or timed out, by target (server name) and address',
      labelNames: ['target', 'address'],
      registers,
    });
    eventLogMetrics('mxproxy', sources.eventLog, registers);
    this.forwarded.inc({ direction: 'up' }, 0);
    this.forwarded.inc({ direction: 'down' }, 0);
  }

  /** Every event as it enters the root. */
  event(e: ProxyEvent): void {
    switch (e.type) {
      case 'ACCEPTED':
        this.accepts.inc();
        this.timings.set(e.id, { acceptedAt: this.sources.now(), target: '', addresses: [], attempt: 0, dialStart: 0 });
        return;
      case 'TLS_OK': {
        const t = this.timings.get(e.id);
        if (t) this.handshake.observe({ phase: 'tls' }, (this.sources.now() - t.acceptedAt) / 1000);
        return;
      }
      case 'REQUEST': {
        const t = this.timings.get(e.id);
        if (!t) return;
        this.handshake.observe({ phase: 'request' }, (this.sources.now() - t.acceptedAt) / 1000);
        t.target = e.target;
        return;
      }
      case 'AUTHORIZED': {
        const t = this.timings.get(e.id);
        if (!t) return;
        t.addresses = e.addresses;
        t.attempt = 0;
        t.dialStart = this.sources.now();
        return;
      }
      case 'BACKEND_CONNECTED':
        this.dialed(e.id, e.attempt, 'connected', undefined);
        return;
      case 'BACKEND_FAILED':
        this.dialed(e.id, e.attempt, 'failed', e.address);
        return;
      case 'CONNECT_TIMEOUT':
        this.dialed(e.id, e.attempt, 'timeout', undefined);
        return;
    }
  }

  /** A pair has ended: its reason and the bytes it forwarded. */
  finished(out: ConnectionOutput): void {
    this.timings.delete(out.id);
    const reason = out.reason ?? 'unknown';
    const colon = reason.indexOf(':');
    this.ended.inc({ reason: this.bounded('ended', colon < 0 ? reason : reason.slice(0, colon)) });
    if (reason.startsWith('declined:')) this.declines.inc({ code: this.bounded('code', out.code ?? reason.slice(colon + 1)) });
    if (reason.startsWith('tls-failed:')) this.tlsRefusals.inc({ reason: this.bounded('tls', reason.slice(colon + 1)) });
    const bytes = forwardedOf(out);
    if (bytes.up > 0) this.forwarded.inc({ direction: 'up' }, bytes.up);
    if (bytes.down > 0) this.forwarded.inc({ direction: 'down' }, bytes.down);
  }

  /** The Prometheus text exposition: the proxy's metrics, then the process's. */
  text(): Promise<string> {
    return metricsText(this.registry);
  }

  json(): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
    return metricsJson(this.registry);
  }

  readonly contentType = Registry.PROMETHEUS_CONTENT_TYPE;

  /** One dial attempt ended; a failure starts the next attempt (the machine dials the next address at once). */
  private dialed(id: string, attempt: number, outcome: 'connected' | 'failed' | 'timeout', address: string | undefined): void {
    const t = this.timings.get(id);
    // Only the current attempt: a late report of an abandoned dial is not a second measurement.
    if (!t || t.dialStart === 0 || attempt !== t.attempt) return;
    const now = this.sources.now();
    this.connect.observe({ outcome }, (now - t.dialStart) / 1000);
    if (outcome === 'connected') {
      t.dialStart = 0;
      return;
    }
    // The target is a configured server's name once authorized, so these labels are bounded by the config.
    this.dialFailures.inc({ target: t.target, address: address ?? t.addresses[attempt] ?? 'unknown' });
    t.attempt = attempt + 1;
    t.dialStart = t.attempt < t.addresses.length ? now : 0;
  }

  private bounded(kind: string, value: string): string {
    return this.labels.value(kind, value);
  }
}
