/**
 * `npm run bench`: mxproxy against the baseline "client straight to the same echo/sink server over mutual TLS",
 * measured in one run and printed side by side with the ratio to the baseline.
 *
 *   node dist/scripts/bench.js [--duration 4] [--idle 2000] [--conns 16] [--cases bulk,conn,conn-resumed,latency,idle,chain] [--rounds 1]
 *                              [--no-event-log] [--admin] [--json]
 *
 * Peers (child processes, started and stopped here):
 *   direct TLS  benchBackends.js --tls: echo and sink servers that terminate mutual TLS themselves
 *   mxproxy     dist/src/cli/main.js start -c <temp config>, in front of benchBackends.js (plain TCP echo + sink)
 *   mxproxy + event log   the same with `eventLog` at lifecycle level (a file in the temp dir); its column
 *               "log cost" is with/without (1.00× = free). Left out with --no-event-log.
 *   mxproxy + admin  (--admin) the same with `adminListen` on loopback and one page's live feed connected
 *               (GET /events, read here for the whole run); its column "admin cost" is with/without.
 * Certificates (EC P-256 CA, server CN=localhost, client CN=bench-client) are made fresh in a temp dir with the
 * project's own src/certs module. With taskset (and two CPUs) the server under test runs on CPU 0; this process
 * (the load), its worker threads and the plain backends on CPU 1.
 *
 * Cases (each runs on the baseline, then on mxproxy, back to back):
 *   bulk     one stream into the sink for --duration s; MB/s counted from what the sink acknowledged
 *   conn     --conns loops of: new mTLS connection (+ mxproxy/1 request and reply) + 64 B echo + close
 *   conn-resumed  the same, each load thread resuming the latest TLS session it was given (as connect() with a
 *            session cache does); the report sets its CPU per connection against conn's, per peer
 *   latency  1 KiB ping-pong over one connection: p50/p99
 *   idle     RSS of the server process with --idle open idle pairs, minus its RSS before, per pair
 *   chain    (peers of its own, see "chain" below) a plain-TCP client through `mxproxy forward` → `mxproxy start`
 *            against the same through stunnel (client mode) → HAProxy: 64 B and 1 KiB ping-pong p50/p99 on one
 *            connection, and --conns loops of new connection + 64 B echo + close with both processes' CPU; skipped
 *            with a note where stunnel or HAProxy is not installed
 * The CPU figures are utime+stime of the server process under test (/proc/<pid>/stat): the proxy itself (not
 * its plain backends), or the TLS echo/sink server — independent of how fast the load generator is.
 *
 * Everything is bounded: each case by its duration plus a timeout, the whole run by a deadline.
 */
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { ALPN_PROTOCOL, FrameReader, decodeBody, encodeRequest, parseReply, type Reply } from '../src/protocol/frame.js';
import { withOpensslConfig } from '../src/process/opensslConfig.js';

const MiB = 1 << 20;
const now = (): number => performance.now(); // ms
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

// ------------------------------------------------------------------------------------------------ client side

/**
 * Where a client connects: `mx` means speak mxproxy/1 (request `name`) after the TLS handshake; `plain` means
 * plain TCP, no TLS at all (the local end of a chain: a forwarder's port, stunnel's client-mode port).
 */
interface Target {
  port: number;
  mx: boolean;
  name: 'echo' | 'sink';
  plain?: boolean;
}

/** The client's TLS material, PEM text (cheap to hand to worker threads). */
interface ClientTls {
  ca: string;
  cert: string;
  key: string;
}

interface Conn {
  /** A TLSSocket, or a plain socket for a `plain` target. */
  s: net.Socket;
  /** Bytes that arrived after the proxy's reply frame (payload already). */
  rest: Buffer;
}

const CONNECT_TIMEOUT_MS = 10_000;

/** One secure context per thread: built from PEM on every connect, it would cost the load generator dearly. */
const contexts = new Map<ClientTls, tls.SecureContext>();
function contextFor(m: ClientTls): tls.SecureContext {
  let ctx = contexts.get(m);
  if (!ctx) {
    ctx = tls.createSecureContext({ ca: m.ca, cert: m.cert, key: m.key });
    contexts.set(m, ctx);
  }
  return ctx;
}

/** Sessions to resume with (conn-resumed): the latest ticket this thread was given, per port. */
type Sessions = Map<number, Buffer>;

/**
 * A mutual-TLS connection, with the mxproxy/1 request and reply done when `t.mx`. Resolves with the socket
 * paused: the caller attaches its 'data' handler, then resumes it. With `sessions`, offers the latest one for
 * the port and keeps the tickets that arrive.
 */
