/** The rate limit of warnings a client can cause (src/log/rateLimited.ts), on a clock the test drives. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Clock, TimerHandle } from '../../src/clock.js';
import { RateLimiter, type Suppressed } from '../../src/log/rateLimited.js';

describe('rate limit (src/log/rateLimited.ts)', () => {
  /** A clock driven by the test. */
  function manualClock() {
    let now = 0;
    let next = 0;
    const timers = new Map<number, { at: number; fn: () => void }>();
    const clock: Clock = {
      now: () => now,
      setTimeout: (fn, ms) => {
        timers.set(++next, { at: now + ms, fn });
        return next as unknown as TimerHandle;
      },
      clearTimeout: (h) => void timers.delete(h as unknown as number),
    };
    const advance = (ms: number) => {
      const until = now + ms;
      for (;;) {
        const due = [...timers.entries()].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        timers.delete(due[0]);
        now = due[1].at;
        due[1].fn();
      }
      now = until;
    };
    return { clock, advance, pending: () => timers.size };
  }

  it('first line per (source, kind) at once, then one summary per interval with the count, forgotten when quiet', () => {
    const { clock, advance, pending } = manualClock();
    const said: Suppressed[] = [];
    const rl = new RateLimiter({ clock, intervalMs: 60_000, summary: (s) => said.push(s) });
    assert.equal(rl.admit('10.0.0.5', 'tls refused', 'a'), true);
    assert.equal(rl.admit('10.0.0.5', 'decline ERR_NOT_ALLOWED', 'x'), true, 'another kind');
    assert.equal(rl.admit('10.0.0.6', 'tls refused', 'a'), true, 'another source');
    for (let i = 0; i < 1000; i++) assert.equal(rl.admit('10.0.0.5', 'tls refused', `m${i}`), false);
    assert.equal(said.length, 0);
    advance(60_000);
    assert.deepEqual(said, [{ source: '10.0.0.5', kind: 'tls refused', count: 1000, last: 'm999', intervalMs: 60_000 }]);
    // the flood goes on: one summary per interval
    rl.admit('10.0.0.5', 'tls refused', 'n');
    rl.admit('10.0.0.5', 'tls refused', 'n');
    advance(60_000);
    assert.equal(said.length, 2);
    assert.equal(said[1]!.count, 2);
    // quiet for an interval: forgotten, the next line is logged at once again
    advance(60_000);
    assert.equal(said.length, 2);
    assert.equal(pending(), 0);
    assert.equal(rl.admit('10.0.0.5', 'tls refused', 'again'), true);
  });

  it('close() reports what is held back; past maxKeys, new sources share one entry', () => {
    const { clock, pending } = manualClock();
    const said: Suppressed[] = [];
    const rl = new RateLimiter({ clock, intervalMs: 1000, summary: (s) => said.push(s), maxKeys: 2 });
    rl.admit('a', 'k', '1');
    rl.admit('b', 'k', '1');
    assert.equal(rl.admit('c', 'k', '1'), true, 'the first of the others');
    assert.equal(rl.admit('d', 'k', '2'), false);
    rl.admit('a', 'k', '3');
    rl.close();
    assert.deepEqual(said.map((s) => [s.source, s.count]), [['a', 1], ['*', 1]]);
    assert.equal(pending(), 0);
  });
});
