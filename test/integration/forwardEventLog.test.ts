/**
 * A forwarder's event log end to end: `mxproxy forward` pairs recorded with [client] eventLog on real loopback
 * sockets (a real proxy with mutual TLS, an echo backend), then `mxproxy replay` — the built CLI, in its own
 * process — feeds the log through the forwarder's machines and checks every transition. A round trip, a
 * decline and a direct-mode failover replay; a log edited to turn a connect into a failure does not.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { systemClock, type Clock } from '../../src/clock.js';
import { readClientConfig } from '../../src/config/index.js';
import { EventLogWriter, readEventLogFile } from '../../src/eventlog/index.js';
import { asLogRecord, FORWARDER_ROOT_ID, type EventRecord, type HeaderRecord, type LogRecord, type TransitionRecord } from '../../src/eventlog/records.js';
import { startForwarder, type Forwarder } from '../../src/forward/forwarder.js';
import { createLogger } from '../../src/log.js';
import { loadTlsMaterial } from '../../src/net/tlsMaterial.js';
import { replayFiles } from '../../src/replay/run.js';
import { deadPort, digestUntilEnd, echoHandler, startBackend, startHarness, type Backend, type Harness } from '../helpers/harness.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function replay(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, 'replay', ...args], { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}
const show = (r: Run) => `exit ${r.status}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
const lastLine = (s: string) => s.split('\n').filter((l) => l !== '').at(-1) ?? '';

async function forwarder(
  pki: TestPki,
  lines: string[],
  clock?: Clock,
): Promise<{ fwd: Forwarder; port(target: string): number; logs: Record<string, unknown>[] }> {
  const text = ['[client]', `sslCertificate = "${pki.client.cert} ${pki.client.key} ${pki.caFile}"`, ...lines].join('\n');
  const config = readClientConfig(text, `${pki.dir}/client.config`, { requireForwards: true });
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) logs.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const fwd = await startForwarder({
    config,
    tls: config.proxy && config.tls ? loadTlsMaterial(config.tls) : undefined,
    logger: createLogger({ format: 'json', level: 'debug', stream: sink }),
    ...(clock ? { clock } : {}),
  });
  return {
    fwd,
    logs,
    port: (target) => {
      const a = fwd.addresses.find((x) => x.target === target);
      assert.ok(a, `no forward for ${target}`);
      return a.address.port;
    },
  };
}

async function roundTrip(port: number, data: string): Promise<number> {
  const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  await new Promise((r) => s.once('connect', r));
  const got = digestUntilEnd(s);
  s.end(data);
  const { bytes } = await got;
  s.destroy();
  return bytes;
}

/** Connects and waits for the forwarder to end the connection; resolves with the error code it saw, if any. */
function refused(port: number): Promise<string | undefined> {
  const s = net.connect({ host: '127.0.0.1', port });
  return new Promise((resolve) => {
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code));
    s.once('close', () => resolve(undefined));
    s.resume();
  });
}

async function load(file: string): Promise<{ header: HeaderRecord; list: LogRecord[] }> {
  const c = await readEventLogFile(file);
  assert.equal(c.stop.reason, 'end', c.stop.message);
  return { header: c.header as HeaderRecord, list: c.records.map((r) => asLogRecord(r) as LogRecord) };
}
const events = (list: LogRecord[]) => list.filter((r): r is EventRecord => r.k === 'e');
const transitionsOf = (list: LogRecord[], id: string) =>
  list.filter((r): r is TransitionRecord => r.k === 'x' && r.id === id).map((x) => `${x.from ?? '(start)'} → ${x.to} on ${x.on}`);
const pairOf = (r: EventRecord): string => ('id' in r.e ? r.e.id : '');

