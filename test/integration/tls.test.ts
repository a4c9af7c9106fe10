/** TLS refusals: only certificates of the project CA, valid now, get in. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { closed, echoHandler, request, startBackend, startHarness, tlsConnect, waitFor, type Backend, type Harness } from '../helpers/harness.js';
import { createTestPki, type CertFiles, type TestPki } from '../helpers/pki.js';
import { encodeRequest } from '../../src/protocol/frame.js';

describe('TLS', () => {
  let pki: TestPki;
  let echo: Backend;
  let h: Harness;

  before(async () => {
    pki = await createTestPki();
    echo = await startBackend(echoHandler);
    h = await startHarness(pki, { servers: { echo: [echo.address] }, allow: ['* echo'] });
  });
  after(async () => {
    await h?.stop();
    await echo?.close();
    pki?.cleanup();
  });

  /** The refused client may see its handshake fail, or (TLS 1.3) complete and then be closed unread. */
  async function refused(cert: CertFiles | null): Promise<void> {
    const before = echo.accepted.length;
    let s;
    try {
      s = await tlsConnect({ port: h.port, pki, cert });
    } catch (err) {
      assert.ok(err instanceof Error);
      return;
    }
    s.on('error', () => {});
    s.write(encodeRequest('echo'));
    let got = 0;
    s.on('data', (d: Buffer) => (got += d.length));
    await closed(s);
    assert.equal(got, 0, 'no reply reaches a refused client');
    assert.equal(echo.accepted.length, before, 'nothing reached the backend');
  }

  function lastTlsFailure(): string {
    const e = h.events.filter((x) => x.type === 'TLS_FAILED').at(-1) as { code: string } | undefined;
    return e?.code ?? '';
  }

  it('refuses a client without a certificate', async () => {
    const n = h.events.filter((x) => x.type === 'TLS_FAILED').length;
    await refused(null);
    await waitFor(() => h.events.filter((x) => x.type === 'TLS_FAILED').length > n, 2000, 'TLS_FAILED');
    assert.match(lastTlsFailure(), /CERTIFICATE/);
  });

  it('refuses a certificate from another CA', async () => {
    const n = h.events.filter((x) => x.type === 'TLS_FAILED').length;
    await refused(pki.otherCaClient);
    await waitFor(() => h.events.filter((x) => x.type === 'TLS_FAILED').length > n, 2000, 'TLS_FAILED');
    assert.match(lastTlsFailure(), /CERT|ISSUER|SIGNATURE|SELF_SIGNED/);
  });

  it('refuses an expired certificate', async () => {
    const n = h.events.filter((x) => x.type === 'TLS_FAILED').length;
    await refused(pki.expiredClient);
    await waitFor(() => h.events.filter((x) => x.type === 'TLS_FAILED').length > n, 2000, 'TLS_FAILED');
    assert.equal(lastTlsFailure(), 'CERT_HAS_EXPIRED');
  });

  it('negotiates TLS 1.3 and ALPN mxproxy/1, and keeps serving valid clients', async () => {
    const { socket, reply } = await request({ port: h.port, pki, target: 'echo' });
    assert.equal(reply.ok, true);
    assert.equal(socket.getProtocol(), 'TLSv1.3');
    assert.equal(socket.alpnProtocol, 'mxproxy/1');
    socket.destroy();
  });

  it('does not trust the system CAs when connecting as a client either way (server cert chain check)', async () => {
    // a client that trusts only the other CA must refuse the proxy's certificate
    await assert.rejects(tlsConnect({ port: h.port, pki, ca: pki.otherCaFile }));
  });

  it('forgets every refused connection', async () => {
    await waitFor(() => h.proxy.stats().active === 0, 3000, 'no active pairs');
  });
});
