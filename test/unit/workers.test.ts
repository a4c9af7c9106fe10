/**
 * `[proxy] workers`: the key, the per-worker event log names and how replay finds and groups them, and the
 * checks on what a worker may say to the primary over IPC.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { asPrimaryMessage, asWorkerMessage } from '../../src/cluster/messages.js';
import { resolveWorkers } from '../../src/cluster/primary.js';
import { describeConfig, readProxyConfig } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';
import { listWorkerSeries, seriesOfFile, workerLogPath } from '../../src/eventlog/workerSeries.js';
import { seriesToReplay } from '../../src/replay/series.js';

const read = (entries: string[]) => readProxyConfig(['[proxy]', ...entries].join('\n'), '/etc/mx.config', { checkFiles: false });
const problem = (entries: string[]): string => {
  try {
    read(entries);
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  assert.fail('expected a ConfigError');
};

describe('[proxy] workers', () => {
  it('a count, "auto", default 1; shown by describeConfig', () => {
    assert.equal(read([]).workers, 1);
    assert.equal(read(['workers = 4']).workers, 4);
    assert.equal(read(['workers = "auto"']).workers, 'auto');
    assert.match(describeConfig(read([])), /^workers = 1 {2}# default$/m);
    assert.match(describeConfig(read(['workers = "auto"'])), /^workers = "auto"$/m);
    assert.match(describeConfig(read(['workers = 2'])), /^workers = 2$/m);
  });

  it('refuses other words, 0, more than 256, fractions', () => {
    assert.match(problem(['workers = "all"']), /mx\.config:2: workers is a number of processes or "auto", e\.g\. workers = 2 or workers = "auto"/);
    assert.match(problem(['workers = 0']), /workers must be between 1 and 256/);
    assert.match(problem(['workers = 257']), /workers must be between 1 and 256/);
    assert.match(problem(['workers = 1.5']), /workers must be a whole number/);
  });

  it('"auto" is one per CPU the process may use', () => {
    assert.equal(resolveWorkers('auto'), os.availableParallelism());
    assert.equal(resolveWorkers(3), 3);
  });
});

describe('per-worker event log names', () => {
  it('<name>.w<N>.<ext>, the extension kept', () => {
    assert.equal(workerLogPath('/var/log/mxproxy/events.mxlog', 2), '/var/log/mxproxy/events.w2.mxlog');
    assert.equal(workerLogPath('/var/log/mx.d/events', 1), '/var/log/mx.d/events.w1');
    assert.equal(workerLogPath('events.v1.mxlog', 12), 'events.v1.w12.mxlog');
  });

  it('a file name says its series, worker and place in the rotation', () => {
    assert.deepEqual(seriesOfFile('/l/events.w2.mxlog'), { current: '/l/events.w2.mxlog', worker: 2, rotation: 0 });
    assert.deepEqual(seriesOfFile('/l/events.w2.mxlog.13'), { current: '/l/events.w2.mxlog', worker: 2, rotation: 13 });
    assert.deepEqual(seriesOfFile('/l/events.w3'), { current: '/l/events.w3', worker: 3, rotation: 0 });
    assert.deepEqual(seriesOfFile('/l/events.w3.2'), { current: '/l/events.w3', worker: 3, rotation: 2 });
    assert.deepEqual(seriesOfFile('/l/events.mxlog.1'), { current: '/l/events.mxlog.1', worker: undefined, rotation: 0 });
    assert.deepEqual(seriesOfFile('/l.w1/events.mxlog'), { current: '/l.w1/events.mxlog', worker: undefined, rotation: 0 });
  });
});

describe('which files replay reads', () => {
  let dir: string;
  const f = (name: string) => path.join(dir, name);
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxproxy-workers-'));
    for (const name of ['events.mxlog', 'events.mxlog.1', 'events.w1.mxlog', 'events.w1.mxlog.1', 'events.w1.mxlog.2', 'events.w2.mxlog', 'events.w10.mxlog.1', 'other.w1.mxlog', 'events.w1.mxlog.old']) {
      fs.writeFileSync(f(name), '');
    }
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('the base path: its own series first, then each worker, by number, oldest first', async () => {
    assert.deepEqual(
      (await listWorkerSeries(f('events.mxlog'))).map((s) => [s.worker, s.files.map((x) => path.basename(x))]),
      [
        [1, ['events.w1.mxlog.2', 'events.w1.mxlog.1', 'events.w1.mxlog']],
        [2, ['events.w2.mxlog']],
        [10, ['events.w10.mxlog.1']],
      ],
    );
    const series = await seriesToReplay(f('events.mxlog'), [], false);
    assert.deepEqual(
      series.map((s) => [s.worker, s.files.map((x) => path.basename(x))]),
      [
        [undefined, ['events.mxlog.1', 'events.mxlog']],
        [1, ['events.w1.mxlog.2', 'events.w1.mxlog.1', 'events.w1.mxlog']],
        [2, ['events.w2.mxlog']],
        [10, ['events.w10.mxlog.1']],
      ],
    );
    assert.deepEqual(await seriesToReplay(f('events.mxlog'), [], true), [{ worker: undefined, files: [f('events.mxlog')] }]);
  });

  it('files and patterns given: grouped by worker in rotation order; other files as given', async () => {
    const given = await seriesToReplay(f('events.w2.mxlog'), [f('events.w1.mxlog'), f('events.w1.mxlog.1')], false);
    assert.deepEqual(given.map((s) => [s.worker, s.files.map((x) => path.basename(x))]), [
      [1, ['events.w1.mxlog.1', 'events.w1.mxlog']],
      [2, ['events.w2.mxlog']],
    ]);
    const globbed = await seriesToReplay(f('events.w1.mxlog*'), [], false);
    assert.deepEqual(globbed.map((s) => [s.worker, s.files.map((x) => path.basename(x))]), [
      // Not named like a worker's file (nor a rotation of one): with the files of no worker, first.
      [undefined, ['events.w1.mxlog.old']],
      [1, ['events.w1.mxlog.2', 'events.w1.mxlog.1', 'events.w1.mxlog']],
    ]);
    const plain = await seriesToReplay(f('events.mxlog.1'), [f('events.mxlog')], false);
    assert.deepEqual(plain, [{ worker: undefined, files: [f('events.mxlog.1'), f('events.mxlog')] }]);
    await assert.rejects(seriesToReplay(f('nothing.*'), [], false), /nothing\.\*: no file matches/);
  });
});

describe('IPC messages', () => {
  it("a worker's are checked field by field", () => {
    assert.deepEqual(asWorkerMessage({ mx: 'ready' }), { mx: 'ready' });
    assert.deepEqual(asWorkerMessage({ mx: 'listening', addresses: ['127.0.0.1:5678'] }), { mx: 'listening', addresses: ['127.0.0.1:5678'] });
    const stats = { accepted: 5, active: 1, open: 1, pending: 0, refused: { 'max-connections': 2, bogus: -1 } };
    assert.deepEqual(asWorkerMessage({ mx: 'stats', stats }), { mx: 'stats', stats: { ...stats, refused: { 'max-connections': 2 } } });
    for (const bad of [
      null,
      'log',
      { cmd: 'NODE_CLUSTER', act: 'queryServer' },
      { mx: 'log', info: { level: 'info' } },
      { mx: 'log', info: 'text' },
      { mx: 'listening', addresses: [1] },
      { mx: 'stats', stats: { ...stats, active: -1 } },
      { mx: 'stats', stats: { ...stats, accepted: 1.5 } },
      { mx: 'shutdown' },
    ]) {
      assert.equal(asWorkerMessage(bad), undefined, JSON.stringify(bad));
    }
  });

  it("the primary's: setup with PEM text, ticket keys", () => {
    const tls = { cert: 'C', key: 'K', ca: 'A', crl: ['R'] };
    assert.deepEqual(asPrimaryMessage({ mx: 'setup', tls, ticketKey: 'a2V5' }), { mx: 'setup', tls, ticketKey: 'a2V5' });
    assert.equal(asPrimaryMessage({ mx: 'setup', tls: { ...tls, key: { type: 'Buffer', data: [1] } }, ticketKey: 'a2V5' }), undefined);
    assert.deepEqual(asPrimaryMessage({ mx: 'ticket-key', key: 'a2V5' }), { mx: 'ticket-key', key: 'a2V5' });
    assert.equal(asPrimaryMessage({ mx: 'ticket-key' }), undefined);
  });
});
