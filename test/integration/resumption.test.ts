/**
 * TLS session resumption end to end, over loopback mutual TLS: connect() and the forwarder resume with their
 * session cache; a resumed session keeps the identity of its certificate, is authorized by the rules in force
 * and is refused when its certificate has expired or been revoked since; a ticket key rotation ends resumption
 * for the tickets issued before it. Two proxies started with the same ticket key stand in for "the same proxy
 * after a change": they resume each other's sessions.
 */
import assert from 'node:assert/strict';
import { X509Certificate, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Writable } from 'node:stream';
import type { ProxyEvent } from '../../machines/proxy.js';
import { issueCertificate } from '../../src/certs/index.js';
import { connect, TlsSessionCache, type ConnectOptions } from '../../src/client/connect.js';
import { readClientConfig } from '../../src/config/index.js';
import { ProxyConnectError, ProxyDeclinedError } from '../../src/errors.js';
import { readEventLogFile } from '../../src/eventlog/index.js';
import { asLogRecord, type LogRecord } from '../../src/eventlog/records.js';
import { startForwarder } from '../../src/forward/forwarder.js';
import { createLogger } from '../../src/log.js';
import { loadTlsMaterial } from '../../src/net/tlsMaterial.js';
import { FakeClock } from '../helpers/fakeClock.js';
import { digestUntilEnd, echoHandler, startBackend, startHarness, waitFor, type Backend, type Harness } from '../helpers/harness.js';
import { createTestPki, type CertFiles, type TestPki } from '../helpers/pki.js';

type TlsOk = Extract<ProxyEvent, { type: 'TLS_OK' }>;
type TlsFailed = Extract<ProxyEvent, { type: 'TLS_FAILED' }>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The TLS outcome of the pair that ACCEPTED event `n` (0-based) of a harness began. */
function outcomes(h: Harness): (TlsOk | TlsFailed)[] {
  return h.events.filter((e): e is TlsOk | TlsFailed => e.type === 'TLS_OK' || e.type === 'TLS_FAILED');
}
const lastOutcome = (h: Harness): TlsOk | TlsFailed | undefined => outcomes(h).at(-1);

