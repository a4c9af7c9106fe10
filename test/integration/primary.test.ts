/**
 * The primary of `[proxy] workers` > 1 (src/cluster/primary.ts), run in this process over stand-in workers
 * (test/helpers/fakeWorker.ts: real child processes speaking the IPC messages, serving nothing): their log records
 * written with worker=<n>, one ticket key for all and its rotation, SIGHUP passed on, a second stop passed on,
 * restarts with the open pairs counted as lost, the give-up after the limit, a worker that cannot start.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runPrimary, type RestartPolicy, type WorkerPool } from '../../src/cluster/primary.js';
import { readProxyConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/log.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';

const FAKE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../helpers/fakeWorker.js');
const FAST: RestartPolicy = { max: 2, windowMs: 60_000, delayMs: 20, maxDelayMs: 100 };

interface Run {
  code: Promise<number>;
  pool: WorkerPool;
  lines: Record<string, unknown>[];
  until(match: (l: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>;
}

describe('the workers primary', () => {
  let pki: TestPki;
  before(async () => {
    pki = await createTestPki();
  });
  after(() => {
    delete process.env.FAKE_WORKER_MODE;
    pki?.cleanup();
  });

  function run(mode: string, workers = 2, extra: string[] = []): Run {
    process.env.FAKE_WORKER_MODE = mode;
    const config = readProxyConfig(
      ['[proxy]', `sslCertificate = "${pki.server.cert} ${pki.server.key} ${pki.caFile}"`, `workers = ${workers}`, ...extra].join('\n'),
      path.join(pki.dir, 'primary.config'),
    );
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    });
    const logger = createLogger({ format: 'json', level: 'debug', stream: sink });
    let pool!: WorkerPool;
    const code = runPrimary({ config, logger, workers, exec: FAKE, args: [], restart: FAST, started: (p) => (pool = p) });
    const until = async (match: (l: Record<string, unknown>) => boolean, ms = 10_000) => {
      const t0 = Date.now();
      for (;;) {
        const found = lines.find(match);
        if (found) return found;
        if (Date.now() - t0 > ms) throw new Error(`no such line within ${ms} ms:\n${lines.map((l) => JSON.stringify(l)).join('\n')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    return { code, pool, lines, until };
  }
  const message = (re: RegExp) => (l: Record<string, unknown>) => re.test(String(l.message));

  it("writes the workers' records with worker=<n>, shares one ticket key and rotates it on all, passes SIGHUP and a second stop on", async () => {
    const r = run('stubborn', 2, ['sessionTicketRotation = 1000']);
    await r.until(message(/^mxproxy listening on 127\.0\.0\.1:1 with 2 workers \(pids \d+, \d+\)$/));
    for (const n of [1, 2]) {
      const setup = await r.until((l) => l.worker === n && l.message === 'setup with a ticket key of 48 bytes');
      assert.equal(setup.fake, String(n), 'the record as the worker sent it, worker set by the primary');
    }
    const keys = await Promise.all([1, 2].map((n) => r.until((l) => l.worker === n && /^ticket key /.test(String(l.message)), 5000)));
    assert.equal(keys[0]!.message, keys[1]!.message, 'both workers got the same new key');
    // Counters as the workers last reported them.
    await r.until(() => r.pool.stats().every((s) => s.stats?.active === 2));
    assert.deepEqual(r.pool.stats().map((s) => [s.worker, s.listening, s.stats?.accepted]), [[1, true, 3], [2, true, 3]]);

    r.pool.forward('SIGHUP');
    await Promise.all([1, 2].map((n) => r.until((l) => l.worker === n && l.message === 'SIGHUP')));
    r.pool.stop('SIGTERM');
    await Promise.all([1, 2].map((n) => r.until((l) => l.worker === n && l.message === 'SIGTERM 1')));
    assert.ok(r.pool.stats().every((s) => s.listening), 'both still running after one');
    r.pool.stop('SIGTERM');
    assert.equal(await r.code, 0);
    assert.ok(r.lines.some(message(/^SIGTERM again: passed on to 2 workers$/)));
    assert.ok(r.lines.some(message(/^mxproxy stopped \(2 workers\)$/)));
  });

  it('restarts a worker that dies, its open pairs counted as lost, and gives up after the limit with exit 1', async () => {
    const r = run('crash', 1);
    assert.equal(await r.code, 1);
    const died = r.lines.filter(message(/^worker 1 \(pid \d+\) died: exit code 7; its 2 open pairs were lost$/));
    assert.equal(died.length, 3, 'two restarts allowed, the third death ends it');
    assert.equal(died[0]!.level, 'error');
    assert.equal(r.lines.filter(message(/^restarting worker 1 in (20|40) ms \([12] of 2 restarts within 60 s\)$/)).length, 2);
    assert.ok(r.lines.some(message(/^workers died 3 times within 60 s, more than the 2 restarts allowed: giving up, stopping the other workers$/)));
    const pids = new Set(r.lines.map((l) => /worker 1 \(pid (\d+)\) listening/.exec(String(l.message))?.[1]).filter(Boolean));
    assert.equal(pids.size, 3, 'a new process each time');
  });

  it('a worker that fails before it listens stops the start with exit 1', async () => {
    const r = run('crash-at-start', 2);
    assert.equal(await r.code, 1);
    assert.ok(r.lines.some(message(/^worker \d \(pid \d+\) could not start: exit code 3; stopping$/)));
    assert.ok(!r.lines.some(message(/^restarting/)));
  });
});
