/**
 * `[proxy] workers`: what a second worker process gains for short mutual-TLS connections, and which way of
 * handing connections to the workers spreads them better. npm run bench's `conn` case, on the proxy only:
 *
 *   node dist/scripts/workersBench.js [--duration 4] [--rounds 3] [--loops 16] [--threads 2] [--workers 2] [--spread 100]
 *
 * Each round runs, back to back, on a fresh `mxproxy start` each (the CLI, as a service runs it):
 *   1 process        workers = 1
 *   2 workers, rr    workers = 2, connections handed out by the primary in turn (node:cluster's default on Linux)
 *   2 workers, none  workers = 2, NODE_CLUSTER_SCHED_POLICY=none: the workers accept from one shared socket
 * `--loops` concurrent loops (on `--threads` worker threads of this process) of: new mTLS connection (full
 * handshake) + mxproxy/1 request and reply + 64 B echo + close, for `--duration` s after a warm-up.
 *
 * Reported (medians over the rounds): connections/s; the proxy's CPU per connection, all its processes
 * (utime+stime from /proc); each worker's share of the workers' CPU (how evenly the connections were spread;
 * every connection costs a worker about the same); the primary's CPU per connection. Nothing is pinned: the
 * load generator, the echo backend and the proxy share the machine's cores, as they would on a small host.
 *
 * Then, for each way of sharing, the spread of long-lived pairs at a light load (the plant's pattern):
 * `--spread` connections opened one after the other and held open, counted per worker from the
 * `--report dispatch` accept lines (worker=<n>).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { withOpensslConfig } from '../src/process/opensslConfig.js';
import { ALPN_PROTOCOL, FrameReader, decodeBody, encodeRequest, parseReply } from '../src/protocol/frame.js';

const now = (): number => performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface ClientTls {
  ca: string;
  cert: string;
  key: string;
}

interface Job {
  port: number;
  tls: ClientTls;
  loops: number;
  durationMs: number;
}

interface LoopResult {
  ok: number;
  errors: number;
  firstError: string | null;
}

/** One connection: TLS, request `echo`, the reply, 64 B there and back, close. */
function once64(port: number, ctx: tls.SecureContext): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', secureContext: ctx, ALPNProtocols: [ALPN_PROTOCOL] });
    const timer = setTimeout(() => done(new Error('no echo within 10 s')), 10_000);
    const reader = new FrameReader(1 << 16);
    let replied = false;
    let echoed = 0;
    const done = (err?: Error) => {
      clearTimeout(timer);
      s.destroy();
      if (err) reject(err);
      else resolve();
    };
    s.on('error', (err) => done(err));
    s.once('close', () => done(new Error('closed early')));
    s.once('secureConnect', () => s.write(encodeRequest('echo')));
    s.on('data', (d: Buffer) => {
      if (!replied) {
        const r = reader.push(d);
        if (r.kind === 'incomplete') return;
        if (r.kind === 'error') return done(new Error(r.message));
        const reply = parseReply(decodeBody(r.body));
        if (!reply.ok) return done(new Error(`declined: ${reply.code}`));
        replied = true;
        echoed += r.rest.length;
        s.write(Buffer.alloc(64, 0x31));
        return;
      }
      echoed += d.length;
      if (echoed >= 64) done();
    });
  });
}

async function loops(job: Job): Promise<LoopResult> {
  const ctx = tls.createSecureContext(job.tls);
  const stopAt = now() + job.durationMs;
  const out: LoopResult = { ok: 0, errors: 0, firstError: null };
  await Promise.all(
    Array.from({ length: job.loops }, async () => {
      while (now() < stopAt) {
        try {
          await once64(job.port, ctx);
          out.ok++;
        } catch (err) {
          out.errors++;
          out.firstError ??= (err as Error).message;
          await sleep(10);
        }
      }
    }),
  );
  return out;
}

if (!isMainThread) {
  const job = workerData as Job;
  const go = once(parentPort!, 'message');
  parentPort!.postMessage('ready');
  await go;
  parentPort!.postMessage(await loops(job));
}

// ------------------------------------------------------------------------------------------------ main thread

const clockTicks = 100; // USER_HZ on Linux

function cpuMs(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / clockTicks;
  } catch {
    return 0;
  }
}

/** The load on `threads` threads; `mark` is called right before they start and right after they end. */
async function load(job: Omit<Job, 'loops'>, total: number, threads: number, mark: () => void): Promise<LoopResult & { sec: number }> {
  const ws = Array.from({ length: threads }, (_, i) => {
    const share = Math.floor(total / threads) + (i < total % threads ? 1 : 0);
    return new Worker(new URL(import.meta.url), { workerData: { ...job, loops: share } satisfies Job });
  });
  try {
    const results = ws.map((w) => {
      const ready = once(w, 'message');
      const result = ready.then(() => once(w, 'message')).then(([r]) => r as LoopResult);
      return { ready, result };
    });
    await Promise.all(results.map((r) => r.ready));
    mark();
    const t0 = now();
    for (const w of ws) w.postMessage('go');
    const all = await Promise.all(results.map((r) => r.result));
    const sec = (now() - t0) / 1000;
    mark();
    return { ok: all.reduce((a, r) => a + r.ok, 0), errors: all.reduce((a, r) => a + r.errors, 0), firstError: all.find((r) => r.firstError)?.firstError ?? null, sec };
  } finally {
    await Promise.all(ws.map((w) => w.terminate()));
  }
}

