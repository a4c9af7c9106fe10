/**
 * The admin endpoint of a cluster primary (`[proxy] workers` > 1 with adminListen). The primary holds no pairs:
 * each worker keeps its own figures (its Inspector, which binds nothing there) and answers the primary's
 * questions over the IPC channel (src/cluster/adminChannel.ts). Here they are put together:
 *
 *   /metrics   every worker's metrics summed (prom-client's AggregatorRegistry.aggregate: counters, gauges and
 *              histograms summed; Node's process metrics as prom-client aggregates them), the primary's own
 *              process metrics included, plus the pool's: mxproxy_workers, …_listening, …_answering,
 *              mxproxy_worker_restarts_total.
 *   /status    the totals (accepted, active, pairs by state) and one entry per worker.
 *   /          the page: the summed counts on the connection machine and the union of the workers' tables,
 *              each row marked with its worker. Not a live stream from each worker: while a page is open the
 *              primary asks every worker for a snapshot at most every REFRESH_MS (four times a second).
 *
 * What a worker answers is checked field by field before it is used (a worker faces the network, the primary
 * must not be taken over through it); its text, `printable` output already, is cut and kept to one line again
 * (singleLine: unlike printable, it leaves the escapes a worker wrote as they are). A worker that does not
 * answer in time is left out of the sums and shown as not answering.
 */
