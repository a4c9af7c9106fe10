/**
 * `[proxy] workers = 2` as a user runs it: `mxproxy start` in its own process is a primary with two worker
 * processes on one port. Both serve; a worker killed with SIGKILL is replaced while the other goes on serving;
 * SIGTERM stops them all with exit 0; each worker wrote its own event log series, and `mxproxy replay` of the
 * configured path replays both. As root, also with `user = "nobody"` and a root-only key. Every process this
 * starts is ended by its pid.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { lookupAccount } from '../../src/process/accounts.js';
import { OPENSSL_CONFIG } from '../../src/process/opensslConfig.js';
import { deadPort, digestUntilEnd, echoHandler, request, startBackend, type Backend, type ClientSocket } from '../helpers/harness.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

interface Proxy {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | string | null>;
}

function start(config: string, args: string[] = []): Proxy {
  const child = spawn(process.execPath, [MAIN, 'start', '-c', config, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string | null>((r) => child.once('close', (code, signal) => r(code ?? signal)));
  return { child, output: () => out, exited };
}

async function waitForOutput(p: Proxy, re: RegExp, ms = 20_000): Promise<RegExpExecArray> {
  const t0 = Date.now();
  for (;;) {
    const m = re.exec(p.output());
    if (m) return m;
    if (p.child.exitCode !== null) throw new Error(`exited ${p.child.exitCode} before ${re}:\n${p.output()}`);
    if (Date.now() - t0 > ms) throw new Error(`no ${re} within ${ms} ms:\n${p.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The pids of the workers, from the primary's `worker <n> (pid <p>) listening` lines (the latest of each). */
function workerPids(out: string): Map<number, number> {
  const pids = new Map<number, number>();
  for (const m of out.matchAll(/worker (\d+) \(pid (\d+)\) listening/g)) pids.set(Number(m[1]), Number(m[2]));
  return pids;
}

/** A linked pair through the proxy; resolves with the socket and the worker that logged its link. */
async function link(p: Proxy, port: number, pki: TestPki): Promise<{ socket: ClientSocket; rest: Buffer; worker: number }> {
  const { socket, reply, rest } = await request({ port, pki, target: 'echo' });
  assert.equal(reply.ok, true);
  const local = socket.raw.localPort;
  const m = await waitForOutput(p, new RegExp(`info  link conn=\\S+ peer=127\\.0\\.0\\.1:${local} .* worker=(\\d+)`));
  return { socket, rest, worker: Number(m[1]) };
}

/** One echo round trip on a new connection; resolves with the worker that served it. */
async function roundTrip(p: Proxy, port: number, pki: TestPki): Promise<number> {
  const { socket, rest, worker } = await link(p, port, pki);
  const got = digestUntilEnd(socket, rest);
  socket.end('ping');
  assert.equal((await got).bytes, 4);
  return worker;
}

function replay(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, 'replay', '--no-progress', ...args], { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    );
  });
}

