/**
 * The admin endpoint over real traffic: /metrics moves with accepts, declines, dial failures, TLS refusals and
 * the bytes of ended pairs; /status counts pairs by state; /api shows a pair's transitions and replays event
 * logs without reading anything else; hostile targets and CNs reach /events escaped; the token and the Host
 * check hold; a non-loopback adminListen without a token stops the start; startProxy's `inspect` sees pairs.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { InspectionEvent } from 'xstate';
import { printable } from '../../src/shared/printable.js';
import { getJson, httpRequest, metricValue, readEvents, startAdminHarness, type AdminHarness } from '../helpers/admin.js';
import {
  closed,
  deadPort,
  echoHandler,
  patternBytes,
  request,
  startBackend,
  startHarness,
  tlsConnect,
  waitFor,
  type Backend,
} from '../helpers/harness.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MAIN = path.resolve(HERE, '../../src/cli/main.js');
const FIXTURES = path.resolve(HERE, '../../../test/fixtures/eventlog');
const pkg = createRequire(import.meta.url)('../../../package.json') as { version: string };

/** A target that tries to break a log line, a terminal and a page. */
const EVIL_TARGET = 'nosuch\n<img src=x onerror="window.__pwned=1">\x1b[2J\x00\u202eFORGED-TARGET';
const EVIL_CN = 'hmi<b>bold</b>\x1b[2J\x00\nFORGED-CN';
/** What must never reach a terminal or a page raw. */
const RAW = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

interface Status {
  version: string;
  pid: number;
  uptimeSeconds: number;
  listeners: string[];
  admin: string;
  config: { file: string; loadedAt: string };
  eventLog: string | null;
  accepted: number;
  active: number;
  states: Record<string, number>;
}

interface Detail {
  id: string;
  state: string;
  identity: string | null;
  target: string | null;
  endedAt: number | null;
  reason: string | null;
  up: number;
  down: number;
  history: { from: string | null; to: string; on: string }[];
}

