/**
 * The admin endpoint's HTTP server: plain node:http, a handful of routes, every one behind the same check
 * (./auth.ts). Nothing here writes anything anywhere: the endpoint only reads what the proxy (or the
 * forwarder, or a cluster's workers) knows, the configured event log, or a log uploaded to it.
 *
 *   GET  /                      the page (index.html, app.js, app.css, diagram.svg)
 *   GET  /api/page              what the page shows: whose endpoint it is (proxy, forward, cluster), which machine
 *   GET  /events                Server-Sent Events for the page (./events.ts)
 *   GET  /metrics               Prometheus text (./metrics.ts)
 *   GET  /status                JSON (./status.ts)
 *   GET  /api/connections       the table as JSON; /api/connections/<id>: one pair with its transitions
 *   GET  /api/logs              the files of the configured event log
 *   GET  /api/replay?file=<name>  one of those files replayed; POST /api/replay: an uploaded log replayed
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type net from 'node:net';
import type { AdminConfig } from '../config/types.js';
import { ListenError } from '../errors.js';
import type { Logger } from '../log.js';
import { formatHostPort } from '../shared/address.js';
import { authorizer } from './auth.js';
import { MAX_LISTENERS, type EventStream } from './events.js';
import type { ConnectionDetail } from './live.js';
import { machineDiagram, pageAssets, send, sendJson, type PageMachine } from './page.js';
import { offThread } from './offThread.js';
import { MAX_UPLOAD_BYTES, listLogs, type ReplayView } from './replay.js';

/** What the page is told about the endpoint it was loaded from (GET /api/page). */
export interface PageInfo {
  /** proxy: `mxproxy start`; forward: `mxproxy forward`; cluster: the primary of `[proxy] workers` > 1. */
  role: 'proxy' | 'forward' | 'cluster';
  /** The pair machine drawn, and the prefix of its states' node titles in the SVG. */
  machine: PageMachine;
  title: string;
  /** A cluster's workers; the table then has a worker column. */
  workers?: number;
  /** The table is refreshed from the workers' snapshots at most every this many ms (a cluster). */
  refreshMs?: number;
}

export interface AdminRoutes {
  page: PageInfo;
  stream: EventStream;
  metrics: () => Promise<{ type: string; text: string }>;
  status: () => unknown;
  table: () => unknown;
  connection: (id: string) => ConnectionDetail | undefined | Promise<ConnectionDetail | undefined>;
  /** The configured event log's path, if any (a cluster: each worker's series). */
  eventLog: () => string | string[] | undefined;
  /** Runs before a page's live feed starts (a cluster: fresh snapshots from the workers for its first picture). */
  prepare?: () => Promise<void>;
}

/** A pair's id in a route: its own (`1f`), or in a cluster `<worker>-<id>` (`2-1f`). */
const CONNECTION_ROUTE = /^\/api\/connections\/((?:[1-9][0-9]{0,3}-)?[0-9a-z]{1,16})$/;

const MAX_SOCKETS = 64;

export class AdminServer {
  private readonly server: http.Server;
  private replaying = false;
  private boundAddress = '';

  constructor(
    private readonly admin: AdminConfig,
    private readonly routes: AdminRoutes,
    private readonly logger: Logger,
  ) {
    const check = authorizer(admin.token);
    this.server = http.createServer({ requestTimeout: 30_000, headersTimeout: 10_000, keepAliveTimeout: 5_000, maxHeaderSize: 16 * 1024 }, (req, res) => {
      const verdict = check(req);
      if (verdict === 'unauthorized') {
        // Basic too, so that a browser asks for the token (as the password) instead of showing a bare error.
        send(res, 401, 'text/plain; charset=utf-8', 'unauthorized: send Authorization: Bearer <adminToken>\n', {
          'WWW-Authenticate': ['Bearer realm="mxproxy admin"', 'Basic realm="mxproxy admin", charset="UTF-8"'],
        });
        return;
      }
      if (verdict === 'bad-host') {
        send(res, 403, 'text/plain; charset=utf-8', 'forbidden: the admin endpoint answers only to a loopback Host name\n');
        return;
      }
      this.handle(req, res).catch((err: unknown) => {
        this.logger.warn(`admin endpoint: ${req.method ?? '?'} ${(req.url ?? '').slice(0, 100)}: ${(err as Error).message}`);
        if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
        else res.destroy();
      });
    });
    this.server.maxConnections = MAX_SOCKETS;
  }

