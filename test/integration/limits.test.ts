/**
 * Connection limits over real loopback sockets. 127.0.0.2 plays the attacker (on Linux all of 127/8 is
 * loopback; the client socket is bound to it), 127.0.0.1 the allowed client. Every test stops by itself.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { connect } from '../../src/client/connect.js';
import { ProxyDeclinedError } from '../../src/errors.js';
import { readEventLogFile } from '../../src/eventlog/index.js';
import { UNAUTHENTICATED_BUDGET } from '../../src/eventlog/recorder.js';
import { asLogRecord, type LogRecord } from '../../src/eventlog/records.js';
import { ALPN_PROTOCOL } from '../../src/protocol/frame.js';
import { replayFiles } from '../../src/replay/run.js';
import { systemClock, type Clock } from '../../src/clock.js';
import { digestUntilEnd, echoHandler, request, startBackend, startHarness, waitFor, type Backend, type Harness } from '../helpers/harness.js';
import { createTestPki, type CertFiles, type TestPki } from '../helpers/pki.js';

const ATTACKER = '127.0.0.2';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A plain TCP connection; resolves once connected (or already closed: a reset can beat 'connect' handlers). */
function tcp(port: number, localAddress?: string): Promise<net.Socket> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port, ...(localAddress ? { localAddress } : {}) });
    s.on('error', () => {});
    s.once('connect', () => resolve(s));
    s.once('close', () => resolve(s));
  });
}

const accepts = (h: Harness) => h.events.filter((e) => e.type === 'ACCEPTED');