describe('[proxy] workers = 2', () => {
  let pki: TestPki;
  let echo: Backend;
  /** Every pid this test saw (primary and workers), to end what is left at the end. */
  const pids = new Set<number>();

  before(async () => {
    pki = await createTestPki();
    echo = await startBackend(echoHandler);
  });
  after(async () => {
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await echo?.close();
    pki?.cleanup();
  });

  async function config(name: string, extra: string[]): Promise<{ file: string; port: number }> {
    const port = await deadPort();
    const file = path.join(pki.dir, name);
    fs.writeFileSync(
      file,
      [
        '[proxy]',
        `listen = "127.0.0.1:${port}"`,
        `sslCertificate = "${pki.server.cert} ${pki.server.key} ${pki.caFile}"`,
        `server = "echo ${echo.address}"`,
        'allow = "test-client echo"',
        'connectRate = "off"',
        'workers = 2',
        ...extra,
      ].join('\n'),
    );
    return { file, port };
  }

  it('both workers serve; one killed is replaced while the other serves; SIGTERM ends all with 0; replay reads both logs', async () => {
    const { file, port } = await config('workers.config', ['eventLog = "logs/events.mxlog"']);
    const p = start(file, ['--report', 'dispatch']);
    pids.add(p.child.pid!);
    await waitForOutput(p, /mxproxy listening on 127\.0\.0\.1:\d+ with 2 workers \(pids \d+, \d+\)/);
    const first = workerPids(p.output());
    assert.equal(first.size, 2);
    for (const pid of first.values()) pids.add(pid);
    // Started without it, the primary gives its workers the shipped OpenSSL settings (src/process/opensslConfig.ts).
    assert.match(p.output(), /TLS: one TLS 1\.3 session ticket per full handshake/);
    for (const pid of first.values()) {
      assert.ok(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(`--openssl-config=${OPENSSL_CONFIG}`), `worker ${pid}`);
    }

    // Round-robin: consecutive connections go to alternate workers; a few tries in case of a late start.
    const served = new Set<number>();
    for (let i = 0; i < 8 && served.size < 2; i++) served.add(await roundTrip(p, port, pki));
    assert.deepEqual([...served].sort(), [1, 2], 'both workers linked pairs');

    // A pair held open on worker 1, so that its death loses it; the other pairs opened meanwhile stay on worker 2.
    const held: ClientSocket[] = [];
    let onOne: ClientSocket | undefined;
    for (let i = 0; i < 8 && !onOne; i++) {
      const l = await link(p, port, pki);
      held.push(l.socket);
      if (l.worker === 1) onOne = l.socket;
    }
    assert.ok(onOne, 'a pair landed on worker 1');
    // The primary learns the open pairs from the worker's stats, once a second.
    await new Promise((r) => setTimeout(r, 1300));
    const closedByDeath = new Promise<void>((r) => onOne!.once('close', () => r()));

    const victim = first.get(1)!;
    process.kill(victim, 'SIGKILL');
    await waitForOutput(p, new RegExp(`worker 1 \\(pid ${victim}\\) died: SIGKILL; its 1 open pair was lost`));
    await closedByDeath;
    // Worker 2 serves while worker 1 restarts (in 250 ms, then its start-up).
    assert.equal(await roundTrip(p, port, pki), 2, 'served by the worker that lived');
    const replaced = await waitForOutput(p, new RegExp(`worker 1 \\(pid (?!${victim}\\))(\\d+)\\) listening`));
    const newPid = Number(replaced[1]);
    pids.add(newPid);
    assert.notEqual(newPid, victim);
    assert.equal(alive(victim), false);
    assert.match(p.output(), /restarting worker 1 in \d+ ms/);
    // And the new worker serves too.
    const later = new Set<number>();
    for (let i = 0; i < 8 && later.size < 2; i++) later.add(await roundTrip(p, port, pki));
    assert.deepEqual([...later].sort(), [1, 2], 'the new worker serves too');
    for (const s of held) s.destroy();

    p.child.kill('SIGTERM');
    assert.equal(await p.exited, 0, p.output());
    assert.match(p.output(), /mxproxy stopped \(2 workers\)/);
    for (const pid of [...workerPids(p.output()).values(), newPid]) assert.equal(alive(pid), false, `worker ${pid} has exited`);

    const logs = path.join(pki.dir, 'logs');
    const files = fs.readdirSync(logs).sort();
    assert.deepEqual(files, ['events.w1.mxlog', 'events.w1.mxlog.1', 'events.w2.mxlog'], 'one series per worker; worker 1 twice (a run each)');
    const r = await replay(path.join(logs, 'events.mxlog'));
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^=== worker 1, proxy run 1 of 3: .*events\.w1\.mxlog\.1$/m);
    assert.match(r.stdout, /^=== worker 2, proxy run 3 of 3: .*events\.w2\.mxlog$/m);
    assert.match(r.stdout.trim().split('\n').at(-1)!, /^replayed \d+ events, \d+ connections, all states, effects, outputs and decisions match; 3 runs of 2 workers \(each replayed on its own\)/);
  });

  it('a worker that cannot start stops the start: exit 1, the others stopped', async () => {
    const { file, port } = await config('busy.config', []);
    const busy = await startBackend(echoHandler);
    // The port is taken: the primary's bind (at the workers' listen) fails.
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(`127.0.0.1:${port}`, busy.address));
    const p = start(file);
    pids.add(p.child.pid!);
    try {
      assert.equal(await p.exited, 1);
    } finally {
      await busy.close();
    }
    assert.match(p.output(), /cannot start: ERR_LISTEN: cannot listen on .*EADDRINUSE/);
    assert.match(p.output(), /worker \d \(pid \d+\) could not start: exit code 1; stopping/);
  });
});

