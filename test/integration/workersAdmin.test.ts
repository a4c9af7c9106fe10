/**
 * `[proxy] workers = 2` with adminListen, as a user runs it (`mxproxy start` in its own process): the primary
 * serves the admin endpoint, the workers bind nothing. After real connections through both workers, /metrics
 * shows their sum (accepts, pairs by state, bytes, the pool's own figures), /status lists both workers with
 * their counts and the totals, the table holds rows of both workers, each marked with its worker, and a pair's
 * transitions come from the worker that holds it. Every process this starts is ended by its pid.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { getJson, httpRequest, metricValue } from '../helpers/admin.js';
import { closed, deadPort, digestUntilEnd, echoHandler, request, startBackend, type Backend, type ClientSocket } from '../helpers/harness.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

interface Proxy {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | string | null>;
}

function start(config: string): Proxy {
  const child = spawn(process.execPath, [MAIN, 'start', '-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
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

interface WorkerEntry {
  worker: number;
  pid: number;
  listening: boolean;
  answered: boolean;
  accepted: number;
  active: number;
  states: Record<string, number>;
}

interface ClusterStatus {
  version: string;
  role: string;
  pid: number;
  admin: string;
  listeners: string[];
  accepted: number;
  active: number;
  states: Record<string, number>;
  workersAnswered: number;
  workers: WorkerEntry[];
}

interface Row {
  id: string;
  worker: number;
  state: string;
  endedAt: number | null;
  up: number;
}

describe('[proxy] workers = 2 with adminListen', () => {
  let pki: TestPki;
  let echo: Backend;
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

  it('the primary serves it: metrics summed over both workers, /status with both, the table of both', async () => {
    const port = await deadPort();
    const adminPort = await deadPort();
    const file = path.join(pki.dir, 'workers-admin.config');
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
        `adminListen = "127.0.0.1:${adminPort}"`,
      ].join('\n'),
    );
    const p = start(file);
    pids.add(p.child.pid!);
    await waitForOutput(p, /mxproxy listening on 127\.0\.0\.1:\d+ with 2 workers \(pids (\d+), (\d+)\)/);
    const m = /with 2 workers \(pids (\d+), (\d+)\)/.exec(p.output())!;
    const workerPids = [Number(m[1]), Number(m[2])];
    for (const pid of workerPids) pids.add(pid);
    const base = `http://127.0.0.1:${adminPort}`;
    // Bound once, by the primary, before the workers were started.
    assert.equal(p.output().match(/admin endpoint on http:\/\/127\.0\.0\.1:\d+\//g)?.length, 1, p.output());
    assert.match(p.output(), /admin endpoint on http:\/\/127\.0\.0\.1:\d+\/ \(inspector, \/metrics, \/status over 2 workers; no token/);
    assert.doesNotMatch(p.output(), /"worker":\d.*admin endpoint on|admin endpoint on.* worker=\d/);

    const metrics = async (): Promise<string> => {
      const r = await httpRequest(`${base}/metrics`);
      assert.equal(r.status, 200, r.body);
      return r.body;
    };
    const before = await getJson<ClusterStatus>(`${base}/status`);
    assert.equal(before.pid, p.child.pid, "the primary's endpoint");
    assert.equal(before.workers.length, 2);
    assert.deepEqual(before.workers.map((w) => [w.worker, w.listening, w.answered]), [[1, true, true], [2, true, true]]);
    assert.deepEqual(before.workers.map((w) => w.pid).sort(), [...workerPids].sort());
    assert.equal(before.accepted, 0);
    assert.deepEqual(before.listeners, [`127.0.0.1:${port}`]);

    // Six round trips (round-robin: three on each worker), then four pairs held open.
    for (let i = 0; i < 6; i++) {
      const { socket, reply, rest } = await request({ port, pki, target: 'echo' });
      assert.equal(reply.ok, true);
      const got = digestUntilEnd(socket, rest);
      socket.end('ping');
      assert.equal((await got).bytes, 4);
    }
    const held: ClientSocket[] = [];
    for (let i = 0; i < 4; i++) {
      const { socket, reply } = await request({ port, pki, target: 'echo' });
      assert.equal(reply.ok, true);
      held.push(socket);
    }

    // Every figure is the sum over both workers.
    const deadline = Date.now() + 10_000;
    let text = '';
    for (;;) {
      text = await metrics();
      if (metricValue(text, 'mxproxy_pairs', 'state="forwarding"') === 4 && metricValue(text, 'mxproxy_forwarded_bytes_total', 'direction="up"') === 24) break;
      if (Date.now() > deadline) assert.fail(`the sums did not arrive:\n${text.split('\n').filter((l) => l.startsWith('mxproxy_')).join('\n')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(metricValue(text, 'mxproxy_accepts_total'), 10);
    // client-closed or server-closed, as the echo's end and the client's close race.
    const ended = text.split('\n').filter((l) => l.startsWith('mxproxy_pairs_ended_total{'));
    assert.equal(ended.reduce((n, l) => n + Number(l.split(' ')[1]), 0), 6, ended.join('\n'));
    assert.equal(metricValue(text, 'mxproxy_connect_duration_seconds_count', 'outcome="connected"'), 10, 'histograms summed');
    assert.equal(metricValue(text, 'mxproxy_handshake_duration_seconds_count', 'phase="tls"'), 10);
    assert.equal(metricValue(text, 'mxproxy_workers'), 2);
    assert.equal(metricValue(text, 'mxproxy_workers_listening'), 2);
    assert.equal(metricValue(text, 'mxproxy_workers_answering'), 2);
    assert.equal(metricValue(text, 'mxproxy_worker_restarts_total'), 0);
    assert.equal(metricValue(text, 'mxproxy_build_info', `version="${before.version}"`), 1, 'one build, not two');
    assert.match(text, /^process_resident_memory_bytes \d+/m, 'process metrics of the service');
    assert.equal(text.match(/^# TYPE mxproxy_accepts_total /gm)?.length, 1, 'each metric once');

    const s = await getJson<ClusterStatus>(`${base}/status`);
    assert.equal(s.workers.length, 2);
    assert.equal(s.workersAnswered, 2);
    assert.equal(s.accepted, 10);
    assert.equal(s.active, 4);
    assert.equal(s.states.forwarding, 4);
    // Round-robin: both served (in turn, as a rule: 5 and 5); the total is what matters here.
    assert.ok(s.workers.every((w) => w.accepted > 0), JSON.stringify(s.workers));
    assert.equal(s.workers[0]!.accepted + s.workers[1]!.accepted, 10);
    assert.equal(s.workers.reduce((n, w) => n + (w.states.forwarding ?? 0), 0), 4);

    // The table: rows of both workers, each marked; a pair's transitions from its worker.
    const table = await getJson<{ counts: Record<string, number>; rows: Row[] }>(`${base}/api/connections`);
    assert.equal(table.counts.forwarding, 4);
    const live = table.rows.filter((r) => r.endedAt === null);
    assert.equal(live.length, 4);
    assert.deepEqual([...new Set(table.rows.map((r) => r.worker))].sort(), [1, 2]);
    for (const r of table.rows) assert.match(r.id, new RegExp(`^${r.worker}-[0-9a-z]+$`));
    assert.equal(table.rows.filter((r) => r.endedAt !== null).length, 6, 'the ended ones of both');
    const one = live[0]!;
    const detail = await getJson<{ id: string; worker: number; history: { to: string; on: string }[] }>(`${base}/api/connections/${one.id}`);
    assert.equal(detail.id, one.id);
    assert.equal(detail.worker, one.worker);
    assert.equal(detail.history.at(-1)?.to, 'forwarding');
    assert.equal((await httpRequest(`${base}/api/connections/3-1`)).status, 404, 'no worker 3');
    assert.deepEqual(await getJson(`${base}/api/page`), {
      role: 'cluster',
      machine: 'connection',
      title: 'mxproxy inspector (2 workers)',
      workers: 2,
      refreshMs: 250,
    });

    for (const socket of held) {
      socket.resume();
      socket.end();
      await closed(socket);
    }
    const t0 = Date.now();
    while (metricValue(await metrics(), 'mxproxy_pairs', 'state="forwarding"') !== 0) {
      if (Date.now() - t0 > 10_000) assert.fail('the pairs did not close');
      await new Promise((r) => setTimeout(r, 50));
    }

    p.child.kill('SIGTERM');
    assert.equal(await p.exited, 0, p.output());
    for (const pid of workerPids) assert.equal(alive(pid), false);
    await assert.rejects(httpRequest(`${base}/status`), 'the endpoint closed with the primary');
  });
});
