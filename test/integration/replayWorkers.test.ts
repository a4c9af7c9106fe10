/**
 * `mxproxy replay` over the event logs of `[proxy] workers` > 1: one series per worker (events.w1.mxlog …),
 * found from the configured path, each replayed on its own machines, the summaries added up; a divergence
 * names the worker, in the report, the summary line and the JSON summary. The records are a real proxy's
 * (recorded on loopback), written out as two workers' series.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { EventLogWriter, readEventLogFile } from '../../src/eventlog/index.js';
import { asLogRecord, type EventRecord, type HeaderRecord, type LogRecord } from '../../src/eventlog/records.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';
import { clientCloses, notAllowed, startWorld } from '../helpers/scenarios.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

function replay(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, 'replay', '--no-progress', ...args], { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    );
  });
}

async function writeLog(file: string, header: unknown, list: LogRecord[], opts: { maxBytes?: number; files?: number } = {}): Promise<void> {
  const w = await EventLogWriter.open({ path: file, header, ...opts });
  for (const r of list) w.append(r);
  await w.close();
}

describe('mxproxy replay of per-worker logs', () => {
  let pki: TestPki;
  let dir: string;
  let header: HeaderRecord;
  let list: LogRecord[];
  let connections: number;

  before(async () => {
    pki = await createTestPki();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxproxy-replay-workers-'));
    const recorded = path.join(dir, 'recorded.mxlog');
    const w = await startWorld(pki, recorded);
    for (const story of [clientCloses, notAllowed]) await story(w);
    await w.stop();
    const contents = await readEventLogFile(recorded);
    header = contents.header as HeaderRecord;
    list = contents.records.map((r) => asLogRecord(r) as LogRecord);
    connections = list.filter((r) => r.k === 'e' && r.e.type === 'ACCEPTED').length;

    // Two workers: worker 1's series rotated into small files, worker 2's in one.
    fs.mkdirSync(path.join(dir, 'ok'));
    await writeLog(path.join(dir, 'ok/events.w1.mxlog'), { ...header, worker: 1 }, list, { maxBytes: 600, files: 50 });
    await writeLog(path.join(dir, 'ok/events.w2.mxlog'), { ...header, pid: header.pid + 1, worker: 2 }, list);
    // The same, with one AUTHORIZED in worker 2's log turned into a DECLINED.
    fs.mkdirSync(path.join(dir, 'edited'));
    await writeLog(path.join(dir, 'edited/events.w1.mxlog'), { ...header, worker: 1 }, list);
    const i = list.findIndex((r) => r.k === 'e' && r.e.type === 'AUTHORIZED');
    const original = list[i] as EventRecord;
    const edited = [...list];
    edited[i] = { ...original, e: { type: 'DECLINED', id: (original.e as { id: string }).id, code: 'ERR_NOT_ALLOWED', message: 'edited' } } as EventRecord;
    await writeLog(path.join(dir, 'edited/events.w2.mxlog'), { ...header, pid: header.pid + 1, worker: 2 }, edited);
  });
  after(() => {
    pki?.cleanup();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the configured path finds both series; each replays on its own; the counts add up', async () => {
    const r = await replay(path.join(dir, 'ok/events.mxlog'));
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    const files = fs.readdirSync(path.join(dir, 'ok')).length;
    assert.ok(files > 3, 'worker 1 rotated into several files');
    assert.match(r.stderr, new RegExp(`^replaying ${files} files \\(2 workers, 2 runs\\): .*events\\.w1\\.mxlog\\.\\d+, `, 'm'));
    assert.match(r.stdout, /^=== worker 1, proxy run 1 of 2: /m);
    assert.match(r.stdout, /^=== worker 2, proxy run 2 of 2: .*events\.w2\.mxlog$/m);
    assert.match(r.stdout, /^proxy {2}log started .* worker 2 {2}mxproxy /m);
    const events = list.filter((x) => x.k === 'e').length;
    assert.equal(r.stdout.trim().split('\n').at(-1), `replayed ${events * 2} events, ${connections * 2} connections, all states, effects, outputs and decisions match; 2 workers (each replayed on its own)`);

    const json = await replay(path.join(dir, 'ok/events.mxlog'), '--format', 'json');
    const summary = (JSON.parse(json.stdout.trim().split('\n').at(-1)!) as { summary: { workers: number[]; connections: number; match: boolean } }).summary;
    assert.deepEqual([summary.workers, summary.connections, summary.match], [[1, 2], connections * 2, true]);
    const runLines = json.stdout.split('\n').filter((l) => l.startsWith('{"run"')).map((l) => (JSON.parse(l) as { run: { worker: number } }).run.worker);
    assert.deepEqual(runLines, [1, 2]);
  });

  it('a divergence names the worker: report, summary line, JSON; exit 1', async () => {
    const r = await replay(path.join(dir, 'edited/events.mxlog'));
    assert.equal(r.status, 1, `${r.stdout}\n${r.stderr}`);
    // The edited decline is caught first as a decision the logged rules would not make.
    const at = /^DIVERGENCE at record #(\d+) of worker 2 \(authorization\): connection \w+: authorization: /m.exec(r.stdout);
    assert.ok(at, r.stdout);
    assert.match(r.stdout.trim().split('\n').at(-1)!, new RegExp(`, DIVERGENCE at record #${at[1]} of worker 2 \\(authorization\\); 2 workers \\(each replayed on its own\\)$`));
    const json = await replay(path.join(dir, 'edited/events.w*.mxlog'), '--format', 'json');
    assert.equal(json.status, 1);
    const summary = (JSON.parse(json.stdout.trim().split('\n').at(-1)!) as { summary: { divergence: { worker: number; at: number } } }).summary;
    assert.deepEqual([summary.divergence.worker, summary.divergence.at], [2, Number(at[1])]);
  });
});
