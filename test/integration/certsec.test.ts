/**
 * The gate's certificate defences over real mutual TLS: clients that are CAs, chains through intermediate CAs,
 * revoked certificates, TLS 1.2 renegotiation. Each refusal ends the pair as TLS_FAILED with a stable code (never
 * TLS_OK), and the proxy goes on serving valid clients.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import type { ProxyEvent } from '../../machines/proxy.js';
import { encodeRequest, ALPN_PROTOCOL } from '../../src/protocol/frame.js';
import { TlsMaterialError } from '../../src/errors.js';
import { loadTlsMaterial } from '../../src/net/tlsMaterial.js';
import {
  closed,
  digestUntilEnd,
  echoHandler,
  readReply,
  request,
  startBackend,
  startHarness,
  tlsConnect,
  waitFor,
  type Backend,
  type Harness,
} from '../helpers/harness.js';
import { createTestPki, type CertFiles, type TestPki } from '../helpers/pki.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const DAY_MS = 24 * 60 * 60 * 1000;

type Failed = Extract<ProxyEvent, { type: 'TLS_FAILED' }>;

/** Connects with `cert`, sends a request, and waits for the proxy to end it: the TLS_FAILED event it caused. */
async function refusedWith(h: Harness, pki: TestPki, cert: CertFiles, echo: Backend): Promise<Failed> {
  const failures = () => h.events.filter((e): e is Failed => e.type === 'TLS_FAILED');
  const n = failures().length;
  const backendBefore = echo.accepted.length;
  try {
    const s = await tlsConnect({ port: h.port, pki, cert });
    // TLS 1.3: the client's handshake is done before the proxy has judged its certificate.
    s.on('error', () => {});
    s.write(encodeRequest('echo'));
    let got = 0;
    s.on('data', (d: Buffer) => (got += d.length));
    await closed(s);
    assert.equal(got, 0, 'no reply reaches a refused client');
  } catch (err) {
    assert.ok(err instanceof Error);
  }
  await waitFor(() => failures().length > n, 3000, 'TLS_FAILED');
  const failed = failures().at(-1)!;
  assert.equal(
    h.events.some((e) => e.type === 'TLS_OK' && e.id === failed.id),
    false,
    'a refused connection never has TLS_OK',
  );
  assert.equal(echo.accepted.length, backendBefore, 'nothing reached the backend');
  return failed;
}

async function stillServes(h: Harness, pki: TestPki, cert?: CertFiles): Promise<void> {
  const { socket, reply, rest } = await request({ port: h.port, pki, target: 'echo', ...(cert ? { cert } : {}) });
  assert.equal(reply.ok, true);
  const got = digestUntilEnd(socket, rest);
  socket.end('still here');
  assert.equal((await got).bytes, 10);
}

describe('client certificates that are CAs (project CA with pathLen 0)', () => {
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

  it('starts without a warning about intermediate CAs', () => {
    assert.equal(h.logs.some((l) => l['level'] === 'warn' && /intermediate CAs/.test(String(l['message']))), false);
  });

  it('refuses a client certificate with CA:TRUE: TLS_FAILED ERR_CLIENT_IS_CA, logged as tls refused', async () => {
    const failed = await refusedWith(h, pki, await pki.issueCaClient('sneaky-ca'), echo);
    assert.equal(failed.code, 'ERR_CLIENT_IS_CA');
    assert.match(failed.message, /CA certificate/);
    await waitFor(() => h.logs.some((l) => l['reason'] === 'tls-failed:ERR_CLIENT_IS_CA'), 2000, 'the tls refused line');
    await stillServes(h, pki);
  });

  it('refuses a chain through an intermediate CA: OpenSSL says PATH_LENGTH_EXCEEDED', async () => {
    const failed = await refusedWith(h, pki, await pki.issueViaSubCa('minted'), echo);
    assert.equal(failed.code, 'PATH_LENGTH_EXCEEDED');
    await stillServes(h, pki);
  });
});

