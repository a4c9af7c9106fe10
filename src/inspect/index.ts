/**
 * The admin endpoint (`[proxy] adminListen`): the inspector page, /metrics, /status. The runtime imports this
 * module only when adminListen is set, creates the Inspector before the first event, feeds it the events, the
 * pairs' steps and their ends, and binds it with the listeners.
 */
import type { ProxyEvent } from '../../machines/proxy.js';
import type { ChildStepObserver } from '../../machines/registry.js';
import type { AdminConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import type { ConnectionOutput } from '../shared/events.js';
import { EventStream, TABLE_GONE, TABLE_LIVE, type Picture } from './events.js';
import { LiveState, type Forwarded } from './live.js';
import { ProxyMetrics, type EventLogFigures } from './metrics.js';
import { connectionDiagram } from './page.js';
import { AdminServer } from './server.js';
import { VERSION, statusOf } from './status.js';

export interface InspectorDeps {
  admin: AdminConfig;
  logger: Logger;
  /** ms since the epoch (the proxy's clock). */
  now: () => number;
  /** A live pair's bytes, read from its sockets. */
  bytesOf: (id: string) => Forwarded | undefined;
  stats: () => { accepted: number; active: number };
  /** Connections refused at accept, by reason, where the runtime counts them. */
  refused: () => Record<string, number> | undefined;
  eventLog: () => ({ path: string } & EventLogFigures) | undefined;
  listeners: () => string[];
  configFile: () => string;
  configLoadedAt: () => number;
}

export class Inspector {
  private readonly live: LiveState;
  private readonly metrics: ProxyMetrics;
  private readonly stream: EventStream;
  private readonly server: AdminServer;
  private readonly startedAt: number;

  constructor(private readonly deps: InspectorDeps) {
    this.startedAt = deps.now();
    this.live = new LiveState(deps.now);
    this.metrics = new ProxyMetrics({
      now: deps.now,
      stateCounts: () => this.live.stateCounts(),
      refused: deps.refused,
      eventLog: deps.eventLog,
      version: VERSION,
    });
    this.stream = new EventStream(() => this.picture());
    this.server = new AdminServer(
      deps.admin,
      {
        stream: this.stream,
        metrics: async () => ({ type: this.metrics.contentType, text: await this.metrics.text() }),
        status: () =>
          statusOf({
            now: deps.now,
            startedAt: this.startedAt,
            listeners: deps.listeners,
            admin: () => this.server.address || undefined,
            configFile: deps.configFile,
            configLoadedAt: deps.configLoadedAt,
            eventLog: () => deps.eventLog()?.path,
            stats: deps.stats,
            stateCounts: () => this.live.stateCounts(),
            totals: () => this.live.totals(),
          }),
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
  event(e: ProxyEvent): void {
    this.live.event(e);
    this.metrics.event(e);
  }

  /** A pair ended and was forgotten. */
  finished(out: ConnectionOutput): void {
    this.live.finished(out);
    this.metrics.finished(out);
  }

  /** Draws the diagram and binds the address; resolves with it ("host:port"). */
  async listen(): Promise<string> {
    await connectionDiagram();
    const address = await this.server.listen();
    const access = this.deps.admin.token ? 'bearer token required' : 'no token: open to local users';
    this.deps.logger.info(`admin endpoint on http://${address}/ (inspector, /metrics, /status; ${access})`);
    return address;
  }

  get address(): string {
    return this.server.address;
  }

  close(): Promise<void> {
    return this.server.close();
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
