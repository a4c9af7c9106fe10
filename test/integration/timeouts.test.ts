/**
 * Timeouts on linked pairs, over real mTLS on loopback: a pair left half-closed ends after halfCloseTimeout,
 * a quiet pair after idleTimeout (while pairs with a byte every 100 ms in either direction live on), and both
 * proxy-side sockets of a pair carry TCP keepalive (read back from the kernel's socket table, no mocks).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  closed,
  echoHandler,
  request,
  startBackend,
  startHarness,
  waitFor,
  type Backend,
  type Harness,
} from '../helpers/harness.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';
import { readEventLogFile } from '../../src/eventlog/index.js';
import { asLogRecord, type LogRecord } from '../../src/eventlog/records.js';
import { replayFiles } from '../../src/replay/run.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The unlink log line of the pair with this target, once there is one. */
function unlinkOf(h: Harness, target: string): Record<string, unknown> | undefined {
  return h.logs.find((l) => l.message === 'unlink' && l.target === target);
}

/** Opens a linked pair to `target` on `backend`; returns the client socket and the backend's socket for it. */
async function linkedPair(h: Harness, pki: TestPki, backend: Backend, target: string) {
  const n = backend.accepted.length;
  const { socket, reply } = await request({ port: h.port, pki, target });
  assert.equal(reply.ok, true);
  socket.on('error', () => {});
  await waitFor(() => backend.accepted.length > n, 2000, 'backend accept');
  return { client: socket, server: backend.accepted[backend.accepted.length - 1] as net.Socket };
}

describe('halfCloseTimeout', () => {
  let pki: TestPki;
  /** Ignores the FIN it is passed and keeps talking, like a device that never closes its side. */
  let stubborn: Backend;
  let echo: Backend;
  let h: Harness;

  before(async () => {
    pki = await createTestPki();
    stubborn = await startBackend((s) => {
      s.allowHalfOpen = true;
      const tick = setInterval(() => s.write('.'), 50);
      s.once('close', () => clearInterval(tick));
    });
    echo = await startBackend(echoHandler);
    h = await startHarness(pki, {
      servers: { stubborn: [stubborn.address], echo: [echo.address] },
      allow: ['test-client stubborn echo'],
      extra: 'halfCloseTimeout = 300',
    });
  });
  after(async () => {
    await h?.stop();
    await stubborn?.close();
    await echo?.close();
    pki?.cleanup();
  });

  it('a client that half-closes and never closes, with a backend that never closes: the pair ends after 300 ms', async (t) => {
    const { client, server } = await linkedPair(h, pki, stubborn, 'stubborn');
    const serverEnded = new Promise<void>((r) => server.once('end', r));
    const t0 = Date.now();
    client.end(); // FIN, then the client neither reads nor closes
    await serverEnded; // the FIN was passed on: backend side half-closed too
    await waitFor(() => unlinkOf(h, 'stubborn') !== undefined, 3000, 'unlink');
    const ms = Date.now() - t0;
    t.diagnostic(`pair ended ${ms} ms after the FIN`);
    assert.ok(ms >= 290 && ms < 1500, `pair ended ${ms} ms after the FIN`);
    assert.equal(unlinkOf(h, 'stubborn')?.reason, 'timeout:half-close');
    assert.equal(h.events.filter((e) => e.type === 'HALF_CLOSE_TIMEOUT').length, 1);
    // The proxy destroyed its backend socket: the backend's next write is answered with a reset.
    await closed(server, 2000);
    await waitFor(() => stubborn.open.size === 0, 2000, 'backend socket closed');
    client.resume();
    await closed(client, 2000);
    assert.equal(h.proxy.stats().active, 0);
    assert.equal(h.proxy.registry.size, 0);
  });

  it('a half-close answered in time ends the pair normally, and the cancelled timer reports nothing later', async () => {
    const before = h.events.filter((e) => e.type === 'HALF_CLOSE_TIMEOUT').length;
    const { client } = await linkedPair(h, pki, echo, 'echo');
    client.resume();
    client.end('last words');
    await closed(client, 2000);
    await waitFor(() => unlinkOf(h, 'echo') !== undefined, 2000, 'unlink');
    assert.match(String(unlinkOf(h, 'echo')?.reason), /^(client|server)-closed$/);
    await sleep(450);
    assert.equal(h.events.filter((e) => e.type === 'HALF_CLOSE_TIMEOUT').length, before);
  });
});