import { AggregatorRegistry, Counter, Gauge, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { AdminQuestion } from '../cluster/messages.js';
import type { WorkerView } from '../cluster/primary.js';
import type { AdminConfig } from '../config/types.js';
import { workerLogPath } from '../eventlog/workerSeries.js';
import type { Logger } from '../log.js';
import { singleLine, truncate } from '../shared/printable.js';
import { EventStream, TABLE_GONE, TABLE_LIVE, type Picture } from './events.js';
import type { ConnectionDetail, ConnectionRow, HistoryEntry, LiveTotals } from './live.js';
import { processMetrics } from './metrics.js';
import { machineDiagram } from './page.js';
import { AdminServer } from './server.js';
import { VERSION } from './status.js';

/** The page's table and counts are refreshed from the workers at most this often while a page is open. */
export const REFRESH_MS = 250;
const TIMEOUTS = { metrics: 3000, status: 2000, picture: 1000, connection: 2000 } as const;

/** What the admin endpoint needs of the pool (src/cluster/primary.ts's WorkerPool). */
export interface ClusterPool {
  readonly size: number;
  stats(): WorkerView[];
  ask(index: number, question: AdminQuestion, timeoutMs: number): Promise<{ ok: boolean; value: unknown } | undefined>;
}

export interface ClusterAdminDeps {
  admin: AdminConfig;
  logger: Logger;
  pool: ClusterPool;
  configFile: string;
  /** The configured event log; each worker writes its own series of it. */
  eventLog: string | undefined;
  /** ms since the epoch. */
  now?: () => number;
}

/** A cluster's picture: the workers' summed, and how many did not answer. */
type ClusterPicture = Picture & { totals: LiveTotals & { missing: number } };

export class ClusterAdmin {
  private readonly server: AdminServer;
  private readonly stream: EventStream;
  private readonly registry = new Registry();
  private readonly now: () => number;
  private readonly startedAt: number;
  private answering = 0;
  private cached: ClusterPicture;
  private refreshedAt = 0;
  private refreshing: Promise<void> | undefined;

  constructor(private readonly deps: ClusterAdminDeps) {
    this.now = deps.now ?? Date.now;
    this.startedAt = this.now();
    this.cached = { t: this.startedAt, counts: {}, totals: { live: 0, untracked: 0, gone: 0, missing: deps.pool.size }, rows: [] };
    const { pool } = deps;
    const registers = [this.registry];
    const self = this;
    new Gauge({ name: 'mxproxy_workers', help: 'Worker processes configured ([proxy] workers)', registers, collect() { this.set(pool.size); } });
    new Gauge({
      name: 'mxproxy_workers_listening',
      help: 'Workers listening now',
      registers,
      collect() {
        this.set(pool.stats().filter((w) => w.listening).length);
      },
    });
    new Gauge({
      name: 'mxproxy_workers_answering',
      help: 'Workers whose figures are in this scrape (one that does not answer in time is left out of every sum)',
      registers,
      collect() {
        this.set(self.answering);
      },
    });
    new Counter({
      name: 'mxproxy_worker_restarts_total',
      help: 'Workers restarted after they died, since the primary started',
      registers,
      collect() {
        this.reset();
        this.inc(pool.stats().reduce((n, w) => n + w.restarts, 0));
      },
    });
    this.stream = new EventStream(() => this.picture());
    const workers = pool.size;
    this.server = new AdminServer(
      deps.admin,
      {
        page: { role: 'cluster', machine: 'connection', title: `mxproxy inspector (${workers} workers)`, workers, refreshMs: REFRESH_MS },
        stream: this.stream,
        prepare: () => this.refresh(),
        metrics: async () => ({ type: Registry.PROMETHEUS_CONTENT_TYPE, text: await this.metricsText() }),
        status: () => this.status(),
        table: async () => {
          await this.refresh();
          return this.cached;
        },
        connection: (id) => this.connection(id),
        eventLog: () => (deps.eventLog ? Array.from({ length: workers }, (_, i) => workerLogPath(deps.eventLog!, i + 1)) : undefined),
      },
      deps.logger,
    );
  }

  /** Draws the diagram and binds the address; resolves with it ("host:port"). */
  async listen(): Promise<string> {
    await machineDiagram('connection');
    const address = await this.server.listen();
    const access = this.deps.admin.token ? 'bearer token required' : 'no token: open to local users';
    this.deps.logger.info(`admin endpoint on http://${address}/ (inspector, /metrics, /status over ${this.deps.pool.size} workers; ${access})`);
    return address;
  }

  get address(): string {
    return this.server.address;
  }

  close(): Promise<void> {
    return this.server.close();
  }

  /** Asks every worker; resolves with each one's checked answer, undefined where there is none. */
  private async askAll<T>(question: AdminQuestion, timeoutMs: number, check: (v: unknown) => T | undefined): Promise<(T | undefined)[]> {
    const indexes = Array.from({ length: this.deps.pool.size }, (_, i) => i + 1);
    return Promise.all(
      indexes.map(async (n) => {
        const a = await this.deps.pool.ask(n, question, timeoutMs);
        return a?.ok ? check(a.value) : undefined;
      }),
    );
  }

  private async metricsText(): Promise<string> {
    const answers = await this.askAll({ ask: 'metrics' }, TIMEOUTS.metrics, asMetrics);
    const got = answers.filter((a): a is Metrics => a !== undefined);
    this.answering = got.length;
    // The pool's own first, then the primary's process metrics: summed with the workers' (the service's CPU and
    // memory as a whole).
    const sets = [await this.registry.getMetricsAsJSON(), await processMetrics().getMetricsAsJSON(), ...got];
    return AggregatorRegistry.aggregate(sets as Metrics[]).metrics();
  }

  private async status(): Promise<unknown> {
    const answers = await this.askAll({ ask: 'status' }, TIMEOUTS.status, asWorkerStatus);
    const views = this.deps.pool.stats();
    const states: Record<string, number> = {};
    let accepted = 0;
    let active = 0;
    let untracked = 0;
    const listeners = new Set<string>();
    const workers = views.map((v, i) => {
      const s = answers[i];
      if (s) {
        accepted += s.accepted;
        active += s.active;
        untracked += s.untracked;
        for (const [state, n] of Object.entries(s.states)) states[state] = (states[state] ?? 0) + n;
        for (const l of s.listeners) listeners.add(l);
      }
      return {
        worker: v.worker,
        pid: v.pid ?? null,
        listening: v.listening,
        restarts: v.restarts,
        answered: s !== undefined,
        ...(s
          ? { startedAt: s.startedAt, uptimeSeconds: s.uptimeSeconds, configLoadedAt: s.configLoadedAt, eventLog: s.eventLog, accepted: s.accepted, active: s.active, states: s.states, untracked: s.untracked }
          : // Without an answer: its counters as it last reported them (every second), if ever.
            { reported: v.stats ? { accepted: v.stats.accepted, active: v.stats.active, at: v.statsAt ? new Date(v.statsAt).toISOString() : null } : null }),
      };
    });
    const now = this.now();
    return {
      version: VERSION,
      role: 'proxy',
      pid: process.pid,
      node: process.version,
      startedAt: new Date(this.startedAt).toISOString(),
      uptimeSeconds: Math.round((now - this.startedAt) / 10) / 100,
      listeners: [...listeners].sort(),
      admin: this.server.address || null,
      config: { file: this.deps.configFile, loadedAt: new Date(this.startedAt).toISOString() },
      eventLog: this.deps.eventLog ?? null,
      accepted,
      active,
      states: Object.fromEntries(Object.entries(states).sort(([a], [b]) => a.localeCompare(b))),
      untracked,
      workersAnswered: workers.filter((w) => w.answered).length,
      workers,
    };
  }

  /** The cached picture; a fresh one is asked for when it is older than REFRESH_MS (the page sees it next batch). */
  private picture(): Picture {
    if (this.now() - this.refreshedAt >= REFRESH_MS) {
      this.refresh().catch((err: unknown) => this.deps.logger.warn(`admin endpoint: the workers' snapshots: ${(err as Error).message}`));
    }
    return this.cached;
  }

  /** Asks every worker for its picture (one round at a time) and puts them together. */
  private refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        const answers = await this.askAll({ ask: 'picture' }, TIMEOUTS.picture, asPicture);
        this.cached = this.merge(answers);
        this.refreshedAt = this.now();
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  private merge(answers: (Picture | undefined)[]): ClusterPicture {
    const counts: Record<string, number> = {};
    const totals = { live: 0, untracked: 0, gone: 0, missing: 0 };
    const live: ConnectionRow[] = [];
    const gone: ConnectionRow[] = [];
    answers.forEach((p, i) => {
      if (!p) {
        totals.missing++;
        return;
      }
      const worker = i + 1;
      for (const [state, n] of Object.entries(p.counts)) counts[state] = (counts[state] ?? 0) + n;
      totals.live += p.totals.live;
      totals.untracked += p.totals.untracked;
      totals.gone += p.totals.gone;
      for (const r of p.rows) (r.endedAt === null ? live : gone).push({ ...r, id: `${worker}-${r.id}`, worker });
    });
    const newest = (a: ConnectionRow, b: ConnectionRow) => b.acceptedAt - a.acceptedAt;
    return { t: this.now(), counts, totals, rows: [...live.sort(newest).slice(0, TABLE_LIVE), ...gone.sort(newest).slice(0, TABLE_GONE)] };
  }

  private async connection(id: string): Promise<ConnectionDetail | undefined> {
    const m = /^([1-9][0-9]*)-([0-9a-z]{1,16})$/.exec(id);
    if (!m) return undefined;
    const worker = Number(m[1]);
    if (worker > this.deps.pool.size) return undefined;
    const a = await this.deps.pool.ask(worker, { ask: 'connection', conn: m[2]! }, TIMEOUTS.connection);
    const d = a?.ok ? asDetail(a.value) : undefined;
    return d ? { ...d, id, worker } : undefined;
  }
}

// ------------------------------------------------------------------------------ checking what workers answer

type Metrics = MetricObjectWithValues<MetricValue<string>>[];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isCount = (v: unknown): v is number => isNum(v) && v >= 0;
/** A worker's text (printable output already): cut, and one line whatever it holds. */
const text = (v: unknown, max = 1024): string | undefined => (typeof v === 'string' ? singleLine(truncate(v, max)) : undefined);
const key = (k: string): string => singleLine(truncate(k, 128));
const textOrNull = (v: unknown, max = 1024): string | null | undefined => (v === null ? null : text(v, max));
const numOrNull = (v: unknown): number | null | undefined => (v === null ? null : isNum(v) ? v : undefined);

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]{0,199}$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]{0,99}$/;
const METRIC_TYPES = new Set(['counter', 'gauge', 'histogram', 'summary']);
const AGGREGATORS = new Set(['sum', 'first', 'omit', 'average', 'min', 'max']);
const MAX_METRICS = 512;
const MAX_VALUES = 20_000;

