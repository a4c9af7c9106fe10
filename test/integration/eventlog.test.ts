/**
 * The event log end to end: a real proxy on loopback records every story (accept, each decline, teardown both
 * ways, failover), and replaying the log through the same machines gives the same transitions.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { EventLogWriter, encodeFrame, readEventLogFile } from '../../src/eventlog/index.js';
import { asLogRecord, ROOT_ID, type EventRecord, type LogRecord, type TransitionRecord } from '../../src/eventlog/records.js';
import { logSeries, replayFiles } from '../../src/replay/run.js';
import { request, digestUntilEnd } from '../helpers/harness.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';
import { ALL_SCENARIOS, startWorld } from '../helpers/scenarios.js';

async function records(file: string): Promise<{ header: unknown; list: LogRecord[] }> {
  const c = await readEventLogFile(file);
  assert.equal(c.stop.reason, 'end', c.stop.message);
  return { header: c.header, list: c.records.map((r) => asLogRecord(r) as LogRecord) };
}

/** Writes a log with the same header and the given records. */
async function writeLog(file: string, header: unknown, list: LogRecord[]): Promise<void> {
  const w = await EventLogWriter.open({ path: file, header });
  for (const r of list) w.append(r);
  await w.close();
}

const events = (list: LogRecord[]) => list.filter((r): r is EventRecord => r.k === 'e');
const transitions = (list: LogRecord[]) => list.filter((r): r is TransitionRecord => r.k === 'x');

