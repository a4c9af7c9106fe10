/** Connection limits without sockets: rates and token buckets, the config keys, source addresses, the accept
 * gate and its bounded per-source table, pair limits, the rate-limited refusal log. Time is a fake clock. */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { describeConfig, readProxyConfig } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { derivedMaxConnections, openFilesLimit } from '../../src/process/openFiles.js';
import { AcceptGate, PairLimits, resolveLimits, type Admission, type ProxyLimits } from '../../src/proxy/limits.js';
import { RefusalLog } from '../../src/proxy/refusals.js';
import { sourceAddress } from '../../src/shared/address.js';
import { parseRate, TokenBucket, type Rate } from '../../src/shared/tokenBucket.js';
import { FakeClock } from '../helpers/fakeClock.js';

const rate = (text: string): Rate => {
  const r = parseRate(text);
  assert.ok(r.ok && r.value, text);
  return r.value;
};

describe('token bucket', () => {
  test('a full burst, then one token per 1/rate, never more than the burst', () => {
    const clock = new FakeClock();
    const r = rate('5/s burst 3');
    const b = new TokenBucket(r, clock.now());
    assert.deepEqual([b.take(r, clock.now()), b.take(r, clock.now()), b.take(r, clock.now()), b.take(r, clock.now())], [true, true, true, false]);
    clock.advance(199);
    assert.equal(b.take(r, clock.now()), false, 'not yet a whole token');
    clock.advance(1);
    assert.equal(b.take(r, clock.now()), true, 'one token after 200 ms at 5/s');
    clock.advance(60_000);
    assert.equal(b.isFull(r, clock.now()), true);
    let n = 0;
    while (b.take(r, clock.now())) n++;
    assert.equal(n, 3, 'a long quiet spell refills only up to the burst');
  });

  test('per minute', () => {
    const clock = new FakeClock();
    const r = rate('60/min burst 1');
    const b = new TokenBucket(r, clock.now());
    assert.equal(b.take(r, clock.now()), true);
    clock.advance(999);
    assert.equal(b.take(r, clock.now()), false);
    clock.advance(1);
    assert.equal(b.take(r, clock.now()), true);
  });

  test('a clock that steps back does not drain or overfill it', () => {
    const clock = new FakeClock();
    const r = rate('1/s burst 2');
    const b = new TokenBucket(r, clock.now());
    assert.equal(b.take(r, clock.now()), true);
    clock.t -= 10_000;
    assert.equal(b.take(r, clock.now()), true);
    assert.equal(b.take(r, clock.now()), false);
  });

  test('property: over any schedule, tokens granted ≤ burst + rate × elapsed', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 50 }), fc.array(fc.integer({ min: 0, max: 500 }), { maxLength: 200 }), (count, burst, gaps) => {
        const clock = new FakeClock();
        const r: Rate = { count, per: 's', burst };
        const b = new TokenBucket(r, clock.now());
        const t0 = clock.now();
        let granted = 0;
        for (const g of gaps) {
          clock.advance(g);
          if (b.take(r, clock.now())) granted++;
        }
        return granted <= burst + (count * (clock.now() - t0)) / 1000 + 1e-9;
      }),
    );
  });
});

