/**
 * /metrics of `mxproxy forward` ([client] adminListen): the forwarder's figures under the `mxforward_` prefix,
 * so that a host running both a proxy and a forwarder (or one Prometheus scraping both) never mixes them up.
 * Fed like the proxy's (./metrics.ts): per event that enters the forwarder's actors and per finished pair,
 * never per forwarded chunk; pairs by state and the event log's figures are read when scraped.
 */
import { Counter, Histogram, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { forwardMachine } from '../../machines/forward.js';
import type { ForwarderEvent } from '../../machines/forwarder.js';
import type { ForwardOutput } from '../shared/events.js';
import {
  atomicStates,
  buildInfo,
  eventLogMetrics,
  LabelBound,
  metricsJson,
  metricsText,
  pairsByState,
  type EventLogFigures,
  type PairMetrics,
} from './metrics.js';

export interface ForwardMetricsSources {
  /** ms since the epoch (the forwarder's clock). */
  now: () => number;
  /** Pairs by state path of the forward machine, now. */
  stateCounts: () => Map<string, number>;
  eventLog: () => EventLogFigures | undefined;
  version: string;
}

/** Where a pair is in reaching its upstream. */
interface Timing {
  acceptedAt: number;
  target: string;
  /** Through the proxy: linked on its reply, not on the connect. */
  viaProxy: boolean;
  /** Addresses to try: the proxy, or the target's own. */
  addresses: number;
  attempt: number;
  linked: boolean;
  /** Start of the current dial attempt; 0 once it has ended. */
  dialStart: number;
}

const PAIR_STATES: string[] = atomicStates(forwardMachine);

const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class ForwardMetrics implements PairMetrics<ForwarderEvent, ForwardOutput> {
  readonly registry = new Registry();
  readonly contentType = Registry.PROMETHEUS_CONTENT_TYPE;
  private readonly timings = new Map<string, Timing>();
  private readonly labels = new LabelBound();
  private readonly accepts: Counter;
  private readonly connect: Histogram<'outcome'>;
  private readonly link: Histogram;
  private readonly dialFailures: Counter<'target' | 'code'>;
  private readonly declines: Counter<'code'>;
  private readonly ended: Counter<'reason'>;
  private readonly forwarded: Counter<'direction'>;

  constructor(private readonly sources: ForwardMetricsSources) {
    const registers = [this.registry];
    buildInfo('mxforward', sources.version, registers);
    pairsByState('mxforward', 'Forwarded pairs in each state of the forward machine now', PAIR_STATES, sources.stateCounts, registers);
    this.accepts = new Counter({ name: 'mxforward_accepts_total', help: 'Local connections accepted on the forward ports (each becomes a pair)', registers });
    this.connect = new Histogram({
      name: 'mxforward_connect_duration_seconds',
      help: 'One dial of the upstream (the proxy: TCP and TLS; with mxProxy "none": one address of the target), by outcome (connected, failed, timeout)',
      labelNames: ['outcome'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.link = new Histogram({
      name: 'mxforward_link_duration_seconds',
      help: "From the local accept until the pair forwards (through the proxy: its reply included)",
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.dialFailures = new Counter({
      name: 'mxforward_dial_failures_total',
      help: 'Dials of the upstream that failed or timed out, by forward target and error code (ECONNREFUSED, ETIMEDOUT, a TLS verdict, ...)',
      labelNames: ['target', 'code'],
      registers,
    });
    this.declines = new Counter({
      name: 'mxforward_declines_total',
      help: 'Pairs the proxy declined, by reply code (ERR_NOT_ALLOWED, ERR_UNKNOWN_TARGET, ...)',
      labelNames: ['code'],
      registers,
    });
    this.ended = new Counter({
      name: 'mxforward_pairs_ended_total',
      help: 'Pairs that reached their final state, by the kind of reason (client-closed, server-closed, declined, unreachable, shutdown, ...)',
      labelNames: ['reason'],
      registers,
    });
    this.forwarded = new Counter({
      name: 'mxforward_forwarded_bytes_total',
      help: 'Bytes forwarded by pairs that have ended: up = local client to target, down = target to local client',
      labelNames: ['direction'],
      registers,
    });
    eventLogMetrics('mxforward', sources.eventLog, registers);
    this.forwarded.inc({ direction: 'up' }, 0);
    this.forwarded.inc({ direction: 'down' }, 0);
  }

  event(e: ForwarderEvent): void {
    switch (e.type) {
      case 'ACCEPTED': {
        this.accepts.inc();
        const now = this.sources.now();
        this.timings.set(e.id, { acceptedAt: now, target: e.target, viaProxy: e.proxy !== null, addresses: e.addresses.length, attempt: 0, linked: false, dialStart: now });
        return;
      }
      case 'BACKEND_CONNECTED': {
        const t = this.dialed(e.id, e.attempt, 'connected', undefined);
        if (t && !t.viaProxy) this.linked(t);
        return;
      }
      case 'BACKEND_FAILED':
        this.dialed(e.id, e.attempt, 'failed', e.code);
        return;
      case 'CONNECT_TIMEOUT':
        this.dialed(e.id, e.attempt, 'timeout', 'ETIMEDOUT');
        return;
      case 'PROXY_REPLY_OK': {
        const t = this.timings.get(e.id);
        if (t) this.linked(t);
        return;
      }
      case 'PROXY_DECLINED':
        if (this.timings.has(e.id)) this.declines.inc({ code: this.labels.value('code', e.code) });
        return;
    }
  }

  finished(out: ForwardOutput): void {
    this.timings.delete(out.id);
    const reason = out.reason ?? 'unknown';
    const colon = reason.indexOf(':');
    this.ended.inc({ reason: this.labels.value('ended', colon < 0 ? reason : reason.slice(0, colon)) });
    if (out.up > 0) this.forwarded.inc({ direction: 'up' }, out.up);
    if (out.down > 0) this.forwarded.inc({ direction: 'down' }, out.down);
  }

  text(): Promise<string> {
    return metricsText(this.registry);
  }

  json(): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
    return metricsJson(this.registry);
  }

  /** One dial attempt ended (only the current one counts); a failure starts the next (the machine dials at once). */
  private dialed(id: string, attempt: number, outcome: 'connected' | 'failed' | 'timeout', code: string | undefined): Timing | undefined {
    const t = this.timings.get(id);
    if (!t || t.dialStart === 0 || attempt !== t.attempt) return undefined;
    const now = this.sources.now();
    this.connect.observe({ outcome }, (now - t.dialStart) / 1000);
    if (outcome === 'connected') {
      t.dialStart = 0;
      return t;
    }
    // The target is a forward's configured name: bounded by the config; the code comes from the network.
    this.dialFailures.inc({ target: t.target, code: this.labels.value('dial', code ?? 'unknown') });
    t.attempt = attempt + 1;
    t.dialStart = t.attempt < t.addresses ? now : 0;
    return t;
  }

  private linked(t: Timing): void {
    if (t.linked) return;
    t.linked = true;
    this.link.observe((this.sources.now() - t.acceptedAt) / 1000);
  }
}