describe('event log: record a real run, replay it', () => {
  let pki: TestPki;
  let dir: string;
  let log: string;
  let header: unknown;
  let list: LogRecord[];

  before(async () => {
    pki = await createTestPki();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxproxy-eventlog-'));
    log = path.join(dir, 'events.mxlog');
    const w = await startWorld(pki, log);
    for (const [, story] of ALL_SCENARIOS) await story(w);
    await w.stop();
    ({ header, list } = await records(log));
  });
  after(() => {
    pki?.cleanup();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('records every kind of event the stories produce, numbered without gaps', () => {
    assert.ok(list.every((r, i) => r.s === i + 1), 'sequence numbers 1, 2, 3, …');
    assert.ok(list.every((r, i) => i === 0 || r.t >= list[i - 1]!.t), 'timestamps never go back');
    const types = new Set<string>(events(list).map((r) => r.e.type));
    for (const t of [
      'ACCEPTED', 'TLS_OK', 'TLS_FAILED', 'REQUEST', 'REQUEST_INVALID', 'AUTHORIZED', 'DECLINED', 'BACKEND_CONNECTED',
      'BACKEND_FAILED', 'HANDSHAKE_TIMEOUT', 'CLIENT_CLOSED', 'SERVER_CLOSED', 'SHUTDOWN',
    ]) {
      assert.ok(types.has(t), `${t} recorded (have ${[...types].join(' ')})`);
    }
    assert.equal(events(list).filter((r) => r.e.type === 'ACCEPTED').length, ALL_SCENARIOS.length);
  });

  it('records transitions: every pair from handshake.tls to closed, and the root from running to stopped', () => {
    const xs = transitions(list);
    const closedIds = new Set(xs.filter((x) => x.to === 'closed').map((x) => x.id));
    assert.equal(closedIds.size, ALL_SCENARIOS.length);
    assert.equal(xs.filter((x) => x.from === null && x.to === 'handshake.tls').length, ALL_SCENARIOS.length);
    assert.deepEqual(
      xs.filter((x) => x.id === ROOT_ID).map((x) => x.to),
      ['running', 'stopping', 'stopped'], // no pair open at SHUTDOWN: stopping is passed within one step, a microstep each
    );
    // The failover story: first address refused, second linked.
    const failed = events(list).find((r) => r.e.type === 'BACKEND_FAILED' && xs.some((x) => x.id === (r.e as { id: string }).id && x.to === 'forwarding'));
    assert.ok(failed, 'a pair that failed over and then forwarded');
    assert.ok(xs.some((x) => x.to === 'teardown.declining' && x.on === 'DECLINED'));
    assert.ok(xs.some((x) => x.on === 'HANDSHAKE_TIMEOUT'));
  });

  it('version 2: the config first, effects with their parameters, each pair\'s output, the certificate, the rule, why a decline', () => {
    assert.equal((header as { version: number }).version, 2);
    const firstEvent = events(list)[0];
    assert.equal(firstEvent?.e.type, 'CONFIG_LOADED', 'the config is written at start, before any pair, not held');
    const effects = list.filter((r) => r.k === 'f');
    for (const name of ['startTimer', 'cancelTimer', 'readRequest', 'authorize', 'dialBackend', 'link', 'sendDecline', 'closeSockets']) {
      assert.ok(effects.some((f) => f.name === name), `${name} recorded`);
    }
    const dials = effects.filter((f) => f.name === 'dialBackend').map((f) => f.params as { attempt: number; address: string });
    assert.ok(dials.some((p) => p.attempt === 1 && /^127\.0\.0\.1:\d+$/.test(p.address)), 'the failover dial, with its attempt and address');
    assert.ok(effects.some((f) => f.name === 'sendDecline' && (f.params as { code: string }).code === 'ERR_TARGET_UNREACHABLE'));
    const outputs = list.filter((r) => r.k === 'o');
    assert.equal(outputs.length, ALL_SCENARIOS.length, 'one output per pair');
    const linked = outputs.find((o) => o.o.reason === 'client-closed' && o.o.target === 'echo');
    assert.ok(linked && linked.k === 'o');
    assert.deepEqual(Object.keys(linked.o).sort(), ['backend', 'client', 'code', 'id', 'identity', 'message', 'peer', 'reason', 'server', 'target']);
    assert.ok((linked.o.client as { read: number }).read > 0 && (linked.o.server as { written: number }).written > 0, 'bytes each way');
    const tlsOk = events(list).find((r) => r.e.type === 'TLS_OK');
    const cert = tlsOk?.e.type === 'TLS_OK' ? tlsOk.e.cert : undefined;
    assert.ok(cert, 'TLS_OK carries the certificate');
    assert.match(cert.serial, /^[0-9A-F]+$/);
    assert.match(cert.fingerprint256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    assert.match(cert.issuer, /CN=/);
    assert.ok(!Number.isNaN(Date.parse(cert.notAfter)));
    const authorized = events(list).find((r) => r.e.type === 'AUTHORIZED');
    assert.ok(authorized?.e.type === 'AUTHORIZED');
    assert.match(authorized.e.rule ?? '', /test\.config:\d+$/);
    assert.match(authorized.e.ruleText ?? '', /^(cn:)?test-client /);
    const notAllowed = events(list).find((r) => r.e.type === 'DECLINED' && r.e.code === 'ERR_NOT_ALLOWED');
    assert.ok(notAllowed?.e.type === 'DECLINED');
    assert.equal(notAllowed.e.why, 'no allow rule for cn:test-client → secret (rules checked: 2, listing the target: 0)');
  });

  it('replays with every transition matching', async () => {
    const r = await replayFiles([log]);
    assert.equal(r.error, undefined);
    assert.equal(r.truncated, undefined);
    assert.equal(r.summary.divergence, undefined, r.summary.divergence?.message);
    assert.equal(r.summary.connections, ALL_SCENARIOS.length);
    assert.equal(r.summary.events, events(list).length);
    assert.equal(r.summary.transitions, transitions(list).length);
    assert.equal(r.summary.effects, list.filter((x) => x.k === 'f').length);
    assert.equal(r.summary.outputs, ALL_SCENARIOS.length);
    assert.ok(r.summary.decisions >= 4, 'every request decided again from the logged config');
    assert.equal(r.summary.undecided, 0);
    assert.equal(r.summary.unchecked, 0);
  });

  it('a log edited to turn an AUTHORIZED into a DECLINED: the rules, decided again from the logged config, disagree at that event', async () => {
    const i = list.findIndex((r) => r.k === 'e' && r.e.type === 'AUTHORIZED');
    const original = list[i] as EventRecord;
    const id = (original.e as { id: string }).id;
    const edited = [...list];
    edited[i] = { ...original, e: { type: 'DECLINED', id, code: 'ERR_NOT_ALLOWED', message: 'edited' } } as EventRecord;
    const file = path.join(dir, 'edited.mxlog');
    await writeLog(file, header, edited);
    const r = await replayFiles([file]);
    const d = r.summary.divergence;
    assert.ok(d, 'a divergence');
    assert.equal(d.kind, 'authorization');
    assert.equal(d.id, id);
    assert.equal(d.at, original.s, 'at the edited event');
    assert.match(d.message, new RegExp(`connection ${id}: authorization: the request \\(event #\\d+\\) decided again under .*test\\.config \\([0-9a-f]{12}\\): DECLINED recorded, AUTHORIZED decided`));
  });

  it('a log edited where the rules have no say (a connect turned into a refusal): the state and effects diverge, traced to the edit', async () => {
    const i = list.findIndex((r) => r.k === 'e' && r.e.type === 'BACKEND_CONNECTED');
    const original = list[i] as EventRecord;
    const e = original.e as { id: string; attempt: number; address: string };
    const edited = [...list];
    edited[i] = { ...original, e: { type: 'BACKEND_FAILED', id: e.id, attempt: e.attempt, address: e.address, code: 'ECONNREFUSED', message: 'edited' } } as EventRecord;
    const file = path.join(dir, 'edited-connect.mxlog');
    await writeLog(file, header, edited);
    const r = await replayFiles([file]);
    const d = r.summary.divergence;
    assert.ok(d, 'a divergence');
    assert.equal(d.id, e.id);
    assert.ok(d.kind === 'effect' || d.kind === 'state', d.message);
    assert.equal(d.actual?.cause, original.s, 'traced to the edited event');
    assert.ok(d.at > original.s, 'found at the first record after it that replay does not make');
  });

  it('a log with one transition removed (and renumbered to hide it): replay reports the transition the log lacks', async () => {
    const i = list.findIndex((r) => r.k === 'x' && r.to === 'forwarding');
    const file = path.join(dir, 'missing.mxlog');
    await writeLog(file, header, list.filter((_, j) => j !== i).map((r, j) => ({ ...r, s: j + 1 })));
    const r = await replayFiles([file]);
    assert.ok(r.summary.divergence);
    assert.match(r.summary.divergence.message, /→ forwarding/);
  });

  it('a log cut at every byte of its last record replays up to the cut, no divergence', async () => {
    const bytes = fs.readFileSync(log);
    const lastStart = bytes.length - encodeFrame(list.at(-1)).length;
    assert.ok(bytes.subarray(lastStart).equals(encodeFrame(list.at(-1))), 'found where the last record starts');
    const cut = path.join(dir, 'cut.mxlog');
    const full = await replayFiles([log]);
    for (let n = lastStart + 1; n < bytes.length; n++) {
      fs.writeFileSync(cut, bytes.subarray(0, n));
      const r = await replayFiles([cut]);
      assert.equal(r.error, undefined, `cut at ${n}: ${r.error?.stop.message}`);
      assert.equal(r.truncated?.stop.offset, lastStart, `cut at ${n}`);
      assert.match(r.truncated.stop.message, /log ends inside the record at byte \d+/);
      assert.equal(r.summary.divergence, undefined, `cut at ${n}: ${r.summary.divergence?.message}`);
      const s = r.summary;
      assert.equal(s.events + s.transitions + s.effects + s.outputs + s.noted + s.chunks, list.length - 1, 'every whole record replayed');
    }
    assert.equal(full.truncated, undefined);
  });

  it('a rotated series replays in order; with a file missing from the middle, pairs open across the gap are skipped, not failed', async () => {
    const base = path.join(dir, 'series.mxlog');
    const w = await EventLogWriter.open({ path: base, header, maxBytes: 1500, files: 50 });
    for (const r of list) w.append(r);
    await w.close();
    const series = await logSeries(base);
    assert.ok(series.length >= 4, `rotated into ${series.length} files`);
    const whole = await replayFiles(series);
    assert.equal(whole.summary.divergence, undefined, whole.summary.divergence?.message);
    assert.equal(whole.summary.connections, ALL_SCENARIOS.length);
    const holed = series.filter((_, i) => i !== 1);
    const r = await replayFiles(holed);
    assert.equal(r.summary.divergence, undefined, r.summary.divergence?.message);
    assert.equal(r.gaps.length, 1);
    assert.ok(r.summary.preexisting >= 1, 'at least one pair was open across the gap');
  });

  it('fuzzed log bytes give a clear stop reason, never a throw', async () => {
    const bytes = fs.readFileSync(log);
    const file = path.join(dir, 'fuzz.mxlog');
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(bytes.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), async (flips) => {
        const b = Buffer.from(bytes);
        for (const [at, v] of flips) b[at] = v;
        fs.writeFileSync(file, b);
        const r = await replayFiles([file]);
        const problem = r.error?.stop.message ?? r.truncated?.stop.message ?? r.summary.divergence?.message;
        if (!b.equals(bytes) && problem !== undefined) assert.ok(problem.length > 10);
      }),
      { numRuns: 150 },
    );
    fs.writeFileSync(file, Buffer.from('not an event log at all'));
    const r = await replayFiles([file]);
    assert.equal(r.error?.stop.reason, 'not-a-log');
    const missing = await replayFiles([path.join(dir, 'nope.mxlog')]);
    assert.match(missing.error?.stop.message ?? '', /cannot read .*ENOENT/);
  });

  it('replay opens no network connection and listens on nothing', async () => {
    const calls: string[] = [];
    const connect = net.Socket.prototype.connect;
    const listen = net.Server.prototype.listen;
    net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
      calls.push('connect');
      return (connect as (...a: unknown[]) => net.Socket).apply(this, args);
    } as typeof connect;
    net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
      calls.push('listen');
      return (listen as (...a: unknown[]) => net.Server).apply(this, args);
    } as typeof listen;
    try {
      const r = await replayFiles([log]);
      assert.equal(r.summary.divergence, undefined);
    } finally {
      net.Socket.prototype.connect = connect;
      net.Server.prototype.listen = listen;
    }
    assert.deepEqual(calls, []);
  });
});