describe('admin endpoint over real traffic', () => {
  let pki: TestPki;
  let echo: Backend;
  let dead: number;
  let h: AdminHarness;
  let eventLog: string;

  before(async () => {
    pki = await createTestPki();
    echo = await startBackend(echoHandler);
    dead = await deadPort();
    eventLog = path.join(pki.dir, 'logs', 'events.mxlog');
    h = await startAdminHarness(pki, {
      servers: { echo: [echo.address], down: [`127.0.0.1:${dead}`] },
      allow: ['test-client echo down'],
      extra: `eventLog = "${eventLog}"`,
    });
  });
  after(async () => {
    await h?.stop();
    await echo?.close();
    pki?.cleanup();
  });

  const metrics = async (): Promise<string> => {
    const r = await httpRequest(`${h.base}/metrics`);
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    return r.body;
  };
  const value = async (name: string, labels = ''): Promise<number> => metricValue(await metrics(), name, labels) ?? 0;
  const untilValue = async (name: string, labels: string, want: number): Promise<void> => {
    let last = NaN;
    const t0 = Date.now();
    while (Date.now() - t0 < 5000) {
      last = await value(name, labels);
      if (last === want) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.fail(`${name}{${labels}} stayed ${last}, expected ${want}`);
  };
  const until = async (cond: () => Promise<boolean>, what: string): Promise<void> => {
    const t0 = Date.now();
    while (!(await cond())) {
      if (Date.now() - t0 > 5000) assert.fail(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  const idle = () => waitFor(() => h.proxy.stats().active === 0, 5000, 'every pair forgotten');

  it('accepts, pairs by state and the bytes of a pair once it has ended', async () => {
    await idle();
    const accepts = await value('mxproxy_accepts_total');
    const up = await value('mxproxy_forwarded_bytes_total', 'direction="up"');
    const down = await value('mxproxy_forwarded_bytes_total', 'direction="down"');
    const ended = await value('mxproxy_pairs_ended_total', 'reason="client-closed"');
    assert.equal(await value('mxproxy_pairs', 'state="forwarding"'), 0, 'the series exists at 0');

    const { socket, reply } = await request({ port: h.port, pki, target: 'echo' });
    assert.equal(reply.ok, true);
    const payload = patternBytes(10_000);
    let got = 0;
    socket.on('data', (d: Buffer) => (got += d.length));
    socket.resume();
    socket.write(payload);
    await waitFor(() => got === payload.length, 5000, 'the echo');
    await untilValue('mxproxy_pairs', 'state="forwarding"', 1);
    assert.equal(await value('mxproxy_accepts_total'), accepts + 1);
    // Bytes of a pair count once it has ended: nothing is added per chunk.
    assert.equal(await value('mxproxy_forwarded_bytes_total', 'direction="up"'), up);

    socket.end();
    await closed(socket);
    await idle();
    await untilValue('mxproxy_pairs', 'state="forwarding"', 0);
    assert.equal(await value('mxproxy_forwarded_bytes_total', 'direction="up"'), up + payload.length);
    assert.equal(await value('mxproxy_forwarded_bytes_total', 'direction="down"'), down + payload.length);
    assert.equal(await value('mxproxy_pairs_ended_total', 'reason="client-closed"'), ended + 1);
    const text = await metrics();
    assert.ok((metricValue(text, 'mxproxy_handshake_duration_seconds_count', 'phase="request"') ?? 0) >= 1);
    assert.ok((metricValue(text, 'mxproxy_connect_duration_seconds_count', 'outcome="connected"') ?? 0) >= 1);
    assert.equal(metricValue(text, 'mxproxy_build_info', `version="${pkg.version}"`), 1);
    assert.ok(text.includes('\nprocess_cpu_user_seconds_total '), 'process metrics');
    assert.ok(text.includes('\nnodejs_eventloop_lag_seconds '), 'event loop metrics');
  });

  it('declines by code, dial failures by target and address, TLS refusals by reason', async () => {
    await idle();
    const unknown = await value('mxproxy_declines_total', 'code="ERR_UNKNOWN_TARGET"');
    const unreachable = await value('mxproxy_declines_total', 'code="ERR_TARGET_UNREACHABLE"');
    const dialFailed = await value('mxproxy_dial_failures_total', `target="down",address="127.0.0.1:${dead}"`);

    const a = await request({ port: h.port, pki, target: 'nosuch' });
    assert.equal(a.reply.ok === false && a.reply.code, 'ERR_UNKNOWN_TARGET');
    a.socket.resume();
    await closed(a.socket);
    const b = await request({ port: h.port, pki, target: 'down' });
    assert.equal(b.reply.ok === false && b.reply.code, 'ERR_TARGET_UNREACHABLE');
    b.socket.resume();
    await closed(b.socket);
    await idle();
    await untilValue('mxproxy_declines_total', 'code="ERR_UNKNOWN_TARGET"', unknown + 1);
    await untilValue('mxproxy_declines_total', 'code="ERR_TARGET_UNREACHABLE"', unreachable + 1);
    await untilValue('mxproxy_dial_failures_total', `target="down",address="127.0.0.1:${dead}"`, dialFailed + 1);
    assert.ok((await value('mxproxy_connect_duration_seconds_count', 'outcome="failed"')) >= 1);

    const tlsRefusals = async (): Promise<number> =>
      (await metrics())
        .split('\n')
        .filter((l) => l.startsWith('mxproxy_tls_refusals_total{'))
        .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
    const tlsBefore = await tlsRefusals();
    // Refused: the handshake fails, or (TLS 1.3) completes on the client's side and the socket is then closed.
    try {
      const s = await tlsConnect({ port: h.port, pki, cert: pki.otherCaClient });
      s.on('error', () => {});
      s.resume();
      await closed(s);
    } catch {
      // refused during the handshake
    }
    await idle();
    await until(async () => (await tlsRefusals()) === tlsBefore + 1, 'the TLS refusal counted');
    assert.match(await metrics(), /^mxproxy_tls_refusals_total\{reason="[A-Z_]+"\} \d+$/m);
  });

  it('/status: version, pid, uptime, listeners, config file and when it was loaded, pairs by state', async () => {
    await idle();
    const opened = await Promise.all([0, 1].map(() => request({ port: h.port, pki, target: 'echo' })));
    await waitFor(() => h.proxy.stats().active === 2, 5000, 'two pairs');
    let status = await getJson<Status>(`${h.base}/status`);
    for (let i = 0; i < 100 && status.states.forwarding !== 2; i++) {
      await new Promise((r) => setTimeout(r, 20));
      status = await getJson<Status>(`${h.base}/status`);
    }
    assert.equal(status.states.forwarding, 2);
    assert.equal(status.version, pkg.version);
    assert.equal(status.pid, process.pid);
    assert.ok(status.uptimeSeconds >= 0);
    assert.deepEqual(status.listeners, h.proxy.addresses);
    assert.equal(status.admin, h.proxy.adminAddress);
    assert.equal(status.config.file, h.config.file);
    assert.ok(Date.parse(status.config.loadedAt) <= Date.now());
    assert.equal(status.eventLog, eventLog);
    assert.equal(status.active, 2);
    for (const { socket } of opened) {
      socket.resume();
      socket.end();
      await closed(socket);
    }
    await idle();
    status = await getJson<Status>(`${h.base}/status`);
    assert.equal(status.states.forwarding, undefined);
  });

  it("/api/connections/<id>: a pair's transitions, kept for a while after it ended", async () => {
    const { socket } = await request({ port: h.port, pki, target: 'echo' });
    const id = [...h.proxy.registry.ids()].at(-1)!;
    const live = await getJson<Detail>(`${h.base}/api/connections/${id}`);
    assert.equal(live.state, 'forwarding');
    assert.equal(live.target, 'echo');
    assert.equal(live.identity, 'test-client');
    assert.deepEqual(
      live.history.map((x) => x.to),
      ['handshake.tls', 'handshake.awaitingRequest', 'authorization', 'connecting', 'forwarding'],
    );
    socket.resume();
    socket.end();
    await closed(socket);
    await idle();
    const gone = await getJson<Detail>(`${h.base}/api/connections/${id}`);
    assert.equal(gone.reason, 'client-closed');
    assert.ok(gone.endedAt !== null);
    assert.equal(gone.history.at(-1)?.to, 'closed');
    assert.equal((await httpRequest(`${h.base}/api/connections/zzzz`)).status, 404);
    const table = await getJson<{ rows: { id: string }[] }>(`${h.base}/api/connections`);
    assert.ok(table.rows.some((r) => r.id === id), 'an ended pair stays in the table');
  });

  it('event log metrics: bytes and records written, backlog', async () => {
    await waitFor(() => (h.proxy.recorder?.stats().records ?? 0) > 0, 5000, 'records on disk');
    const text = await metrics();
    assert.ok((metricValue(text, 'mxproxy_eventlog_written_bytes_total') ?? 0) > 8);
    assert.ok((metricValue(text, 'mxproxy_eventlog_records_total') ?? 0) > 0);
    assert.ok(metricValue(text, 'mxproxy_eventlog_backlog_records') !== undefined);
    assert.equal(metricValue(text, 'mxproxy_eventlog_dropped_records_total'), 0);
  });

  it('replays the configured event log by file name and an uploaded one; nothing else is read', async () => {
    await h.proxy.recorder?.close().catch(() => undefined); // the file complete on disk, for the replay
    const logs = await getJson<{ configured: boolean; files: { name: string }[] }>(`${h.base}/api/logs`);
    assert.equal(logs.configured, true);
    assert.deepEqual(logs.files.map((f) => f.name), ['events.mxlog']);
    const view = await getJson<{ steps: { type: string; transitions: unknown[] }[]; divergence: string | null; stop: { reason: string } }>(
      `${h.base}/api/replay?file=events.mxlog`,
    );
    assert.equal(view.divergence, null);
    assert.equal(view.stop.reason, 'end');
    assert.ok(view.steps.some((s) => s.type === 'REQUEST' && s.transitions.length > 0));

    // Only the series' own files, by name: no path, no "..", no symbolic link into the directory.
    fs.symlinkSync('/etc/passwd', path.join(path.dirname(eventLog), 'events.mxlog.1'));
    for (const file of ['../../../../etc/passwd', '/etc/passwd', 'events.mxlog.1', `${path.basename(pki.dir)}/test.config`, '']) {
      const r = await httpRequest(`${h.base}/api/replay?file=${encodeURIComponent(file)}`);
      assert.equal(r.status, 404, file);
      assert.ok(!r.body.includes('root:'), file);
    }
    const listed = await getJson<{ files: { name: string }[] }>(`${h.base}/api/logs`);
    assert.deepEqual(listed.files.map((f) => f.name), ['events.mxlog'], 'the link is not listed');

    const fixture = fs.readFileSync(path.join(FIXTURES, 'declines.mxlog'));
    const up = await httpRequest(`${h.base}/api/replay`, { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: fixture });
    assert.equal(up.status, 200, up.body);
    const uploaded = JSON.parse(up.body) as { steps: { type: string }[]; divergence: string | null; source: string };
    assert.equal(uploaded.divergence, null);
    assert.ok(uploaded.steps.some((s) => s.type === 'DECLINED'));
    assert.match(uploaded.source, /^upload \(\d+ bytes\)$/);

    const plain = await httpRequest(`${h.base}/api/replay`, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: fixture });
    assert.equal(plain.status, 415, 'a form post from another site is not taken');
    const big = await httpRequest(`${h.base}/api/replay`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: Buffer.alloc(8 * 1024 * 1024 + 1),
    });
    assert.equal(big.status, 413);
    const chunked = await httpRequest(`${h.base}/api/replay`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream', 'Transfer-Encoding': 'chunked' },
      body: Buffer.alloc(8 * 1024 * 1024 + 1),
    });
    assert.equal(chunked.status, 413, 'counted as it arrives when no length is declared');
    const garbage = await httpRequest(`${h.base}/api/replay`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: Buffer.from('not a log at all'),
    });
    assert.equal(garbage.status, 200);
    assert.equal((JSON.parse(garbage.body) as { stop: { reason: string } }).stop.reason, 'not-a-log');
  });

  it('methods, unknown paths, headers, and the Host check without a token', async () => {
    assert.equal((await httpRequest(`${h.base}/status`, { method: 'POST' })).status, 405);
    assert.equal((await httpRequest(`${h.base}/nope`)).status, 404);
    const page = await httpRequest(`${h.base}/`);
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-security-policy']), /script-src 'self'/);
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
    assert.match(page.body, /<script src="\/app\.js" defer><\/script>/);
    const svg = await httpRequest(`${h.base}/diagram.svg`);
    assert.equal(svg.status, 200);
    assert.ok(svg.body.includes('<title>connection.forwarding</title>'));
    // A web page that rebinds its own name to 127.0.0.1 sends its own name as Host.
    assert.equal((await httpRequest(`${h.base}/status`, { headers: { Host: 'evil.example:9678' } })).status, 403);
    assert.equal((await httpRequest(`${h.base}/status`, { headers: { Host: 'localhost:9678' } })).status, 200);
  });

  it('a hostile target and CN reach /events escaped', async () => {
    const events = await readEvents(`${h.base}/events`);
    try {
      await waitFor(() => events.events.some((e) => e.event === 'snapshot'), 5000, 'the snapshot');
      const a = await request({ port: h.port, pki, target: EVIL_TARGET });
      assert.equal(a.reply.ok === false && a.reply.code, 'ERR_UNKNOWN_TARGET');
      a.socket.resume();
      await closed(a.socket);
      const evil = await pki.issueClient(EVIL_CN);
      const b = await request({ port: h.port, pki, cert: evil, target: 'echo' });
      assert.equal(b.reply.ok === false && b.reply.code, 'ERR_NOT_ALLOWED');
      b.socket.resume();
      await closed(b.socket);
      await waitFor(() => events.raw().includes('FORGED-TARGET') && events.raw().includes('FORGED-CN'), 5000, 'both in the stream');
      const raw = events.raw();
      assert.doesNotMatch(raw, RAW, 'no control character in the stream');
      assert.ok(!raw.includes('<') && !raw.includes('>'), 'no tag, not even inside a JSON string');
      const rows = events.events.flatMap((e) => {
        const d = JSON.parse(e.data) as { rows?: Detail[]; upsert?: Detail[] };
        return [...(d.rows ?? []), ...(d.upsert ?? [])];
      });
      assert.ok(rows.some((r) => r.target === printable(EVIL_TARGET)), 'the target as printable() writes it');
      assert.ok(rows.some((r) => r.identity === printable(EVIL_CN)), 'the CN as printable() writes it');
    } finally {
      events.close();
    }
  });
});