/** prom-client JSON (getMetricsAsJSON) as AggregatorRegistry.aggregate may take it: names, types, labels checked. */
export function asMetrics(v: unknown): Metrics | undefined {
  if (!Array.isArray(v) || v.length > MAX_METRICS) return undefined;
  const out: Metrics = [];
  let values = 0;
  for (const m of v) {
    if (!isObject(m) || typeof m.name !== 'string' || !METRIC_NAME.test(m.name) || typeof m.type !== 'string' || !METRIC_TYPES.has(m.type)) return undefined;
    if (!Array.isArray(m.values)) return undefined;
    const aggregator = m.aggregator === undefined ? 'sum' : m.aggregator;
    if (typeof aggregator !== 'string' || !AGGREGATORS.has(aggregator)) return undefined;
    values += m.values.length;
    if (values > MAX_VALUES) return undefined;
    const checked: MetricValue<string>[] = [];
    for (const x of m.values) {
      if (!isObject(x) || typeof x.value !== 'number') continue; // NaN arrives as null: not a sample
      if (x.metricName !== undefined && (typeof x.metricName !== 'string' || !METRIC_NAME.test(x.metricName))) return undefined;
      const labels: Record<string, string | number> = {};
      if (x.labels !== undefined) {
        if (!isObject(x.labels)) return undefined;
        const entries = Object.entries(x.labels);
        if (entries.length > 16) return undefined;
        for (const [k, l] of entries) {
          if (!LABEL_NAME.test(k)) return undefined;
          if (typeof l === 'number') labels[k] = l;
          else if (typeof l === 'string') labels[k] = l.slice(0, 256);
          else return undefined;
        }
      }
      checked.push({ value: x.value, labels, ...(typeof x.metricName === 'string' ? { metricName: x.metricName } : {}) } as MetricValue<string>);
    }
    out.push({
      name: m.name,
      help: typeof m.help === 'string' ? m.help.slice(0, 1024) : '',
      type: m.type,
      aggregator,
      values: checked,
    } as unknown as Metrics[number]);
  }
  return out;
}