describe('rate syntax', () => {
  test('"20/s burst 40", "/min", burst optional, "off"', () => {
    assert.deepEqual(parseRate('20/s burst 40'), { ok: true, value: { count: 20, per: 's', burst: 40 } });
    assert.deepEqual(parseRate(' 600 / min  burst 20 '), { ok: true, value: { count: 600, per: 'min', burst: 20 } });
    assert.deepEqual(parseRate('7/s'), { ok: true, value: { count: 7, per: 's', burst: 7 } });
    assert.deepEqual(parseRate('off'), { ok: true, value: null });
  });

  test('bad syntax is an error naming the form', () => {
    for (const bad of ['20', '20/h', '20/s burst', 'fast', '0/s', '20/s burst 0', '-1/s', '1.5/s', '20/s burst 40 x', '']) {
      const r = parseRate(bad);
      assert.equal(r.ok, false, bad);
    }
    const r = parseRate('20 per second');
    assert.ok(!r.ok && /expected "<n>\/s burst <m>", "<n>\/min burst <m>" or "off", got "20 per second"/.test(r.message));
  });

  test('in a config file: default, value, "off", and errors with file:line', () => {
    const file = '/tmp/mxproxy-limits-test.config';
    const read = (...ls: string[]) => readProxyConfig(['[proxy]', ...ls].join('\n') + '\n', file, { checkFiles: false });
    const d = read();
    assert.deepEqual(d.connectRate, { count: 500, per: 's', burst: 1000 });
    assert.deepEqual([d.maxPendingHandshakes, d.maxPendingPerSource, d.maxConnections, d.maxConnectionsPerIdentity, d.maxConnectionsPerServer], [512, 32, undefined, undefined, undefined]);
    assert.equal(read('connectRate = "off"').connectRate, null);
    const c = read('connectRate = "5/min burst 2"', 'maxConnections = 5', 'maxPendingHandshakes = 7', 'maxPendingPerSource = 3', 'maxConnectionsPerIdentity = 2', 'maxConnectionsPerServer = 9');
    assert.deepEqual([c.connectRate, c.maxConnections, c.maxPendingHandshakes, c.maxPendingPerSource, c.maxConnectionsPerIdentity, c.maxConnectionsPerServer], [{ count: 5, per: 'min', burst: 2 }, 5, 7, 3, 2, 9]);

    let err: unknown;
    try {
      read('listen = "127.0.0.1:1"', 'connectRate = "20/sec"', 'maxPendingPerSource = 0', 'connectRate = "off"', 'maxConnections = "100"');
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof ConfigError);
    const lines = err.message.split('\n');
    assert.match(lines[0] ?? '', /mxproxy-limits-test\.config:3: connectRate: expected "<n>\/s burst <m>", "<n>\/min burst <m>" or "off", got "20\/sec" \(in: connectRate = "20\/sec"\)/);
    assert.match(lines[1] ?? '', /:4: maxPendingPerSource must be between 1 and 1000000/);
    assert.match(lines[2] ?? '', /:5: connectRate may be given only once \(first given at line 3\)/);
    assert.match(lines[3] ?? '', /:6: number expected: write maxConnections without quotes/);
  });

  test('describeConfig prints the limits and reads back the same', () => {
    const file = '/tmp/mxproxy-limits-test.config';
    const c = readProxyConfig('[proxy]\nconnectRate = "3/min burst 9"\nmaxConnectionsPerIdentity = 4\n', file, { checkFiles: false });
    const text = describeConfig(c);
    assert.match(text, /^connectRate = "3\/min burst 9"$/m);
    assert.match(text, /^maxPendingPerSource = 32 {2}# default$/m);
    assert.match(text, /^maxConnectionsPerIdentity = 4$/m);
    assert.match(text, /^# maxConnectionsPerServer: not set \(no limit\)$/m);
    assert.match(text, /^# maxConnections: not set: derived from the open-files limit, floor\(\(open files \d+.* - 64\) \/ 2\) = \d+$/m);
    const again = readProxyConfig(text, file, { checkFiles: false });
    assert.deepEqual([again.connectRate, again.maxConnectionsPerIdentity, again.maxConnections], [c.connectRate, 4, undefined]);
    const off = describeConfig(readProxyConfig('[proxy]\nconnectRate = "off"\n', file, { checkFiles: false }));
    assert.match(off, /^connectRate = "off"$/m);
    assert.match(describeConfig(readProxyConfig('[proxy]\n', file, { checkFiles: false })), /^connectRate = "500\/s burst 1000" {2}# default$/m);
  });
});

describe('open-files limit', () => {
  test('read from /proc/self/limits text: the soft limit', () => {
    const text = 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            20000                1048576              files\n';
    assert.equal(openFilesLimit(text), 20000);
    assert.equal(openFilesLimit('Max open files  unlimited unlimited files\n'), Number.MAX_SAFE_INTEGER);
    assert.equal(openFilesLimit('nothing here\n'), undefined);
  });

  test('maxConnections default: floor((limit - 64) / 2), at least 1', () => {
    assert.equal(derivedMaxConnections(20000), 9968);
    assert.equal(derivedMaxConnections(1024), 480);
    assert.equal(derivedMaxConnections(10), 1);
    assert.equal(derivedMaxConnections(Number.MAX_SAFE_INTEGER), 1_000_000);
  });

  test('this process: what /proc says, as Node raised it (Linux)', { skip: process.platform !== 'linux' }, () => {
    const limit = openFilesLimit();
    assert.ok(limit !== undefined && limit > 64);
    const config = readProxyConfig('[proxy]\n', '/tmp/x.config', { checkFiles: false });
    assert.equal(resolveLimits(config).maxConnections, derivedMaxConnections(limit));
    assert.equal(resolveLimits({ ...config, maxConnections: 7 }).maxConnections, 7);
  });
});

describe('source addresses', () => {
  test('IPv4-mapped IPv6 is its IPv4 address; IPv6 canonical', () => {
    assert.equal(sourceAddress('::ffff:127.0.0.2'), '127.0.0.2');
    assert.equal(sourceAddress('::FFFF:7f00:2'), '127.0.0.2');
    assert.equal(sourceAddress('0:0:0:0:0:ffff:127.0.0.2'), '127.0.0.2');
    assert.equal(sourceAddress('127.0.0.2'), '127.0.0.2');
    assert.equal(sourceAddress('0:0::1'), '::1');
    assert.equal(sourceAddress('FD00:0::5'), 'fd00::5');
  });

  test('property: every IPv4 address and its mapped forms are one source', () => {
    fc.assert(
      fc.property(fc.ipV4(), (ip) => {
        const [a, b, c, d] = ip.split('.').map(Number) as [number, number, number, number];
        const hex = `::ffff:${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
        return sourceAddress(ip) === ip && sourceAddress(`::ffff:${ip}`) === ip && sourceAddress(hex) === ip;
      }),
    );
  });
});

const limitsOf = (over: Partial<ProxyLimits> = {}): ProxyLimits => ({
  maxConnections: 1000,
  maxPendingHandshakes: 1000,
  maxPendingPerSource: 1000,
  connectRate: null,
  maxConnectionsPerIdentity: undefined,
  maxConnectionsPerServer: undefined,
  ...over,
});

const admitted = (a: Admission | string): Admission => {
  assert.ok(typeof a !== 'string', `admitted, not refused: ${String(a)}`);
  return a;
};

describe('accept gate', () => {
  test('each limit refuses with its reason; release and passed free their counts, once', () => {
    const clock = new FakeClock();
    let l = limitsOf({ maxConnections: 3, maxPendingHandshakes: 2, maxPendingPerSource: 1 });
    const gate = new AcceptGate(() => l, clock);
    const a = admitted(gate.admit('10.0.0.1'));
    assert.equal(gate.admit('10.0.0.1'), 'max-pending-per-source');
    const b = admitted(gate.admit('10.0.0.2'));
    assert.equal(gate.admit('10.0.0.3'), 'max-pending');
    a.passed();
    a.passed();
    assert.deepEqual(gate.stats(), { open: 2, pending: 1, sources: 2 });
    admitted(gate.admit('10.0.0.3'));
    assert.equal(gate.admit('10.0.0.4'), 'max-connections');
    b.release();
    b.release();
    assert.deepEqual({ ...gate.stats(), sources: 0 }, { open: 2, pending: 1, sources: 0 });
    // The accessor is read at every decision: a new limits object applies at once.
    l = { ...l, maxConnections: 2 };
    assert.equal(gate.admit('10.0.0.5'), 'max-connections');
  });

  test('connectRate per source; another source has its own bucket; a refused socket takes no token', () => {
    const clock = new FakeClock();
    const gate = new AcceptGate(() => limitsOf({ connectRate: rate('5/s burst 5'), maxPendingPerSource: 100 }), clock);
    for (let i = 0; i < 5; i++) admitted(gate.admit('10.0.0.1')).release();
    assert.equal(gate.admit('10.0.0.1'), 'connect-rate');
    admitted(gate.admit('10.0.0.2'));
    clock.advance(200);
    admitted(gate.admit('10.0.0.1'));
    assert.equal(gate.admit('10.0.0.1'), 'connect-rate');
  });

  test('the per-source table stays within its cap under many sources, and keeps sources with pending sockets', () => {
    const clock = new FakeClock();
    const cap = 100;
    const gate = new AcceptGate(() => limitsOf({ connectRate: rate('1/min burst 1'), maxPendingHandshakes: 50, maxPendingPerSource: 1 }), clock, cap);
    const held: Admission[] = [];
    for (let i = 0; i < 40; i++) held.push(admitted(gate.admit(`10.1.0.${i}`)));
    for (let i = 0; i < 20_000; i++) {
      const a = gate.admit(`10.${2 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`);
      if (typeof a !== 'string') a.release();
      assert.ok(gate.stats().sources <= cap);
    }
    assert.equal(gate.stats().sources, cap);
    // The 40 still pending were never evicted: each still holds its one pending slot.
    for (let i = 0; i < 40; i++) assert.equal(gate.admit(`10.1.0.${i}`), 'max-pending-per-source');
    for (const a of held) a.release();
    assert.equal(gate.stats().pending, 0);
  });

  test('a table full of sources with pending sockets refuses a new source (max-sources)', () => {
    const clock = new FakeClock();
    const gate = new AcceptGate(() => limitsOf(), clock, 3);
    for (const s of ['a', 'b', 'c']) admitted(gate.admit(s));
    assert.equal(gate.admit('d'), 'max-sources');
  });

  test('idle, refilled entries are forgotten one per accept', () => {
    const clock = new FakeClock();
    const gate = new AcceptGate(() => limitsOf({ connectRate: rate('10/s burst 10') }), clock);
    for (let i = 0; i < 10; i++) admitted(gate.admit(`10.0.0.${i}`)).release();
    assert.equal(gate.stats().sources, 10);
    clock.advance(1000);
    for (let i = 0; i < 10; i++) admitted(gate.admit('10.9.9.9')).release();
    assert.equal(gate.stats().sources, 1, 'the ten idle sources were swept by the next accepts');
  });
});

describe('pair limits', () => {
  test('per identity and per server, released when the pair finishes', () => {
    const l = limitsOf({ maxConnectionsPerIdentity: 2, maxConnectionsPerServer: 3 });
    const p = new PairLimits(() => l);
    assert.equal(p.admit('1', 'hmi-1', 'scada'), undefined);
    assert.equal(p.admit('2', 'hmi-1', 'scada'), undefined);
    const over = p.admit('3', 'hmi-1', 'scada');
    assert.equal(over?.code, 'ERR_OVERLOADED');
    assert.equal(over?.reason, 'max-connections-per-identity');
    assert.doesNotMatch(over?.message ?? '', /hmi-1/, 'the client-chosen identity is not echoed');
    assert.equal(p.admit('4', 'hmi-2', 'scada'), undefined);
    assert.equal(p.admit('5', 'hmi-3', 'scada')?.reason, 'max-connections-per-server');
    assert.equal(p.admit('6', 'hmi-3', 'historian'), undefined);
    p.release('1');
    p.release('1');
    p.release('never');
    assert.equal(p.admit('7', 'hmi-1', 'scada'), undefined);
    for (const id of ['2', '4', '6', '7']) p.release(id);
    assert.deepEqual(p.stats(), { pairs: 0, identities: 0, servers: 0 });
  });

  test('off by default', () => {
    const config = readProxyConfig('[proxy]\n', '/tmp/x.config', { checkFiles: false });
    const p = new PairLimits(() => resolveLimits(config, () => 100));
    for (let i = 0; i < 500; i++) assert.equal(p.admit(String(i), 'one', 'same'), undefined);
  });
});

describe('refusal log', () => {
  function capture() {
    const lines: Record<string, unknown>[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _e, cb) {
        for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    });
    return { lines, logger: createLogger({ format: 'json', level: 'debug', stream }) };
  }
  const tick = () => new Promise((r) => setImmediate(r));

  test('the first refusal at once, then one summary per interval per source and reason', async () => {
    const clock = new FakeClock();
    const { lines, logger } = capture();
    const log = new RefusalLog(logger, clock, 10_000);
    for (let i = 0; i < 1234; i++) log.refused('127.0.0.2', 'max-pending-per-source');
    log.refused('127.0.0.3', 'connect-rate');
    await tick();
    assert.deepEqual(lines.map((l) => l.message), [
      'refused a connection from 127.0.0.2 (max-pending-per-source)',
      'refused a connection from 127.0.0.3 (connect-rate)',
    ]);
    assert.ok(lines.every((l) => l.level === 'warn'));
    clock.advance(10_000);
    await tick();
    assert.deepEqual(lines.slice(2).map((l) => l.message), ['refused 1233 connections from 127.0.0.2 (max-pending-per-source) in the last 10 s']);
    clock.advance(10_000); // a quiet interval: forgotten
    log.refused('127.0.0.2', 'max-pending-per-source');
    await tick();
    assert.equal(lines.at(-1)?.message, 'refused a connection from 127.0.0.2 (max-pending-per-source)');
    assert.equal(log.totals()['max-pending-per-source'], 1235);
    assert.equal(log.totals()['connect-rate'], 1);
    assert.equal(lines.length, 4);
    log.close();
  });

  test('sources beyond its table are summed up as "other sources"', async () => {
    const clock = new FakeClock();
    const { lines, logger } = capture();
    const log = new RefusalLog(logger, clock, 10_000, 5);
    for (let i = 0; i < 100; i++) log.refused(`10.0.0.${i}`, 'max-pending');
    clock.advance(10_000);
    await tick();
    assert.equal(lines.length, 6);
    assert.equal(lines.at(-1)?.message, 'refused 95 connections from other sources (max-pending) in the last 10 s');
    log.close();
  });
});
