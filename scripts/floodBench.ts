/**
 * How an allowed client fares while another address floods the proxy: the figures in docs/security.md.
 *
 *   node dist/scripts/floodBench.js [--duration 5] [--loops 32] [--rounds 1] [--json]
 *
 * A proxy process (dist/src/cli/main.js start) runs twice: with the default limits, and with the per-source
 * limits switched off (connectRate "off", maxPendingPerSource and maxPendingHandshakes 100000: what main did).
 * Against each, for --duration s per phase:
 *   quiet  no flood
 *   tls    a flooder process on 127.0.0.2 doing full TLS handshakes with a valid client certificate, --loops at
 *          a time, each closed as soon as it is done
 *   tcp    a flooder process on 127.0.0.2 opening 1,100 plain TCP connections that never speak (column
 *          "flood": how many were still open halfway)
 *   churn  a flooder process on 127.0.0.2 connecting and closing at once, no TLS, --loops at a time
 * The proxy writes an event log (lifecycle level); its size and how many pairs it holds or sums up in `d`
 * records are shown per phase.
 * Meanwhile this process, on 127.0.0.1, connects through the proxy (TLS, request, reply), echoes 64 bytes and
 * closes, ten times a second (within the default connectRate): the median and 90th percentile of the time to
 * a linked connection, and how many attempts failed. Certificates are made fresh in a temp dir. Linux (127.0.0.2 must be a local address).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connect } from '../src/client/connect.js';
import { readEventLogFile } from '../src/eventlog/index.js';
import { asLogRecord } from '../src/eventlog/records.js';
import { ALPN_PROTOCOL } from '../src/protocol/frame.js';

const ATTACKER = '127.0.0.2';
/** Start-to-start time of the measuring client's connections. */
const PACE_MS = 100;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Material {
  ca: string;
  cert: string;
  key: string;
}

// ------------------------------------------------------------------------------------------------ flooder

/** Full handshakes from 127.0.0.2 until the deadline, `loops` at a time. */
async function tlsFlood(port: number, m: Material, loops: number, until: number): Promise<number> {
  let done = 0;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const raw = net.connect({ host: '127.0.0.1', port, localAddress: ATTACKER });
      raw.on('error', () => {});
      const s = tls.connect({ socket: raw, ca: m.ca, cert: m.cert, key: m.key, servername: 'localhost', ALPNProtocols: [ALPN_PROTOCOL] });
      s.on('error', () => {});
      s.once('secureConnect', () => {
        done++;
        s.destroy();
      });
      s.once('close', () => resolve());
    });
  await Promise.all(
    Array.from({ length: loops }, async () => {
      while (Date.now() < until) await one();
    }),
  );
  return done;
}

/** 1,100 plain TCP connections from 127.0.0.2 that never speak, opened at once and held until the deadline;
 * returns how many were still open halfway (the rest were reset by the proxy). */
async function tcpFlood(port: number, until: number): Promise<number> {
  const socks = Array.from({ length: 1100 }, () => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress: ATTACKER });
    s.on('error', () => {});
    return s;
  });
  await sleep(Math.max(0, (until - Date.now()) / 2));
  const held = socks.filter((s) => !s.closed).length;
  await sleep(Math.max(0, until - Date.now()));
  for (const s of socks) s.destroy();
  return held;
}

/** Connect and close at once, without TLS, `loops` at a time: what would rotate the event log away. */
async function churnFlood(port: number, loops: number, until: number): Promise<number> {
  let n = 0;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port, localAddress: ATTACKER });
      s.on('error', () => {});
      s.once('connect', () => {
        n++;
        s.destroy();
      });
      s.once('close', () => resolve());
    });
  await Promise.all(
    Array.from({ length: loops }, async () => {
      while (Date.now() < until) await one();
    }),
  );
  return n;
}

async function flooderMain(mode: string, port: number, durationMs: number): Promise<void> {
  const m = JSON.parse(fs.readFileSync(0, 'utf8')) as Material;
  const until = Date.now() + durationMs;
  const loops = Number(process.env.FLOOD_LOOPS ?? 32);
  const n =
    mode === 'tls' ? await tlsFlood(port, m, loops, until) : mode === 'churn' ? await churnFlood(port, loops, until) : await tcpFlood(port, until);
  process.stdout.write(JSON.stringify({ n }) + '\n');
}

// ------------------------------------------------------------------------------------------------ measuring side

type Phase = 'quiet' | 'tls' | 'tcp' | 'churn';

interface PhaseResult {
  limits: string;
  phase: string;
  ok: number;
  failed: number;
  medianMs: number;
  p90Ms: number;
  /** Handshakes the TLS flooder completed, or connections of the TCP flooder still open halfway. */
  flood: number | null;
  /** Connections the proxy refused at accept, from its log lines. */
  refused: number;
  /** CPU time (user + system) the proxy process spent in the phase. */
  proxyCpuMs: number;
  /** Event log size at the end of the phase (the proxy's log of that phase alone). */
  logBytes: number;
  /** Pairs in the event log, and pairs summed up in its `d` records (ended before TLS, over the budget). */
  logPairs: number;
  logDropped: number;
}