interface WorkerStatus {
  startedAt: string;
  uptimeSeconds: number;
  configLoadedAt: string;
  eventLog: string | null;
  listeners: string[];
  accepted: number;
  active: number;
  untracked: number;
  states: Record<string, number>;
}

function asStates(v: unknown): Record<string, number> | undefined {
  if (!isObject(v)) return undefined;
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(v).slice(0, 64)) if (isCount(n)) out[key(k)] = n;
  return out;
}

function asWorkerStatus(v: unknown): WorkerStatus | undefined {
  if (!isObject(v) || !isObject(v.config)) return undefined;
  const states = asStates(v.states);
  const startedAt = text(v.startedAt, 64);
  const loadedAt = text(v.config.loadedAt, 64);
  const eventLog = textOrNull(v.eventLog, 4096);
  if (!states || startedAt === undefined || loadedAt === undefined || eventLog === undefined) return undefined;
  if (!isNum(v.uptimeSeconds) || !isCount(v.accepted) || !isCount(v.active) || !isCount(v.untracked) || !Array.isArray(v.listeners)) return undefined;
  const listeners = v.listeners.slice(0, 64).flatMap((l) => (typeof l === 'string' ? [key(l)] : []));
  return { startedAt, uptimeSeconds: v.uptimeSeconds, configLoadedAt: loadedAt, eventLog, listeners, accepted: v.accepted, active: v.active, untracked: v.untracked, states };
}

const ROW_ID = /^[0-9a-z]{1,16}$/;

function asRow(v: unknown): ConnectionRow | undefined {
  if (!isObject(v) || typeof v.id !== 'string' || !ROW_ID.test(v.id)) return undefined;
  const peer = text(v.peer, 128);
  const identity = textOrNull(v.identity);
  const target = textOrNull(v.target);
  const backend = textOrNull(v.backend, 128);
  const state = text(v.state, 128);
  const reason = textOrNull(v.reason);
  const endedAt = numOrNull(v.endedAt);
  if (peer === undefined || identity === undefined || target === undefined || backend === undefined || state === undefined) return undefined;
  if (reason === undefined || endedAt === undefined) return undefined;
  if (!isNum(v.since) || !isNum(v.acceptedAt) || !isCount(v.up) || !isCount(v.down)) return undefined;
  return { id: v.id, peer, identity, target, backend, state, since: v.since, acceptedAt: v.acceptedAt, up: v.up, down: v.down, endedAt, reason };
}

function asPicture(v: unknown): Picture | undefined {
  if (!isObject(v) || !isObject(v.totals) || !Array.isArray(v.rows)) return undefined;
  const counts = asStates(v.counts);
  const t = v.totals;
  if (!counts || !isCount(t.live) || !isCount(t.untracked) || !isCount(t.gone)) return undefined;
  const rows: ConnectionRow[] = [];
  for (const r of v.rows.slice(0, TABLE_LIVE + TABLE_GONE)) {
    const row = asRow(r);
    if (row) rows.push(row);
  }
  return { t: isNum(v.t) ? v.t : 0, counts, totals: { live: t.live, untracked: t.untracked, gone: t.gone }, rows };
}

function asHistoryEntry(v: unknown): HistoryEntry | undefined {
  if (!isObject(v) || !isNum(v.t)) return undefined;
  const from = textOrNull(v.from, 128);
  const to = text(v.to, 128);
  const on = text(v.on, 128);
  return from === undefined || to === undefined || on === undefined ? undefined : { t: v.t, from, to, on };
}

function asDetail(v: unknown): ConnectionDetail | undefined {
  const row = asRow(v);
  if (!row || !isObject(v) || !Array.isArray(v.history) || !isCount(v.dropped)) return undefined;
  const local = text(v.local, 128);
  const message = textOrNull(v.message);
  if (local === undefined || message === undefined) return undefined;
  const history = v.history.slice(0, 256).flatMap((h) => {
    const e = asHistoryEntry(h);
    return e ? [e] : [];
  });
  return { ...row, local, message, history, dropped: v.dropped };
}

/** Starts the admin endpoint of a cluster primary; resolves once it is bound. */
export async function startClusterAdmin(deps: ClusterAdminDeps): Promise<ClusterAdmin> {
  const admin = new ClusterAdmin(deps);
  await admin.listen();
  return admin;
}