describe('idleTimeout', () => {
  let pki: TestPki;
  let echo: Backend;
  /** Reads and drops: traffic from the client only. */
  let sink: Backend;
  /** Sends a byte every 100 ms while `ticking`: traffic to the client only. */
  let ticker: Backend;
  let ticking = true;
  let h: Harness;

  before(async () => {
    pki = await createTestPki();
    echo = await startBackend(echoHandler);
    sink = await startBackend((s) => s.resume());
    ticker = await startBackend((s) => {
      const tick = setInterval(() => ticking && s.write('.'), 100);
      s.once('close', () => clearInterval(tick));
    });
    h = await startHarness(pki, {
      servers: { quiet: [echo.address], chatty: [echo.address], up: [sink.address], down: [ticker.address] },
      allow: ['test-client quiet chatty up down'],
      extra: 'idleTimeout = 300',
    });
  });
  after(async () => {
    await h?.stop();
    for (const b of [echo, sink, ticker]) await b?.close();
    pki?.cleanup();
  });

  it('a quiet pair ends with timeout:idle; pairs with a byte every 100 ms either way survive 1.2 s', async (t) => {
    const quiet = await linkedPair(h, pki, echo, 'quiet');
    const linkedAt = Date.now();
    const chatty = await linkedPair(h, pki, echo, 'chatty');
    const up = await linkedPair(h, pki, sink, 'up');
    const down = await linkedPair(h, pki, ticker, 'down');
    // Reading (so each sees its end); bytes still flow only where the test sends them.
    for (const p of [quiet, chatty, up, down]) p.client.resume();
    const ping = setInterval(() => {
      chatty.client.write('x');
      up.client.write('y');
    }, 100);
    try {
      await closed(quiet.client, 2000);
      const ms = Date.now() - linkedAt;
      t.diagnostic(`quiet pair ended ${ms} ms after linking`);
      assert.ok(ms >= 200 && ms < 1500, `quiet pair ended ${ms} ms after linking`);
      await waitFor(() => unlinkOf(h, 'quiet') !== undefined, 2000, 'unlink');
      assert.equal(unlinkOf(h, 'quiet')?.reason, 'timeout:idle');
      await closed(quiet.server, 2000);
      // (a timer may fire a millisecond before Date.now() says it is due)
      while (Date.now() - linkedAt < 1200) await sleep(1200 - (Date.now() - linkedAt) + 1);
      for (const p of [chatty, up, down]) {
        assert.equal(p.client.closed, false);
        assert.equal(p.server.closed, false);
      }
      assert.equal(h.proxy.stats().active, 3);
      assert.equal(h.events.filter((e) => e.type === 'IDLE_TIMEOUT').length, 1);
    } finally {
      clearInterval(ping);
      ticking = false;
    }
    // Once quiet, they too end as idle.
    await Promise.all([chatty, up, down].map((p) => closed(p.client, 2000)));
    await waitFor(() => h.proxy.stats().active === 0, 2000, 'all pairs finished');
    for (const t of ['chatty', 'up', 'down']) assert.equal(unlinkOf(h, t)?.reason, 'timeout:idle', t);
    await waitFor(() => echo.open.size + sink.open.size + ticker.open.size === 0, 2000, 'backend sockets closed');
    assert.equal(h.proxy.registry.size, 0);
  });
});

