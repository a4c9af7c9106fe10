/**
 * /metrics: Prometheus text from prom-client, in a registry of the proxy's own (never prom-client's global
 * one, which an embedding program may use for itself). Fed like the rest of the inspector: per event that
 * enters the actors and per finished pair; gauges that describe the present (pairs by state, the event log's
 * backlog, refusals counted elsewhere) are read when scraped.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
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
const PAIR_STATES: string[] = walkMachine(connectionMachine)
  .states.filter((s) => s.type === 'atomic' && !s.final)
  .map((s) => s.path);

// Node's own metrics describe the process, so there is one set per process however many proxies run in it
// (tests, embedding); collectDefaultMetrics also starts an event-loop monitor that is never stopped.
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

export class ProxyMetrics {
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
  private readonly seen = new Map<string, Set<string>>();

  constructor(private readonly sources: MetricsSources) {
    const registers = [this.registry];
    new Gauge({
      name: 'mxproxy_build_info',
      help: 'Always 1; the version of mxproxy in the label',
      labelNames: ['version'],
      registers,
      collect() {
        this.set({ version: sources.version }, 1);
      },
    });
    new Gauge({
      name: 'mxproxy_pairs',
      help: 'Connection pairs in each state of the connection machine now',
      labelNames: ['state'],
      registers,
      collect() {
        const counts = sources.stateCounts();
        for (const state of new Set([...PAIR_STATES, ...counts.keys()])) this.set({ state }, counts.get(state) ?? 0);
      },
    });
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
    const logFigure = (name: string, help: string, pick: (f: EventLogFigures) => number, type: 'counter' | 'gauge'): void => {
      const collect = function (this: Counter | Gauge): void {
        const f = sources.eventLog();
        if (!f) return;
        if (this instanceof Counter) {
          this.reset();
          this.inc(pick(f));
        } else {
          this.set(pick(f));
        }
      };
      if (type === 'counter') new Counter({ name, help, registers, collect });
      else new Gauge({ name, help, registers, collect });
    };
    logFigure('mxproxy_eventlog_written_bytes_total', 'Bytes written to the event log, file headers included', (f) => f.bytes, 'counter');
    logFigure('mxproxy_eventlog_records_total', 'Records written to the event log', (f) => f.records, 'counter');
    logFigure('mxproxy_eventlog_dropped_records_total', 'Event log records lost to a write failure', (f) => f.dropped, 'counter');
    logFigure(
      'mxproxy_eventlog_backlog_records',
      'Event log write lag: records recorded and not yet on disk',
      (f) => Math.max(0, f.seq - f.records - f.dropped),
      'gauge',
    );
    logFigure('mxproxy_eventlog_backlog_bytes', 'Event log write lag: bytes queued for the next write', (f) => f.backlogBytes, 'gauge');
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
  async text(): Promise<string> {
    return `${await this.registry.metrics()}\n${await processMetrics().metrics()}`;
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

  /** `value`, or "other" once `kind` has MAX_LABEL_VALUES distinct values (a label must not grow without end). */
  private bounded(kind: string, value: string): string {
    let set = this.seen.get(kind);
    if (!set) this.seen.set(kind, (set = new Set()));
    if (set.has(value)) return value;
    if (set.size >= MAX_LABEL_VALUES) return 'other';
    set.add(value);
    return value;
  }
}
