/**
 * The forwarder's dial path to the proxy, on real loopback sockets and real mutual TLS: the client's TLS context
 * is made once per certificate in force, not once per connection (building it from PEM cost the forwarder about
 * 1 ms per connection, more than the resumed handshake it was for); a reload with another certificate makes a
 * new one, and the next pairs present that certificate. connect() takes such a context too.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { Writable } from 'node:stream';
import type { ProxyEvent } from '../../machines/proxy.js';
import { clientSecureContext, connect, TlsSessionCache } from '../../src/client/connect.js';
import { readClientConfig } from '../../src/config/index.js';
import { startForwarder, type Forwarder } from '../../src/forward/forwarder.js';
import { createLogger } from '../../src/log.js';
import { loadTlsMaterial } from '../../src/net/tlsMaterial.js';
import { digestUntilEnd, echoHandler, startBackend, startHarness, type Backend, type Harness } from '../helpers/harness.js';
import { createTestPki, type CertFiles, type TestPki } from '../helpers/pki.js';

type TlsOk = Extract<ProxyEvent, { type: 'TLS_OK' }>;

/**
 * Counts the TLS contexts made with a certificate of `certs` (PEM text), wherever in this process: the
 * forwarder's own, and any tls.connect() builds when it is not given one. The proxy's (server certificate) are
 * not counted.
 */
function countContexts(certs: () => string[]): { count: () => number; restore: () => void } {
  const original = tls.createSecureContext;
  let n = 0;
  tls.createSecureContext = (options?: tls.SecureContextOptions) => {
    const cert = options?.cert;
    if (cert !== undefined && certs().includes(Buffer.isBuffer(cert) ? cert.toString() : String(cert))) n++;
    return original(options);
  };
  return { count: () => n, restore: () => void (tls.createSecureContext = original) };
}

describe('the forwarder dials the proxy with one TLS context per certificate', () => {
  let pki: TestPki;
  let echo: Backend;
  let h: Harness;
  let second: CertFiles;
  const pem = (f: CertFiles) => fs.readFileSync(f.cert, 'utf8');

  before(async () => {
    pki = await createTestPki();
    echo = await startBackend(echoHandler);
    second = await pki.issueClient('second-client');
    h = await startHarness(pki, { servers: { echo: [echo.address] }, allow: ['test-client echo', 'second-client echo'] });
  });
  after(async () => {
    await h?.stop();
    await echo?.close();
    pki?.cleanup();
  });

  const configFor = (cert: CertFiles) =>
    readClientConfig(
      ['[client]', `sslCertificate = "${cert.cert} ${cert.key} ${pki.caFile}"`, `mxProxy = "127.0.0.1:${h.port}"`, 'forward = "127.0.0.1:0 echo"'].join('\n'),
      `${pki.dir}/dial.config`,
      { requireForwards: true },
    );

  async function through(fwd: Forwarder, text: string): Promise<void> {
    const s = net.connect({ host: '127.0.0.1', port: fwd.addresses[0]!.address.port, allowHalfOpen: true });
    const got = digestUntilEnd(s);
    s.end(text);
    assert.equal((await got).bytes, text.length);
  }

  const tlsOutcomes = () => h.events.filter((e): e is TlsOk => e.type === 'TLS_OK');

  it('5 pairs build one context; after a reload with another certificate one more, and the next pairs present it', async () => {
    // loadTlsMaterial checks the files by building a context: load both before counting.
    const config = configFor(pki.client);
    const next = configFor(second);
    const firstTls = loadTlsMaterial(config.tls!);
    const nextTls = loadTlsMaterial(next.tls!);
    const contexts = countContexts(() => [pem(pki.client), pem(second)]);
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    });
    const fwd = await startForwarder({ config, tls: firstTls, logger: createLogger({ format: 'json', level: 'debug', stream: sink }) });
    try {
      const before = tlsOutcomes().length;
      for (let i = 0; i < 5; i++) await through(fwd, `pair ${i}`);
      assert.equal(contexts.count(), 1, 'one context for the five pairs');
      const first = tlsOutcomes().slice(before);
      assert.deepEqual(
        first.map((e) => [e.identity, e.resumed]),
        [
          ['test-client', false],
          ['test-client', true],
          ['test-client', true],
          ['test-client', true],
          ['test-client', true],
        ],
        'the first pair a full handshake, the others resumed, all as test-client',
      );

      assert.deepEqual(await fwd.reload({ config: next, tls: nextTls }), { ok: true, added: 0, removed: 0, changed: 0 });
      const mark = tlsOutcomes().length;
      for (let i = 0; i < 3; i++) await through(fwd, `after reload ${i}`);
      assert.equal(contexts.count(), 2, 'one more context, for the new certificate');
      assert.deepEqual(
        tlsOutcomes()
          .slice(mark)
          .map((e) => [e.identity, e.resumed]),
        [
          // never a session of the old certificate: a full handshake with the new one, then resumed
          ['second-client', false],
          ['second-client', true],
          ['second-client', true],
        ],
      );
      // At debug level the pair's lines are still written (they are skipped only when no transport takes them).
      assert.equal(lines.filter((l) => l.message === 'linked').length, 8);
      assert.equal(lines.filter((l) => l.message === 'unlinked').length >= 7, true);
    } finally {
      contexts.restore();
      await fwd.stop();
    }
  });

  it('connect() with a context from clientSecureContext(): none built per connection, and it resumes as before', async () => {
    const material = { cert: fs.readFileSync(pki.client.cert), key: fs.readFileSync(pki.client.key), ca: fs.readFileSync(pki.caFile) };
    const secureContext = clientSecureContext(material);
    const contexts = countContexts(() => [pem(pki.client)]);
    const cache = new TlsSessionCache();
    try {
      const resumed: boolean[] = [];
      for (let i = 0; i < 3; i++) {
        const s = await connect({ proxy: `127.0.0.1:${h.port}`, target: 'echo', tls: { ...material, secureContext }, sessionCache: cache });
        resumed.push(s.isSessionReused());
        const got = digestUntilEnd(s);
        s.end('ping');
        assert.equal((await got).bytes, 4);
      }
      assert.equal(contexts.count(), 0, 'no context built from the PEM text');
      assert.deepEqual(resumed, [false, true, true]);
      // Without it, as before: one per connection.
      const s = await connect({ proxy: `127.0.0.1:${h.port}`, target: 'echo', tls: material });
      s.destroy();
      assert.equal(contexts.count(), 1);
    } finally {
      contexts.restore();
    }
  });

  it('a context that does not trust the proxy\'s CA is refused as the PEM text would be', async () => {
    const material = { cert: fs.readFileSync(pki.client.cert), key: fs.readFileSync(pki.client.key), ca: fs.readFileSync(pki.otherCaFile) };
    const verdict = async (tlsOptions: Parameters<typeof connect>[0]['tls']) => {
      const err = await connect({ proxy: `127.0.0.1:${h.port}`, target: 'echo', tls: tlsOptions }).then(
        (s) => (s.destroy(), assert.fail('connected')),
        (e: Error & { causeCode?: string }) => e,
      );
      return [err.name, err.causeCode];
    };
    const withPem = await verdict(material);
    assert.equal(withPem[0], 'ProxyConnectError');
    assert.deepEqual(await verdict({ ...material, secureContext: clientSecureContext(material) }), withPem);
  });
});
