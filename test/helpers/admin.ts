/**
 * The admin endpoint in tests: a harness proxy with adminListen on 127.0.0.1, port 0, plain HTTP requests, and a
 * Server-Sent Events reader.
 */
import http from 'node:http';
import type { ProxyConfig } from '../../src/config/types.js';
import { startHarness, type Harness, type HarnessOptions } from './harness.js';
import type { TestPki } from './pki.js';

export interface AdminHarness extends Harness {
  /** "http://127.0.0.1:<port>" */
  base: string;
}

/** A harness with the admin endpoint on a free loopback port (and the token, when given). */
export async function startAdminHarness(pki: TestPki, opts: HarnessOptions & { token?: string }): Promise<AdminHarness> {
  const extra = [opts.extra ?? '', 'adminListen = "127.0.0.1:9678"', opts.token ? `adminToken = "${opts.token}"` : ''].join('\n');
  const h = await startHarness(pki, {
    ...opts,
    extra,
    adjust: (c: ProxyConfig) => {
      const adjusted = opts.adjust ? opts.adjust(c) : c;
      return adjusted.admin ? { ...adjusted, admin: { ...adjusted.admin, listen: { host: '127.0.0.1', port: 0 } } } : adjusted;
    },
  });
  if (!h.proxy.adminAddress) throw new Error('the admin endpoint did not start');
  return { ...h, base: `http://${h.proxy.adminAddress}` };
}

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const quieted = new WeakSet<object>();

/** One request with node:http (fetch would not let a test send any Host header it likes). */
export function httpRequest(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: Buffer } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    // A server that refuses a large body answers before reading it and closes: the rest of the write fails
    // after the answer is in.
    req.on('socket', (socket) => {
      // Once per socket: the default agent keeps sockets alive and hands them to the next request.
      if (!quieted.has(socket)) socket.on('error', () => {});
      quieted.add(socket);
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`no answer from ${url} within 30 s`)));
    req.end(opts.body);
  });
}

export async function getJson<T>(url: string, headers?: Record<string, string>): Promise<T> {
  const r = await httpRequest(url, headers ? { headers } : {});
  if (r.status !== 200) throw new Error(`GET ${url}: ${r.status} ${r.body}`);
  return JSON.parse(r.body) as T;
}

/** One metric's value from Prometheus text; labels as written (`code="ERR_NOT_ALLOWED"`), or none. */
export function metricValue(text: string, name: string, labels = ''): number | undefined {
  const head = labels ? `${name}{${labels}} ` : `${name} `;
  const line = text.split('\n').find((l) => l.startsWith(head));
  return line === undefined ? undefined : Number(line.slice(head.length));
}

export interface SseEvent {
  event: string;
  data: string;
}

/** Reads /events: every message as it arrives, and everything as received (to look for raw bytes). */
export interface SseReader {
  events: SseEvent[];
  raw(): string;
  close(): void;
}

export function readEvents(url: string, headers: Record<string, string> = {}): Promise<SseReader> {
  return new Promise((resolve, reject) => {
    const events: SseEvent[] = [];
    let raw = '';
    let pending = '';
    const req = http.get(url, { headers }, (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`GET ${url}: ${res.statusCode}`));
        res.resume();
        return;
      }
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        raw += chunk;
        pending += chunk;
        let end: number;
        while ((end = pending.indexOf('\n\n')) >= 0) {
          const block = pending.slice(0, end);
          pending = pending.slice(end + 2);
          let event = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data.push(line.slice(6));
          }
          if (data.length) events.push({ event, data: data.join('\n') });
        }
      });
      res.on('error', () => {});
      resolve({ events, raw: () => raw, close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}