const nobody = lookupAccount('passwd', 'nobody');
const ROOT_ONLY = process.getuid?.() !== 0 ? { skip: 'needs root' } : !nobody ? { skip: 'no user nobody' } : {};

/** "Uid:" of a process: real, effective, saved and filesystem uid. */
const uids = (pid: number): string[] =>
  (fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('Uid:')) ?? '').slice(4).trim().split(/\s+/);

describe('[proxy] workers = 2 with user = "nobody"', ROOT_ONLY, () => {
  let pki: TestPki;
  let echo: Backend;
  const pids = new Set<number>();

  before(async () => {
    pki = await createTestPki();
    echo = await startBackend(echoHandler);
    fs.chmodSync(pki.dir, 0o711); // the account reaches the event log directory; the files stay root's
  });
  after(async () => {
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await echo?.close();
    pki?.cleanup();
  });

  it('primary and workers run as nobody; a worker restarted by the dropped primary serves with the root-only key', async () => {
    assert.equal(fs.statSync(pki.server.key).mode & 0o777, 0o600);
    const port = await deadPort();
    const file = path.join(pki.dir, 'nobody.config');
    fs.writeFileSync(
      file,
      [
        '[proxy]',
        `listen = "127.0.0.1:${port}"`,
        `sslCertificate = "${pki.server.cert} ${pki.server.key} ${pki.caFile}"`,
        `server = "echo ${echo.address}"`,
        'allow = "test-client echo"',
        'connectRate = "off"',
        'workers = 2',
        'user = "nobody"',
        'eventLog = "wlogs/events.mxlog"',
      ].join('\n'),
    );
    const p = start(file, ['--report', 'dispatch']);
    pids.add(p.child.pid!);
    await waitForOutput(p, /with 2 workers/);
    await waitForOutput(p, /primary running as user nobody \(65534\)/);
    const first = workerPids(p.output());
    for (const pid of first.values()) pids.add(pid);
    assert.deepEqual(uids(p.child.pid!), ['65534', '65534', '65534', '65534'], 'the primary dropped root');
    for (const pid of first.values()) assert.deepEqual(uids(pid), ['65534', '65534', '65534', '65534'], 'each worker dropped root');

    process.kill(first.get(2)!, 'SIGKILL');
    const m = await waitForOutput(p, new RegExp(`worker 2 \\(pid (?!${first.get(2)}\\))(\\d+)\\) listening`));
    const again = Number(m[1]);
    pids.add(again);
    assert.deepEqual(uids(again), ['65534', '65534', '65534', '65534']);
    const served = new Set<number>();
    for (let i = 0; i < 8 && served.size < 2; i++) served.add(await roundTrip(p, port, pki));
    assert.deepEqual([...served].sort(), [1, 2], 'the restarted worker serves, with the certificates from the primary');
    assert.equal(fs.statSync(path.join(pki.dir, 'wlogs', 'events.w2.mxlog')).uid, 65534);

    p.child.kill('SIGTERM');
    assert.equal(await p.exited, 0, p.output());
  });
});