describe('admin endpoint with adminToken', () => {
  let pki: TestPki;
  let h: AdminHarness;
  const TOKEN = 'test-token-0123456789abcdef';

  before(async () => {
    pki = await createTestPki();
    h = await startAdminHarness(pki, { servers: {}, allow: [], token: TOKEN });
  });
  after(async () => {
    await h?.stop();
    pki?.cleanup();
  });

  it('401 without the token or with a wrong one, 200 with it (Bearer, or Basic from a browser)', async () => {
    for (const route of ['/', '/metrics', '/status', '/events', '/api/connections', '/diagram.svg']) {
      const none = await httpRequest(`${h.base}${route}`);
      assert.equal(none.status, 401, route);
      assert.match(String(none.headers['www-authenticate']), /Bearer realm="mxproxy admin", Basic/);
    }
    const wrong = [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, 'Bearer ', TOKEN, `Basic ${Buffer.from(`x:${TOKEN}y`).toString('base64')}`];
    for (const authorization of wrong) assert.equal((await httpRequest(`${h.base}/status`, { headers: { Authorization: authorization } })).status, 401, authorization);
    assert.equal((await httpRequest(`${h.base}/status`, { headers: { Authorization: `Bearer ${TOKEN}` } })).status, 200);
    assert.equal((await httpRequest(`${h.base}/metrics`, { headers: { Authorization: `bearer ${TOKEN}` } })).status, 200);
    const basic = `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}`;
    assert.equal((await httpRequest(`${h.base}/status`, { headers: { Authorization: basic } })).status, 200);
    // With a token the Host name does not matter (the endpoint may sit behind a name).
    assert.equal((await httpRequest(`${h.base}/status`, { headers: { Authorization: `Bearer ${TOKEN}`, Host: 'admin.plant.local' } })).status, 200);
  });
});