  /** Binds the address (port 0: any free one); resolves with it as "host:port". */
  async listen(): Promise<string> {
    const { host, port } = this.admin.listen;
    try {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen({ host, port }, () => {
          this.server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new ListenError(`cannot listen on the admin address ${formatHostPort(this.admin.listen)}: ${e.code ?? e.message}`, e.code, { cause: err });
    }
    const info = this.server.address() as net.AddressInfo;
    this.boundAddress = formatHostPort({ host: info.address, port: info.port });
    return this.boundAddress;
  }

  get address(): string {
    return this.boundAddress;
  }

  async close(): Promise<void> {
    this.routes.stream.close();
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    this.server.closeAllConnections();
    await closed;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const route = url.pathname;
    if (req.method === 'POST' && route === '/api/replay') return this.upload(req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { Allow: 'GET' });
      return;
    }
    const asset = pageAssets().get(route === '/' ? 'index.html' : route.slice(1));
    if (asset && (route === '/' || route === '/app.js' || route === '/app.css')) return send(res, 200, asset.type, asset.body);
    switch (route) {
      case '/diagram.svg':
        return send(res, 200, 'image/svg+xml; charset=utf-8', await machineDiagram(this.routes.page.machine));
      case '/api/page':
        return sendJson(res, 200, this.routes.page);
      case '/events':
        if (this.routes.prepare && this.routes.stream.size < MAX_LISTENERS) await this.routes.prepare();
        if (!this.routes.stream.add(res)) send(res, 503, 'text/plain; charset=utf-8', 'too many pages open\n', { 'Retry-After': '10' });
        return;
      case '/metrics': {
        const m = await this.routes.metrics();
        return send(res, 200, m.type, m.text);
      }
      case '/status':
        return sendJson(res, 200, await this.routes.status());
      case '/api/connections':
        return sendJson(res, 200, await this.routes.table());
      case '/api/logs': {
        const eventLog = this.routes.eventLog();
        return sendJson(res, 200, { configured: eventLog !== undefined, files: await listLogs(eventLog), maxUploadBytes: MAX_UPLOAD_BYTES });
      }
      case '/api/replay': {
        const name = url.searchParams.get('file') ?? '';
        return this.replay(res, () => offThread<ReplayView | undefined>({ kind: 'replay-file', eventLog: this.routes.eventLog(), name }));
      }
    }
    const m = CONNECTION_ROUTE.exec(route);
    if (m) {
      const detail = await this.routes.connection(m[1]!);
      if (detail) return sendJson(res, 200, detail);
      return sendJson(res, 404, { error: 'no such connection (or it ended more than a minute ago)' });
    }
    send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
  }

  /** One replay at a time: each takes a worker thread and up to 512 MiB. */
  private async replay(res: ServerResponse, run: () => Promise<ReplayView | undefined>): Promise<void> {
    if (this.replaying) return sendJson(res, 429, { error: 'a replay is running; try again in a moment' });
    this.replaying = true;
    try {
      const view = await run();
      if (!view) return sendJson(res, 404, { error: 'not a file of the configured event log (see /api/logs)' });
      sendJson(res, 200, view);
    } finally {
      this.replaying = false;
    }
  }

  /**
   * An uploaded log, at most MAX_UPLOAD_BYTES. Only as application/octet-stream: a cross-site form cannot send
   * that type without the browser asking first, and the endpoint never says yes.
   */
  private async upload(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if ((req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase() !== 'application/octet-stream') {
      req.resume();
      return sendJson(res, 415, { error: 'send the log as application/octet-stream' });
    }
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > MAX_UPLOAD_BYTES) return this.tooLarge(req, res);
    const chunks: Buffer[] = [];
    let size = 0;
    const tooLarge = await new Promise<boolean>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_UPLOAD_BYTES) {
          req.off('data', onData);
          resolve(true);
          return;
        }
        chunks.push(chunk);
      };
      req.on('data', onData);
      req.once('end', () => resolve(false));
      req.once('error', reject);
    });
    if (tooLarge) return this.tooLarge(req, res);
    // A fresh buffer of its own, handed over to the worker without a copy.
    const body = new Uint8Array(size);
    let at = 0;
    for (const c of chunks) {
      body.set(c, at);
      at += c.length;
    }
    await this.replay(res, () => offThread<ReplayView>({ kind: 'replay-upload', body, source: `upload (${size} bytes)` }, [body.buffer]));
  }

  /**
   * 413, then the rest of the body is read and dropped (up to another MAX_UPLOAD_BYTES, for at most 10 s): a
   * socket closed with unread bytes in it is reset, and the reset can overtake the answer.
   */
  private tooLarge(req: IncomingMessage, res: ServerResponse): void {
    let dropped = 0;
    const stop = setTimeout(() => req.destroy(), 10_000).unref();
    req.on('data', (chunk: Buffer) => {
      dropped += chunk.length;
      if (dropped > MAX_UPLOAD_BYTES) req.destroy();
    });
    req.once('close', () => clearTimeout(stop));
    req.resume();
    sendJson(res, 413, { error: `a log of at most ${MAX_UPLOAD_BYTES} bytes can be uploaded; replay larger ones with mxproxy replay` }, { Connection: 'close' });
  }
}
