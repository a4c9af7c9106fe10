/**
 * `mxproxy replay` as a user runs it: a log recorded by a real proxy on loopback (then stopped), replayed by
 * the built CLI in its own process — timeline, filters, JSON, Mermaid, and the logs that go wrong: edited,
 * cut by a power loss, damaged, not a log at all, rotated into a series, spanning a restart.
 *
 * Every CLI run is started in before() and runs concurrently (each process pays ~0.7 s to load the CLI);
 * each test awaits its own.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { EventLogWriter, MAGIC, encodeFrame, readEventLogFile } from '../../src/eventlog/index.js';
import { asLogRecord, type EventRecord, type HeaderRecord, type LogRecord } from '../../src/eventlog/records.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';
import { clientCloses, failover, handshakeTimeout, notAllowed, startWorld, unreachable } from '../helpers/scenarios.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function replay(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, 'replay', ...args], { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      const status = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ status, stdout, stderr });
    });
  });
}

const lines = (s: string) => s.split('\n').filter((l) => l !== '');
const lastLine = (s: string) => lines(s).at(-1) ?? '';
const blocks = (s: string) => lines(s).filter((l) => l.startsWith('connection '));
const show = (r: Run) => `exit ${r.status}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
const noStack = (r: Run) => assert.doesNotMatch(r.stdout + r.stderr, /^\s+at /m, `no stack trace\n${show(r)}`);
const pad2 = (n: number) => String(n).padStart(2, '0');
const localTimeOfDay = (ms: number) => {
  const d = new Date(ms);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
};
const sameLocalDay = (a: number, b: number) => new Date(a).toDateString() === new Date(b).toDateString();

async function writeLog(file: string, header: unknown, list: LogRecord[], opts: { maxBytes?: number; files?: number } = {}): Promise<void> {
  const w = await EventLogWriter.open({ path: file, header, ...opts });
  for (const r of list) w.append(r);
  await w.close();
}

describe('mxproxy replay', () => {
  let pki: TestPki;
  let dir: string;
  let log: string;
  let header: HeaderRecord;
  let list: LogRecord[];
  /** The failover story's connection: first address refused, second linked. */
  let failoverId: string;
  let failoverRecords: LogRecord[];
  const runs: Record<string, Promise<Run>> = {};
  const file = (name: string) => path.join(dir, name);

  before(async () => {
    pki = await createTestPki();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxproxy-replay-cli-'));
    log = file('events.mxlog');
    const w = await startWorld(pki, log, 'payload');
    for (const story of [clientCloses, failover, notAllowed, unreachable, handshakeTimeout]) await story(w);
    await w.stop();

    const contents = await readEventLogFile(log);
    assert.equal(contents.stop.reason, 'end', contents.stop.message);
    header = contents.header as HeaderRecord;
    list = contents.records.map((r) => asLogRecord(r) as LogRecord);
    const request = list.find((r): r is EventRecord => r.k === 'e' && r.e.type === 'REQUEST' && r.e.target === 'redundant');
    assert.ok(request, 'the failover story is in the log');
    failoverId = (request.e as { id: string }).id;
    failoverRecords = list.filter((r) => (r.k === 'e' ? (r.e as { id?: string }).id === failoverId : r.k !== 'd' && r.id === failoverId));

    // One AUTHORIZED turned into a DECLINED: replay must disagree with the transition recorded after it.
    const i = list.findIndex((r) => r.k === 'e' && r.e.type === 'AUTHORIZED');
    const original = list[i] as EventRecord;
    const edited = [...list];
    edited[i] = { ...original, e: { type: 'DECLINED', id: (original.e as { id: string }).id, code: 'ERR_NOT_ALLOWED', message: 'edited' } } as EventRecord;
    await writeLog(file('edited.mxlog'), header, edited);

    // A power loss in the middle of the last record.
    const bytes = fs.readFileSync(log);
    fs.writeFileSync(file('cut.mxlog'), bytes.subarray(0, bytes.length - 3));
    // One byte flipped inside the body of a record in the middle: a CRC mismatch there.
    let offset = MAGIC.length + encodeFrame(header).length;
    const middle = Math.floor(list.length / 2);
    for (const r of list.slice(0, middle)) offset += encodeFrame(r).length;
    const damaged = Buffer.from(bytes);
    damaged[offset + 6]! ^= 0xff;
    fs.writeFileSync(file('damaged.mxlog'), damaged);
    const random = randomBytes(4096);
    random[0] = 0;
    fs.writeFileSync(file('random.bin'), random);
    fs.writeFileSync(file('notes.txt'), 'connection 7 failed over at 03:12, see the event log\n');

    // The same records rotated into a series of small files (events.mxlog.N … .1, events.mxlog).
    fs.mkdirSync(file('series'));
    await writeLog(file('series/events.mxlog'), header, list, { maxBytes: 2048, files: 50 });
    // Two runs of the proxy: the restart rotated the first run's log to .1.
    fs.mkdirSync(file('restart'));
    await writeLog(file('restart/events.mxlog'), header, list);
    await writeLog(file('restart/events.mxlog'), { ...header, started: header.started + 60_000, pid: header.pid + 1 }, list);

    const during = failoverRecords[0]!.t + 1;
    const clock = sameLocalDay(during, header.started) ? localTimeOfDay(during) : new Date(during).toISOString();
    const later = String(list.at(-1)!.t + 3_600_000);
    Object.assign(runs, {
      timeline: replay(log),
      connection: replay(log, '--connection', failoverId),
      target: replay(log, '--target', 'secret'),
      windowAfter: replay(log, '--from', later, '--until', new Date(Number(later) + 60_000).toISOString()),
      windowDuring: replay(log, '--from', clock, '--until', clock),
      badTime: replay(log, '--from', '25:61'),
      badWords: replay(log, '--until', 'yesterday'),
      json: replay(log, '--format', 'json'),
      jsonConnection: replay(log, '--format', 'json', '--connection', failoverId),
      mermaid: replay(log, '--format', 'mermaid', '--connection', failoverId),
      mermaidAlone: replay(log, '--format', 'mermaid'),
      edited: replay(file('edited.mxlog')),
      cut: replay(file('cut.mxlog')),
      damaged: replay(file('damaged.mxlog')),
      random: replay(file('random.bin')),
      text: replay(file('notes.txt')),
      missing: replay(file('nope.mxlog')),
      directory: replay(dir, '--single'),
      series: replay(file('series/events.mxlog')),
      seriesSingle: replay(file('series/events.mxlog'), '--single'),
      restart: replay(file('restart/events.mxlog')),
      help: replay('--help'),
    });
  });
  after(() => {
    pki?.cleanup();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('timeline: a block per connection with events and transitions, the proxy section, the summary last', async () => {
    const r = await runs.timeline!;
    assert.equal(r.status, 0, show(r));
    assert.match(lastLine(r.stdout), /^replayed \d+ events, 5 connections, all states, effects, outputs and decisions match$/);
    assert.equal(blocks(r.stdout).length, 5);
    assert.match(r.stdout, /^connection \w+ {2}peer 127\.0\.0\.1:\d+ {2}identity test-client {2}target echo {2}backend 127\.0\.0\.1:\d+ {2}at /m);
    for (const want of [
      /^ {2}\+ +0\.000 ms {2}ACCEPTED peer=127\.0\.0\.1:\d+ local=127\.0\.0\.1:\d+$/m,
      /^ {2}\+ +\d+\.\d{3} ms {6}→ handshake\.tls$/m,
      /TLS_OK identity=test-client TLSv1\.3/,
      /handshake\.tls → handshake\.awaitingRequest/,
      /connecting → forwarding/,
      /DECLINED ERR_NOT_ALLOWED "\\"test-client\\" may not reach \\"secret\\""/,
      /BACKEND_FAILED 127\.0\.0\.1:\d+ ECONNREFUSED attempt=0/,
      /HANDSHAKE_TIMEOUT/,
      /chunk up {3}5 B "hello"/, // payload level: few chunks are listed with a preview
      /^ {2}traffic {2}up 1 chunk 5 B {2}down 1 chunk 5 B$/m,
      /^proxy {2}log started .* level payload$/m,
      /running → stopping\n.*stopping → stopped/,
    ]) {
      assert.match(r.stdout, want);
    }
    assert.doesNotMatch(r.stdout, /\x1b\[/, 'no colors when stdout is not a terminal');
    assert.equal(r.stderr, '', 'one file, not a terminal: nothing on stderr');
  });

  it('--connection shows only that connection', async () => {
    const r = await runs.connection!;
    assert.equal(r.status, 0, show(r));
    assert.deepEqual(blocks(r.stdout).map((l) => l.split('  ')[0]), [`connection ${failoverId}`]);
    assert.match(r.stdout, /target redundant/);
    // The failover: a re-entry of `connecting`, with the next dial among its effects.
    assert.match(r.stdout, /BACKEND_FAILED .* attempt=0\n(.*\n)*? +\+ +[\d.]+ ms +do dialBackend attempt=1 address=127\.0\.0\.1:\d+\n(.*\n)*? +\+ +[\d.]+ ms +connecting → connecting\n(.*\n)*?.*BACKEND_CONNECTED .* attempt=1/);
    assert.doesNotMatch(r.stdout, /^proxy/m, 'no proxy section for one connection');
    assert.match(lastLine(r.stdout), /^replayed \d+ events, 5 connections, all states, effects, outputs and decisions match; 1 of 5 connections shown$/);
  });

  it('--target shows the connections that asked for it', async () => {
    const r = await runs.target!;
    assert.equal(r.status, 0, show(r));
    assert.equal(blocks(r.stdout).length, 1);
    assert.match(blocks(r.stdout)[0]!, /target secret/);
    assert.match(r.stdout, /ERR_NOT_ALLOWED/);
    assert.match(lastLine(r.stdout), /1 of 5 connections shown$/);
  });

  it('--from/--until: a window after the run shows nothing, the summary is still there; a time of day picks one', async () => {
    const after = await runs.windowAfter!;
    assert.equal(after.status, 0, show(after));
    assert.equal(blocks(after.stdout).length, 0);
    assert.match(lastLine(after.stdout), /^replayed \d+ events, 5 connections, all states, effects, outputs and decisions match; 0 of 5 connections shown$/);
    const during = await runs.windowDuring!;
    assert.equal(during.status, 0, show(during));
    assert.deepEqual(blocks(during.stdout).map((l) => l.split('  ')[0]), [`connection ${failoverId}`]);
  });

  it('a time that cannot be read: exit 2 and what is accepted', async () => {
    for (const r of [await runs.badTime!, await runs.badWords!]) {
      assert.equal(r.status, 2, show(r));
      assert.match(r.stderr, /^mxproxy replay: --(from|until) "(25:61|yesterday)" is not .*ISO 8601.*HH:MM/m);
      assert.equal(r.stdout, '');
      noStack(r);
    }
  });

  it('--format json: a line per record, bytes as base64, the summary last', async () => {
    const r = await runs.json!;
    assert.equal(r.status, 0, show(r));
    const objects = lines(r.stdout).map((l) => JSON.parse(l) as Record<string, unknown>);
    const records = objects.filter((o) => 'k' in o) as unknown as LogRecord[];
    assert.equal(records.length, list.length, 'every record, without a filter');
    assert.deepEqual(records.map((x) => x.s), list.map((x) => x.s), 'in log order');
    const chunk = records.find((x) => x.k === 'c' && x.d === 'up') as { b?: unknown };
    assert.equal(typeof chunk.b, 'string');
    assert.equal(Buffer.from(chunk.b as string, 'base64').toString(), 'hello');
    const summary = (objects.at(-1) as { summary: Record<string, unknown> }).summary;
    assert.equal(summary.connections, 5);
    assert.equal(summary.match, true);
    assert.equal(summary.divergence, null);
    assert.match(r.stderr, /^replayed \d+ events, 5 connections, all states, effects, outputs and decisions match$/m);

    const one = await runs.jsonConnection!;
    assert.equal(one.status, 0, show(one));
    const mine = lines(one.stdout).map((l) => JSON.parse(l) as Record<string, unknown>).filter((o) => 'k' in o) as unknown as LogRecord[];
    assert.deepEqual(mine.map((x) => x.s), failoverRecords.map((x) => x.s));
  });

  it('--format mermaid: the connection path as a state diagram; without --connection exit 2', async () => {
    const r = await runs.mermaid!;
    assert.equal(r.status, 0, show(r));
    assert.match(r.stdout, /^stateDiagram-v2\n/);
    for (const want of [
      'state "handshake.tls" as handshake_tls',
      '[*] --> handshake_tls',
      'handshake_tls --> handshake_awaitingRequest: 1 TLS_OK',
      'handshake_awaitingRequest --> authorization: 2 REQUEST',
      'authorization --> connecting: 3 AUTHORIZED',
      'connecting --> connecting: 4 BACKEND_FAILED',
      'connecting --> forwarding: 5 BACKEND_CONNECTED',
      'closed --> [*]',
    ]) {
      assert.ok(r.stdout.includes(want), `has ${want}\n${r.stdout}`);
    }
    assert.doesNotMatch(r.stdout, /replayed/, 'stdout is the diagram only');
    assert.match(r.stderr, /^replayed \d+ events, 5 connections, all states, effects, outputs and decisions match; 1 of 5 connections shown$/m);

    const alone = await runs.mermaidAlone!;
    assert.equal(alone.status, 2, show(alone));
    assert.match(alone.stderr, /--format mermaid draws one connection: give --connection <id>/);
    assert.equal(alone.stdout, '');
  });

  it('an edited log: exit 1, DIVERGENCE at the record, with the records that led there', async () => {
    const r = await runs.edited!;
    assert.equal(r.status, 1, show(r));
    // An AUTHORIZED turned into a DECLINED: the request, decided again under the logged config, disagrees.
    const at = /^DIVERGENCE at record #(\d+) \(authorization\): connection (\w+): authorization: the request \(event #\d+\) decided again under .*test\.config \([0-9a-f]{12}\): DECLINED recorded, AUTHORIZED decided$/m.exec(r.stdout);
    assert.ok(at, show(r));
    assert.match(r.stdout, new RegExp(`^ {4}#${at[1]} +[\\d:.]+ {2}DECLINED ERR_NOT_ALLOWED "edited" {3}<- does not match$`, 'm'));
    assert.match(r.stdout, /^ {4}#\d+ +[\d:.]+ {8}do authorize identity=test-client identities=\["cn:test-client"\] target=echo$/m);
    assert.match(r.stdout, /^ {2}replay made: {2}AUTHORIZED 127\.0\.0\.1:\d+ by cn:test-client rule .*test\.config:\d+, decided under .*test\.config \([0-9a-f]{12}\)$/m);
    assert.match(r.stdout, new RegExp(`^ {2}the log has: {2}DECLINED ERR_NOT_ALLOWED "edited" \\(record #${at[1]}\\)$`, 'm'));
    assert.match(lastLine(r.stdout), new RegExp(`^replayed \\d+ events, \\d+ connections?, DIVERGENCE at record #${at[1]} \\(authorization\\)$`));
  });

  it('a log cut inside its last record (power loss): exit 0, replayed up to there, and said so', async () => {
    const r = await runs.cut!;
    assert.equal(r.status, 0, show(r));
    assert.match(
      lastLine(r.stdout),
      /^replayed \d+ events, 5 connections, all states, effects, outputs and decisions match; log ends inside a record at byte \d+ of .*cut\.mxlog \(power loss\?\): replayed up to there/,
    );
  });

  it('a damaged log: exit 2, where it is damaged, and what came before it', async () => {
    const r = await runs.damaged!;
    assert.equal(r.status, 2, show(r));
    assert.match(r.stderr, /^mxproxy replay: .*damaged\.mxlog: record at byte \d+ is corrupt: CRC mismatch/m);
    assert.ok(blocks(r.stdout).length >= 1, 'the connections before the damage are shown');
    assert.match(lastLine(r.stdout), /^replayed \d+ events, \d+ connections?, all states, effects, outputs and decisions match up to the error; stopped: /);
    noStack(r);
  });

  it('not a log (random bytes, a text file, a missing file, a directory): exit 2, a clear message, no stack', async () => {
    const cases: [Run, RegExp][] = [
      [await runs.random!, /random\.bin: not an mxproxy event log/],
      [await runs.text!, /notes\.txt: not an mxproxy event log/],
      [await runs.missing!, /cannot read .*nope\.mxlog: no such file \(ENOENT\)/],
      [await runs.directory!, /cannot read .*: is a directory \(EISDIR\)/],
    ];
    for (const [r, message] of cases) {
      assert.equal(r.status, 2, show(r));
      assert.match(r.stderr, new RegExp(`^mxproxy replay: .*${message.source}`, 'm'));
      assert.match(lastLine(r.stdout), /^replayed 0 events, 0 connections, nothing to check; stopped: /);
      noStack(r);
    }
  });

  it('a rotated series: the base path replays every file, oldest first, as one log', async () => {
    const base = file('series/events.mxlog');
    assert.ok(fs.existsSync(`${base}.2`), 'the series has at least three files');
    const r = await runs.series!;
    assert.equal(r.status, 0, show(r));
    const listed = /^replaying (\d+) files: (.*)$/m.exec(r.stderr);
    assert.ok(listed, show(r));
    const files = listed[2]!.split(', ');
    assert.equal(files.length, Number(listed[1]));
    assert.equal(files.at(-1), base);
    assert.deepEqual(files.slice(0, -1).map((f) => Number(f.slice(base.length + 1))), [...Array(files.length - 1).keys()].map((k) => files.length - 1 - k));
    const whole = await runs.timeline!;
    assert.equal(lastLine(r.stdout), lastLine(whole.stdout), 'the same summary as the log in one file');
    assert.equal(blocks(r.stdout).length, 5);

    const single = await runs.seriesSingle!;
    assert.equal(single.status, 0, show(single));
    assert.doesNotMatch(single.stderr, /replaying/);
    const events = (s: string) => Number(/^replayed (\d+) events?,/.exec(lastLine(s))?.[1]);
    assert.ok(events(single.stdout) < events(whole.stdout), `--single replays the newest file only\n${show(single)}`);
  });

  it('a series spanning a restart: each run replayed on its own', async () => {
    const r = await runs.restart!;
    assert.equal(r.status, 0, show(r));
    assert.match(r.stderr, /^replaying 2 files \(2 proxy runs\): /m);
    assert.match(r.stdout, /^=== proxy run 1 of 2: .*events\.mxlog\.1$/m);
    assert.match(r.stdout, /^=== proxy run 2 of 2: .*events\.mxlog$/m);
    assert.equal(blocks(r.stdout).length, 10);
    assert.match(lastLine(r.stdout), /^replayed \d+ events, 10 connections, all states, effects, outputs and decisions match; 2 proxy runs/);
  });

  it('--help has examples', async () => {
    const r = await runs.help!;
    assert.equal(r.status, 0, show(r));
    for (const example of [
      'mxproxy replay /var/log/mxproxy/events.mxlog\n',
      '--connection 7 --format mermaid',
      '--from 03:10 --until 03:15 --target data',
    ]) {
      assert.ok(r.stdout.includes(example), example);
    }
  });
});