interface Variant {
  key: string;
  label: string;
  workers: number;
  policy?: 'rr' | 'none';
}

const variants = (n: number): Variant[] => [
  { key: 'single', label: '1 process', workers: 1 },
  { key: 'rr', label: `${n} workers, round-robin`, workers: n, policy: 'rr' },
  { key: 'none', label: `${n} workers, shared socket`, workers: n, policy: 'none' },
];

interface Measured {
  connPerSec: number;
  cpuUsPerConn: number;
  primaryUsPerConn: number;
  /** Each worker's share of the workers' CPU, sorted. */
  shares: number[];
  errors: number;
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** Starts `mxproxy start` on a fresh config; resolves once it (every worker) listens. */
async function startProxy(
  v: Variant,
  o: { dir: string; certs: { cert: string; key: string; ca: string }; echoPort: number },
  args: string[],
): Promise<{ child: ChildProcess; port: number; output: () => string; stop: () => Promise<void> }> {
  const port = await freePort();
  const config = path.join(o.dir, `${v.key}.config`);
  fs.writeFileSync(
    config,
    [
      '[proxy]',
      `listen = "127.0.0.1:${port}"`,
      `sslCertificate = "${o.certs.cert} ${o.certs.key} ${o.certs.ca}"`,
      `server = "echo 127.0.0.1:${o.echoPort}"`,
      'allow = "bench-client echo"',
      'connectRate = "off"',
      'maxPendingPerSource = 100000',
      `workers = ${v.workers}`,
      '',
    ].join('\n'),
  );
  const main = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
  const env = { ...process.env, ...(v.policy ? { NODE_CLUSTER_SCHED_POLICY: v.policy } : {}) };
  const child: ChildProcess = spawn(process.execPath, [...withOpensslConfig([]), main, 'start', '-c', config, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const stop = async () => {
    if (child.exitCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const t = setTimeout(() => child.exitCode === null && child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  };
  const ready = v.workers > 1 ? /with \d+ workers/ : /mxproxy listening on/;
  const t0 = now();
  while (!ready.test(out)) {
    if (child.exitCode !== null || now() - t0 > 20_000) {
      await stop();
      throw new Error(`${v.label} did not start:\n${out}`);
    }
    await sleep(50);
  }
  return { child, port, output: () => out, stop };
}

/** A linked pair, held open: TLS, request, reply. */
function hold(port: number, ctx: tls.SecureContext): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', secureContext: ctx, ALPNProtocols: [ALPN_PROTOCOL] });
    const reader = new FrameReader(1 << 16);
    s.once('error', reject);
    s.once('secureConnect', () => s.write(encodeRequest('echo')));
    const onData = (d: Buffer) => {
      const r = reader.push(d);
      if (r.kind === 'incomplete') return;
      s.off('data', onData);
      if (r.kind === 'error' || !parseReply(decodeBody(r.body)).ok) return reject(new Error('no link'));
      resolve(s);
    };
    s.on('data', onData);
  });
}

/** `n` pairs opened one after the other and held open: how many each worker took. */
async function spread(v: Variant, o: Parameters<typeof startProxy>[1] & { tls: ClientTls }, n: number): Promise<number[]> {
  const p = await startProxy(v, o, ['--report', 'dispatch']);
  const held: tls.TLSSocket[] = [];
  try {
    const ctx = tls.createSecureContext(o.tls);
    for (let i = 0; i < n; i++) {
      held.push(await hold(p.port, ctx));
      await sleep(20);
    }
    await sleep(300); // the last accept lines, through the primary
    const counts = new Map<number, number>();
    for (const m of p.output().matchAll(/ accept conn=\S+ .*?(?: worker=(\d+))?$/gm)) counts.set(Number(m[1] ?? 1), (counts.get(Number(m[1] ?? 1)) ?? 0) + 1);
    return [...counts.entries()].sort((a, b) => a[0] - b[0]).map(([, c]) => c);
  } finally {
    for (const s of held) s.destroy();
    await p.stop();
  }
}

async function measure(v: Variant, o: Parameters<typeof startProxy>[1] & { tls: ClientTls; durationMs: number; loops: number; threads: number }): Promise<Measured> {
  const p = await startProxy(v, o, []);
  const { child, port } = p;
  try {
    const workers = v.workers > 1 ? [...p.output().matchAll(/worker \d+ \(pid (\d+)\) listening/g)].map((m) => Number(m[1])) : [];
    const pids = [child.pid!, ...workers];
    const ctx = tls.createSecureContext(o.tls);
    for (let i = 0; i < 40; i++) await once64(port, ctx); // warm-up: JIT, every worker's first handshakes
    let before: number[] = [];
    let after: number[] = [];
    const r = await load({ port, tls: o.tls, durationMs: o.durationMs }, o.loops, o.threads, () => {
      const marks = pids.map(cpuMs);
      if (before.length === 0) before = marks;
      else after = marks;
    });
    if (r.ok === 0) throw new Error(`${v.label}: no connection: ${r.firstError}`);
    const delta = pids.map((_, i) => after[i]! - before[i]!);
    const total = delta.reduce((a, b) => a + b, 0);
    const workerCpu = v.workers > 1 ? delta.slice(1) : delta;
    const workerTotal = workerCpu.reduce((a, b) => a + b, 0);
    return {
      connPerSec: r.ok / r.sec,
      cpuUsPerConn: (total * 1000) / r.ok,
      primaryUsPerConn: v.workers > 1 ? (delta[0]! * 1000) / r.ok : 0,
      shares: workerCpu.map((c) => c / workerTotal).sort((a, b) => a - b),
      errors: r.errors,
    };
  } finally {
    await p.stop();
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '4' },
      rounds: { type: 'string', default: '3' },
      loops: { type: 'string', default: '16' },
      threads: { type: 'string', default: '2' },
      spread: { type: 'string', default: '100' },
      workers: { type: 'string', default: '2' },
    },
  });
  const durationMs = Number(values.duration) * 1000;
  const rounds = Number(values.rounds);
  const loopsN = Number(values.loops);
  const threads = Number(values.threads);
  const VARIANTS = variants(Number(values.workers));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxproxy-workers-bench-'));
  const echo = net.createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  try {
    const { createCa, issueCertificate, writeIssued } = await import('../src/certs/index.js');
    const ca = await createCa({ commonName: 'mxproxy bench CA', algorithm: 'ec-p256' });
    const server = await issueCertificate(ca, { kind: 'server', commonName: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
    const client = await issueCertificate(ca, { kind: 'client', commonName: 'bench-client' });
    const caFiles = await writeIssued(dir, 'ca', ca);
    const serverFiles = await writeIssued(dir, 'server', server);
    const o = {
      dir,
      certs: { cert: serverFiles.certFile, key: serverFiles.keyFile, ca: caFiles.certFile },
      echoPort: (echo.address() as net.AddressInfo).port,
      tls: { ca: ca.certPem, cert: client.certPem, key: client.keyPem },
      durationMs,
      loops: loopsN,
      threads,
    };
    const results = new Map<string, Measured[]>(VARIANTS.map((v) => [v.key, []]));
    for (let round = 1; round <= rounds; round++) {
      for (const v of VARIANTS) {
        const m = await measure(v, o);
        results.get(v.key)!.push(m);
        const shares = m.shares.length > 1 ? `  worker CPU shares ${m.shares.map((s) => `${(s * 100).toFixed(0)} %`).join(' / ')}` : '';
        process.stdout.write(
          `round ${round}  ${v.label.padEnd(34)} ${m.connPerSec.toFixed(0).padStart(5)} conn/s  ${m.cpuUsPerConn.toFixed(0).padStart(5)} µs CPU/conn` +
            `${v.workers > 1 ? `  primary ${m.primaryUsPerConn.toFixed(0)} µs/conn` : ''}${shares}${m.errors ? `  ${m.errors} errors` : ''}\n`,
        );
      }
    }
    process.stdout.write(`\nmedians of ${rounds} rounds, ${durationMs / 1000} s each, ${loopsN} loops on ${threads} threads, ${os.availableParallelism()} CPUs, load average ${os.loadavg()[0]!.toFixed(1)}\n`);
    process.stdout.write('| | conn/s | proxy CPU per conn (all processes) | of which the primary | busier worker\'s share of the workers\' CPU |\n|---|---:|---:|---:|---:|\n');
    for (const v of VARIANTS) {
      const ms = results.get(v.key)!;
      const busier = v.workers > 1 ? `${(median(ms.map((m) => m.shares.at(-1)!)) * 100).toFixed(0)} %` : '–';
      process.stdout.write(
        `| ${v.label} | ${median(ms.map((m) => m.connPerSec)).toFixed(0)} | ${median(ms.map((m) => m.cpuUsPerConn)).toFixed(0)} µs | ` +
          `${v.workers > 1 ? `${median(ms.map((m) => m.primaryUsPerConn)).toFixed(0)} µs` : '–'} | ${busier} |\n`,
      );
    }
    const n = Number(values.spread);
    if (n > 0) {
      process.stdout.write(`\n${n} pairs opened one after the other (20 ms apart) and held open, per worker:\n`);
      for (const v of VARIANTS.filter((x) => x.workers > 1)) process.stdout.write(`  ${v.label.padEnd(34)} ${(await spread(v, o, n)).join(' / ')}\n`);
    }
  } finally {
    echo.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (isMainThread) {
  main().catch((err: unknown) => {
    process.stderr.write(`workersBench: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