describe('forwarder event log', () => {
  let pki: TestPki;
  let echo: Backend;
  let h: Harness;
  let dir: string;
  /** Through the proxy: a round trip on `echo`, a decline on `secret`. */
  let viaProxy: string;
  /** mxProxy = "none": the first address refuses, the second echoes. */
  let direct: string;

  before(async () => {
    pki = await createTestPki();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxproxy-fwdlog-'));
    echo = await startBackend(echoHandler);
    h = await startHarness(pki, { servers: { echo: [echo.address], secret: [echo.address] }, allow: ['test-client echo'] });

    viaProxy = path.join(dir, 'proxy.mxlog');
    const f = await forwarder(pki, [
      `mxProxy = "127.0.0.1:${h.port}"`,
      'forward = "127.0.0.1:0 echo"',
      'forward = "127.0.0.1:0 secret"',
      `eventLog = "${viaProxy}"`,
    ]);
    assert.equal(await roundTrip(f.port('echo'), 'hello through the proxy'), 23);
    assert.equal(await refused(f.port('secret')), 'ECONNRESET', 'a decline resets the local client');
    await f.fwd.stop();

    direct = path.join(dir, 'direct.mxlog');
    const dead = await deadPort();
    const d = await forwarder(pki, ['mxProxy = "none"', `forward = "127.0.0.1:0 echo 127.0.0.1:${dead} ${echo.address}"`, `eventLog = "${direct}"`, 'eventLogLevel = "traffic"']);
    assert.equal(await roundTrip(d.port('echo'), 'failover'), 8);
    await d.fwd.stop();
  });
  after(async () => {
    await h?.stop();
    await echo?.close();
    pki?.cleanup();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the header marks a forwarder\'s log; the pairs\' events and transitions are those of the forward machine', async () => {
    const { header, list } = await load(viaProxy);
    assert.equal(header.machine, 'forwarder');
    assert.ok(list.every((r, i) => r.s === i + 1), 'numbered without gaps');
    const accepted = events(list).filter((r) => r.e.type === 'ACCEPTED');
    assert.equal(accepted.length, 2);
    const [ok, declined] = accepted.map(pairOf);
    const linked = transitionsOf(list, ok!);
    assert.deepEqual(linked.slice(0, 3), [
      '(start) → linking.connecting on xstate.init',
      'linking.connecting → linking.requesting on BACKEND_CONNECTED',
      'linking.requesting → forwarding on PROXY_REPLY_OK',
    ]);
    // Both sides ended; which socket reported its close first is the network's choice.
    assert.match(linked.slice(3).join('\n'), /^forwarding → teardown\.closing on (CLIENT|SERVER)_CLOSED\nteardown\.closing → closed on (CLIENT|SERVER)_CLOSED$/);
    assert.deepEqual(transitionsOf(list, declined!), [
      '(start) → linking.connecting on xstate.init',
      'linking.connecting → linking.requesting on BACKEND_CONNECTED',
      'linking.requesting → teardown.aborting on PROXY_DECLINED',
      // the two closes, in whichever order the sockets reported them
      ...transitionsOf(list, declined!).slice(3),
    ]);
    assert.equal(transitionsOf(list, declined!).at(-1)?.split(' on ')[0], 'teardown.aborting → closed');
    const decline = events(list).find((r) => r.e.type === 'PROXY_DECLINED');
    assert.ok(decline && decline.e.type === 'PROXY_DECLINED');
    assert.equal(decline.e.code, 'ERR_NOT_ALLOWED');
    assert.deepEqual(transitionsOf(list, FORWARDER_ROOT_ID), [
      '(start) → running on xstate.init',
      'running → stopping on SHUTDOWN',
      'stopping → stopped on SHUTDOWN',
    ]);
  });

  it('mxproxy replay of the log: every transition matches, through the forwarder\'s machines', async () => {
    const r = await replay(viaProxy);
    assert.equal(r.status, 0, show(r));
    assert.match(lastLine(r.stdout), /^replayed \d+ events, 2 connections, all states, effects and outputs match$/);
    assert.match(r.stdout, /do sendRequest target=echo/);
    assert.match(r.stdout, /ended target=secret via=127\.0\.0\.1:\d+ upstream=127\.0\.0\.1:\d+ reason=declined:ERR_NOT_ALLOWED code=ERR_NOT_ALLOWED message="/);
    assert.match(r.stdout, /^connection 1 {2}peer 127\.0\.0\.1:\d+ {2}target echo {2}backend 127\.0\.0\.1:\d+ {2}at /m);
    assert.match(r.stdout, /ACCEPTED peer=127\.0\.0\.1:\d+ local=127\.0\.0\.1:\d+ target=secret via proxy 127\.0\.0\.1:\d+/);
    assert.match(r.stdout, /PROXY_DECLINED ERR_NOT_ALLOWED "/);
    assert.match(r.stdout, /linking\.requesting → forwarding/);
    assert.match(r.stdout, /^forwarder {2}log started .* level lifecycle$/m);
  });

  it('direct mode: the failover is recorded (BACKEND_FAILED attempt 0, BACKEND_CONNECTED attempt 1) and replays', async () => {
    const { header, list } = await load(direct);
    assert.equal(header.machine, 'forwarder');
    const dials = events(list)
      .filter((r) => r.e.type === 'BACKEND_FAILED' || r.e.type === 'BACKEND_CONNECTED')
      .map((r) => (r.e.type === 'BACKEND_FAILED' || r.e.type === 'BACKEND_CONNECTED' ? `${r.e.type} ${r.e.attempt}` : ''));
    assert.deepEqual(dials, ['BACKEND_FAILED 0', 'BACKEND_CONNECTED 1']);
    assert.ok(list.some((r) => r.k === 'c' && r.d === 'up' && r.n === 8), 'traffic level: the chunk sizes');
    const r = await replayFiles([direct]);
    assert.equal(r.summary.divergence, undefined, r.summary.divergence?.message);
    assert.deepEqual([r.summary.connections, r.error, r.truncated], [1, undefined, undefined]);
    const s = r.summary;
    assert.equal(s.events + s.transitions + s.effects + s.outputs + s.chunks, list.length);
    // The failover re-enters linking: a microstep of its own, with the second dial among its effects.
    assert.ok(list.some((x) => x.k === 'x' && x.from === 'linking.connecting' && x.to === 'linking.connecting' && x.on === 'BACKEND_FAILED'));
    assert.ok(list.some((x) => x.k === 'f' && x.name === 'dialUpstream' && (x.params as { attempt: number }).attempt === 1));
  });

  it('a log edited to turn the connect into a failure is reported as a divergence at that event', async () => {
    const { header, list } = await load(direct);
    const i = list.findIndex((r) => r.k === 'e' && r.e.type === 'BACKEND_CONNECTED');
    const original = list[i] as EventRecord;
    assert.ok(original.e.type === 'BACKEND_CONNECTED');
    const edited = [...list];
    edited[i] = { ...original, e: { type: 'BACKEND_FAILED', id: original.e.id, attempt: original.e.attempt, address: original.e.address, code: 'ECONNREFUSED', message: 'edited' } };
    const file = path.join(dir, 'edited.mxlog');
    const w = await EventLogWriter.open({ path: file, header });
    for (const r of edited) w.append(r);
    await w.close();
    const r = await replay(file);
    assert.equal(r.status, 1, show(r));
    assert.match(
      r.stdout,
      new RegExp(
        // The first thing replay does differently: no link but the teardown's deadline.
        `DIVERGENCE at record #\\d+ \\(effect\\): connection ${original.e.id}: effect: recorded link, ` +
          `replay made startTimer \\{"timer":"teardown"\\} \\(caused by event #${original.s}\\)`,
      ),
    );
    assert.match(lastLine(r.stdout), /DIVERGENCE at record #\d+ \(effect\)$/);
  });

  it('a proxy that never answers: the connect deadline, armed through the injected clock, ends the pair unreachable ETIMEDOUT', async () => {
    // Accepts TCP, never speaks TLS.
    const silent = await startBackend(() => undefined);
    const asked: number[] = [];
    const clock: Clock = {
      now: () => systemClock.now(),
      setTimeout: (fn, ms) => {
        asked.push(ms);
        return systemClock.setTimeout(fn, ms);
      },
      clearTimeout: (handle) => systemClock.clearTimeout(handle),
    };
    const log = path.join(dir, 'silent.mxlog');
    const f = await forwarder(pki, [`mxProxy = "${silent.address}"`, 'forward = "127.0.0.1:0 echo"', 'connectTimeout = 300', `eventLog = "${log}"`], clock);
    try {
      assert.equal(await refused(f.port('echo')), 'ECONNRESET');
      await f.fwd.stop();
    } finally {
      await silent.close();
    }
    assert.deepEqual(asked.slice(0, 2), [300, 2000], 'the connect deadline, then the teardown deadline');
    const warn = f.logs.find((l) => l.level === 'warn' && l.code === 'ETIMEDOUT');
    assert.ok(warn, 'the refusal is logged with its code');
    assert.match(String(warn.message), /^echo: cannot connect$/);
    const { list } = await load(log);
    assert.deepEqual(transitionsOf(list, '1').slice(1, 2), ['linking.connecting → teardown.aborting on CONNECT_TIMEOUT']);
    const r = await replayFiles([log]);
    assert.equal(r.summary.divergence, undefined, r.summary.divergence?.message);
    assert.equal(f.fwd.stats().refused, 1);
  });

  it('proxy logs are still replayed through the proxy\'s machines (the recorded fixtures)', async () => {
    const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/eventlog/v1/declines.mxlog');
    const r = await replay(fixtures);
    assert.equal(r.status, 0, show(r));
    assert.match(r.stdout, /^proxy {2}log started /m);
    assert.match(lastLine(r.stdout), /6 connections, all transitions match; a version-1 log: states only/);
  });
});
