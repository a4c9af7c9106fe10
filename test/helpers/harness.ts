/**
 * Loopback fixtures for integration tests: TCP backends, a proxy started in-process on port 0, and an
 * mxproxy/1 client. Everything binds to 127.0.0.1 and is closed by the test that opened it.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import type { ProxyEvent } from '../../machines/proxy.js';
import type { Clock } from '../../src/clock.js';
import { readProxyConfig } from '../../src/config/index.js';
import type { ProxyConfig } from '../../src/config/types.js';
import { createLogger, type LogFormat } from '../../src/log.js';
import { ALPN_PROTOCOL, FrameReader, decodeBody, encodeRequest, parseReply, type Reply } from '../../src/protocol/frame.js';
import { startProxy, type ProxyHandle, type ProxyOptions } from '../../src/proxy/runtime.js';
import { parseHostPort } from '../../src/shared/address.js';
import { Writable } from 'node:stream';
import type { CertFiles, TestPki } from './pki.js';
import fs from 'node:fs';

export interface Backend {
  port: number;
  address: string;
  /** Sockets currently open on the backend side. */
  open: Set<net.Socket>;
  /** Every socket it ever accepted, in order. */
  accepted: net.Socket[];
  close(): Promise<void>;
}

/** A TCP server on 127.0.0.1:0 running `handler` for each connection. */
export async function startBackend(handler: (s: net.Socket) => void): Promise<Backend> {
  const open = new Set<net.Socket>();
  const accepted: net.Socket[] = [];
  const server = net.createServer((s) => {
    open.add(s);
    accepted.push(s);
    s.on('error', () => {});
    s.on('close', () => open.delete(s));
    handler(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    open,
    accepted,
    close: () =>
      new Promise<void>((r) => {
        for (const s of open) s.destroy();
        server.close(() => r());
      }),
  };
}

export const echoHandler = (s: net.Socket) => s.pipe(s);

/**
 * Ports to hand out, below the kernel's ephemeral range. Tests run in parallel: a port taken from the ephemeral
 * range (listen on 0, close) can be given a moment later to another test's port-0 listener or outgoing
 * connection, and then a "dead" port answers, or a process told to listen there gets EADDRINUSE (both seen in
 * CI). Below the range only tests that ask here take ports, at random, so collisions are negligible.
 */
function lowPortRange(): { from: number; to: number } | undefined {
  try {
    const start = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return start >= 12_000 ? { from: start - 10_000, to: start } : undefined;
  } catch {
    return undefined;
  }
}
const LOW_PORTS = lowPortRange();

function bindable(port: number): Promise<boolean> {
  const srv = net.createServer();
  return new Promise((resolve) => {
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A port on which nothing listens, and which no port-0 listener of a parallel test will get: for
 * ECONNREFUSED, or to give to a process that listens on it later. */
export async function deadPort(): Promise<number> {
  if (LOW_PORTS) {
    for (let i = 0; i < 100; i++) {
      const port = LOW_PORTS.from + Math.floor(Math.random() * (LOW_PORTS.to - LOW_PORTS.from));
      if (await bindable(port)) return port;
    }
  }
  // no Linux range to stay below: bound, then closed
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export interface Harness {
  proxy: ProxyHandle;
  port: number;
  config: ProxyConfig;
  /** Every event the actors received, in order. */
  events: ProxyEvent[];
  /** Log lines (JSON objects) written by the proxy's logger at debug level (none with `logFormat: 'text'`). */
  logs: Record<string, unknown>[];
  /** Everything the logger wrote, as written (text or JSON lines). */
  output: string[];
  stop(): Promise<void>;
}

export interface HarnessOptions {
  /** `name addr [addr...]` entries. */
  servers: Record<string, string[]>;
  /** `identity-glob target...` entries. */
  allow: string[];
  extra?: string;
  /** Default 'json' (parsed into `logs`). */
  logFormat?: LogFormat;
  /** The proxy's clock (default: the system clock). */
  clock?: Clock;
  /** The rate limit of TLS refusal and decline warnings (ProxyOptions.warnIntervalMs). */
  warnIntervalMs?: number;
  /** The first session-ticket key: harnesses started with the same one resume each other's sessions. */
  ticketKeys?: Buffer;
  /** Passed to startProxy (XState inspection). */
  inspect?: ProxyOptions['inspect'];
  /** Changes to the parsed config before the proxy starts (e.g. adminListen on port 0). */
  adjust?: (config: ProxyConfig) => ProxyConfig;
}

export async function startHarness(pki: TestPki, opts: HarnessOptions): Promise<Harness> {
  const lines = [
    '[proxy]',
    'listen = "127.0.0.1:5678"',
    `sslCertificate = "${pki.server.cert} ${pki.server.key} ${pki.caFile}"`,
    ...Object.entries(opts.servers).map(([name, addrs]) => `server = "${name} ${addrs.join(' ')}"`),
    ...opts.allow.map((a) => `allow = "${a}"`),
    opts.extra ?? '',
  ];
  const parsed = readProxyConfig(lines.join('\n'), `${pki.dir}/test.config`);
  const listenAny: ProxyConfig = { ...parsed, listen: [{ host: '127.0.0.1', port: 0 }] };
  const config = opts.adjust ? opts.adjust(listenAny) : listenAny;
  const events: ProxyEvent[] = [];
  const logs: Record<string, unknown>[] = [];
  const output: string[] = [];
  const format = opts.logFormat ?? 'json';
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      output.push(chunk.toString());
      if (format === 'json') for (const line of chunk.toString().split('\n')) if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const logger = createLogger({ format, level: 'debug', stream: sink });
  const proxy = await startProxy({
    config,
    logger,
    onEvent: (e) => events.push(e),
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.warnIntervalMs ? { warnIntervalMs: opts.warnIntervalMs } : {}),
    ...(opts.ticketKeys ? { ticketKeys: opts.ticketKeys } : {}),
    ...(opts.inspect ? { inspect: opts.inspect } : {}),
  });
  const bound = parseHostPort(proxy.addresses[0] ?? '');
  if (!bound.ok) throw new Error(`the proxy bound no usable address: ${bound.message}`);
  const port = bound.value.port;
  return { proxy, port, config, events, logs, output, stop: () => proxy.stop() };
}

export interface ClientOptions {
  port: number;
  pki: TestPki;
  cert?: CertFiles | null;
  ca?: string;
}

/** A TLS client socket, with the TCP socket under it (to send a reset: `raw.resetAndDestroy()`). */
export type ClientSocket = tls.TLSSocket & { raw: net.Socket };

export function tlsConnect(opts: ClientOptions): Promise<ClientSocket> {
  const cert = opts.cert === undefined ? opts.pki.client : opts.cert;
  return new Promise((resolve, reject) => {
    const raw = net.connect({ host: '127.0.0.1', port: opts.port });
    raw.on('error', () => {});
    const s = tls.connect({
      socket: raw,
      servername: 'localhost',
      ca: fs.readFileSync(opts.ca ?? opts.pki.caFile),
      ...(cert ? { cert: fs.readFileSync(cert.cert), key: fs.readFileSync(cert.key) } : {}),
      ALPNProtocols: [ALPN_PROTOCOL],
    });
    s.once('secureConnect', () => {
      s.off('error', reject);
      s.setNoDelay(true);
      resolve(Object.assign(s, { raw }));
    });
    s.once('error', reject);
  });
}

/** Reads one reply frame; resolves with it and any bytes that followed it. */
export function readReply(s: tls.TLSSocket, timeoutMs = 5000): Promise<{ reply: Reply; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const reader = new FrameReader(1 << 16);
    const timer = setTimeout(() => done(new Error('no reply within ' + timeoutMs + ' ms')), timeoutMs);
    const onData = (d: Buffer) => {
      const r = reader.push(d);
      if (r.kind === 'incomplete') return;
      if (r.kind === 'error') return done(new Error(r.message));
      done(null, { reply: parseReply(decodeBody(r.body)), rest: Buffer.from(r.rest) });
    };
    const onClose = () => done(new Error('closed before a reply'));
    const onError = (e: Error) => done(e);
    function done(err: Error | null, v?: { reply: Reply; rest: Buffer }) {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('close', onClose);
      s.off('error', onError);
      s.pause();
      if (err) reject(err);
      else resolve(v!);
    }
    s.on('data', onData);
    s.once('close', onClose);
    s.once('error', onError);
  });
}

/** Connects, asks for `target`, returns the socket and the reply. */
export async function request(opts: ClientOptions & { target: string; early?: Buffer }) {
  const s = await tlsConnect(opts);
  s.on('error', () => {});
  const frame = encodeRequest(opts.target);
  s.write(opts.early ? Buffer.concat([frame, opts.early]) : frame);
  const { reply, rest } = await readReply(s);
  return { socket: s, reply, rest };
}

/** Resolves when the socket has emitted 'close' (at once if it already has), or rejects after ms. */
export function closed(s: net.Socket, ms = 3000): Promise<number> {
  const t0 = Date.now();
  if (s.closed) return Promise.resolve(0);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`socket not closed within ${ms} ms`)), ms);
    s.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - t0);
    });
  });
}

/** Collects everything a socket sends until it ends; resolves with its SHA-256 and length. */
export function digestUntilEnd(s: net.Socket, rest?: Buffer): Promise<{ sha256: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    let bytes = 0;
    if (rest?.length) {
      h.update(rest);
      bytes += rest.length;
    }
    s.on('data', (d: Buffer) => {
      h.update(d);
      bytes += d.length;
    });
    s.once('end', () => resolve({ sha256: h.digest('hex'), bytes }));
    s.once('error', reject);
    s.resume();
  });
}

/** Deterministic pseudo-random bytes (fast, reproducible). */
export function patternBytes(n: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i + 4 <= n; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeUInt32LE(x >>> 0, i);
  }
  for (let i = n - (n % 4); i < n; i++) b[i] = i & 0xff;
  return b;
}

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Polls `cond` every 10 ms until true or `ms` elapse. */
export async function waitFor(cond: () => boolean, ms = 3000, what = 'condition'): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