function openConn(t: Target, m: ClientTls, info?: { tls?: string }, sessions?: Sessions): Promise<Conn> {
  if (t.plain) return openPlain(t.port);
  return new Promise((resolve, reject) => {
    const session = sessions?.get(t.port);
    const s = tls.connect({
      host: '127.0.0.1',
      port: t.port,
      servername: 'localhost',
      secureContext: contextFor(m),
      ...(t.mx ? { ALPNProtocols: [ALPN_PROTOCOL] } : {}),
      ...(session ? { session } : {}),
    });
    if (sessions) s.on('session', (b: Buffer) => sessions.set(t.port, b));
    s.on('error', () => {}); // reported through 'close' (and `fail`)
    let settled = false;
    const timer = setTimeout(() => fail(new Error(`no ${t.mx ? 'reply' : 'TLS handshake'} within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
    const onError = (err: Error) => fail(err);
    const onClose = () => fail(new Error(`connection closed before ${t.mx ? 'the reply' : 'the TLS handshake completed'}`));
    s.once('error', onError);
    s.once('close', onClose);
    function fail(err: Error): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      reject(err);
    }
    function ok(rest: Buffer): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.off('error', onError);
      s.off('close', onClose);
      s.pause();
      resolve({ s, rest });
    }
    s.once('secureConnect', () => {
      s.setNoDelay(true);
      if (info && info.tls === undefined) info.tls = `${s.getProtocol() ?? '?'} ${s.getCipher().standardName}`;
      if (!t.mx) return ok(Buffer.alloc(0));
      const reader = new FrameReader(1 << 16);
      const onData = (d: Buffer) => {
        const r = reader.push(d);
        if (r.kind === 'incomplete') return;
        s.off('data', onData);
        if (r.kind === 'error') return fail(new Error(`bad reply frame from the proxy: ${r.message}`));
        let reply: Reply;
        try {
          reply = parseReply(decodeBody(r.body));
        } catch (err) {
          return fail(new Error(`bad reply frame from the proxy: ${errorText(err)}`));
        }
        if (!reply.ok) return fail(new Error(`proxy declined target "${t.name}": ${reply.code} ${reply.message}`));
        ok(Buffer.from(r.rest));
      };
      s.on('data', onData);
      s.write(encodeRequest(t.name));
    });
  });
}

/** A plain TCP connection (TCP_NODELAY), paused as openConn's. */
function openPlain(port: number): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, noDelay: true });
    s.on('error', () => {}); // reported through 'close' (and the rejection)
    const timer = setTimeout(() => fail(new Error(`no TCP connection within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
    const onError = (err: Error) => fail(err);
    s.once('error', onError);
    function fail(err: Error): void {
      clearTimeout(timer);
      s.destroy();
      reject(err);
    }
    s.once('connect', () => {
      clearTimeout(timer);
      s.off('error', onError);
      s.pause();
      resolve({ s, rest: Buffer.alloc(0) });
    });
  });
}

/** Writes `payload` and waits until as many bytes came back (counting `rest` first). */
function echoOnce(c: Conn, payload: Buffer, timeoutMs = CONNECT_TIMEOUT_MS): Promise<void> {
  return new Promise((resolve, reject) => {
    const { s } = c;
    let got = c.rest.length;
    c.rest = Buffer.alloc(0);
    const done = (err: Error | null) => {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('close', onClose);
      s.pause();
      if (err) reject(err);
      else resolve();
    };
    const onData = (d: Buffer) => {
      got += d.length;
      if (got >= payload.length) done(null);
    };
    const onClose = () => done(new Error('connection closed before the echo came back'));
    const timer = setTimeout(() => done(new Error(`no echo within ${timeoutMs} ms`)), timeoutMs);
    s.on('data', onData);
    s.once('close', onClose);
    s.resume();
    s.write(payload);
  });
}

interface BulkResult {
  bytes: number;
  sec: number;
}

/** One stream into the sink for `durationMs`; ends on a MiB boundary and waits for the sink's acks. */
async function bulkStream(t: Target, m: ClientTls, durationMs: number): Promise<BulkResult> {
  const { s, rest } = await openConn(t, m);
  try {
    return await new Promise<BulkResult>((resolve, reject) => {
      const chunk = Buffer.alloc(64 << 10, 0x5a);
      let sent = 0;
      let acked = rest.length; // the sink writes one byte per MiB it received
      let stopped = false;
      const t0 = now();
      const stopAt = t0 + durationMs;
      const limitMs = durationMs + 15_000;
      const timer = setTimeout(
        () => reject(new Error(`the sink acknowledged ${acked} of ${sent / MiB} MiB within ${limitMs} ms`)),
        limitMs,
      );
      const finish = () => {
        if (!stopped || acked * MiB < sent) return;
        clearTimeout(timer);
        resolve({ bytes: sent, sec: (now() - t0) / 1000 });
      };
      s.on('data', (d: Buffer) => {
        acked += d.length;
        finish();
      });
      s.once('close', () => {
        clearTimeout(timer);
        reject(new Error(`connection closed during the transfer (${acked} MiB acknowledged)`));
      });
      s.resume();
      const pump = () => {
        for (;;) {
          if (sent % MiB === 0 && now() >= stopAt) {
            stopped = true;
            finish();
            return;
          }
          sent += chunk.length;
          if (!s.write(chunk)) {
            s.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
  } finally {
    s.destroy();
  }
}

interface LatencyResult {
  n: number;
  p50us: number;
  p99us: number;
  meanUs: number;
}

/** `size`-byte ping-pong over one connection for `durationMs` (after 50 warm-up rounds, at most 200,000). */
async function pingPong(t: Target, m: ClientTls, durationMs: number, size = 1024): Promise<LatencyResult> {
  const c = await openConn(t, m);
  const { s } = c;
  try {
    const payload = Buffer.alloc(size, 0x33);
    let got = c.rest.length;
    let want = 0;
    let wake: ((err?: Error) => void) | null = null;
    let closed = false;
    s.on('data', (d: Buffer) => {
      got += d.length;
      if (wake && got >= want) {
        const w = wake;
        wake = null;
        w();
      }
    });
    s.once('close', () => {
      closed = true;
      wake?.(new Error('connection closed during the ping-pong'));
    });
    s.resume();
    const lat: number[] = [];
    const stopAt = now() + durationMs;
    for (let i = 0; i < 200_000 && (i < 50 || now() < stopAt); i++) {
      want += size;
      const a = process.hrtime.bigint();
      const back = new Promise<void>((resolve, reject) => {
        if (got >= want) return resolve();
        if (closed) return reject(new Error('connection closed during the ping-pong'));
        const timer = setTimeout(() => reject(new Error(`no echo within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
        wake = (err?: Error) => {
          clearTimeout(timer);
          if (err) reject(err);
          else resolve();
        };
      });
      s.write(payload);
      await back;
      if (i >= 50) lat.push(Number(process.hrtime.bigint() - a) / 1000);
    }
    if (lat.length === 0) throw new Error('no round trips measured');
    lat.sort((x, y) => x - y);
    const q = (f: number) => lat[Math.min(lat.length - 1, Math.floor(f * lat.length))]!;
    return { n: lat.length, p50us: q(0.5), p99us: q(0.99), meanUs: lat.reduce((x, y) => x + y, 0) / lat.length };
  } finally {
    s.destroy();
  }
}

interface ConnResult {
  ok: number;
  /** Of those, how many resumed a TLS session. */
  resumed: number;
  errors: number;
  firstError: string | null;
  sec: number;
}

const MAX_CONNS_PER_LOOP = 100_000;

/** `loops` concurrent loops of connect + 64 B echo + close, for `durationMs`; resuming sessions with `resume`. */
async function connLoops(t: Target, m: ClientTls, loops: number, durationMs: number, resume: boolean): Promise<ConnResult> {
  const payload = Buffer.alloc(64, 0x31);
  const sessions: Sessions | undefined = resume ? new Map() : undefined;
  let ok = 0;
  let resumed = 0;
  let errors = 0;
  let firstError: string | null = null;
  const t0 = now();
  const stopAt = t0 + durationMs;
  const loop = async () => {
    for (let i = 0; i < MAX_CONNS_PER_LOOP && now() < stopAt; i++) {
      let c: Conn | null = null;
      try {
        c = await openConn(t, m, undefined, sessions);
        await echoOnce(c, payload);
        ok++;
        if (c.s instanceof tls.TLSSocket && c.s.isSessionReused()) resumed++;
      } catch (err) {
        errors++;
        firstError ??= errorText(err);
        await sleep(10);
      } finally {
        c?.s.destroy();
      }
    }
  };
  await Promise.all(Array.from({ length: loops }, loop));
  return { ok, resumed, errors, firstError, sec: (now() - t0) / 1000 };
}

// ------------------------------------------------------------------------------------------------ worker side

interface ConnJob {
  target: Target;
  tls: ClientTls;
  loops: number;
  durationMs: number;
  resume: boolean;
}

type WorkerMessage = { type: 'ready' } | { type: 'result'; result: ConnResult } | { type: 'failed'; message: string };

async function workerMain(): Promise<void> {
  const port = parentPort!;
  const job = workerData as ConnJob;
  const go = once(port, 'message');
  port.postMessage({ type: 'ready' } satisfies WorkerMessage);
  await go;
  try {
    const result = await connLoops(job.target, job.tls, job.loops, job.durationMs, job.resume);
    port.postMessage({ type: 'result', result } satisfies WorkerMessage);
  } catch (err) {
    port.postMessage({ type: 'failed', message: errorText(err) } satisfies WorkerMessage);
  }
}

/**
 * Runs the conn loops on worker threads; `between` is called when every worker is ready (right before 'go')
 * and again when all have answered, so the caller can read the peer's CPU time around the measured part.
 */
async function connOnWorkers(job: Omit<ConnJob, 'loops'>, loops: number, threads: number, around: () => void): Promise<ConnResult> {
  const n = Math.max(1, Math.min(threads, loops));
  const share = (i: number) => Math.floor(loops / n) + (i < loops % n ? 1 : 0);
  const workers = Array.from({ length: n }, (_, i) => new Worker(new URL(import.meta.url), { workerData: { ...job, loops: share(i) } satisfies ConnJob }));
  const limitMs = job.durationMs + 30_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    const ready: Promise<void>[] = [];
    const results: Promise<ConnResult>[] = [];
    for (const w of workers) {
      let readyResolve!: () => void;
      ready.push(new Promise<void>((r) => (readyResolve = r)));
      results.push(
        new Promise<ConnResult>((resolve, reject) => {
          w.on('message', (msg: WorkerMessage) => {
            if (msg.type === 'ready') readyResolve();
            else if (msg.type === 'result') resolve(msg.result);
            else reject(new Error(msg.message));
          });
          w.on('error', reject);
          w.on('exit', (code) => reject(new Error(`load worker exited (code ${code}) before reporting`)));
        }),
      );
    }
    // a worker that fails before 'go' rejects allResults, which ends the wait for the others' 'ready'
    const allResults = Promise.all(results);
    allResults.catch(() => {});
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`connection loops did not finish within ${limitMs} ms`)), limitMs);
    });
    deadline.catch(() => {});
    await Promise.race([Promise.all(ready), allResults, deadline]);
    around();
    for (const w of workers) w.postMessage('go');
    const all = await Promise.race([allResults, deadline]);
    around();
    return {
      ok: all.reduce((a, r) => a + r.ok, 0),
      resumed: all.reduce((a, r) => a + r.resumed, 0),
      errors: all.reduce((a, r) => a + r.errors, 0),
      firstError: all.find((r) => r.firstError)?.firstError ?? null,
      sec: Math.max(...all.map((r) => r.sec)),
    };
  } finally {
    clearTimeout(timer);
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

// ------------------------------------------------------------------------------------------------ processes

let clockTicks = 100;
function readClockTicks(): number {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isInteger(n) && n > 0 ? n : 100;
}

/** Field `n` (1-based, as in proc(5)) of /proc/<pid>/stat, from field 3 on (the name in field 2 may hold spaces). */
function procStat(pid: number, n: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[n - 3]);
}

/** CPU time (utime + stime, fields 14 and 15) of one process, ms. */
function cpuMs(pid: number): number {
  return ((procStat(pid, 14) + procStat(pid, 15)) * 1000) / clockTicks;
}

/** Minor page faults of one process so far (field 10): memory the kernel had to map in. */
function minorFaults(pid: number): number {
  return procStat(pid, 10);
}

/** Resident set size of one process, KiB. */
function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for process ${pid}`);
  return Number(m[1]);
}

/** The soft limit on open files, or null when unknown/unlimited. */
function openFileLimit(): number | null {
  try {
    const m = /^Max open files\s+(\S+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    const n = Number(m?.[1]);
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

/** `mxproxy start` runs as the service unit and npm start run it: with the shipped OpenSSL settings (one TLS 1.3
 * session ticket per full handshake); the peers, the floor and the TLS backends keep OpenSSL's defaults. */
const SHIPPED_NODE_OPTIONS = withOpensslConfig([]);

const children = new Set<ChildProcess>();
const alive = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;
let pinned = false;

/** Starts `node <script> args` (on `cpu` when pinning); the child is stopped by PID at exit. */
function startNode(script: string, args: string[], cpu: number, stdio: StdioOptions): ChildProcess {
  return startProgram(process.execPath, [script, ...args], cpu, stdio);
}

/** Starts `command args` (on `cpu` when pinning: taskset execs it, so the child's PID is the program's). */
function startProgram(command: string, args: string[], cpu: number, stdio: StdioOptions): ChildProcess {
  const child = pinned ? spawn('taskset', ['-c', String(cpu), command, ...args], { stdio }) : spawn(command, args, { stdio });
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.on('error', () => {}); // spawn failures show up as an early exit
  return child;
}

async function stopChildren(): Promise<void> {
  await Promise.all(
    [...children].map(async (c) => {
      if (!alive(c)) return;
      const exited = once(c, 'exit');
      c.kill('SIGTERM');
      const t = setTimeout(() => alive(c) && c.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(t);
    }),
  );
}

/** Reads the first stdout line of a benchBackends child: the ports it listens on. */
async function backendPorts(child: ChildProcess, what: string): Promise<{ echo: number; sink: number }> {
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start within 15 s ${err.trim()}`)), 15_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out.slice(0, nl)) as { echo: number; sink: number });
      } catch {
        reject(new Error(`${what} printed "${out.slice(0, nl)}" instead of its ports`));
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${signal ?? `code ${code}`}) ${err.trim()}`));
    });
  });
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function waitForPort(port: number, child: ChildProcess, what: string, logTail: () => string): Promise<void> {
  const until = now() + 15_000;
  while (now() < until) {
    if (!alive(child)) throw new Error(`${what} exited (${child.signalCode ?? `code ${child.exitCode}`}) before listening${logTail()}`);
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (up) return;
    await sleep(100);
  }
  throw new Error(`${what} did not accept on 127.0.0.1:${port} within 15 s${logTail()}`);
}

/** A page's live feed: GET /events on the admin endpoint, read and counted, for as long as the run lasts. */
interface LiveFeed {
  messages: number;
  bytes: number;
  error: string | null;
  close(): void;
}

function openLiveFeed(port: number): Promise<LiveFeed> {
  return new Promise((resolve, reject) => {
    const feed: LiveFeed = { messages: 0, bytes: 0, error: null, close: () => req.destroy() };
    const req = http.get({ host: '127.0.0.1', port, path: '/events' }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`GET /events on the admin endpoint: HTTP ${res.statusCode}`));
        return;
      }
      res.on('data', (chunk: Buffer) => {
        feed.bytes += chunk.length;
        for (let i = chunk.indexOf('event: '); i >= 0; i = chunk.indexOf('event: ', i + 1)) feed.messages++;
      });
      res.on('error', () => {});
      res.once('close', () => (feed.error ??= req.destroyed ? null : 'the stream closed'));
      resolve(feed);
    });
    req.once('error', (err) => {
      feed.error = errorText(err);
      reject(err);
    });
  });
}

// ------------------------------------------------------------------------------------------------ cases

type CaseName = 'bulk' | 'conn' | 'conn-resumed' | 'latency' | 'idle' | 'chain';
/** The cases measured against direct TLS; `chain` has peers of its own (see "chain" below). */
type ClassicCase = Exclude<CaseName, 'chain'>;
const CASES: CaseName[] = ['bulk', 'conn', 'conn-resumed', 'latency', 'idle', 'chain'];
/** Idle first, on fresh processes: RSS per pair is not hidden in heap that earlier cases grew. The chain last. */
const RUN_ORDER: ClassicCase[] = ['idle', 'bulk', 'latency', 'conn', 'conn-resumed'];

interface Peer {
  key: 'direct' | 'mxproxy' | 'mxlog' | 'mxadmin';
  label: string;
  child: ChildProcess;
  pid: number;
  echo: Target;
  sink: Target;
  info: { tls?: string };
  /** Set when the peer cannot be measured (warm-up failed). */
  broken: string | null;
  logTail: () => string;
}

type Values = Record<string, number>;

interface Options {
  durationMs: number;
  idle: number;
  conns: number;
  threads: number;
  tls: ClientTls;
}

async function runCase(name: ClassicCase, peer: Peer, o: Options): Promise<Values> {
  const pid = peer.pid;
  switch (name) {
    case 'bulk': {
      const c0 = cpuMs(pid);
      const f0 = minorFaults(pid);
      const r = await bulkStream(peer.sink, o.tls, o.durationMs);
      const cpu = cpuMs(pid) - c0;
      const faults = minorFaults(pid) - f0;
      // faultsPerGB (JSON only): near 0 when freed buffers are reused; ~250 000 when each 4 KiB is mapped anew
      return { MBps: r.bytes / 1e6 / r.sec, cpuMsPerGB: cpu / (r.bytes / 1e9), faultsPerGB: faults / (r.bytes / 1e9), bytes: r.bytes, sec: r.sec, cpuMs: cpu };
    }
    case 'conn':
    case 'conn-resumed': {
      const resume = name === 'conn-resumed';
      const marks: number[] = [];
      const job = { target: peer.echo, tls: o.tls, durationMs: o.durationMs, resume };
      const r = await connOnWorkers(job, o.conns, o.threads, () => marks.push(cpuMs(pid)));
      if (r.errors > 0) throw new Error(`${r.errors} of ${r.ok + r.errors} connections failed; first: ${r.firstError ?? '?'}`);
      if (r.ok === 0) throw new Error('no connection completed');
      const cpu = marks[1]! - marks[0]!;
      const values: Values = { connPerSec: r.ok / r.sec, cpuUsPerConn: (cpu * 1000) / r.ok, ok: r.ok, sec: r.sec, cpuMs: cpu };
      // Each loop's first connection is a full handshake (the loops start together, before any ticket).
      if (resume) values.resumedShare = r.resumed / r.ok;
      return values;
    }
    case 'latency': {
      const r = await pingPong(peer.echo, o.tls, o.durationMs);
      return { p50us: r.p50us, p99us: r.p99us, meanUs: r.meanUs, n: r.n };
    }
    case 'idle': {
      await sleep(300);
      const before = rssKiB(pid);
      const payload = Buffer.alloc(64, 0x31);
      const open: Conn[] = [];
      let errors = 0;
      let firstError: string | null = null;
      const t0 = now();
      const stopAt = t0 + 90_000;
      let next = 0;
      const opener = async () => {
        while (next < o.idle && now() < stopAt) {
          next++;
          let c: Conn | null = null;
          try {
            c = await openConn(peer.echo, o.tls);
            await echoOnce(c, payload);
            open.push(c);
          } catch (err) {
            c?.s.destroy();
            errors++;
            firstError ??= errorText(err);
          }
        }
      };
      try {
        await Promise.all(Array.from({ length: 16 }, opener));
        if (errors > 0) throw new Error(`${errors} of ${o.idle} idle pairs failed; first: ${firstError ?? '?'}`);
        if (open.length < o.idle) throw new Error(`only ${open.length} of ${o.idle} idle pairs opened within 90 s`);
        const openSec = (now() - t0) / 1000;
        await sleep(500);
        const after = rssKiB(pid);
        return { rssKiBPerPair: (after - before) / open.length, rssBeforeKiB: before, rssAfterKiB: after, pairs: open.length, openSec };
      } finally {
        for (const c of open) c.s.destroy();
        await sleep(300);
      }
    }
  }
}

interface Metric {
  case: ClassicCase;
  id: string;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
}

function metrics(o: { conns: number; idle: number }): Metric[] {
  return [
    { case: 'bulk', id: 'MBps', label: 'one stream into a sink', unit: 'MB/s', better: 'higher' },
    { case: 'bulk', id: 'cpuMsPerGB', label: 'its CPU per GB forwarded', unit: 'ms', better: 'lower' },
    { case: 'conn', id: 'connPerSec', label: `new mTLS conn + 64 B echo + close, ${o.conns} loops`, unit: '/s', better: 'higher' },
    { case: 'conn', id: 'cpuUsPerConn', label: 'its CPU per connection', unit: 'µs', better: 'lower' },
    { case: 'conn-resumed', id: 'connPerSec', label: `the same, TLS sessions resumed, ${o.conns} loops`, unit: '/s', better: 'higher' },
    { case: 'conn-resumed', id: 'cpuUsPerConn', label: 'its CPU per resumed connection', unit: 'µs', better: 'lower' },
    { case: 'latency', id: 'p50us', label: '1 KiB ping-pong p50', unit: 'µs', better: 'lower' },
    { case: 'latency', id: 'p99us', label: '1 KiB ping-pong p99', unit: 'µs', better: 'lower' },
    { case: 'idle', id: 'rssKiBPerPair', label: `RSS per idle pair, ${o.idle} pairs`, unit: 'KiB', better: 'lower' },
  ];
}

function median(values: number[]): number {
  const xs = [...values].sort((a, b) => a - b);
  const mid = xs.length >> 1;
  return xs.length % 2 ? xs[mid]! : (xs[mid - 1]! + xs[mid]!) / 2;
}

/** Per key, the median over rounds (each metric on its own). */
function medianValues(vs: Values[]): Values {
  const out: Values = {};
  for (const k of Object.keys(vs[0] ?? {})) out[k] = median(vs.map((v) => v[k]).filter((x): x is number => x !== undefined));
  return out;
}

function fmt(v: number): string {
  const a = Math.abs(v);
  if (a >= 100) return Math.round(v).toString();
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** >1 means mxproxy is better. Undefined when a value is missing or not positive. */
function ratioOf(m: Metric, base: number | undefined, proxy: number | undefined): number | undefined {
  if (base === undefined || proxy === undefined || !(base > 0) || !(proxy > 0)) return undefined;
  return m.better === 'higher' ? proxy / base : base / proxy;
}

// ------------------------------------------------------------------------------------------------ chain

/*
 * The `chain` case: the whole client-to-server path of a plant, where the client program speaks plain TCP.
 *
 *   app (load) → plain TCP → client side → mutual TLS → server side → plain TCP → echo backend
 *
 * mxproxy chain:  `mxproxy forward -c` ([client]: one forward to "echo")  →  `mxproxy start -c`
 * peer chain:     stunnel in client mode (client certificate, verifyChain, checkIP)  →  HAProxy (TCP mode,
 *                 `ssl ... verify required`, one thread), configured as in /work/shared/bench
 *
 * Both processes of a chain run on CPU 0 (pinned), the echo backend and the load on CPU 1. Measured, each on a
 * long-lived connection or with --conns loops: ping-pong latency for each of CHAIN_SIZES, and new connection +
 * 64 B echo + close per second with both processes' CPU per connection. Within a round each measurement runs on
 * one chain, then at once on the other (the order alternates between rounds); the ratio is the median of the
 * rounds' own ratios.
 */

/** Message sizes of the chain's ping-pong. */
const CHAIN_SIZES = [64, 1024] as const;
/** Unmeasured connections through each chain before the first round (bounded by CHAIN_WARM_MS). */
const CHAIN_WARM_CONNS = 3000;
const CHAIN_WARM_MS = 15_000;

interface ChainProcess {
  /** For the CPU split: `mxproxy forward`, `HAProxy`, … */
  name: string;
  child: ChildProcess;
  pid: number;
}

interface Chain {
  key: 'mxchain' | 'mxbase' | 'peerchain';
  label: string;
  /** Where the app connects: the client side's plain TCP port. */
  entry: Target;
  /** Client side first, then server side. */
  procs: ChainProcess[];
  broken: string | null;
  logTail: () => string;
  /** After a conn measurement: the share of TLS handshakes resumed on the middle hop, when the chain can say. */
  resumedShare?: () => Promise<number | undefined>;
}

interface ChainFiles {
  dir: string;
  echoPort: number;
  caFile: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  proxyJs: string;
  /** --baseline: another build's CLI, run as a third chain (what a change gained, in the same run). */
  baselineJs?: string | undefined;
}

/** The last lines of the log files, for an error message. */
function tailOf(files: string[]): () => string {
  return () =>
    files
      .map((f) => {
        try {
          const lines = fs.readFileSync(f, 'utf8').trim().split('\n').slice(-8).join('\n  ');
          return lines ? `\n  ${path.basename(f)}:\n  ${lines}` : '';
        } catch {
          return '';
        }
      })
      .join('');
}

/** A child with its stdout and stderr into `file`. */
function startLogged(command: string, args: string[], file: string): ChildProcess {
  const fd = fs.openSync(file, 'w');
  try {
    return startProgram(command, args, 0, ['ignore', fd, fd]);
  } finally {
    fs.closeSync(fd);
  }
}

/** `mxproxy forward` → `mxproxy start` of the CLI `js`: this build's, or with `key` mxbase the --baseline one. */
async function startMxChain(f: ChainFiles, key: 'mxchain' | 'mxbase', js: string): Promise<Chain> {
  const proxyPort = await freePort();
  const localPort = await freePort();
  const proxyConfig = path.join(f.dir, `${key}-proxy.config`);
  const forwardConfig = path.join(f.dir, `${key}-forward.config`);
  fs.writeFileSync(
    proxyConfig,
    [
      '[proxy]',
      `listen = "127.0.0.1:${proxyPort}"`,
      `sslCertificate = "${f.serverCert} ${f.serverKey} ${f.caFile}"`,
      `server = "echo 127.0.0.1:${f.echoPort}"`,
      'allow = "bench-client echo"',
      // one forwarder opening hundreds of connections a second from one address (as in the other cases)
      'connectRate = "off"',
      'maxPendingPerSource = 100000',
      '',
    ].join('\n'),
  );
  fs.writeFileSync(
    forwardConfig,
    [
      '[client]',
      `mxProxy = "127.0.0.1:${proxyPort}"`,
      `sslCertificate = "${f.clientCert} ${f.clientKey} ${f.caFile}"`,
      `forward = "127.0.0.1:${localPort} echo"`,
      '',
    ].join('\n'),
  );
  const logs = [path.join(f.dir, `${key}-forward.log`), path.join(f.dir, `${key}-proxy.log`)];
  const logTail = tailOf(logs);
  const proxy = startLogged(process.execPath, [...SHIPPED_NODE_OPTIONS, js, 'start', '-c', proxyConfig], logs[1]!);
  await waitForPort(proxyPort, proxy, `the ${key} chain's mxproxy start`, logTail);
  const forward = startLogged(process.execPath, [js, 'forward', '-c', forwardConfig], logs[0]!);
  await waitForPort(localPort, forward, `the ${key} chain's mxproxy forward`, logTail);
  return {
    key,
    label: key === 'mxchain' ? 'mxproxy forward → start' : 'baseline build',
    entry: { port: localPort, mx: false, name: 'echo', plain: true },
    procs: [
      { name: 'mxproxy forward', child: forward, pid: forward.pid! },
      { name: 'mxproxy start', child: proxy, pid: proxy.pid! },
    ],
    broken: null,
    logTail,
  };
}

/** The first of `names` on the PATH, or undefined. */
function which(names: string[]): string | undefined {
  for (const n of names) {
    const r = spawnSync('sh', ['-c', `command -v ${n}`], { encoding: 'utf8' });
    const found = r.status === 0 ? r.stdout.trim() : '';
    if (found) return found;
  }
  return undefined;
}

/** `show info` on HAProxy's stats socket, as name → value. */
function haproxyInfo(socketPath: string): Promise<Map<string, string>> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    let out = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('no answer on the HAProxy stats socket within 2 s'));
    }, 2000);
    s.on('data', (d: Buffer) => (out += d.toString()));
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    s.once('close', () => {
      clearTimeout(timer);
      const entries = out.split('\n').flatMap((l): [string, string][] => {
        const m = /^(\w+): (.*)$/.exec(l);
        return m ? [[m[1]!, m[2]!]] : [];
      });
      resolve(new Map(entries));
    });
    s.end('show info\n');
  });
}

/** The peer chain, or a reason it cannot run here (a program missing). */
async function startPeerChain(f: ChainFiles): Promise<Chain | string> {
  const haproxy = which(['haproxy']);
  const stunnel = which(['stunnel4', 'stunnel']);
  const missing = [haproxy ? '' : 'haproxy', stunnel ? '' : 'stunnel4'].filter(Boolean);
  if (missing.length > 0) return `${missing.join(' and ')} not installed (Debian: apt-get install -y haproxy stunnel4)`;
  const tlsPort = await freePort();
  const localPort = await freePort();
  // HAProxy's `crt` takes the certificate and its key in one file.
  const bundle = path.join(f.dir, 'server-bundle.pem');
  fs.writeFileSync(bundle, fs.readFileSync(f.serverCert, 'utf8') + fs.readFileSync(f.serverKey, 'utf8'), { mode: 0o600 });
  const statsSocket = path.join(f.dir, 'haproxy.sock');
  const haproxyConfig = path.join(f.dir, 'chain-haproxy.cfg');
  fs.writeFileSync(
    haproxyConfig,
    [
      'global',
      '  nbthread 1',
      '  maxconn 8000',
      `  stats socket ${statsSocket} mode 600 level user`,
      'defaults',
      '  mode tcp',
      '  timeout connect 5s',
      '  timeout client 60s',
      '  timeout server 60s',
      'frontend echo',
      `  bind 127.0.0.1:${tlsPort} ssl crt ${bundle} ca-file ${f.caFile} verify required`,
      '  default_backend echo',
      'backend echo',
      `  server e 127.0.0.1:${f.echoPort}`,
      '',
    ].join('\n'),
  );
  const stunnelConfig = path.join(f.dir, 'chain-stunnel.conf');
  fs.writeFileSync(
    stunnelConfig,
    [
      'foreground = yes',
      'pid =',
      'syslog = no',
      'debug = 3',
      'socket = l:TCP_NODELAY=1',
      'socket = r:TCP_NODELAY=1',
      '[echo]',
      'client = yes',
      `accept = 127.0.0.1:${localPort}`,
      `connect = 127.0.0.1:${tlsPort}`,
      `cert = ${f.clientCert}`,
      `key = ${f.clientKey}`,
      `CAfile = ${f.caFile}`,
      // as the forwarder: the proxy's certificate must chain to the CA and name the address dialled
      'verifyChain = yes',
      'checkIP = 127.0.0.1',
      '',
    ].join('\n'),
  );
  const logs = [path.join(f.dir, 'chain-stunnel.log'), path.join(f.dir, 'chain-haproxy.log')];
  const logTail = tailOf(logs);
  const hap = startLogged(haproxy!, ['-f', haproxyConfig, '-db'], logs[1]!);
  await waitForPort(tlsPort, hap, 'the chain\'s HAProxy', logTail);
  const stn = startLogged(stunnel!, [stunnelConfig], logs[0]!);
  await waitForPort(localPort, stn, 'the chain\'s stunnel', logTail);
  return {
    key: 'peerchain',
    label: 'stunnel → HAProxy',
    entry: { port: localPort, mx: false, name: 'echo', plain: true },
    procs: [
      { name: 'stunnel', child: stn, pid: stn.pid! },
      { name: 'HAProxy', child: hap, pid: hap.pid! },
    ],
    broken: null,
    logTail,
    // HAProxy's own figure, over its last second: read right after the conn measurement
    resumedShare: async () => {
      const v = Number((await haproxyInfo(statsSocket)).get('SslFrontendSessionReuse_pct'));
      return Number.isFinite(v) ? v / 100 : undefined;
    },
  };
}

type ChainStep = { kind: 'latency'; size: number } | { kind: 'conn' };
const CHAIN_STEPS: ChainStep[] = [...CHAIN_SIZES.map((size) => ({ kind: 'latency' as const, size })), { kind: 'conn' }];
const stepName = (s: ChainStep): string => (s.kind === 'latency' ? `${s.size} B ping-pong` : 'conn');

async function runChainStep(chain: Chain, step: ChainStep, o: Options): Promise<Values> {
  if (step.kind === 'latency') {
    const r = await pingPong(chain.entry, o.tls, o.durationMs, step.size);
    return { [`p50us${step.size}`]: r.p50us, [`p99us${step.size}`]: r.p99us, [`meanUs${step.size}`]: r.meanUs, [`n${step.size}`]: r.n };
  }
  const marks: number[][] = [];
  const job = { target: chain.entry, tls: o.tls, durationMs: o.durationMs, resume: false };
  const r = await connOnWorkers(job, o.conns, o.threads, () => marks.push(chain.procs.map((p) => cpuMs(p.pid))));
  if (r.errors > 0) throw new Error(`${r.errors} of ${r.ok + r.errors} connections failed; first: ${r.firstError ?? '?'}`);
  if (r.ok === 0) throw new Error('no connection completed');
  const each = chain.procs.map((_, i) => (marks[1]![i]! - marks[0]![i]!) * 1000 / r.ok);
  const values: Values = { connPerSec: r.ok / r.sec, cpuUsPerConn: each.reduce((a, b) => a + b, 0), ok: r.ok, sec: r.sec };
  each.forEach((us, i) => (values[`cpuUsPerConn${i === 0 ? 'Client' : 'Server'}Side`] = us));
  const share = await chain.resumedShare?.().catch(() => undefined);
  if (share !== undefined) values.resumedShare = share;
  return values;
}

interface ChainMetric {
  id: string;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
}

function chainMetrics(conns: number): ChainMetric[] {
  const size = (n: number) => (n >= 1024 ? `${n / 1024} KiB` : `${n} B`);
  return [
    ...CHAIN_SIZES.flatMap((n): ChainMetric[] => [
      { id: `p50us${n}`, label: `${size(n)} ping-pong p50`, unit: 'µs', better: 'lower' },
      { id: `p99us${n}`, label: `${size(n)} ping-pong p99`, unit: 'µs', better: 'lower' },
    ]),
    { id: 'connPerSec', label: `new conn + 64 B echo + close, ${conns} loops`, unit: '/s', better: 'higher' },
    { id: 'cpuUsPerConn', label: 'both processes\' CPU per connection', unit: 'µs', better: 'lower' },
    { id: 'cpuUsPerConnClientSide', label: '  of which the client side (forward; stunnel)', unit: 'µs', better: 'lower' },
    { id: 'cpuUsPerConnServerSide', label: '  of which the server side (start; HAProxy)', unit: 'µs', better: 'lower' },
  ];
}

interface ChainReport {
  chains: Chain[];
  /** Why the peer chain was not run, if it was not. */
  skipped: string | null;
  /** Per chain key: every round's values (steps merged). */
  rounds: Map<string, Values[]>;
  errors: { chain: string; step: string; error: string }[];
}

/** Starts both chains, measures them interleaved for `rounds` rounds, stops them. */
async function runChains(f: ChainFiles, o: Options, rounds: number, progress: (line: string) => void): Promise<ChainReport> {
  const report: ChainReport = { chains: [], skipped: null, rounds: new Map(), errors: [] };
  const chains = report.chains;
  try {
    // Run in this order, then reversed: this build's chain is always next to each of the others.
    const peer = await startPeerChain(f);
    if (typeof peer === 'string') {
      report.skipped = peer;
      progress(`chain: the stunnel → HAProxy chain is skipped: ${peer}`);
    } else {
      chains.push(peer);
    }
    chains.push(await startMxChain(f, 'mxchain', f.proxyJs));
    if (f.baselineJs) chains.push(await startMxChain(f, 'mxbase', f.baselineJs));
    // warm-up (JIT, first handshakes, a session to resume) and a check that each chain echoes at all
    const payload = Buffer.alloc(64, 0x31);
    for (const c of chains) {
      try {
        for (let i = 0; i < 30; i++) {
          const conn = await openConn(c.entry, o.tls);
          try {
            await echoOnce(conn, payload);
          } finally {
            conn.s.destroy();
          }
        }
        // Then the conn loops, unmeasured, for CHAIN_WARM_CONNS connections (at most CHAIN_WARM_MS): a Node
        // process's accept and dial path takes about 3000 connections to reach its steady CPU per connection (the
        // first 1000 cost ~2× it; measured); a long-running forwarder and proxy are past that.
        const warm = { ok: 0, t0: now() };
        while (warm.ok < CHAIN_WARM_CONNS && now() - warm.t0 < CHAIN_WARM_MS) {
          const r = await connOnWorkers({ target: c.entry, tls: o.tls, durationMs: 1000, resume: false }, o.conns, o.threads, () => {});
          if (r.errors > 0) throw new Error(`${r.errors} of ${r.ok + r.errors} connections failed; first: ${r.firstError ?? '?'}`);
          warm.ok += r.ok;
        }
        progress(`chain warm-up on ${c.label}: ${warm.ok} connections, ${((now() - warm.t0) / 1000).toFixed(1)} s`);
      } catch (err) {
        c.broken = errorText(err) + c.logTail();
        report.errors.push({ chain: c.label, step: 'warm-up', error: c.broken });
      }
    }
    for (let round = 0; round < rounds; round++) {
      const merged = new Map<string, Values>();
      for (const step of CHAIN_STEPS) {
        for (const c of round % 2 === 0 ? chains : [...chains].reverse()) {
          if (c.broken !== null) continue;
          const t0 = now();
          try {
            const v = await runChainStep(c, step, o);
            merged.set(c.key, { ...merged.get(c.key), ...v });
            progress(`chain ${stepName(step)} on ${c.label}${rounds > 1 ? ` (round ${round + 1})` : ''}: ${((now() - t0) / 1000).toFixed(1)} s`);
          } catch (err) {
            progress(`chain ${stepName(step)} on ${c.label}: failed after ${((now() - t0) / 1000).toFixed(1)} s`);
            const gone = c.procs.filter((p) => !alive(p.child)).map((p) => `${p.name} exited (${p.child.signalCode ?? `code ${p.child.exitCode}`})`);
            report.errors.push({ chain: c.label, step: stepName(step), error: errorText(err) + (gone.length ? ` (${gone.join(', ')})${c.logTail()}` : '') });
          }
          await sleep(300);
        }
      }
      // every chain measured gets an entry per round (empty when all its steps failed): rounds pair by index
      for (const c of chains) if (c.broken === null) report.rounds.set(c.key, [...(report.rounds.get(c.key) ?? []), merged.get(c.key) ?? {}]);
    }
  } catch (err) {
    report.errors.push({ chain: chains.at(-1)?.label ?? 'chain', step: 'start', error: errorText(err) });
  } finally {
    // by PID, each chain's processes: the server side last, so the client side never dials a dead end
    for (const c of chains) {
      for (const p of c.procs) {
        if (!alive(p.child)) continue;
        const exited = once(p.child, 'exit');
        p.child.kill('SIGTERM');
        const t = setTimeout(() => alive(p.child) && p.child.kill('SIGKILL'), 2000);
        await exited;
        clearTimeout(t);
      }
    }
  }
  return report;
}

/** The chain section of the report: Markdown lines, or JSON lines through `line`. */
function chainReport(r: ChainReport, conns: number, rounds: number, line?: (v: unknown) => void): string[] {
  const mx = r.chains.find((c) => c.key === 'mxchain');
  const peer = r.chains.find((c) => c.key === 'peerchain');
  const base = r.chains.find((c) => c.key === 'mxbase');
  const mxRounds = r.rounds.get('mxchain') ?? [];
  const peerRounds = r.rounds.get('peerchain') ?? [];
  const baseRounds = r.rounds.get('mxbase') ?? [];
  const med = (vs: Values[], id: string): number | undefined => {
    const xs = vs.map((v) => v[id]).filter((x): x is number => x !== undefined);
    return xs.length ? median(xs) : undefined;
  };
  /** Each round's own ratio (>1: this build's mxproxy chain is better), where both have the value in that round. */
  const ratiosTo = (other: Values[]) => (m: ChainMetric): number[] =>
    mxRounds.flatMap((x, i) => {
      const p = other[i]?.[m.id];
      const v = x[m.id];
      if (p === undefined || v === undefined || !(p > 0) || !(v > 0)) return [];
      return [m.better === 'higher' ? v / p : p / v];
    });
  const ratios = ratiosTo(peerRounds);
  const baseRatios = ratiosTo(baseRounds);
  const medianOr = (xs: number[]) => (xs.length ? median(xs) : null);
  const ms = chainMetrics(conns);
  if (line) {
    for (const m of ms) {
      const each = ratios(m);
      line({
        kind: 'chain-metric',
        metric: m.id,
        label: m.label.trim(),
        unit: m.unit,
        better: m.better,
        mxproxy: med(mxRounds, m.id) ?? null,
        peer: med(peerRounds, m.id) ?? null,
        ratio: medianOr(each),
        ratios: each,
        ...(base ? { baseline: med(baseRounds, m.id) ?? null, baselineRatio: medianOr(baseRatios(m)), baselineRatios: baseRatios(m) } : {}),
      });
    }
    for (const [k, vs] of r.rounds) vs.forEach((v, i) => line({ kind: 'chain-raw', chain: k, round: i + 1, ...v }));
    if (r.skipped) line({ kind: 'chain-skipped', chain: 'peerchain', reason: r.skipped });
    for (const e of r.errors) line({ kind: 'error', case: 'chain', peer: e.chain, step: e.step, error: e.error });
    return [];
  }
  const out: string[] = [
    '',
    'chain: app → plain TCP → client side → mutual TLS → server side → plain TCP → echo',
    '',
    `| metric | ${mx?.label ?? 'mxproxy'} | ${peer?.label ?? 'stunnel → HAProxy'} | ratio |${base ? ' baseline build | vs baseline |' : ''}`,
    `|---|---:|---:|---:|${base ? '---:|---:|' : ''}`,
  ];
  const cell = (v: number | undefined, c: Chain | undefined) => (v !== undefined ? fmt(v) : c ? 'error' : '—');
  const times = (xs: number[]) => (xs.length ? `${median(xs).toFixed(2)}×` : '—');
  for (const m of ms) {
    let row = `| ${m.label}, ${m.unit} | ${cell(med(mxRounds, m.id), mx)} | ${cell(med(peerRounds, m.id), peer)} | ${times(ratios(m))} |`;
    if (base) row += ` ${cell(med(baseRounds, m.id), base)} | ${times(baseRatios(m))} |`;
    out.push(row);
  }
  out.push(
    '',
    'ratio: >1 means the mxproxy chain is better (rate: mxproxy/peer; latency, CPU: peer/mxproxy);' +
      (rounds > 1 ? ' the median of each round\'s ratio (the two ran back to back), every round:' : ''),
  );
  if (rounds > 1) for (const m of ms) if (ratios(m).length) out.push(`  ${m.label.trim()}: ${ratios(m).map((x) => `${x.toFixed(2)}×`).join(' ')}`);
  if (base) {
    out.push(`vs baseline: this build's chain against the --baseline build's (${base.procs[0]!.child.spawnargs.find((a) => a.endsWith('main.js')) ?? '?'}), same convention;` + (rounds > 1 ? ' every round:' : ''));
    if (rounds > 1) for (const m of ms) if (baseRatios(m).length) out.push(`  ${m.label.trim()}: ${baseRatios(m).map((x) => `${x.toFixed(2)}×`).join(' ')}`);
  }
  const share = med(peerRounds, 'resumedShare');
  out.push(
    'CPU: utime+stime of both processes of the chain (client side + server side), per connection of the conn step.',
    'Both chain processes pinned to CPU 0 (when pinned); the echo backend and the load on CPU 1. The app speaks plain TCP:' +
      ' the middle hop is the only TLS, and both client sides resume TLS sessions (mxproxy forward: its session cache;' +
      ` stunnel: its own)${share !== undefined ? `; HAProxy counted ${(share * 100).toFixed(0)} % of its handshakes resumed` : ''}.`,
  );
  if (r.skipped) out.push(`note: the stunnel → HAProxy chain was skipped: ${r.skipped}`);
  return out;
}

// ------------------------------------------------------------------------------------------------ main

const USAGE = `usage: node dist/scripts/bench.js [options]
  --duration <s>   seconds per case and peer (default 4)
  --idle <n>       idle pairs for the RSS case (default 2000)
  --conns <n>      concurrent loops in the connection case (default 16)
  --cases <list>   comma-separated, of bulk,conn,conn-resumed,latency,idle,chain (default: all)
  --rounds <n>     rounds per case, each starting with another peer; medians reported (default 1)
  --no-event-log   leave out the "mxproxy + event log" peer
  --admin          add "mxproxy + admin": adminListen on, one /events client connected all along
  --baseline <dir> chain case: also run the chain of another built checkout (its dist/src/cli/main.js), to
                   set this build against it in the same run (e.g. a checkout of main)
  --json           JSON lines instead of the Markdown table
  -h, --help       this text`;

function usageError(message: string): never {
  process.stderr.write(`bench: ${message}\n${USAGE}\n`);
  process.exit(64);
}

function readArgs() {
  try {
    return parseArgs({
      options: {
        duration: { type: 'string', default: '4' },
        idle: { type: 'string', default: '2000' },
        conns: { type: 'string', default: '16' },
        cases: { type: 'string', default: CASES.join(',') },
        json: { type: 'boolean', default: false },
        'no-event-log': { type: 'boolean', default: false },
        admin: { type: 'boolean', default: false },
        baseline: { type: 'string' },
        rounds: { type: 'string', default: '1' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    return usageError(errorText(err));
  }
}

function parseOptions(): {
  durationMs: number;
  idle: number;
  conns: number;
  cases: CaseName[];
  json: boolean;
  eventLog: boolean;
  admin: boolean;
  rounds: number;
  baselineJs: string | undefined;
} {
  const values = readArgs();
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const duration = Number(values.duration);
  if (!(duration > 0 && duration <= 120)) usageError(`--duration must be a number of seconds in (0, 120], got "${values.duration}"`);
  const idle = Number(values.idle);
  if (!Number.isInteger(idle) || idle < 1 || idle > 50_000) usageError(`--idle must be a whole number 1..50000, got "${values.idle}"`);
  const conns = Number(values.conns);
  if (!Number.isInteger(conns) || conns < 1 || conns > 256) usageError(`--conns must be a whole number 1..256, got "${values.conns}"`);
  const wanted = values.cases.split(',').map((c) => c.trim()).filter(Boolean);
  for (const c of wanted) if (!(CASES as string[]).includes(c)) usageError(`unknown case "${c}" (cases: ${CASES.join(', ')})`);
  if (wanted.length === 0) usageError('--cases names no case');
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20) usageError(`--rounds must be a whole number 1..20, got "${values.rounds}"`);
  let baselineJs: string | undefined;
  if (values.baseline !== undefined) {
    baselineJs = path.resolve(values.baseline, 'dist', 'src', 'cli', 'main.js');
    if (!fs.existsSync(baselineJs)) usageError(`--baseline: no ${baselineJs} (a checkout, built)`);
    if (!wanted.includes('chain')) usageError('--baseline is for the chain case: add chain to --cases');
  }
  return {
    durationMs: duration * 1000,
    idle,
    conns,
    cases: wanted as CaseName[],
    json: values.json,
    eventLog: !values['no-event-log'],
    admin: values.admin,
    rounds,
    baselineJs,
  };
}

let tmpDir: string | null = null;
function removeTmp(): void {
  if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
  tmpDir = null;
}

async function main(): Promise<number> {
  const opts = parseOptions();
  // the whole run is bounded, whatever happens inside it (each case has its own, tighter limit)
  const hardLimitS = 60 + 3 * opts.rounds * (8 * (opts.durationMs / 1000) + 200);
  setTimeout(() => {
    process.stderr.write(`bench: the run did not finish within ${hardLimitS} s; stopping\n`);
    void shutdownAndExit(2);
  }, hardLimitS * 1000).unref();
  const progress = (line: string) => process.stderr.write(`bench: ${line}\n`);
  const notes: string[] = [];

  // 2N pairs' worth of fds in the proxy (client + backend side), N in the backends and here; children inherit
  // this process's limit.
  const limit = openFileLimit();
  let idle = opts.idle;
  if (opts.cases.includes('idle') && limit !== null && 2 * idle + 256 > limit) {
    const fit = Math.max(1, Math.floor((limit - 256) / 2));
    notes.push(
      `ulimit -n is ${limit}: ${idle} idle pairs need about ${2 * idle + 256} fds in the proxy (~${3 * idle} in all); ` +
        `measured ${fit} pairs instead (raise it with \`ulimit -n ${Math.max(8192, 2 * idle + 1024)}\`)`,
    );
    idle = fit;
  }

  clockTicks = readClockTicks();
  if (os.availableParallelism() >= 2) {
    const r = spawnSync('taskset', ['-a', '-cp', '1', String(process.pid)], { stdio: 'ignore' });
    pinned = !r.error && r.status === 0;
  }

  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxproxy-bench-'));
  if (/\s/.test(tmpDir)) throw new Error(`the temp dir "${tmpDir}" has whitespace in its path, which the config cannot hold`);
  const certDir = path.join(tmpDir, 'certs');
  const { createCa, issueCertificate, writeIssued } = await import('../src/certs/index.js');
  const ca = await createCa({ commonName: 'mxproxy bench CA', algorithm: 'ec-p256' });
  const server = await issueCertificate(ca, { kind: 'server', commonName: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  const client = await issueCertificate(ca, { kind: 'client', commonName: 'bench-client' });
  const caFiles = await writeIssued(certDir, 'ca', ca);
  const serverFiles = await writeIssued(certDir, 'server', server);
  const clientFiles = await writeIssued(certDir, 'client', client);
  const clientTls: ClientTls = { ca: ca.certPem, cert: client.certPem, key: client.keyPem };

  const here = path.dirname(fileURLToPath(import.meta.url));
  const backendsJs = path.join(here, 'benchBackends.js');
  const proxyJs = path.join(here, '..', 'src', 'cli', 'main.js');

  // The cases against direct TLS need its server and the proxy peers; `chain` alone starts only its own.
  const classic = opts.cases.some((c) => c !== 'chain');
  // plain backends behind the proxy (with the load on CPU 1); the TLS baseline server on CPU 0
  const plain = startNode(backendsJs, [], 1, ['pipe', 'pipe', 'pipe']);
  const direct = classic
    ? startNode(backendsJs, ['--tls', '--cert', serverFiles.certFile, '--key', serverFiles.keyFile, '--ca', caFiles.certFile], 0, ['pipe', 'pipe', 'pipe'])
    : undefined;
  const [plainPorts, directPorts] = await Promise.all([
    backendPorts(plain, 'the plain backends'),
    direct ? backendPorts(direct, 'the TLS baseline server') : Promise.resolve(undefined),
  ]);

  /** A proxy process on the plain backends; `extra` config lines (the event log). */
  const startProxyPeer = async (key: 'mxproxy' | 'mxlog' | 'mxadmin', label: string, extra: string[]): Promise<Peer> => {
    const port = await freePort();
    const configFile = path.join(tmpDir!, `${key}.config`);
    fs.writeFileSync(
      configFile,
      [
        '[proxy]',
        `listen = "127.0.0.1:${port}"`,
        `sslCertificate = "${serverFiles.certFile} ${serverFiles.keyFile} ${caFiles.certFile}"`,
        `server = "echo 127.0.0.1:${plainPorts.echo}"`,
        `server = "sink 127.0.0.1:${plainPorts.sink}"`,
        'allow = "bench-client echo sink"',
        // One client address opening hundreds of connections a second: the per-source limits would measure
        // themselves, not the proxy (docs/security.md).
        'connectRate = "off"',
        'maxPendingPerSource = 100000',
        ...extra,
        '',
      ].join('\n'),
    );
    const logFile = path.join(tmpDir!, `${key}.log`);
    const logFd = fs.openSync(logFile, 'w');
    const child = startProgram(process.execPath, [...SHIPPED_NODE_OPTIONS, proxyJs, 'start', '-c', configFile], 0, ['ignore', logFd, logFd]);
    fs.closeSync(logFd);
    const logTail = () => {
      try {
        const lines = fs.readFileSync(logFile, 'utf8').trim().split('\n').slice(-8).join('\n  ');
        return lines ? `\n  proxy log:\n  ${lines}` : '';
      } catch {
        return '';
      }
    };
    await waitForPort(port, child, label, logTail);
    return {
      key,
      label,
      child,
      pid: child.pid!,
      echo: { port, mx: true, name: 'echo' },
      sink: { port, mx: true, name: 'sink' },
      info: {},
      broken: null,
      logTail,
    };
  };
  const eventLogFile = path.join(tmpDir, 'events.mxlog');
  // mxproxy between the two variants: rounds run the peers in this order, then reversed, so each variant
  // always runs right next to the plain proxy it is compared with.
  const proxyPeers: Peer[] = [];
  if (classic && opts.eventLog) {
    proxyPeers.push(await startProxyPeer('mxlog', 'mxproxy + event log', [`eventLog = "${eventLogFile}"`, 'eventLogLevel = "lifecycle"']));
  }
  if (classic) proxyPeers.push(await startProxyPeer('mxproxy', 'mxproxy', []));
  let page: LiveFeed | undefined;
  if (classic && opts.admin) {
    const adminPort = await freePort();
    proxyPeers.push(await startProxyPeer('mxadmin', 'mxproxy + admin', [`adminListen = "127.0.0.1:${adminPort}"`]));
    // The admin endpoint is bound after the listeners (once its diagram is drawn): wait for it too.
    const admin = proxyPeers.at(-1)!;
    await waitForPort(adminPort, admin.child, 'the admin endpoint', admin.logTail);
    page = await openLiveFeed(adminPort);
  }

  const peers: Peer[] =
    direct && directPorts
      ? [
          {
            key: 'direct',
            label: 'direct TLS',
            child: direct,
            pid: direct.pid!,
            echo: { port: directPorts.echo, mx: false, name: 'echo' },
            sink: { port: directPorts.sink, mx: false, name: 'sink' },
            info: {},
            broken: null,
            logTail: () => '',
          },
          ...proxyPeers,
        ]
      : [];

  // warm-up (JIT, first handshakes) and a check that each peer echoes at all, with its TLS parameters; a peer
  // that cannot is not measured (each of its cases reports this error)
  const payload = Buffer.alloc(64, 0x31);
  for (const p of peers) {
    try {
      for (let i = 0; i < 30; i++) {
        const c = await openConn(p.echo, clientTls, p.info);
        try {
          await echoOnce(c, payload);
        } finally {
          c.s.destroy();
        }
      }
    } catch (err) {
      p.broken = errorText(err);
    }
  }

  const o: Options = { durationMs: opts.durationMs, idle, conns: opts.conns, threads: 2, tls: clientTls };
  const results = new Map<string, Values>(); // `${case}/${peer}`
  const errors: { case: CaseName; peer: string; error: string }[] = [];
  const rounds = new Map<string, Values[]>();
  for (const name of RUN_ORDER.filter((c) => opts.cases.includes(c))) {
    // Rounds alternate the order (direct, mxproxy + event log, mxproxy, mxproxy + admin), then the reverse, so
    // no peer always runs first (warmer or colder machine) and each variant runs right next to the plain proxy:
    // its cost is taken per round from that adjacent pair, which a slow minute of the shared machine affects alike.
    for (let round = 0; round < opts.rounds; round++) {
      for (const p of round % 2 === 0 ? peers : [...peers].reverse()) {
        if (p.broken !== null) {
          if (round === 0) errors.push({ case: name, peer: p.label, error: p.broken });
          continue;
        }
        const t0 = now();
        try {
          const v = await runCase(name, p, o);
          rounds.set(`${name}/${p.key}`, [...(rounds.get(`${name}/${p.key}`) ?? []), v]);
          progress(`${name} on ${p.label}${opts.rounds > 1 ? ` (round ${round + 1})` : ''}: ${((now() - t0) / 1000).toFixed(1)} s`);
        } catch (err) {
          progress(`${name} on ${p.label}: failed after ${((now() - t0) / 1000).toFixed(1)} s`);
          const gone = alive(p.child) ? '' : ` (the ${p.label} process exited: ${p.child.signalCode ?? `code ${p.child.exitCode}`})${p.logTail()}`;
          errors.push({ case: name, peer: p.label, error: errorText(err) + gone });
        }
        await sleep(300);
      }
    }
  }
  for (const [k, vs] of rounds) results.set(k, medianValues(vs));
  // The chain case last, with its own processes (started now, stopped when it is done).
  const chain = opts.cases.includes('chain')
    ? await runChains(
        {
          dir: tmpDir,
          echoPort: plainPorts.echo,
          caFile: caFiles.certFile,
          serverCert: serverFiles.certFile,
          serverKey: serverFiles.keyFile,
          clientCert: clientFiles.certFile,
          clientKey: clientFiles.keyFile,
          proxyJs,
          baselineJs: opts.baselineJs,
        },
        o,
        opts.rounds,
        progress,
      )
    : undefined;
  // conn-resumed against conn, per peer, in this run: what a resumed connection costs the server next to a full one.
  const resumption = peers.flatMap((p) => {
    const full = results.get(`conn/${p.key}`)?.cpuUsPerConn;
    const res = results.get(`conn-resumed/${p.key}`);
    if (full === undefined || res?.cpuUsPerConn === undefined) return [];
    return [{ peer: p.key, label: p.label, fullUs: full, resumedUs: res.cpuUsPerConn, ratio: res.cpuUsPerConn / full, resumedShare: res.resumedShare ?? 0 }];
  });
  /** A variant's cost per metric (the event log's, the admin endpoint's): the median of the rounds' own
   * with/without ratios, and all of them. Only when both peers completed every round (a failed round would pair
   * values of different rounds). */
  const costOf = (key: 'mxlog' | 'mxadmin', m: Metric): { median: number; each: number[] } | undefined => {
    const xs = rounds.get(`${m.case}/mxproxy`) ?? [];
    const ls = rounds.get(`${m.case}/${key}`) ?? [];
    if (xs.length !== ls.length) return undefined;
    const each = xs.flatMap((x, i) => ratioOf(m, x[m.id], ls[i]![m.id]) ?? []);
    return each.length === 0 ? undefined : { median: median(each), each };
  };
  const logCost = (m: Metric) => costOf('mxlog', m);
  const adminCost = (m: Metric) => costOf('mxadmin', m);

  // ---------------------------------------------------------------------------------------------- report
  const withLog = peers.some((p) => p.key === 'mxlog');
  const withAdmin = peers.some((p) => p.key === 'mxadmin');
  if (page) {
    page.close();
    notes.push(
      `the admin peer's one page got ${page.messages} live updates (${(page.bytes / 1024).toFixed(0)} KiB) over the run` +
        (page.error ? `; its feed failed: ${page.error}` : ''),
    );
  }
  if (withLog) {
    const size = fs.existsSync(eventLogFile) ? fs.statSync(eventLogFile).size : 0;
    notes.push(`the event log grew to ${(size / MiB).toFixed(1)} MiB (lifecycle level) over the run; files rotate at 64 MiB`);
  }
  const ms = metrics({ conns: opts.conns, idle }).filter((m) => opts.cases.includes(m.case));
  const tlsLine = peers.map((p) => `${p.label} ${p.info.tls ?? '?'}`).join('; ');
  const pinLine = pinned
    ? 'pinned with taskset: server under test on CPU 0; load, its worker threads and the plain backends on CPU 1'
    : 'not pinned (taskset or a second CPU not available)';
  if (opts.json) {
    const line = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);
    line({ kind: 'run', durationS: opts.durationMs / 1000, conns: opts.conns, idle, tls: tlsLine, pinned, node: process.version, notes });
    for (const m of ms) {
      const d = results.get(`${m.case}/direct`);
      const x = results.get(`${m.case}/mxproxy`);
      const l = results.get(`${m.case}/mxlog`);
      const a = results.get(`${m.case}/mxadmin`);
      const cost = withLog ? logCost(m) : undefined;
      const aCost = withAdmin ? adminCost(m) : undefined;
      line({
        kind: 'metric',
        case: m.case,
        metric: m.id,
        label: m.label,
        unit: m.unit,
        better: m.better,
        direct: d?.[m.id] ?? null,
        mxproxy: x?.[m.id] ?? null,
        ratio: ratioOf(m, d?.[m.id], x?.[m.id]) ?? null,
        ...(withLog ? { mxproxyEventLog: l?.[m.id] ?? null, eventLogRatio: cost?.median ?? null, eventLogRatios: cost?.each ?? [] } : {}),
        ...(withAdmin ? { mxproxyAdmin: a?.[m.id] ?? null, adminRatio: aCost?.median ?? null, adminRatios: aCost?.each ?? [] } : {}),
      });
    }
    for (const c of CASES) {
      for (const p of peers) {
        const v = results.get(`${c}/${p.key}`);
        if (v) line({ kind: 'raw', case: c, peer: p.key, ...v });
      }
    }
    for (const r of resumption) line({ kind: 'resumption', ...r });
    for (const e of errors) line({ kind: 'error', ...e });
    if (chain) chainReport(chain, opts.conns, opts.rounds, line);
  } else {
    const head = ['metric', 'direct TLS', 'mxproxy', 'ratio', ...(withLog ? ['mxproxy + event log', 'log cost'] : []), ...(withAdmin ? ['mxproxy + admin', 'admin cost'] : [])];
    const out: string[] = ['', `| ${head.join(' | ')} |`, `|---|${head.slice(1).map(() => '---:').join('|')}|`];
    const times = (r: number | undefined) => (r === undefined ? '—' : `${r.toFixed(2)}×`);
    for (const m of ms) {
      const d = results.get(`${m.case}/direct`)?.[m.id];
      const x = results.get(`${m.case}/mxproxy`)?.[m.id];
      const l = results.get(`${m.case}/mxlog`)?.[m.id];
      const a = results.get(`${m.case}/mxadmin`)?.[m.id];
      const cell = (v: number | undefined) => (v === undefined ? 'error' : fmt(v));
      let row = `| ${m.label}, ${m.unit} | ${cell(d)} | ${cell(x)} | ${times(ratioOf(m, d, x))} |`;
      if (withLog) row += ` ${cell(l)} | ${times(logCost(m)?.median)} |`;
      if (withAdmin) row += ` ${cell(a)} | ${times(adminCost(m)?.median)} |`;
      out.push(row);
    }
    const spread = withLog && opts.rounds > 1 ? ms.map((m) => ({ m, c: logCost(m) })).filter((e) => e.c) : [];
    const adminSpread = withAdmin && opts.rounds > 1 ? ms.map((m) => ({ m, c: adminCost(m) })).filter((e) => e.c) : [];
    out.push(
      '',
      'ratio: >1 means mxproxy is better (throughput and rate: mxproxy/direct; latency, RSS, CPU: direct/mxproxy).',
      ...(withLog
        ? [
            'log cost: mxproxy with the event log (lifecycle level) against without, same convention: 1.00× = free;' +
              (opts.rounds > 1 ? ' the median of each round\'s ratio (the two ran back to back), every round:' : ''),
            ...spread.map(({ m, c }) => `  ${m.label}: ${c!.each.map((r) => `${r.toFixed(2)}×`).join(' ')}`),
          ]
        : []),
      ...(resumption.length > 0
        ? [
            'resumed against full, its CPU per connection (conn-resumed / conn):',
            ...resumption.map(
              (r) =>
                `  ${r.label}: ${fmt(r.resumedUs)} / ${fmt(r.fullUs)} µs = ${r.ratio.toFixed(2)}× ` +
                `(${(r.resumedShare * 100).toFixed(1)} % of the conn-resumed connections resumed)`,
            ),
          ]
        : []),
      ...(withAdmin
        ? [
            'admin cost: mxproxy with adminListen on and one page\'s live feed (/events) connected against without, same convention;' +
              (opts.rounds > 1 ? ' the median of each round\'s ratio, every round:' : ''),
            ...adminSpread.map(({ m, c }) => `  ${m.label}: ${c!.each.map((r) => `${r.toFixed(2)}×`).join(' ')}`),
          ]
        : []),
      '"its CPU": utime+stime of the server process under test (the proxy alone, not its backends; the TLS echo/sink server).',
      `TLS: ${tlsLine}. ${pinLine}. ${opts.durationMs / 1000} s per case and peer` +
        (opts.rounds > 1 ? `, ${opts.rounds} rounds (medians).` : '.'),
      'Figures from a shared machine are only comparable within one run (the ratios), not across runs.',
    );
    // only the chain asked for: its own section, without the table against direct TLS
    const shown = ms.length > 0 ? out : [];
    shown.push(`mxproxy start runs as the service unit and npm start run it: node ${SHIPPED_NODE_OPTIONS.join(' ')} (one TLS 1.3 session ticket per full handshake); everything else with OpenSSL's defaults (two).`);
    if (chain) {
      shown.push(...chainReport(chain, opts.conns, opts.rounds));
      if (ms.length === 0) {
        shown.push(
          `${opts.durationMs / 1000} s per step and chain` + (opts.rounds > 1 ? `, ${opts.rounds} rounds (medians).` : '.') +
            ' Figures from a shared machine are only comparable within one run (the ratios), not across runs.',
        );
      }
    }
    for (const n of notes) shown.push(`note: ${n}`);
    process.stdout.write(`${shown.join('\n')}\n`);
  }
  for (const e of errors) process.stderr.write(`bench: ${e.case} on ${e.peer} failed: ${e.error}\n`);
  for (const e of chain?.errors ?? []) process.stderr.write(`bench: chain ${e.step} on ${e.chain} failed: ${e.error}\n`);
  return errors.length > 0 || (chain?.errors.length ?? 0) > 0 ? 1 : 0;
}

async function shutdownAndExit(code: number): Promise<never> {
  await stopChildren().catch(() => {});
  removeTmp();
  process.exit(code);
}

if (isMainThread) {
  // last resort when exiting some other way: no child outlives the bench, no temp dir stays behind
  process.on('exit', () => {
    for (const c of children) if (alive(c)) c.kill('SIGKILL');
    removeTmp();
  });
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`bench: ${signal}, stopping\n`);
      void shutdownAndExit(130);
    });
  }
  let code: number;
  try {
    code = await main();
  } catch (err) {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    code = 1;
  }
  await shutdownAndExit(code);
} else {
  await workerMain();
}