describe('event log levels', () => {
  let pki: TestPki;
  let dir: string;
  before(async () => {
    pki = await createTestPki();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxproxy-eventlog-levels-'));
  });
  after(() => {
    pki?.cleanup();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function echoOnce(level: string, data: Buffer): Promise<LogRecord[]> {
    const log = path.join(dir, `${level}.mxlog`);
    const w = await startWorld(pki, log, level);
    const { socket, reply, rest } = await request({ port: w.h.port, pki, target: 'echo', early: data.subarray(0, 3) });
    assert.equal(reply.ok, true);
    const got = digestUntilEnd(socket, rest);
    socket.end(data.subarray(3));
    assert.equal((await got).bytes, data.length);
    await w.stop();
    const r = await replayFiles([log]);
    assert.equal(r.summary.divergence, undefined, 'chunk records do not disturb replay');
    return (await records(log)).list;
  }

  it('lifecycle (default): no chunk records', async () => {
    const list = await echoOnce('lifecycle', Buffer.from('lifecycle only'));
    assert.equal(list.filter((r) => r.k === 'c').length, 0);
  });

  it('traffic: the size of every chunk both ways, early bytes included, no bytes', async () => {
    const data = Buffer.from('traffic sizes');
    const list = await echoOnce('traffic', data);
    const chunks = list.filter((r) => r.k === 'c');
    const sum = (d: 'up' | 'down') => chunks.filter((c) => c.d === d).reduce((a, c) => a + c.n, 0);
    assert.equal(sum('up'), data.length);
    assert.equal(sum('down'), data.length);
    assert.ok(chunks.every((c) => c.b === undefined));
  });

  it('payload: the bytes themselves', async () => {
    const data = Buffer.from('payload bytes, for deep debugging');
    const list = await echoOnce('payload', data);
    const up = Buffer.concat(list.filter((r) => r.k === 'c' && r.d === 'up').map((c) => Buffer.from((c as { b: Uint8Array }).b)));
    assert.equal(up.toString(), data.toString());
  });
});
