/**
 * `mxproxy forward`'s admin endpoint ([client] adminListen) over real traffic: plain TCP clients → forwarder →
 * mutual TLS → a real proxy → an echo server. /status and /metrics move as pairs open and close (pairs by state
 * of the forward machine, accepts, declines, dial failures, the connect and link histograms, bytes of ended
 * pairs); the table and a pair's transitions; the page names the forward machine and its diagram is drawn from
 * it; the token holds (401 without it); a non-loopback adminListen without a token stops `mxproxy forward` at
 * start (ERR_CONFIG, exit 2, the file and line named).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readClientConfig, type ClientConfig } from '../../src/config/index.js';
import { startForwarder, type Forwarder } from '../../src/forward/forwarder.js';
import { createLogger } from '../../src/log.js';
import { loadTlsMaterial } from '../../src/net/tlsMaterial.js';
import { getJson, httpRequest, metricValue } from '../helpers/admin.js';
import { deadPort, digestUntilEnd, echoHandler, startBackend, startHarness, waitFor, type Backend, type Harness } from '../helpers/harness.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const TOKEN = 'forward-admin-token-0123456789';

interface Status {
  role: string;
  pid: number;
  version: string;
  uptimeSeconds: number;
  listeners: string[];
  admin: string;
  config: { file: string; loadedAt: string };
  accepted: number;
  active: number;
  linked: number;
  refused: number;
  states: Record<string, number>;
  forwards: { listen: string; target: string; via: string }[];
}

interface Started {
  fwd: Forwarder;
  base: string;
  port(target: string): number;
}

const quiet = () => createLogger({ format: 'json', level: 'error', stream: new Writable({ write: (_c, _e, cb) => cb() }) });

/** A forwarder from [client] lines, its admin endpoint moved to a free loopback port. */
async function forwarder(pki: TestPki, lines: string[]): Promise<Started> {
  const text = ['[client]', `sslCertificate = "${pki.client.cert} ${pki.client.key} ${pki.caFile}"`, ...lines].join('\n');
  const parsed = readClientConfig(text, `${pki.dir}/client.config`, { requireForwards: true });
  assert.ok(parsed.admin, 'adminListen in the lines');
  const config: ClientConfig = { ...parsed, admin: { ...parsed.admin, listen: { host: '127.0.0.1', port: 0 } } };
  const fwd = await startForwarder({ config, tls: config.proxy && config.tls ? loadTlsMaterial(config.tls) : undefined, logger: quiet() });
  assert.ok(fwd.adminAddress, 'the admin endpoint is bound');
  return {
    fwd,
    base: `http://${fwd.adminAddress}`,
    port: (target) => {
      const a = fwd.addresses.find((x) => x.target === target);
      assert.ok(a, `no forward for ${target}`);
      return a.address.port;
    },
  };
}

function tcp(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true }, () => resolve(s));
    s.once('error', reject);
  });
}

