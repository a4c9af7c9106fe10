/**
 * Churn: many linked pairs over real mTLS, each opened, carrying some bytes, then ended the way a plant network
 * ends them — closed, reset, half-closed by a client that then vanishes (the backend never closes its side), or
 * killed by the backend mid-stream. Afterwards nothing may be left: no actor, no socket, no timer, no file
 * descriptor.
 *
 * MXPROXY_CHURN sets the number of pairs (default 10000), MXPROXY_CHURN_SEED the seed of the random choices
 * (printed on failure, so a failing run can be repeated).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { ALPN_PROTOCOL, FrameReader, decodeBody, encodeRequest, parseReply } from '../../src/protocol/frame.js';
import { startBackend, startHarness, waitFor, type Backend, type Harness } from '../helpers/harness.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';

const COUNT = Number(process.env.MXPROXY_CHURN ?? 10_000);
const SEED = Number(process.env.MXPROXY_CHURN_SEED ?? Math.floor(Math.random() * 2 ** 31));
const CONCURRENCY = 64;
const HALF_CLOSE_MS = 200;
/** One pair, start to finish; far above what any of them needs. */
const PAIR_DEADLINE_MS = 15_000;

/** mulberry32: small, fast, seedable. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** How the pair ends. The first byte the backend receives tells it its part. */
const ENDINGS = ['close', 'destroy', 'reset', 'vanish', 'backend-close', 'backend-reset'] as const;
type Ending = (typeof ENDINGS)[number];
const MODE_BYTE: Record<Ending, string> = {
  close: 'E',
  destroy: 'E',
  reset: 'E',
  vanish: 'H',
  'backend-close': 'K',
  'backend-reset': 'R',
};

/**
 * E: echo, and close when the client does. H: echo, but ignore the FIN passed on and keep talking (a device that
 * never closes; its next write after the proxy gave up is answered with a reset). K / R: echo half of the first
 * chunk, then close (K) or reset (R) the socket.
 */
function backendHandler(s: net.Socket): void {
  s.allowHalfOpen = true;
  s.setNoDelay(true);
  s.once('data', (first: Buffer) => {
    const mode = String.fromCharCode(first[0] ?? 0);
    if (mode === 'K' || mode === 'R') {
      // resetAndDestroy() straight from the write callback was seen to send a FIN, not an RST (Node 20): one
      // timer turn later.
      s.write(first.subarray(0, Math.ceil(first.length / 2)), () =>
        mode === 'R' ? setTimeout(() => s.resetAndDestroy(), 1) : s.destroy(),
      );
      return;
    }
    s.write(first);
    if (mode === 'H') {
      s.on('data', (d: Buffer) => s.write(d));
      const tick = setInterval(() => s.write('.'), 50);
      s.once('close', () => clearInterval(tick));
      return;
    }
    s.pipe(s);
  });
}

function fdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