async function eventLogFigures(file: string): Promise<Pick<PhaseResult, 'logBytes' | 'logPairs' | 'logDropped'>> {
  const c = await readEventLogFile(file);
  let logPairs = 0;
  let logDropped = 0;
  for (const raw of c.records) {
    const r = asLogRecord(raw);
    if (typeof r === 'string') continue;
    if (r.k === 'e' && r.e.type === 'ACCEPTED') logPairs++;
    if (r.k === 'd') logDropped += r.pairs;
  }
  return { logBytes: fs.statSync(file).size, logPairs, logDropped };
}

/** utime + stime of a process, ms (Linux /proc; NaN elsewhere). */
function cpuMs(pid: number | undefined): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return NaN;
  }
}

/** Sums the proxy's refusal lines: "refused a connection …" is one, "refused N connections …" is N. */
function refusedIn(logFile: string): number {
  let n = 0;
  for (const line of fs.readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    const msg = String((JSON.parse(line) as { message?: unknown }).message ?? '');
    const m = /^refused (a|\d+) connections? from /.exec(msg);
    if (m) n += m[1] === 'a' ? 1 : Number(m[1]);
  }
  return n;
}

const quantile = (xs: number[], q: number): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

async function measure(port: number, m: Material, durationMs: number): Promise<{ times: number[]; failed: number }> {
  const times: number[] = [];
  let failed = 0;
  const until = Date.now() + durationMs;
  while (Date.now() < until) {
    const t0 = performance.now();
    // A client that connects ten times a second: busy, but within the default connectRate of its address.
    const next = sleep(PACE_MS);
    try {
      const s = await connect({ proxy: { host: '127.0.0.1', port }, target: 'echo', tls: { ...m, servername: 'localhost' }, timeout: 10_000 });
      times.push(performance.now() - t0);
      await new Promise<void>((resolve, reject) => {
        let got = 0;
        s.on('data', (d: Buffer) => {
          got += d.length;
          if (got >= 64) s.end();
        });
        s.once('close', () => (got >= 64 ? resolve() : reject(new Error('echo incomplete'))));
        s.once('error', reject);
        s.write(Buffer.alloc(64, 1));
      });
    } catch {
      failed++;
    }
    await next;
  }
  return { times, failed };
}

const children = new Set<ChildProcess>();
function startNode(args: string[], stdio: 'pipe' | 'ignore' | number = 'pipe'): ChildProcess {
  const c = spawn(process.execPath, args, { stdio: ['pipe', stdio, stdio] });
  children.add(c);
  c.once('exit', () => children.delete(c));
  return c;
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function waitForPort(port: number): Promise<void> {
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`the proxy did not listen on ${port} within 10 s`);
}