describe('mxproxy forward: admin endpoint over real traffic', () => {
  let pki: TestPki;
  let echo: Backend;
  let h: Harness;
  let f: Started;
  let dead: number;

  before(async () => {
    pki = await createTestPki();
    echo = await startBackend(echoHandler);
    dead = await deadPort();
    h = await startHarness(pki, { servers: { echo: [echo.address], secret: [echo.address] }, allow: ['test-client echo'] });
    f = await forwarder(pki, [
      `mxProxy = "127.0.0.1:${h.port}"`,
      'forward = "127.0.0.1:0 echo"',
      'forward = "127.0.0.1:0 secret"',
      'adminListen = "127.0.0.1:9679"',
    ]);
  });
  after(async () => {
    await f?.fwd.stop();
    await h?.stop();
    await echo?.close();
    pki?.cleanup();
  });

  const metrics = async (base = f.base): Promise<string> => {
    const r = await httpRequest(`${base}/metrics`);
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    return r.body;
  };
  const value = async (name: string, labels = '', base = f.base): Promise<number> => metricValue(await metrics(base), name, labels) ?? 0;
  const status = (base = f.base) => getJson<Status>(`${base}/status`);
  const until = async (cond: () => Promise<boolean>, what: string): Promise<void> => {
    const t0 = Date.now();
    while (!(await cond())) {
      if (Date.now() - t0 > 5000) assert.fail(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  const idle = () => waitFor(() => f.fwd.stats().active === 0, 5000, 'every pair forgotten');

  it('/status names the forwarder, its forwards and its configuration', async () => {
    const s = await status();
    assert.equal(s.role, 'forward');
    assert.equal(s.pid, process.pid);
    assert.equal(s.admin, f.fwd.adminAddress);
    assert.equal(s.config.file, `${pki.dir}/client.config`);
    assert.deepEqual(
      s.forwards.map((x) => [x.listen, x.target, x.via]),
      [
        [`127.0.0.1:${f.port('echo')}`, 'echo', `proxy 127.0.0.1:${h.port}`],
        [`127.0.0.1:${f.port('secret')}`, 'secret', `proxy 127.0.0.1:${h.port}`],
      ],
    );
    assert.deepEqual(s.listeners, [`127.0.0.1:${f.port('echo')}`, `127.0.0.1:${f.port('secret')}`]);
    assert.ok(s.uptimeSeconds >= 0);
    const m = await metrics();
    assert.match(m, /^mxforward_build_info\{version="[^"]+"\} 1$/m);
    for (const state of ['linking.connecting', 'linking.requesting', 'forwarding', 'teardown.closing', 'teardown.aborting']) {
      assert.equal(metricValue(m, 'mxforward_pairs', `state="${state}"`), 0, `every state a series: ${state}`);
    }
    assert.match(m, /^process_cpu_user_seconds_total /m, "the process's metrics too");
    assert.doesNotMatch(m, /^mxproxy_/m, "none of the proxy's names");
  });

  it('pairs by state, accepts and linked go up as pairs open and down as they close; bytes count once ended', async () => {
    await idle();
    const accepts = await value('mxforward_accepts_total');
    const before = await status();
    const up = await value('mxforward_forwarded_bytes_total', 'direction="up"');
    const links = await value('mxforward_link_duration_seconds_count');
    const held: net.Socket[] = [];
    for (let i = 0; i < 3; i++) held.push(await tcp(f.port('echo')));
    await until(async () => (await value('mxforward_pairs', 'state="forwarding"')) === 3, 'three pairs forwarding');
    const open = await status();
    assert.equal(open.active, 3);
    assert.equal(open.states.forwarding, 3);
    assert.equal(open.accepted, before.accepted + 3);
    assert.equal(open.linked, before.linked + 3);
    assert.equal(await value('mxforward_accepts_total'), accepts + 3);
    assert.equal(await value('mxforward_link_duration_seconds_count'), links + 3);
    assert.ok((await value('mxforward_connect_duration_seconds_count', 'outcome="connected"')) >= 3);

    // The table: the live pairs with their local peers, target and upstream; a pair's transitions.
    const table = await getJson<{ rows: { id: string; peer: string; target: string; backend: string; state: string; endedAt: number | null }[] }>(
      `${f.base}/api/connections`,
    );
    const live = table.rows.filter((r) => r.endedAt === null);
    assert.equal(live.length, 3);
    const ports = held.map((s) => `127.0.0.1:${s.localPort}`).sort();
    assert.deepEqual(live.map((r) => r.peer).sort(), ports, 'each row is a local client');
    for (const r of live) assert.deepEqual([r.target, r.backend, r.state], ['echo', `127.0.0.1:${h.port}`, 'forwarding']);
    const detail = await getJson<{ history: { from: string | null; to: string; on: string }[]; local: string }>(`${f.base}/api/connections/${live[0]!.id}`);
    assert.equal(detail.local, `127.0.0.1:${f.port('echo')}`);
    assert.deepEqual(
      detail.history.map((x) => `${x.from ?? '(start)'} → ${x.to} on ${x.on}`),
      ['(start) → linking.connecting on xstate.init', 'linking.connecting → linking.requesting on BACKEND_CONNECTED', 'linking.requesting → forwarding on PROXY_REPLY_OK'],
    );

    // 1000 bytes up, echoed down, on one of them; all three closed.
    const got = digestUntilEnd(held[0]!);
    held[0]!.end(Buffer.alloc(1000, 7));
    assert.equal((await got).bytes, 1000);
    for (const s of held.slice(1)) {
      s.end();
      s.resume();
    }
    await until(async () => (await value('mxforward_pairs', 'state="forwarding"')) === 0, 'no pair forwarding');
    await idle();
    const closed = await status();
    assert.equal(closed.active, 0);
    assert.equal(closed.states.forwarding ?? 0, 0);
    assert.equal(await value('mxforward_forwarded_bytes_total', 'direction="up"'), up + 1000);
    assert.ok((await value('mxforward_pairs_ended_total', 'reason="client-closed"')) >= 3);
    const ended = await getJson<{ rows: { endedAt: number | null; up: number; down: number; reason: string }[] }>(`${f.base}/api/connections`);
    assert.ok(ended.rows.some((r) => r.endedAt !== null && r.up === 1000 && r.down === 1000 && r.reason === 'client-closed'), 'the ended pair stays listed with its bytes');
    for (const s of held) s.destroy();
  });

  it('a decline counts by its code and as refused', async () => {
    await idle();
    const declines = await value('mxforward_declines_total', 'code="ERR_NOT_ALLOWED"');
    const refused = (await status()).refused;
    const s = await tcp(f.port('secret'));
    s.on('error', () => {});
    s.resume();
    await new Promise((r) => s.once('close', r));
    await idle();
    assert.equal(await value('mxforward_declines_total', 'code="ERR_NOT_ALLOWED"'), declines + 1);
    assert.ok((await value('mxforward_pairs_ended_total', 'reason="declined"')) >= 1);
    assert.equal((await status()).refused, refused + 1);
  });

  it('dial failures by target and code, with mxProxy = "none" and a dead address', async () => {
    const direct = await forwarder(pki, ['mxProxy = "none"', `forward = "127.0.0.1:0 gone 127.0.0.1:${dead}"`, 'adminListen = "127.0.0.1:9679"']);
    try {
      const s = await tcp(direct.port('gone'));
      s.on('error', () => {});
      s.resume();
      await new Promise((r) => s.once('close', r));
      await waitFor(() => direct.fwd.stats().active === 0, 5000, 'the pair forgotten');
      assert.equal(await value('mxforward_dial_failures_total', 'target="gone",code="ECONNREFUSED"', direct.base), 1);
      assert.equal(await value('mxforward_connect_duration_seconds_count', 'outcome="failed"', direct.base), 1);
      assert.equal(await value('mxforward_pairs_ended_total', 'reason="unreachable"', direct.base), 1);
      assert.equal((await status(direct.base)).forwards[0]!.via, `direct 127.0.0.1:${dead}`);
    } finally {
      await direct.fwd.stop();
    }
  });

  it("the page is the forwarder's: /api/page, and the forward machine's diagram", async () => {
    assert.deepEqual(await getJson(`${f.base}/api/page`), { role: 'forward', machine: 'forward', title: 'mxproxy forward inspector' });
    const svg = await httpRequest(`${f.base}/diagram.svg`);
    assert.equal(svg.status, 200);
    for (const s of ['forward.linking.connecting', 'forward.linking.requesting', 'forward.forwarding', 'forward.teardown.aborting']) {
      assert.ok(svg.body.includes(`<title>${s}</title>`), s);
    }
    assert.ok(!svg.body.includes('<title>connection.'), "not the proxy's machine");
    const page = await httpRequest(`${f.base}/`);
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-security-policy']), /script-src 'self'/);
  });

  it('a Host that is not a loopback name is refused without a token', async () => {
    assert.equal((await httpRequest(`${f.base}/status`, { headers: { Host: 'evil.example' } })).status, 403);
  });
});

describe('mxproxy forward: admin endpoint with adminToken', () => {
  it('401 without the token on every path, 200 with it', async () => {
    const pki = await createTestPki();
    const echo = await startBackend(echoHandler);
    const f = await forwarder(pki, ['mxProxy = "none"', `forward = "127.0.0.1:0 echo ${echo.address}"`, 'adminListen = "127.0.0.1:9679"', `adminToken = "${TOKEN}"`]);
    try {
      for (const route of ['/', '/metrics', '/status', '/events', '/api/connections', '/api/page', '/diagram.svg']) {
        const r = await httpRequest(`${f.base}${route}`);
        assert.equal(r.status, 401, route);
        assert.match(String(r.headers['www-authenticate']), /Bearer realm="mxproxy admin"/);
      }
      assert.equal((await httpRequest(`${f.base}/status`, { headers: { Authorization: `Bearer ${TOKEN}x` } })).status, 401);
      const ok = await httpRequest(`${f.base}/status`, { headers: { Authorization: `Bearer ${TOKEN}` } });
      assert.equal(ok.status, 200);
      assert.equal((JSON.parse(ok.body) as Status).role, 'forward');
      assert.equal((await httpRequest(`${f.base}/metrics`, { headers: { Authorization: `Bearer ${TOKEN}` } })).status, 200);
    } finally {
      await f.fwd.stop();
      await echo.close();
      pki.cleanup();
    }
  });
});

describe('[client] adminListen off loopback without adminToken', () => {
  it('mxproxy forward refuses to start: ERR_CONFIG at the adminListen line, exit 2', async () => {
    const pki = await createTestPki();
    try {
      const file = path.join(pki.dir, 'forward-admin.config');
      fs.writeFileSync(file, ['[client]', 'mxProxy = "none"', 'forward = "127.0.0.1:0 data 127.0.0.1:1"', 'adminListen = "0.0.0.0:9679"', ''].join('\n'));
      const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        execFile(process.execPath, [MAIN, 'forward', '-c', file], { timeout: 20_000 }, (err, _stdout, stderr) =>
          resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stderr }),
        );
      });
      assert.equal(r.code, 2, r.stderr);
      assert.ok(r.stderr.includes(`${file}:4: adminListen 0.0.0.0:9679 is not a loopback address: set adminToken too`), r.stderr);
    } finally {
      pki.cleanup();
    }
  });
});
