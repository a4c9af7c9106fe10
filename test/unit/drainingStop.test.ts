/** stop() semantics shared by the proxy and the forwarder: once, a drain hurried by a later plain stop. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { drainingStop } from '../../src/process/drainingStop.js';

function harness() {
  const calls: string[] = [];
  let finishDrain!: () => void;
  let finishCleanup!: () => void;
  const stop = drainingStop({
    hurry: () => calls.push('hurry'),
    run: async (drain, drained) => {
      calls.push(`run drain=${drain}`);
      await new Promise<void>((r) => (finishDrain = r));
      drained();
      await new Promise<void>((r) => (finishCleanup = r));
      calls.push('done');
    },
  });
  return { calls, stop, drainDone: () => finishDrain(), cleanupDone: () => finishCleanup() };
}

const tick = () => new Promise<void>((r) => setImmediate(r));

describe('drainingStop', () => {
  test('runs once; every caller gets the same promise', async () => {
    const h = harness();
    const a = h.stop();
    const b = h.stop();
    const c = h.stop({ drain: true });
    assert.equal(a, b);
    assert.equal(a, c);
    h.drainDone();
    await tick();
    h.cleanupDone();
    await a;
    assert.deepEqual(h.calls, ['run drain=false', 'done']);
  });

  test('a plain stop during a drain hurries it, once', async () => {
    const h = harness();
    const a = h.stop({ drain: true });
    h.stop();
    h.stop();
    h.stop({ drain: true });
    assert.deepEqual(h.calls, ['run drain=true', 'hurry']);
    h.drainDone();
    await tick();
    h.cleanupDone();
    await a;
    assert.deepEqual(h.calls, ['run drain=true', 'hurry', 'done']);
  });

  test('no hurry once every pair has closed (clean-up still running)', async () => {
    const h = harness();
    const a = h.stop({ drain: true });
    h.drainDone();
    await tick();
    h.stop();
    h.cleanupDone();
    await a;
    assert.deepEqual(h.calls, ['run drain=true', 'done']);
  });
});