async function runFlooder(self: string, mode: Phase, port: number, m: Material, durationMs: number, loops: number): Promise<number> {
  const c = spawn(process.execPath, [self, '--flood', mode, '--port', String(port), '--duration-ms', String(durationMs)], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, FLOOD_LOOPS: String(loops) },
  });
  children.add(c);
  c.stdin.end(JSON.stringify(m));
  let out = '';
  c.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((r) => c.once('exit', r));
  children.delete(c);
  return (JSON.parse(out.trim() || '{"n":0}') as { n: number }).n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '5' },
      rounds: { type: 'string', default: '1' },
      loops: { type: 'string', default: '32' },
      json: { type: 'boolean', default: false },
      flood: { type: 'string' },
      port: { type: 'string' },
      'duration-ms': { type: 'string' },
    },
  });
  if (values.flood) return flooderMain(values.flood, Number(values.port), Number(values['duration-ms']));

  const durationMs = Number(values.duration) * 1000;
  const rounds = Math.max(1, Number(values.rounds));
  const loops = Number(values.loops);
  const self = fileURLToPath(import.meta.url);
  const proxyJs = path.join(path.dirname(self), '..', 'src', 'cli', 'main.js');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mxproxy-flood-'));
  const results: PhaseResult[] = [];
  const backend = net.createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  try {
    const { createCa, issueCertificate, writeIssued } = await import('../src/certs/index.js');
    const ca = await createCa({ commonName: 'mxproxy flood bench CA', algorithm: 'ec-p256' });
    const server = await issueCertificate(ca, { kind: 'server', commonName: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
    const client = await issueCertificate(ca, { kind: 'client', commonName: 'bench-client' });
    const dir = path.join(tmp, 'certs');
    const caFiles = await writeIssued(dir, 'ca', ca);
    const serverFiles = await writeIssued(dir, 'server', server);
    const m: Material = { ca: ca.certPem, cert: client.certPem, key: client.keyPem };
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    const backendPort = (backend.address() as net.AddressInfo).port;

    const variants: { name: string; lines: string[] }[] = [
      // The defaults, with connectRate set as on a network with untrusted hosts (the default only stops a
      // runaway source): what docs/security.md measured.
      { name: 'defaults, connectRate 20/s burst 40', lines: ['connectRate = "20/s burst 40"'] },
      { name: 'per-source limits off', lines: ['connectRate = "off"', 'maxPendingPerSource = 100000', 'maxPendingHandshakes = 100000'] },
    ];
    for (let round = 0; round < rounds; round++) for (const v of variants) {
      for (const phase of ['quiet', 'tls', 'tcp', 'churn'] as Phase[]) {
        // A fresh proxy per phase: its buckets, counters and log are that phase's alone.
        const port = await freePort();
        const base = path.join(tmp, `${v.name.replace(/\W+/g, '-')}-${phase}`);
        const cfg = `${base}.config`;
        fs.writeFileSync(
          cfg,
          [
            '[proxy]',
            `listen = "127.0.0.1:${port}"`,
            `sslCertificate = "${serverFiles.certFile} ${serverFiles.keyFile} ${caFiles.certFile}"`,
            `server = "echo 127.0.0.1:${backendPort}"`,
            'allow = "bench-client echo"',
            `eventLog = "${base}.mxlog"`,
            ...v.lines,
            '',
          ].join('\n'),
        );
        const logFd = fs.openSync(`${base}.log`, 'w');
        const proxy = startNode([proxyJs, 'start', '-c', cfg, '--log-format', 'json'], logFd);
        fs.closeSync(logFd);
        await waitForPort(port);
        const cpu0 = cpuMs(proxy.pid);
        const flood = phase === 'quiet' ? Promise.resolve(null) : runFlooder(self, phase, port, m, durationMs, loops);
        if (phase !== 'quiet') await sleep(500); // let the flood build up first
        const r = await measure(port, m, durationMs - (phase === 'quiet' ? 0 : 1000));
        const n = await flood;
        const cpu = cpuMs(proxy.pid) - cpu0;
        proxy.kill('SIGTERM');
        await new Promise((resolve) => proxy.once('exit', resolve));
        results.push({
          limits: v.name,
          phase,
          ok: r.times.length,
          failed: r.failed,
          medianMs: quantile(r.times, 0.5),
          p90Ms: quantile(r.times, 0.9),
          flood: n,
          refused: refusedIn(`${base}.log`),
          proxyCpuMs: cpu,
          ...(await eventLogFigures(`${base}.mxlog`)),
        });
      }
    }
  } finally {
    for (const c of children) c.kill('SIGKILL');
    backend.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }

  // Several rounds: each figure is the median over the rounds (a shared machine is noisy).
  const keys = [...new Set(results.map((r) => `${r.limits}\t${r.phase}`))];
  const med = (xs: number[]): number => quantile(xs, 0.5);
  const summary: PhaseResult[] = keys.map((k) => {
    const rs = results.filter((r) => `${r.limits}\t${r.phase}` === k);
    const first = rs[0]!;
    const num = (f: (r: PhaseResult) => number) => med(rs.map(f));
    return {
      limits: first.limits,
      phase: first.phase,
      ok: num((r) => r.ok),
      failed: num((r) => r.failed),
      medianMs: num((r) => r.medianMs),
      p90Ms: num((r) => r.p90Ms),
      flood: first.flood === null ? null : num((r) => r.flood ?? 0),
      refused: num((r) => r.refused),
      proxyCpuMs: num((r) => r.proxyCpuMs),
      logBytes: num((r) => r.logBytes),
      logPairs: num((r) => r.logPairs),
      logDropped: num((r) => r.logDropped),
    };
  });
  if (values.json) {
    process.stdout.write(JSON.stringify({ rounds: results, median: summary }, null, 2) + '\n');
    return;
  }
  const rows = [
    ['limits', 'phase', 'linked', 'failed', 'median ms', 'p90 ms', 'flood', 'refused', 'proxy CPU ms', 'log KiB', 'log pairs', 'not logged'],
    ...summary.map((r) => [
      r.limits,
      r.phase,
      String(r.ok),
      String(r.failed),
      r.medianMs.toFixed(2),
      r.p90Ms.toFixed(2),
      r.flood === null ? '' : String(r.flood),
      String(r.refused),
      r.proxyCpuMs.toFixed(0),
      (r.logBytes / 1024).toFixed(0),
      String(r.logPairs),
      String(r.logDropped),
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const row of rows) process.stdout.write(row.map((c, i) => c.padEnd(widths[i]!)).join('  ') + '\n');
  process.stdout.write(`(${os.cpus().length} CPUs, node ${process.version}, ${durationMs / 1000} s per phase, ${loops} TLS flood loops, ${rounds === 1 ? '1 round' : `median of ${rounds} rounds`})\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`floodBench: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  for (const c of children) c.kill('SIGKILL');
  process.exitCode = 1;
});