describe('timeouts in the event log', () => {
  let pki: TestPki;

  before(async () => (pki = await createTestPki()));
  after(() => pki?.cleanup());

  it('HALF_CLOSE_TIMEOUT and IDLE_TIMEOUT are recorded, and replay takes the same transitions', async () => {
    const stubborn = await startBackend((s) => {
      s.allowHalfOpen = true;
      s.resume();
      const tick = setInterval(() => s.write('.'), 50);
      s.once('close', () => clearInterval(tick));
    });
    const echo = await startBackend(echoHandler);
    const h = await startHarness(pki, {
      servers: { stubborn: [stubborn.address], quiet: [echo.address] },
      allow: ['test-client stubborn quiet'],
      extra: 'halfCloseTimeout = 300\nidleTimeout = 400\neventLog = "timeouts.mxlog"',
    });
    const log = path.join(pki.dir, 'timeouts.mxlog');
    try {
      const halfClosed = await linkedPair(h, pki, stubborn, 'stubborn');
      const quiet = await linkedPair(h, pki, echo, 'quiet');
      for (const p of [halfClosed, quiet]) p.client.resume();
      halfClosed.client.end();
      await Promise.all([closed(halfClosed.client, 3000), closed(quiet.client, 3000)]);
      await waitFor(() => h.proxy.stats().active === 0, 2000, 'pairs finished');
    } finally {
      await h.stop();
      await stubborn.close();
      await echo.close();
    }
    const c = await readEventLogFile(log);
    const list = c.records.map((r) => asLogRecord(r) as LogRecord);
    const aborted = list.flatMap((r) => (r.k === 'x' && r.to === 'teardown.aborting' ? [r.on] : [])).sort();
    assert.deepEqual(aborted, ['HALF_CLOSE_TIMEOUT', 'IDLE_TIMEOUT']);
    const r = await replayFiles([log]);
    assert.equal(r.summary.divergence, undefined, r.summary.divergence?.message);
    assert.equal(r.summary.connections, 2);
  });
});

// ---------------------------------------------------------------------------------------------------------

interface TcpEntry {
  localPort: number;
  remotePort: number;
  /** Which kernel timer is pending: 0 none, 1 retransmit, 2 keepalive, … (proc(5)). */
  timer: number;
  /** Until it fires, in clock ticks (USER_HZ, 100 a second). */
  ticks: number;
}

/** IPv4 TCP sockets of this network namespace, from /proc/net/tcp. */
function tcpTable(): TcpEntry[] {
  return fs
    .readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length > 5)
    .map((f) => {
      const port = (addr: string | undefined) => parseInt(addr?.split(':')[1] ?? '', 16);
      const [timer, ticks] = (f[5] ?? '0:0').split(':').map((x) => parseInt(x, 16));
      return { localPort: port(f[1]), remotePort: port(f[2]), timer: timer ?? 0, ticks: ticks ?? 0 };
    });
}

function socketEntry(localPort: number, remotePort: number): TcpEntry {
  const e = tcpTable().find((t) => t.localPort === localPort && t.remotePort === remotePort);
  assert.ok(e, `a socket ${localPort} → ${remotePort} in /proc/net/tcp`);
  return e;
}

describe('tcpKeepAlive', { skip: !fs.existsSync('/proc/net/tcp') && 'needs /proc/net/tcp (Linux)' }, () => {
  let pki: TestPki;
  let echo: Backend;

  before(async () => {
    pki = await createTestPki();
    echo = await startBackend(echoHandler);
  });
  after(async () => {
    await echo?.close();
    pki?.cleanup();
  });

  /** The proxy's two sockets of a freshly linked pair, as the kernel sees them, and the test client's own. */
  async function sockets(h: Harness) {
    const { client, server } = await linkedPair(h, pki, echo, 'echo');
    const proxySide = socketEntry(h.port, client.raw.localPort ?? 0);
    const backendSide = socketEntry(server.remotePort ?? 0, echo.port);
    const clientOwn = socketEntry(client.raw.localPort ?? 0, h.port);
    client.destroy();
    return { proxySide, backendSide, clientOwn };
  }

  it('default (60000): the kernel keepalive timer runs on the client and the backend socket of a pair', async () => {
    const h = await startHarness(pki, { servers: { echo: [echo.address] }, allow: ['test-client echo'] });
    try {
      const { proxySide, backendSide, clientOwn } = await sockets(h);
      for (const [name, e] of [['client socket', proxySide], ['backend socket', backendSide]] as const) {
        assert.equal(e.timer, 2, `${name}: keepalive timer pending`);
        assert.ok(e.ticks > 50 * 100 && e.ticks <= 60 * 100, `${name}: first probe in ${e.ticks / 100} s`);
      }
      // The control: the test's own client socket has no keepalive.
      assert.equal(clientOwn.timer, 0);
    } finally {
      await h.stop();
    }
  });

  it('tcpKeepAlive = 0 leaves keepalive off', async () => {
    const h = await startHarness(pki, { servers: { echo: [echo.address] }, allow: ['test-client echo'], extra: 'tcpKeepAlive = 0' });
    try {
      const { proxySide, backendSide } = await sockets(h);
      assert.equal(proxySide.timer, 0);
      assert.equal(backendSide.timer, 0);
    } finally {
      await h.stop();
    }
  });
});