describe('connection limits', () => {
  let pki: TestPki;
  let echo: Backend;
  let other: CertFiles;

  before(async () => {
    pki = await createTestPki();
    echo = await startBackend(echoHandler);
    other = await pki.issueClient('other-1');
  });
  after(async () => {
    await echo?.close();
    pki?.cleanup();
  });

  const harness = (extra: string, clock?: Clock) =>
    startHarness(pki, {
      servers: { echo: [echo.address], echo2: [echo.address] },
      allow: ['test-client echo echo2', 'other-* echo'],
      extra,
      ...(clock ? { clock } : {}),
    });

  const tlsOf = (files: CertFiles) => ({
    cert: fs.readFileSync(files.cert),
    key: fs.readFileSync(files.key),
    ca: fs.readFileSync(pki.caFile),
    servername: 'localhost',
  });

  /** An allowed client from 127.0.0.1 links and its bytes come back. */
  async function roundTrip(h: Harness, payload = 'still here'): Promise<void> {
    const { socket, reply, rest } = await request({ port: h.port, pki, target: 'echo' });
    assert.equal(reply.ok, true);
    const got = digestUntilEnd(socket, rest);
    socket.end(payload);
    assert.equal((await got).bytes, payload.length);
  }

  it('maxPendingPerSource = 10: of 40 silent connections from one source 30 are reset at once; 127.0.0.1 still links', async () => {
    const h = await harness('maxPendingPerSource = 10\nhandshakeTimeout = 10000');
    try {
      const socks = await Promise.all(Array.from({ length: 40 }, () => tcp(h.port, ATTACKER)));
      await waitFor(() => socks.filter((s) => s.closed).length >= 30, 2000, '30 refused sockets closed');
      await sleep(200);
      assert.equal(socks.filter((s) => s.closed).length, 30, 'the 10 admitted ones stay open');
      assert.equal(h.proxy.stats().refused['max-pending-per-source'], 30);
      assert.equal(accepts(h).length, 10, 'a refused socket gets no actor and no event');
      await roundTrip(h);
      for (const s of socks) s.destroy();
    } finally {
      await h.stop();
    }
  });

  it('1,100 plain TCP connections from 127.0.0.2 do not stop an allowed client from 127.0.0.1', async () => {
    const h = await harness('');
    const socks: net.Socket[] = [];
    try {
      for (let i = 0; i < 11; i++) socks.push(...(await Promise.all(Array.from({ length: 100 }, () => tcp(h.port, ATTACKER)))));
      for (let i = 0; i < 3; i++) await roundTrip(h, `round ${i}`);
      const s = h.proxy.stats();
      const refused = Object.values(s.refused).reduce((a, b) => a + b, 0);
      assert.equal(refused + accepts(h).length - 3, 1100, 'every attacker connection was either refused or counted');
      assert.ok(accepts(h).length - 3 <= 40, `at most the burst from 127.0.0.2 got an actor (${accepts(h).length - 3})`);
    } finally {
      for (const s of socks) s.destroy();
      await h.stop();
    }
  });

  it('maxConnections = 5: the 6th socket is reset, counted and logged once; after one closes a new one is accepted', async () => {
    const h = await harness('maxConnections = 5\nhandshakeTimeout = 10000');
    const socks: net.Socket[] = [];
    try {
      for (let i = 0; i < 5; i++) socks.push(await tcp(h.port));
      await waitFor(() => h.proxy.stats().open === 5, 2000, 'five open');
      const sixth = await tcp(h.port);
      await waitFor(() => sixth.closed, 1000, 'the sixth reset');
      assert.equal(h.proxy.stats().refused['max-connections'], 1);
      const lines = h.logs.filter((l) => /^refused .*\(max-connections\)/.test(String(l.message)));
      assert.deepEqual(lines.map((l) => [l.level, l.message, l.source, l.reason]), [
        ['warn', 'refused a connection from 127.0.0.1 (max-connections)', '127.0.0.1', 'max-connections'],
      ]);
      const seventh = await tcp(h.port);
      await waitFor(() => seventh.closed, 1000, 'the seventh reset');
      assert.equal(h.proxy.stats().refused['max-connections'], 2);
      assert.equal(h.logs.filter((l) => /^refused .*\(max-connections\)/.test(String(l.message))).length, 1, 'rate-limited: no second line');

      socks.shift()?.destroy();
      await waitFor(() => h.proxy.stats().open === 4, 2000, 'one released');
      const again = await tcp(h.port);
      socks.push(again);
      await sleep(200);
      assert.equal(again.closed, false, 'accepted again');
      assert.equal(h.proxy.stats().open, 5);
      assert.equal(accepts(h).length, 6);
    } finally {
      for (const s of socks) s.destroy();
      await h.stop();
    }
  });

  it('connectRate "5/s burst 5": the 6th immediate connection from one source is reset, another source is not', async () => {
    // Time stands still for the proxy's buckets (timers still run): "immediate" without a race against refill.
    const t0 = systemClock.now();
    const frozen: Clock = { ...systemClock, now: () => t0 };
    const h = await harness('connectRate = "5/s burst 5"', frozen);
    const socks: net.Socket[] = [];
    try {
      for (let i = 0; i < 6; i++) socks.push(await tcp(h.port, ATTACKER));
      await waitFor(() => socks[5]!.closed, 1000, 'the sixth reset');
      const local = await tcp(h.port);
      socks.push(local);
      await sleep(200);
      assert.deepEqual(socks.map((s) => s.closed), [false, false, false, false, false, true, false]);
      assert.equal(h.proxy.stats().refused['connect-rate'], 1);
    } finally {
      for (const s of socks) s.destroy();
      await h.stop();
    }
  });

  it('maxConnectionsPerIdentity = 2: the third pair is declined with ERR_OVERLOADED, another identity links; after one closes it links again', async () => {
    const h = await harness('maxConnectionsPerIdentity = 2');
    const open: tls.TLSSocket[] = [];
    try {
      const proxy = `127.0.0.1:${h.port}`;
      open.push(await connect({ proxy, target: 'echo', tls: tlsOf(pki.client) }));
      open.push(await connect({ proxy, target: 'echo2', tls: tlsOf(pki.client) }));
      await assert.rejects(connect({ proxy, target: 'echo', tls: tlsOf(pki.client) }), (e: unknown) => {
        assert.ok(e instanceof ProxyDeclinedError);
        assert.equal(e.code, 'ERR_OVERLOADED');
        assert.match(e.message, /maxConnectionsPerIdentity/);
        return true;
      });
      // Through the machine: a DECLINED event like any other decline.
      assert.ok(h.events.some((e) => e.type === 'DECLINED' && e.code === 'ERR_OVERLOADED'));
      assert.equal(h.proxy.stats().refused['max-connections-per-identity'], 1);
      const o = await connect({ proxy, target: 'echo', tls: tlsOf(other) });
      open.push(o);
      const got = digestUntilEnd(o);
      o.end('other identity');
      assert.equal((await got).bytes, 14);

      open.shift()?.destroy();
      await waitFor(() => h.proxy.stats().active === 1, 2000, 'the closed pair and the declined one finished');
      const again = await connect({ proxy, target: 'echo', tls: tlsOf(pki.client) });
      open.push(again);
      const back = digestUntilEnd(again);
      again.end('again');
      assert.equal((await back).bytes, 5);
    } finally {
      for (const s of open) s.destroy();
      await h.stop();
    }
  });

  it('maxConnectionsPerServer = 1: a second pair to the same server is declined with ERR_OVERLOADED, another server links', async () => {
    const h = await harness('maxConnectionsPerServer = 1');
    const open: tls.TLSSocket[] = [];
    try {
      const proxy = `127.0.0.1:${h.port}`;
      open.push(await connect({ proxy, target: 'echo', tls: tlsOf(pki.client) }));
      await assert.rejects(connect({ proxy, target: 'echo', tls: tlsOf(other) }), (e: unknown) => {
        assert.ok(e instanceof ProxyDeclinedError);
        assert.equal(e.code, 'ERR_OVERLOADED');
        assert.match(e.message, /server "echo" has 1 connections/);
        return true;
      });
      open.push(await connect({ proxy, target: 'echo2', tls: tlsOf(pki.client) }));
      assert.equal(h.proxy.stats().refused['max-connections-per-server'], 1);
    } finally {
      for (const s of open) s.destroy();
      await h.stop();
    }
  });

  it('a 3 s TLS handshake flood from 127.0.0.2 (valid certificate): every round trip of a 127.0.0.1 client succeeds', async (t) => {
    // The rate a network with untrusted hosts would set (the default only stops a runaway source).
    const h = await harness('connectRate = "20/s burst 40"');
    const deadline = Date.now() + 3000;
    const material = tlsOf(pki.client);
    let handshakes = 0;
    /** One flooder: full handshakes with a valid certificate, one after the other, until the deadline. */
    async function flooder(): Promise<void> {
      while (Date.now() < deadline) {
        await new Promise<void>((resolve) => {
          const raw = net.connect({ host: '127.0.0.1', port: h.port, localAddress: ATTACKER });
          raw.on('error', () => {});
          const s = tls.connect({ socket: raw, ...material, ALPNProtocols: [ALPN_PROTOCOL] });
          s.on('error', () => {});
          s.once('secureConnect', () => {
            handshakes++;
            s.destroy();
          });
          s.once('close', () => resolve());
        });
      }
    }
    const flood = Promise.all(Array.from({ length: 16 }, () => flooder()));
    let ok = 0;
    const failures: string[] = [];
    try {
      while (Date.now() < deadline) {
        try {
          const s = await connect({ proxy: `127.0.0.1:${h.port}`, target: 'echo', tls: material });
          const got = digestUntilEnd(s);
          s.end('ping');
          assert.equal((await got).bytes, 4);
          ok++;
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
      await flood;
      t.diagnostic(`round trips ${ok}, flood handshakes completed ${handshakes}, refused ${JSON.stringify(h.proxy.stats().refused)}`);
      assert.deepEqual(failures, [], 'no round trip of the allowed client failed');
      assert.ok(ok >= 3, `round trips under the flood: ${ok}`);
      assert.ok(h.proxy.stats().refused['connect-rate'] > 0, 'the flood was refused at accept');
      assert.ok(handshakes <= 40 + 20 * 4, `handshakes the flood got through: ${handshakes}`);
    } finally {
      await flood;
      await h.stop();
    }
  });

  it('event log: 500 connect-and-close without TLS from one source are recorded within the budget and summed up; an authenticated pair is whole and replays', async (t) => {
    const log = path.join(pki.dir, 'flood.mxlog');
    const h = await harness(`connectRate = "off"\neventLog = "${log}"`);
    let elapsed = 0;
    try {
      const t0 = Date.now();
      for (let i = 0; i < 20; i++) {
        const batch = await Promise.all(Array.from({ length: 25 }, () => tcp(h.port, ATTACKER)));
        for (const s of batch) s.destroy();
        await Promise.all(batch.map((s) => new Promise((r) => (s.closed ? r(null) : s.once('close', r)))));
      }
      await waitFor(() => h.proxy.stats().active === 0, 5000, 'all 500 pairs ended');
      elapsed = (Date.now() - t0) / 1000;
      assert.equal(accepts(h).length, 500);
      await roundTrip(h, 'the real one');
      await waitFor(() => h.proxy.stats().active === 0, 2000, 'the real pair ended');
    } finally {
      await h.stop();
    }

    const file = await readEventLogFile(log);
    assert.equal(file.stop.reason, 'end');
    const list = file.records.map((r) => asLogRecord(r) as LogRecord);
    const attackerIds = new Set(list.flatMap((r) => (r.k === 'e' && r.e.type === 'ACCEPTED' && r.e.peer.startsWith(`${ATTACKER}:`) ? [r.e.id] : [])));
    const summed = list.reduce((n, r) => n + (r.k === 'd' ? r.pairs : 0), 0);
    const b = UNAUTHENTICATED_BUDGET;
    const budget = Math.ceil(b.burst + b.count * elapsed) + 1;
    assert.ok(attackerIds.size <= budget, `${attackerIds.size} of the 500 written, budget ${budget} over ${elapsed} s`);
    assert.equal(attackerIds.size + summed, 500, 'every pair is either in the log or counted in a d record');
    const dRecords = list.filter((r) => r.k === 'd').length;
    t.diagnostic(`${attackerIds.size} pairs written, ${summed} summed up in ${dRecords} d records, ${list.length} records, ${elapsed} s`);
    assert.ok(dRecords >= 1 && dRecords <= Math.ceil(elapsed / 10) + 1, `d records: ${dRecords}`);
    // Each written attacker pair costs a dozen records (events, microsteps, effects, its output): the file is
    // bounded by the budget, not by the flood.
    assert.ok(list.length <= budget * 12 + dRecords + 60, `${list.length} records`);

    // The authenticated pair: all its events, from ACCEPTED to its end, and replay agrees with all of it.
    const real = list.find((r) => r.k === 'e' && r.e.type === 'ACCEPTED' && r.e.peer.startsWith('127.0.0.1:'));
    assert.ok(real?.k === 'e' && real.e.type === 'ACCEPTED');
    const id = real.e.id;
    const types: string[] = list.flatMap((r) => (r.k === 'e' && 'id' in r.e && r.e.id === id ? [r.e.type] : []));
    for (const t of ['ACCEPTED', 'TLS_OK', 'REQUEST', 'AUTHORIZED', 'BACKEND_CONNECTED']) assert.ok(types.includes(t), `${t} of the real pair in ${types.join(',')}`);
    assert.ok(list.some((r) => r.k === 'x' && r.id === id && r.to === 'closed'));
    const r = await replayFiles([log]);
    assert.equal(r.summary.divergence, undefined, r.summary.divergence?.message);
    assert.equal(r.summary.unrecorded, summed);
    assert.equal(r.summary.connections, attackerIds.size + 1);
  });
});
