/**
 * The admin endpoint: the inspector page, /metrics, /status. One class for every process that has pairs
 * (PairInspector), made for a kind of pair: the proxy's (`[proxy] adminListen`, Inspector) or the forwarder's
 * (`[client] adminListen`, ForwardInspector). The kind says which machine the page draws, which metric set is
 * kept and how a pair's end reads; the rest — the live state, the page's feed, the HTTP server — is the same.
 *
 * Whoever runs the pairs imports this module only when adminListen is set, creates the inspector before the
 * first event, feeds it the events, the pairs' steps and their ends, and binds it with the listeners.
 *
 * In a worker of `[proxy] workers` > 1 the inspector binds nothing: the primary serves the endpoint
 * (./cluster.ts) and asks each worker for its figures over the IPC channel (src/cluster/adminChannel.ts).
 */
import type { ForwarderEvent } from '../../machines/forwarder.js';
import type { ProxyEvent } from '../../machines/proxy.js';
import type { ChildStepObserver } from '../../machines/registry.js';
import { answerPrimary, isClusterWorker } from '../cluster/adminChannel.js';
import type { AdminQuestion } from '../cluster/messages.js';
import type { AdminConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import type { ConnectionOutput, ForwardOutput } from '../shared/events.js';
import { EventStream, TABLE_GONE, TABLE_LIVE, type Picture } from './events.js';
import { ForwardMetrics } from './forwardMetrics.js';
import { LiveState, proxyPairEnd, type Forwarded, type LiveEvent, type PairEnd } from './live.js';
import { ProxyMetrics, type EventLogFigures, type PairMetrics } from './metrics.js';
import { machineDiagram } from './page.js';
import { AdminServer, type PageInfo } from './server.js';
import { VERSION, statusOf, type AdminRole } from './status.js';

/** What every inspector reads from the process it inspects. */
export interface InspectorDeps {
  admin: AdminConfig;
  logger: Logger;
  /** ms since the epoch (the process's clock). */
  now: () => number;
  /** A live pair's bytes, read from its sockets. */
  bytesOf: (id: string) => Forwarded | undefined;
  /** Pairs accepted since start, and live now. */
  stats: () => { accepted: number; active: number };
  eventLog: () => ({ path: string } & EventLogFigures) | undefined;
  listeners: () => string[];
  configFile: () => string;
  configLoadedAt: () => number;
}

/** The proxy's: also the connections refused at accept, by reason, where the runtime counts them. */
export interface ProxyInspectorDeps extends InspectorDeps {
  refused: () => Record<string, number> | undefined;
}

/** The forwarder's: also linked and refused pairs, and its forwards, for /status. */
export interface ForwardInspectorDeps extends InspectorDeps {
  stats: () => { accepted: number; active: number; linked: number; refused: number };
  forwards: () => { listen: string; target: string; via: string }[];
}

/** A kind of pair: what differs between the proxy's inspector and the forwarder's. */
export interface InspectorKind<E extends LiveEvent, O> {
  role: AdminRole;
  page: PageInfo;
  metrics(sources: { now: () => number; stateCounts: () => Map<string, number>; eventLog: () => EventLogFigures | undefined }): PairMetrics<E, O>;
  /** How a pair's output reads in the table. */
  ended(out: O): PairEnd;
  /** The counts /status shows. */
  counts(): { accepted: number; active: number } & Record<string, number>;
  /** Fields of /status of the kind's own. */
  extra?: () => Record<string, unknown>;
}

export class PairInspector<E extends LiveEvent, O> {
  private readonly live: LiveState;
  private readonly metrics: PairMetrics<E, O>;
  private readonly stream: EventStream;
  private readonly server: AdminServer | undefined;
  private readonly startedAt: number;
  /** Set in a cluster worker once listen() ran: stops answering the primary. */
  private stopAnswering: (() => void) | undefined;

  constructor(
    private readonly kind: InspectorKind<E, O>,
    private readonly deps: InspectorDeps,
  ) {
    this.startedAt = deps.now();
    this.live = new LiveState(deps.now);
    this.metrics = kind.metrics({ now: deps.now, stateCounts: () => this.live.stateCounts(), eventLog: deps.eventLog });
    this.stream = new EventStream(() => this.picture());
    // A cluster worker serves nothing itself: the primary does, with what the worker answers it.
    this.server = isClusterWorker()
      ? undefined
      : new AdminServer(
          deps.admin,
          {
            page: kind.page,
            stream: this.stream,
            metrics: async () => ({ type: this.metrics.contentType, text: await this.metrics.text() }),
            status: () => this.status(),
            table: () => this.picture(),
            connection: (id) => this.live.connection(id, deps.bytesOf),
            eventLog: () => deps.eventLog()?.path,
          },
          deps.logger,
        );
  }

  /** For the registry: each pair's snapshot after every event it took. */
  get step(): ChildStepObserver {
    return this.live.step;
  }

  /** Every event, as it enters the root. */
  event(e: E): void {
    this.live.event(e);
    this.metrics.event(e);
  }

  /** A pair ended and was forgotten. */
  finished(out: O): void {
    this.live.ended(this.kind.ended(out));
    this.metrics.finished(out);
  }

  /**
   * Draws the diagram and binds the address; resolves with it ("host:port"). In a cluster worker: starts
   * answering the primary instead, and resolves with "".
   */
  async listen(): Promise<string> {
    if (!this.server) {
      this.stopAnswering ??= answerPrimary((q) => this.answer(q));
      this.deps.logger.debug('admin endpoint: served by the primary; this worker answers its questions');
      return '';
    }
    await machineDiagram(this.kind.page.machine);
    const address = await this.server.listen();
    const access = this.deps.admin.token ? 'bearer token required' : 'no token: open to local users';
    this.deps.logger.info(`admin endpoint on http://${address}/ (inspector, /metrics, /status; ${access})`);
    return address;
  }

  get address(): string {
    return this.server?.address ?? '';
  }

  async close(): Promise<void> {
    this.stopAnswering?.();
    this.stopAnswering = undefined;
    this.stream.close();
    await this.server?.close();
  }

  /** The answer to a question of the cluster primary (src/cluster/adminChannel.ts). */
  answer(q: AdminQuestion): unknown {
    switch (q.ask) {
      case 'metrics':
        return this.metrics.json();
      case 'status':
        return this.status();
      case 'picture':
        return this.picture();
      case 'connection':
        return this.live.connection(q.conn, this.deps.bytesOf) ?? null;
    }
  }

  private status() {
    const { deps } = this;
    return statusOf({
      role: this.kind.role,
      now: deps.now,
      startedAt: this.startedAt,
      listeners: deps.listeners,
      admin: () => this.server?.address || undefined,
      configFile: deps.configFile,
      configLoadedAt: deps.configLoadedAt,
      eventLog: () => deps.eventLog()?.path,
      stats: () => this.kind.counts(),
      stateCounts: () => this.live.stateCounts(),
      totals: () => this.live.totals(),
      ...(this.kind.extra ? { extra: this.kind.extra } : {}),
    });
  }

  private picture(): Picture {
    return {
      t: this.deps.now(),
      counts: Object.fromEntries(this.live.stateCounts()),
      totals: this.live.totals(),
      rows: this.live.rows(this.deps.bytesOf, TABLE_LIVE, TABLE_GONE),
    };
  }
}

/** The proxy's inspector (`[proxy] adminListen`): the connection machine, `mxproxy_` metrics. */
export class Inspector extends PairInspector<ProxyEvent, ConnectionOutput> {
  constructor(deps: ProxyInspectorDeps) {
    super(
      {
        role: 'proxy',
        page: { role: 'proxy', machine: 'connection', title: 'mxproxy inspector' },
        metrics: (sources) => new ProxyMetrics({ ...sources, refused: deps.refused, version: VERSION }),
        ended: proxyPairEnd,
        counts: () => {
          const s = deps.stats();
          return { accepted: s.accepted, active: s.active };
        },
      },
      deps,
    );
  }
}

/** The forwarder's inspector (`[client] adminListen`): the forward machine, `mxforward_` metrics. */
export class ForwardInspector extends PairInspector<ForwarderEvent, ForwardOutput> {
  constructor(deps: ForwardInspectorDeps) {
    super(
      {
        role: 'forward',
        page: { role: 'forward', machine: 'forward', title: 'mxproxy forward inspector' },
        metrics: (sources) => new ForwardMetrics({ ...sources, version: VERSION }),
        ended: forwardPairEnd,
        counts: () => {
          const s = deps.stats();
          return { accepted: s.accepted, active: s.active, linked: s.linked, refused: s.refused };
        },
        extra: () => ({ forwards: deps.forwards() }),
      },
      deps,
    );
  }
}

/** A forward pair's output as the table keeps it: no identity; up is what the local client sent. */
export const forwardPairEnd = (out: ForwardOutput): PairEnd => ({
  id: out.id,
  reason: out.reason,
  message: out.message,
  identity: null,
  target: out.target,
  bytes: { up: out.up, down: out.down },
});