describe('adminListen off loopback without adminToken', () => {
  it('mxproxy start refuses to start, naming the file and line', async () => {
    const pki = await createTestPki();
    try {
      const file = path.join(pki.dir, 'admin.config');
      fs.writeFileSync(
        file,
        ['[proxy]', 'listen = "127.0.0.1:0"', `sslCertificate = "${pki.server.cert} ${pki.server.key} ${pki.caFile}"`, 'adminListen = "0.0.0.0:9678"', ''].join('\n'),
      );
      const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        execFile(process.execPath, [MAIN, 'start', '-c', file], { timeout: 20_000 }, (err, _stdout, stderr) =>
          resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stderr }),
        );
      });
      assert.equal(r.code, 2, r.stderr);
      assert.ok(r.stderr.includes(`${file}:4: adminListen 0.0.0.0:9678 is not a loopback address: set adminToken too`), r.stderr);
    } finally {
      pki.cleanup();
    }
  });
});

describe('startProxy({ inspect })', () => {
  it("XState's inspection sees the pairs in the root's system", async () => {
    const pki = await createTestPki();
    const echo = await startBackend(echoHandler);
    const seen: InspectionEvent[] = [];
    const h = await startHarness(pki, { servers: { echo: [echo.address] }, allow: ['test-client echo'], inspect: (e) => seen.push(e) });
    try {
      const { socket } = await request({ port: h.port, pki, target: 'echo' });
      const id = [...h.proxy.registry.ids()][0]!;
      const actor = h.proxy.registry.get(id);
      assert.ok(actor);
      const snapshots = seen.filter((e) => e.type === '@xstate.snapshot' && e.actorRef === actor);
      assert.ok(snapshots.length >= 4, `snapshots of pair ${id}: ${snapshots.length}`);
      assert.ok(seen.some((e) => e.type === '@xstate.event' && e.actorRef === actor && e.event.type === 'BACKEND_CONNECTED'));
      socket.resume();
      socket.end();
      await closed(socket);
    } finally {
      await h.stop();
      await echo.close();
      pki.cleanup();
    }
  });
});
