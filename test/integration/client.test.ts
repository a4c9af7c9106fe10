/** The client library: connect() through a real proxy over loopback mutual TLS. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { connect } from '../../src/client/connect.js';
import { ProxyConnectError, ProxyDeclinedError } from '../../src/errors.js';
import { digestUntilEnd, echoHandler, sha256, startBackend, startHarness, type Backend, type Harness } from '../helpers/harness.js';
import { createTestPki, type CertFiles, type TestPki } from '../helpers/pki.js';

describe('connect()', () => {
  let pki: TestPki;
  let echo: Backend;
  let banner: Backend; // speaks first, like many plant servers
  let h: Harness;

  before(async () => {
    pki = await createTestPki();
    echo = await startBackend(echoHandler);
    banner = await startBackend((s) => s.end('HELLO from the server\n'));
    h = await startHarness(pki, { servers: { echo: [echo.address], banner: [banner.address], other: [echo.address] }, allow: ['test-client echo banner'] });
  });
  after(async () => {
    await h?.stop();
    await echo?.close();
    await banner?.close();
    pki?.cleanup();
  });

  const tlsOf = (files: CertFiles) => ({
    cert: fs.readFileSync(files.cert),
    key: fs.readFileSync(files.key),
    ca: fs.readFileSync(pki.caFile),
    servername: 'localhost',
  });

  it('resolves to a socket linked to the target', async () => {
    const s = await connect({ proxy: `127.0.0.1:${h.port}`, target: 'echo', tls: tlsOf(pki.client) });
    const data = Buffer.from('through the library');
    const got = digestUntilEnd(s);
    s.end(data);
    const r = await got;
    assert.equal(r.sha256, sha256(data));
  });

  it('keeps bytes the server sends at once, even when they arrive with the reply', async () => {
    const s = await connect({ proxy: { host: '127.0.0.1', port: h.port }, target: 'banner', tls: tlsOf(pki.client) });
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    await new Promise((r) => s.once('end', r));
    assert.equal(Buffer.concat(chunks).toString(), 'HELLO from the server\n');
    s.destroy();
  });

  it('rejects with the proxy reply code', async () => {
    for (const [target, code] of [
      ['other', 'ERR_NOT_ALLOWED'],
      ['nosuch', 'ERR_UNKNOWN_TARGET'],
    ] as const) {
      await assert.rejects(connect({ proxy: `127.0.0.1:${h.port}`, target, tls: tlsOf(pki.client) }), (e: unknown) => {
        assert.ok(e instanceof ProxyDeclinedError);
        assert.equal(e.code, code);
        return true;
      });
    }
  });

  it('rejects with a connect error when TLS is refused', async () => {
    await assert.rejects(connect({ proxy: `127.0.0.1:${h.port}`, target: 'echo', tls: tlsOf(pki.expiredClient), timeout: 5000 }), ProxyConnectError);
  });

  it('refuses a malformed proxy address', async () => {
    await assert.rejects(async () => connect({ proxy: 'no-port', target: 'echo', tls: tlsOf(pki.client) }), TypeError);
  });
});