describe('a project CA without a pathLen constraint', () => {
  let pki: TestPki;
  let echo: Backend;
  let h: Harness;

  before(async () => {
    pki = await createTestPki({ caWithoutPathLen: true });
    echo = await startBackend(echoHandler);
    h = await startHarness(pki, { servers: { echo: [echo.address] }, allow: ['* echo'] });
  });
  after(async () => {
    await h?.stop();
    await echo?.close();
    pki?.cleanup();
  });

  it('is warned about at start, naming the CA file', () => {
    const warning = h.logs.find((l) => l['level'] === 'warn' && /intermediate CAs/.test(String(l['message'])));
    assert.ok(warning, JSON.stringify(h.logs));
    assert.ok(String(warning['message']).startsWith(`${pki.caFile}: `), String(warning['message']));
    assert.match(String(warning['message']), /no pathLen constraint/);
  });

  it('check-config says the same as a warning and still passes', () => {
    const config = path.join(pki.dir, 'check.config');
    fs.writeFileSync(config, `[proxy]\nsslCertificate = "${pki.server.cert} ${pki.server.key} ${pki.caFile}"\n`);
    const r = spawnSync(process.execPath, [MAIN, 'check-config', '-c', config], { encoding: 'utf8', timeout: 15_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /check\.config:2: warning: .*ca\.pem: the CA "CN=mxproxy test CA" allows intermediate CAs \(no pathLen constraint\)/);
  });

  it('Node alone accepts a chain through an intermediate CA here (why the proxy checks the issuer)', async () => {
    const viaSub = await pki.issueViaSubCa('minted-plain');
    const server = tls.createServer({
      cert: fs.readFileSync(pki.server.cert),
      key: fs.readFileSync(pki.server.key),
      ca: fs.readFileSync(pki.caFile),
      requestCert: true,
      rejectUnauthorized: true,
    });
    const verdict = new Promise<string>((resolve) => {
      server.once('secureConnection', (s) => {
        resolve(`authorized=${s.authorized}`);
        s.destroy();
      });
      server.once('tlsClientError', (err, s) => resolve(String(s.authorizationError ?? err.message)));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { port } = server.address() as net.AddressInfo;
      const c = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca: fs.readFileSync(pki.caFile), cert: fs.readFileSync(viaSub.cert), key: fs.readFileSync(viaSub.key) });
      c.on('error', () => {});
      assert.equal(await verdict, 'authorized=true');
      c.destroy();
    } finally {
      server.close();
    }
  });

  it('refuses that chain: TLS_FAILED ERR_CLIENT_VIA_SUB_CA', async () => {
    const failed = await refusedWith(h, pki, await pki.issueViaSubCa('minted'), echo);
    assert.equal(failed.code, 'ERR_CLIENT_VIA_SUB_CA');
    await stillServes(h, pki);
  });

  it('refuses the same leaf again once its verdict is remembered, and serves the good client again', async () => {
    const minted = await pki.issueViaSubCa('minted-again');
    for (let i = 0; i < 3; i++) {
      const failed = await refusedWith(h, pki, minted, echo);
      assert.equal(failed.code, 'ERR_CLIENT_VIA_SUB_CA', `attempt ${i + 1}`);
      await stillServes(h, pki);
    }
  });

  it('refuses a CA:TRUE client certificate too', async () => {
    const failed = await refusedWith(h, pki, await pki.issueCaClient('sneaky-ca'), echo);
    assert.equal(failed.code, 'ERR_CLIENT_IS_CA');
    await stillServes(h, pki);
  });
});