describe('TLS session resumption', () => {
  let pki: TestPki;
  let echo: Backend;
  let dir: string;

  before(async () => {
    pki = await createTestPki();
    echo = await startBackend(echoHandler);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxproxy-resume-'));
  });
  after(async () => {
    await echo?.close();
    pki?.cleanup();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const tlsOf = (files: CertFiles): ConnectOptions['tls'] => ({
    cert: fs.readFileSync(files.cert),
    key: fs.readFileSync(files.key),
    ca: fs.readFileSync(pki.caFile),
  });

  /** connect() to `target`, a short echo, close. */
  async function use(h: Harness, target: string, tls: ConnectOptions['tls'], resume: Pick<ConnectOptions, 'sessionCache' | 'session'>): Promise<void> {
    const s = await connect({ proxy: `127.0.0.1:${h.port}`, target, tls, ...resume });
    const got = digestUntilEnd(s);
    s.end('ping');
    assert.equal((await got).bytes, 4);
  }

  /** A session for `tls` at proxy `h`, from a cache that has connected there. */
  const sessionAt = (cache: TlsSessionCache, h: Harness, tls: ConnectOptions['tls']): Buffer => {
    const s = cache.get(TlsSessionCache.keyOf('127.0.0.1', h.port, undefined, tls));
    assert.ok(s, 'the cache holds a session for that proxy');
    return s;
  };

  it('a second connect() with a cache resumes: TLS_OK resumed, the same identities; the event log records it', async () => {
    const log = path.join(dir, 'events.mxlog');
    const client = await pki.issueClient('resume-client', { dns: ['resume-client.plant.local'] });
    const h = await startHarness(pki, { servers: { echo: [echo.address] }, allow: ['resume-client echo'], extra: `eventLog = "${log}"` });
    try {
      const cache = new TlsSessionCache();
      const tls = tlsOf(client);
      await use(h, 'echo', tls, { sessionCache: cache });
      assert.ok(cache.size >= 1, 'the proxy sent a ticket, the cache kept it');
      await use(h, 'echo', tls, { sessionCache: cache });
      const [first, second] = outcomes(h);
      assert.ok(first?.type === 'TLS_OK' && second?.type === 'TLS_OK');
      assert.equal(first.resumed, false);
      assert.equal(second.resumed, true);
      // The identity comes from the certificate stored in the session: the same names, in the same order.
      assert.equal(second.identity, 'resume-client');
      assert.deepEqual(second.identities, first.identities);
      assert.deepEqual(second.identities, ['cn:resume-client', 'dns:resume-client.plant.local']);
      // Without the cache, a full handshake again.
      await use(h, 'echo', tls, {});
      assert.equal((lastOutcome(h) as TlsOk).resumed, false);
    } finally {
      await h.stop();
    }
    const c = await readEventLogFile(log);
    const logged = c.records
      .map((r) => asLogRecord(r) as LogRecord)
      .flatMap((r) => (r.k === 'e' && r.e.type === 'TLS_OK' ? [r.e] : []));
    assert.deepEqual(
      logged.map((e) => e.type === 'TLS_OK' && e.resumed),
      [false, true, false],
    );
  });

  it('a resumed session is authorized by the rules in force: its rule gone, ERR_NOT_ALLOWED', async () => {
    const ticketKeys = randomBytes(48);
    const servers = { echo: [echo.address], other: [echo.address] };
    const before = await startHarness(pki, { servers, allow: ['test-client echo'], ticketKeys });
    // The "same" proxy after the rule for echo was taken out: the same ticket key, other rules.
    const afterChange = await startHarness(pki, { servers, allow: ['test-client other'], ticketKeys });
    try {
      const cache = new TlsSessionCache();
      const tls = tlsOf(pki.client);
      await use(before, 'echo', tls, { sessionCache: cache });
      const session = sessionAt(cache, before, tls);
      await assert.rejects(connect({ proxy: `127.0.0.1:${afterChange.port}`, target: 'echo', tls, session }), (e: unknown) => {
        assert.ok(e instanceof ProxyDeclinedError, String(e));
        assert.equal(e.code, 'ERR_NOT_ALLOWED');
        return true;
      });
      const ok = lastOutcome(afterChange);
      assert.ok(ok?.type === 'TLS_OK');
      assert.equal(ok.resumed, true, 'the decline came after a resumed handshake');
      assert.equal(ok.identity, 'test-client');
      // What the rules in force do allow, the same session reaches.
      await use(afterChange, 'other', tls, { session });
      assert.equal((lastOutcome(afterChange) as TlsOk).resumed, true);
    } finally {
      await before.stop();
      await afterChange.stop();
    }
  });

  it('a certificate that expired since its session began cannot resume (ERR_RESUMED_CERT_EXPIRED), nor do a full handshake', async () => {
    const h = await startHarness(pki, { servers: { echo: [echo.address] }, allow: ['short-lived echo'] });
    try {
      const issued = await issueCertificate(pki.ca, { kind: 'client', commonName: 'short-lived', notAfter: new Date(Date.now() + 2000) });
      const tls: ConnectOptions['tls'] = { cert: issued.certPem, key: issued.keyPem, ca: fs.readFileSync(pki.caFile) };
      const notAfter = Date.parse(new X509Certificate(issued.certPem).validTo);
      const cache = new TlsSessionCache();
      await use(h, 'echo', tls, { sessionCache: cache });
      assert.equal((lastOutcome(h) as TlsOk).resumed, false);
      await sleep(Math.max(0, notAfter - Date.now()) + 1100); // X.509 times have whole seconds
      await assert.rejects(connect({ proxy: `127.0.0.1:${h.port}`, target: 'echo', tls, sessionCache: cache }), ProxyConnectError);
      const refused = lastOutcome(h);
      assert.ok(refused?.type === 'TLS_FAILED', JSON.stringify(refused));
      assert.equal(refused.code, 'ERR_RESUMED_CERT_EXPIRED');
      assert.match(refused.message, /expired on/);
      assert.equal(cache.size, 0, 'the refused sessions are forgotten');
      // The next attempt is a full handshake, and OpenSSL's own verdict.
      await assert.rejects(connect({ proxy: `127.0.0.1:${h.port}`, target: 'echo', tls, sessionCache: cache }), ProxyConnectError);
      await waitFor(() => lastOutcome(h)?.type === 'TLS_FAILED' && (lastOutcome(h) as TlsFailed).code === 'CERT_HAS_EXPIRED', 3000, 'CERT_HAS_EXPIRED');
      assert.ok(
        h.logs.some((l) => l.reason === 'tls-failed:ERR_RESUMED_CERT_EXPIRED'),
        'the pair ends tls-failed:ERR_RESUMED_CERT_EXPIRED in the log',
      );
    } finally {
      await h.stop();
    }
  });

  it('a revoked certificate cannot resume: a proxy with the CRL refuses the session (ERR_RESUMED_CERT_REVOKED)', async () => {
    const revoked = await pki.issueClient('revoked-resume');
    const crl = await pki.writeCrl('crl-resume', [revoked]);
    const ticketKeys = randomBytes(48);
    const servers = { echo: [echo.address] };
    const allow = ['revoked-resume echo', 'test-client echo'];
    const noCrl = await startHarness(pki, { servers, allow, ticketKeys });
    const withCrl = await startHarness(pki, { servers, allow, ticketKeys, extra: `sslCrl = "${crl}"` });
    try {
      const cache = new TlsSessionCache();
      const bad = tlsOf(revoked);
      await use(noCrl, 'echo', bad, { sessionCache: cache });
      await assert.rejects(connect({ proxy: `127.0.0.1:${withCrl.port}`, target: 'echo', tls: bad, session: sessionAt(cache, noCrl, bad) }), ProxyConnectError);
      const refused = lastOutcome(withCrl);
      assert.ok(refused?.type === 'TLS_FAILED', JSON.stringify(refused));
      assert.equal(refused.code, 'ERR_RESUMED_CERT_REVOKED');
      // A full handshake with it is refused by OpenSSL itself.
      await assert.rejects(connect({ proxy: `127.0.0.1:${withCrl.port}`, target: 'echo', tls: bad }), ProxyConnectError);
      await waitFor(() => (lastOutcome(withCrl) as TlsFailed | undefined)?.code === 'CERT_REVOKED', 3000, 'CERT_REVOKED');
      // A certificate that is not revoked resumes there as before.
      const good = tlsOf(pki.client);
      await use(noCrl, 'echo', good, { sessionCache: cache });
      await use(withCrl, 'echo', good, { session: sessionAt(cache, noCrl, good) });
      const ok = lastOutcome(withCrl);
      assert.ok(ok?.type === 'TLS_OK' && ok.resumed, 'the good client resumed under the CRL');
    } finally {
      await noCrl.stop();
      await withCrl.stop();
    }
  });

  it('a ticket key rotation ends resumption for the tickets issued before it; the client falls back to a full handshake', async () => {
    const h = await startHarness(pki, { servers: { echo: [echo.address] }, allow: ['test-client echo'] });
    try {
      const cache = new TlsSessionCache();
      const tls = tlsOf(pki.client);
      await use(h, 'echo', tls, { sessionCache: cache });
      await use(h, 'echo', tls, { sessionCache: cache });
      assert.equal((lastOutcome(h) as TlsOk).resumed, true);
      h.proxy.rotateTicketKeys();
      await use(h, 'echo', tls, { sessionCache: cache });
      assert.equal((lastOutcome(h) as TlsOk).resumed, false, 'the old ticket no longer resumes');
      await use(h, 'echo', tls, { sessionCache: cache });
      assert.equal((lastOutcome(h) as TlsOk).resumed, true, 'the tickets of the full handshake do');
    } finally {
      await h.stop();
    }
  });

  it('[proxy] sessionTicketRotation: the key is replaced on the clock', async () => {
    const clock = new FakeClock();
    const h = await startHarness(pki, { servers: { echo: [echo.address] }, allow: ['test-client echo'], clock, extra: 'sessionTicketRotation = 60000' });
    try {
      const cache = new TlsSessionCache();
      const tls = tlsOf(pki.client);
      await use(h, 'echo', tls, { sessionCache: cache });
      clock.advance(59_999);
      await use(h, 'echo', tls, { sessionCache: cache });
      assert.equal((lastOutcome(h) as TlsOk).resumed, true, 'before the period is over');
      clock.advance(1);
      await use(h, 'echo', tls, { sessionCache: cache });
      assert.equal((lastOutcome(h) as TlsOk).resumed, false, 'after it');
    } finally {
      await h.stop();
    }
  });

  it('mxproxy forward resumes its TLS session to the proxy for every pair after the first', async () => {
    const h = await startHarness(pki, { servers: { echo: [echo.address] }, allow: ['test-client echo'] });
    const text = [
      '[client]',
      `sslCertificate = "${pki.client.cert} ${pki.client.key} ${pki.caFile}"`,
      `mxProxy = "127.0.0.1:${h.port}"`,
      'forward = "127.0.0.1:0 echo"',
    ].join('\n');
    const config = readClientConfig(text, `${pki.dir}/resume-client.config`, { requireForwards: true });
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    const fwd = await startForwarder({ config, tls: loadTlsMaterial(config.tls!), logger: createLogger({ format: 'json', level: 'debug', stream: sink }) });
    try {
      const port = fwd.addresses[0]!.address.port;
      for (let i = 0; i < 3; i++) {
        const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
        const got = digestUntilEnd(s);
        s.end('through the forwarder');
        assert.equal((await got).bytes, 'through the forwarder'.length);
      }
      assert.deepEqual(
        outcomes(h).map((e) => e.type === 'TLS_OK' && e.resumed),
        [false, true, true],
      );
    } finally {
      await fwd.stop();
      await h.stop();
    }
  });
});