function resources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('churn', { skip: !fs.existsSync('/proc/self/fd') && 'needs /proc/self/fd (Linux)' }, () => {
  let pki: TestPki;
  let backend: Backend;
  let h: Harness;
  let context: tls.SecureContext;
  /** The last TLS session the proxy gave us: resumed handshakes skip the certificate exchange and signatures. */
  let session: Buffer | undefined;

  before(async () => {
    pki = await createTestPki();
    backend = await startBackend(backendHandler);
    h = await startHarness(pki, {
      servers: { churn: [backend.address] },
      allow: ['test-client churn'],
      // The idle timer is armed and disarmed on every pair, and never fires: no pair is quiet that long. One
      // source opens all the pairs, so the per-source flood limits are off.
      extra: `halfCloseTimeout = ${HALF_CLOSE_MS}\nidleTimeout = 30000\nconnectRate = "off"\nmaxPendingPerSource = 1000`,
    });
    context = tls.createSecureContext({
      ca: fs.readFileSync(pki.caFile),
      cert: fs.readFileSync(pki.client.cert),
      key: fs.readFileSync(pki.client.key),
    });
  });
  after(async () => {
    await h?.stop();
    await backend?.close();
    pki?.cleanup();
  });

  /** Runs one pair to its end; resolves once the client socket has closed. */
  function onePair(ending: Ending, payload: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const raw = net.connect({ host: '127.0.0.1', port: h.port, noDelay: true });
      raw.on('error', () => {});
      const s = tls.connect({ socket: raw, servername: 'localhost', secureContext: context, ALPNProtocols: [ALPN_PROTOCOL], session });
      s.on('session', (b: Buffer) => (session = b));
      s.on('error', () => {});
      const deadline = setTimeout(() => {
        s.destroy();
        reject(new Error(`pair (${ending}) not done within ${PAIR_DEADLINE_MS} ms`));
      }, PAIR_DEADLINE_MS);
      s.once('close', () => {
        clearTimeout(deadline);
        resolve();
      });
      const body = Buffer.alloc(payload, 0x61);
      body[0] = MODE_BYTE[ending].charCodeAt(0);
      // The request frame and the first bytes in one write: they reach the backend as early bytes.
      s.once('secureConnect', () => s.write(Buffer.concat([encodeRequest('churn'), body])));
      const reader = new FrameReader(1 << 16);
      let replied = false;
      let echoed = 0;
      const expected = ending.startsWith('backend-') ? Math.ceil(payload / 2) : payload;
      s.on('data', (d: Buffer) => {
        let rest = d;
        if (!replied) {
          const r = reader.push(d);
          if (r.kind === 'incomplete') return;
          if (r.kind === 'error' || !parseReply(decodeBody(r.body)).ok) {
            clearTimeout(deadline);
            s.destroy();
            reject(new Error(`pair (${ending}) declined`));
            return;
          }
          replied = true;
          rest = Buffer.from(r.rest);
        }
        const before = echoed;
        echoed += rest.length;
        // Some bytes went both ways: now end it.
        if (before < expected && echoed >= expected) finish();
      });
      const finish = () => {
        switch (ending) {
          case 'close':
            s.end();
            break;
          case 'destroy':
            s.destroy();
            break;
          case 'reset':
            raw.resetAndDestroy();
            s.destroy();
            break;
          case 'vanish':
            s.end(); // and never close: only the proxy's halfCloseTimeout ends this pair
            break;
          case 'backend-close':
          case 'backend-reset':
            break; // the backend ends it
        }
      };
    });
  }

  it(`${COUNT} churned pairs (${CONCURRENCY} at a time) leave no actor, socket, timer or file descriptor`, { timeout: 240_000 }, async (t) => {
    t.diagnostic(`seed ${SEED} (MXPROXY_CHURN_SEED=${SEED} repeats this run)`);
    const random = prng(SEED);
    const plan = Array.from({ length: COUNT }, () => ({
      ending: ENDINGS[Math.floor(random() * ENDINGS.length)] ?? 'close',
      payload: 1 + Math.floor(random() * 4096),
    }));

    // Warm up (TLS contexts, lazily opened descriptors), then take the baseline.
    for (const e of ENDINGS) await onePair(e, 100);
    await waitFor(() => h.proxy.stats().active === 0 && backend.open.size === 0, 5000, 'warm-up pairs finished');
    await sleep(50);
    const fdsBefore = fdCount();
    const resBefore = resources();

    const t0 = Date.now();
    const cpu0 = process.cpuUsage();
    let next = 0;
    let peak = 0;
    const durations: Partial<Record<Ending, number[]>> = {};
    try {
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < plan.length) {
            const p = plan[next++];
            if (!p) break;
            const t1 = Date.now();
            await onePair(p.ending, p.payload);
            const d = (durations[p.ending] ??= []);
            d.push(Date.now() - t1);
            peak = Math.max(peak, h.proxy.stats().active);
          }
        }),
      );
      await waitFor(() => h.proxy.stats().active === 0, 10_000, 'every pair finished');
      await waitFor(() => backend.open.size === 0, 10_000, 'every backend socket closed');
    } catch (err) {
      throw new Error(`${(err as Error).message} (seed ${SEED}; MXPROXY_CHURN_SEED=${SEED} repeats this run)`);
    }
    const ms = Date.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const cpuMs = Math.round((cpu.user + cpu.system) / 1000);
    await sleep(50);

    const reasons: Record<string, number> = {};
    for (const l of h.logs) if (l.message === 'unlink') reasons[String(l.reason)] = (reasons[String(l.reason)] ?? 0) + 1;
    const resumed = h.events.filter((e) => e.type === 'TLS_OK' && e.resumed).length;
    t.diagnostic(`${COUNT} pairs in ${ms} ms (${Math.round((COUNT * 1000) / ms)}/s), peak ${peak} active (sampled), ${resumed} TLS resumptions, CPU ${cpuMs} ms (${(cpuMs / COUNT).toFixed(2)} ms a pair, both ends and the proxy)`);
    t.diagnostic(`reasons ${JSON.stringify(reasons)}`);
    for (const [e, d] of Object.entries(durations)) {
      d.sort((a, b) => a - b);
      t.diagnostic(`${e}: ${d.length} pairs, median ${d[d.length >> 1]} ms, max ${d[d.length - 1]} ms`);
    }

    const fdsAfter = fdCount();
    const resAfter = resources();
    t.diagnostic(`fds ${fdsBefore} → ${fdsAfter}; resources ${JSON.stringify(resBefore)} → ${JSON.stringify(resAfter)}`);
    const msg = `seed ${SEED}`;
    assert.equal(h.proxy.stats().active, 0, msg);
    assert.equal(h.proxy.registry.size, 0, msg);
    assert.equal(backend.open.size, 0, msg);
    assert.ok(fdsAfter <= fdsBefore + 4, `file descriptors ${fdsBefore} → ${fdsAfter} (${msg})`);
    for (const kind of ['Timeout', 'TCPSocketWrap', 'TLSWrap']) {
      assert.ok((resAfter[kind] ?? 0) <= (resBefore[kind] ?? 0) + 2, `${kind}: ${resBefore[kind] ?? 0} → ${resAfter[kind] ?? 0} (${msg})`);
    }
    // The half-closed pairs were ended by their deadline; no pair sat idle.
    assert.ok((reasons['timeout:half-close'] ?? 0) > 0, msg);
    assert.equal(reasons['timeout:idle'], undefined, msg);
    assert.ok(Object.values(reasons).reduce((a, b) => a + b, 0) >= COUNT, msg);
  });
});