describe('TLS 1.2 renegotiation', () => {
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

  it('is refused at the first attempt and ends the pair; others are served', async () => {
    const s = tls.connect({
      host: '127.0.0.1',
      port: h.port,
      servername: 'localhost',
      maxVersion: 'TLSv1.2',
      ca: fs.readFileSync(pki.caFile),
      cert: fs.readFileSync(pki.client.cert),
      key: fs.readFileSync(pki.client.key),
      ALPNProtocols: [ALPN_PROTOCOL],
    });
    const errors: string[] = [];
    s.on('error', (e: NodeJS.ErrnoException) => errors.push(e.code ?? e.message));
    await new Promise((r) => s.once('secureConnect', r));
    assert.equal(s.getProtocol(), 'TLSv1.2');
    s.write(encodeRequest('echo'));
    const { reply } = await readReply(s);
    assert.equal(reply.ok, true, 'linked before the attempt');
    s.resume();

    const linked = h.events.filter((e) => e.type === 'TLS_OK').at(-1)!;
    const outcome = new Promise<string>((resolve) => {
      const started = s.renegotiate({ rejectUnauthorized: true }, (err) => resolve(err ? `error ${(err as NodeJS.ErrnoException).code ?? err.message}` : 'renegotiated'));
      if (!started) resolve('not started');
      s.once('close', () => resolve('closed'));
    });
    // The client sees the connection closed (or, if OpenSSL's no_renegotiation alert gets out first, that error).
    assert.notEqual(await outcome, 'renegotiated', `client errors: ${errors.join(', ')}`);
    await closed(s);
    assert.ok(errors.every((e) => /NO_RENEGOTIATION|ECONNRESET|EPIPE|EPROTO/.test(e)), errors.join(', '));
    await waitFor(
      () => h.events.some((e) => e.type === 'CLIENT_ERROR' && e.id === linked.id && e.code === 'ERR_TLS_RENEGOTIATION_DISABLED'),
      3000,
      'CLIENT_ERROR ERR_TLS_RENEGOTIATION_DISABLED',
    );
    await stillServes(h, pki);
  });
});

describe('revocation (sslCrl)', () => {
  let pki: TestPki;
  let echo: Backend;
  let h: Harness;
  let revoked: CertFiles;
  let kept: CertFiles;

  before(async () => {
    pki = await createTestPki();
    echo = await startBackend(echoHandler);
    [revoked, kept] = await Promise.all([pki.issueClient('hmi-lost'), pki.issueClient('hmi-kept')]);
    const crl = await pki.writeCrl('crl', [revoked]);
    h = await startHarness(pki, { servers: { echo: [echo.address] }, allow: ['* echo'], extra: `sslCrl = "${crl}"` });
  });
  after(async () => {
    await h?.stop();
    await echo?.close();
    pki?.cleanup();
  });

  it('refuses a revoked certificate: TLS_FAILED CERT_REVOKED', async () => {
    const failed = await refusedWith(h, pki, revoked, echo);
    assert.equal(failed.code, 'CERT_REVOKED');
  });

  it('links a certificate of the same CA that is not revoked', async () => {
    await stillServes(h, pki, kept);
    await stillServes(h, pki);
  });

  describe('checked at start', () => {
    const files = () => ({ certFile: pki.server.cert, keyFile: pki.server.key, caFile: pki.caFile });
    const refusal = (crlFile: string, caFile = pki.caFile): TlsMaterialError => {
      try {
        loadTlsMaterial({ ...files(), caFile }, { crlFile });
      } catch (err) {
        assert.ok(err instanceof TlsMaterialError, String(err));
        return err;
      }
      assert.fail('accepted');
    };

    it('an expired CRL: ERR_CRL_EXPIRED (OpenSSL would refuse every client with CRL_HAS_EXPIRED)', async () => {
      const err = refusal(await pki.writeCrl('expired', [], { nextUpdate: new Date(Date.now() - 60_000) }));
      assert.equal(err.code, 'ERR_CRL_EXPIRED');
      assert.match(err.message, /expired\.pem .*expired on/);
    });

    it('a CA in the CA file without a CRL: ERR_CRL_MISSING, naming the CA', async () => {
      const bundle = path.join(pki.dir, 'bundle.pem');
      fs.writeFileSync(bundle, fs.readFileSync(pki.caFile, 'utf8') + fs.readFileSync(pki.otherCaFile, 'utf8'));
      const err = refusal(await pki.writeCrl('one-of-two', []), bundle);
      assert.equal(err.code, 'ERR_CRL_MISSING');
      assert.match(err.message, /"CN=mxproxy other test CA"/);
    });

    it('a CRL of a CA that is not in the CA file: ERR_CRL_INVALID', () => {
      const other = path.join(pki.dir, 'other-ca.pem');
      const err = refusal(path.join(pki.dir, 'crl.pem'), other);
      assert.equal(err.code, 'ERR_CRL_INVALID');
      assert.match(err.message, /issued by "CN=mxproxy test CA", which is not a CA in/);
    });

    it('a file that holds no "X509 CRL" block: ERR_CRL_INVALID', () => {
      const bad = path.join(pki.dir, 'not-a-crl.pem');
      fs.writeFileSync(bad, fs.readFileSync(path.join(pki.dir, 'crl.pem'), 'utf8').replace(/X509 CRL/g, 'CRL'));
      const err = refusal(bad);
      assert.equal(err.code, 'ERR_CRL_INVALID');
      assert.match(err.message, /BEGIN X509 CRL/);
    });

    it('a CRL that expires within 30 days is a warning', async () => {
      const soon = await pki.writeCrl('soon', [], { nextUpdate: new Date(Date.now() + 3 * DAY_MS) });
      const warnings: string[] = [];
      loadTlsMaterial(files(), { crlFile: soon, warn: (m) => warnings.push(m) });
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, /soon\.pem .*expires on .*CRL_HAS_EXPIRED/);
    });

    it('every CRL of a file is used, not only the first (OpenSSL reads one per string)', async () => {
      // Two CAs, each with its CRL, in one file; the second CA's client is revoked in the second CRL.
      const other = await createTestPki();
      try {
        const bundle = path.join(other.dir, 'bundle.pem');
        fs.writeFileSync(bundle, fs.readFileSync(pki.caFile, 'utf8') + fs.readFileSync(other.caFile, 'utf8'));
        const lost = await other.issueClient('other-lost');
        const both = path.join(other.dir, 'both.pem');
        fs.writeFileSync(both, fs.readFileSync(await pki.writeCrl('first', []), 'utf8') + fs.readFileSync(await other.writeCrl('second', [lost]), 'utf8'));
        const material = loadTlsMaterial({ ...files(), caFile: bundle }, { crlFile: both });
        assert.equal(material.crl?.length, 2);
        const verdict = await handshakeVerdict(material, lost, pki.caFile);
        assert.equal(verdict, 'CERT_REVOKED');
        assert.equal(await handshakeVerdict(material, pki.client, pki.caFile), 'authorized');
      } finally {
        other.cleanup();
      }
    });
  });
});

/** A plain tls.Server on the material, one client: "authorized" or the verification error. */
async function handshakeVerdict(material: ReturnType<typeof loadTlsMaterial>, cert: CertFiles, clientCa: string): Promise<string> {
  const server = tls.createServer({ ...material, requestCert: true, rejectUnauthorized: true });
  const verdict = new Promise<string>((resolve) => {
    server.once('secureConnection', (s) => {
      resolve('authorized');
      s.destroy();
    });
    server.once('tlsClientError', (err, s) => resolve(String(s.authorizationError ?? err.message)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const { port } = server.address() as net.AddressInfo;
    const c = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca: fs.readFileSync(clientCa), cert: fs.readFileSync(cert.cert), key: fs.readFileSync(cert.key) });
    c.on('error', () => {});
    const v = await verdict;
    c.destroy();
    return v;
  } finally {
    server.close();
  }
}
