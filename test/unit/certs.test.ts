import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import {
  createCa,
  describeCertificate,
  issueCertificate,
  writeIssued,
  type Issued,
  type KeyAlgorithm,
} from '../../src/certs/index.js';
import { TlsMaterialError } from '../../src/errors.js';
import { createTestPki, readTls, type CertFiles, type TestPki } from '../helpers/pki.js';

const OPENSSL = '/usr/bin/openssl';
const HAVE_OPENSSL = fs.existsSync(OPENSSL) && spawnSync(OPENSSL, ['version'], { timeout: 5000 }).status === 0;
const NO_OPENSSL = `openssl not found at ${OPENSSL}`;
const DAY_MS = 24 * 60 * 60 * 1000;
const T = { timeout: 30_000 };

function openssl(...args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(OPENSSL, args, { encoding: 'utf8', timeout: 10_000 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/** openssl verify with the given CA; -purpose sslserver/sslclient also checks the extended key usage. */
function verify(caFile: string, certFile: string, purpose?: 'sslserver' | 'sslclient'): { ok: boolean; out: string } {
  return openssl('verify', '-CAfile', caFile, ...(purpose ? ['-purpose', purpose] : []), certFile);
}

function text(certFile: string): string {
  const r = openssl('x509', '-noout', '-text', '-in', certFile);
  assert.ok(r.ok, r.out);
  return r.out;
}

/** The hex key identifier printed after `label` in `openssl x509 -text` output. */
function keyId(dump: string, label: string): string {
  const m = new RegExp(`${label}:\\s*\\n\\s*(?:keyid:)?([0-9A-F:]+)`).exec(dump);
  assert.ok(m, `${label} missing in:\n${dump}`);
  return m[1]!;
}

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'mxproxy-certs-test-'));
}

interface Pki {
  dir: string;
  ca: Issued;
  caFile: string;
  server: CertFiles;
  client: CertFiles;
  expired: CertFiles;
  otherCaFile: string;
  otherCaClient: CertFiles;
}

async function buildPki(algorithm: KeyAlgorithm): Promise<Pki> {
  const dir = tmpDir();
  const files = async (base: string, issued: Issued): Promise<CertFiles> => {
    const f = await writeIssued(dir, base, issued);
    return { cert: f.certFile, key: f.keyFile };
  };
  const [ca, otherCa] = await Promise.all([
    createCa({ commonName: `Test CA ${algorithm}`, algorithm }),
    createCa({ commonName: `Other CA ${algorithm}`, algorithm }),
  ]);
  const now = Date.now();
  return {
    dir,
    ca,
    caFile: (await files('ca', ca)).cert,
    otherCaFile: (await files('other-ca', otherCa)).cert,
    server: await files(
      'server',
      await issueCertificate(ca, { kind: 'server', commonName: 'localhost', dns: ['localhost'], ips: ['127.0.0.1', '::1'], algorithm }),
    ),
    client: await files(
      'client',
      await issueCertificate(ca, { kind: 'client', commonName: 'test-client', uris: ['spiffe://plant/hmi'], algorithm }),
    ),
    expired: await files(
      'expired',
      await issueCertificate(ca, {
        kind: 'client',
        commonName: 'test-client',
        notBefore: new Date(now - 2 * DAY_MS),
        notAfter: new Date(now - DAY_MS),
        algorithm,
      }),
    ),
    otherCaClient: await files('other-client', await issueCertificate(otherCa, { kind: 'client', commonName: 'test-client', algorithm })),
  };
}

interface HandshakeResult {
  ok: boolean;
  /** CN of the client certificate as the server saw it */
  peerCn?: string;
  serverError?: string;
  clientError?: string;
}

/**
 * One loopback mutual-TLS connection: the server requires and verifies a client certificate and answers
 * "hello <CN>"; ok means the client received that answer. Bounded by `timeoutMs`; the server is always closed.
 */
async function handshake(
  server: { cert: Buffer; key: Buffer; ca: Buffer },
  client: { cert?: Buffer; key?: Buffer; ca: Buffer },
  timeoutMs = 5000,
): Promise<HandshakeResult> {
  const result: HandshakeResult = { ok: false };
  const sockets = new Set<tls.TLSSocket>();
  const srv = tls.createServer({ ...server, requestCert: true, rejectUnauthorized: true });
  srv.on('tlsClientError', (err: NodeJS.ErrnoException, s: tls.TLSSocket) => {
    // with rejectUnauthorized, Node drops the connection after the handshake and the reason (e.g.
    // CERT_HAS_EXPIRED) is only on the socket; the error itself is a plain "socket hang up"
    result.serverError = `${String(s.authorizationError ?? '')} ${err.code ?? ''} ${err.message}`.trim();
  });
  srv.on('secureConnection', (s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    result.peerCn = String(s.getPeerCertificate().subject?.CN ?? '');
    s.end(`hello ${result.peerCn}`);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  try {
    const data = await new Promise<string>((resolve) => {
      let received = '';
      const sock = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...client });
      const timer = setTimeout(() => sock.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => (received += d));
      sock.on('error', (err: NodeJS.ErrnoException) => (result.clientError = `${err.code ?? ''} ${err.message}`));
      sock.on('close', () => {
        clearTimeout(timer);
        resolve(received);
      });
    });
    result.ok = data.startsWith('hello ');
    if (!result.ok) {
      // the server reports the refused client certificate around the time the client sees the connection drop
      const deadline = Date.now() + 1000;
      while (result.serverError === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    }
    return result;
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  }
}

function needOpenssl(t: TestContext): boolean {
  if (!HAVE_OPENSSL) t.skip(NO_OPENSSL);
  return HAVE_OPENSSL;
}

// ---------------------------------------------------------------------------------------------------------------

for (const algorithm of ['ec-p256', 'rsa-2048'] as const) {
  describe(`certificates (${algorithm})`, T, () => {
    let pki: Pki;
    before(async () => {
      pki = await buildPki(algorithm);
    });
    after(() => {
      if (pki) fs.rmSync(pki.dir, { recursive: true, force: true });
    });

    it('openssl verify accepts the server and client certificates, each only for its own purpose', T, (t) => {
      if (!needOpenssl(t)) return;
      for (const [file, purpose] of [
        [pki.server.cert, 'sslserver'],
        [pki.client.cert, 'sslclient'],
      ] as const) {
        const plain = verify(pki.caFile, file);
        assert.ok(plain.ok, plain.out);
        const right = verify(pki.caFile, file, purpose);
        assert.ok(right.ok, right.out);
      }
      assert.equal(verify(pki.caFile, pki.client.cert, 'sslserver').ok, false, 'a client certificate is no server certificate');
      assert.equal(verify(pki.caFile, pki.server.cert, 'sslclient').ok, false, 'a server certificate is no client certificate');
    });

    it('has the required extensions (openssl x509 -text)', T, (t) => {
      if (!needOpenssl(t)) return;
      const sig = algorithm === 'ec-p256' ? 'ecdsa-with-SHA256' : 'sha256WithRSAEncryption';
      const ca = text(pki.caFile);
      assert.match(ca, new RegExp(`Signature Algorithm: ${sig}`));
      assert.match(ca, /Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
      assert.match(ca, /Key Usage: critical\s+Certificate Sign, CRL Sign\n/);
      const caKeyId = keyId(ca, 'Subject Key Identifier');

      const server = text(pki.server.cert);
      assert.match(server, new RegExp(`Signature Algorithm: ${sig}`));
      assert.match(server, /Basic Constraints: critical\s+CA:FALSE/);
      const usage = algorithm === 'ec-p256' ? 'Digital Signature\n' : 'Digital Signature, Key Encipherment\n';
      assert.match(server, new RegExp(`Key Usage: critical\\s+${usage}`));
      assert.match(server, /Extended Key Usage:\s*\n\s+TLS Web Server Authentication\n/);
      assert.match(server, /Subject Alternative Name:\s*\n\s+DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1\n/);
      assert.match(server, /Subject: CN\s?=\s?localhost\n/);
      assert.equal(keyId(server, 'Authority Key Identifier'), caKeyId);
      assert.notEqual(keyId(server, 'Subject Key Identifier'), caKeyId);

      const client = text(pki.client.cert);
      assert.match(client, /Basic Constraints: critical\s+CA:FALSE/);
      assert.match(client, /Extended Key Usage:\s*\n\s+TLS Web Client Authentication\n/);
      assert.match(client, /Subject Alternative Name:\s*\n\s+URI:spiffe:\/\/plant\/hmi\n/);
      assert.equal(keyId(client, 'Authority Key Identifier'), caKeyId);
    });

    it('rejects the expired certificate and the other CA\'s certificate (openssl verify)', T, (t) => {
      if (!needOpenssl(t)) return;
      const expired = verify(pki.caFile, pki.expired.cert);
      assert.equal(expired.ok, false);
      assert.match(expired.out, /certificate has expired/);
      const other = verify(pki.caFile, pki.otherCaClient.cert);
      assert.equal(other.ok, false);
      assert.match(other.out, /unable to get local issuer certificate/);
      assert.ok(verify(pki.otherCaFile, pki.otherCaClient.cert).ok, 'the other CA does verify its own client');
    });

    it('writes PKCS#8 keys that match their certificates', T, () => {
      for (const files of [pki.server, pki.client, { cert: pki.caFile, key: pki.caFile.replace(/\.pem$/, '.key') }]) {
        const keyPem = fs.readFileSync(files.key, 'utf8');
        assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
        const key = createPrivateKey(keyPem);
        assert.equal(key.asymmetricKeyType, algorithm === 'ec-p256' ? 'ec' : 'rsa');
        if (algorithm === 'rsa-2048') assert.equal(key.asymmetricKeyDetails?.modulusLength, 2048);
        else assert.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1');
        assert.ok(new X509Certificate(fs.readFileSync(files.cert)).checkPrivateKey(key));
      }
    });

    it('passes a real mutual-TLS handshake over loopback; the server sees the client CN', T, async () => {
      const r = await handshake(readTls(pki.server, pki.caFile), readTls(pki.client, pki.caFile));
      assert.equal(r.ok, true, JSON.stringify(r));
      assert.equal(r.peerCn, 'test-client');
    });

    it('refuses an expired client certificate in the TLS handshake', T, async () => {
      const r = await handshake(readTls(pki.server, pki.caFile), readTls(pki.expired, pki.caFile));
      assert.equal(r.ok, false);
      assert.equal(r.peerCn, undefined);
      assert.match(r.serverError ?? '', /^CERT_HAS_EXPIRED/, JSON.stringify(r));
    });

    it('refuses another CA\'s client certificate in the TLS handshake', T, async () => {
      const r = await handshake(readTls(pki.server, pki.caFile), readTls(pki.otherCaClient, pki.caFile));
      assert.equal(r.ok, false);
      assert.equal(r.peerCn, undefined);
      assert.match(r.serverError ?? '', /UNABLE_TO_GET_ISSUER_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE/, JSON.stringify(r));
    });
  });
}

describe('certificate contents', T, () => {
  let ca: Issued;
  before(async () => {
    ca = await createCa({ commonName: 'Contents CA' });
  });

  it('describeCertificate reports subject, issuer, SAN, CA flag, serial and fingerprint', T, async () => {
    const leaf = await issueCertificate(ca, {
      kind: 'server',
      commonName: 'plc-gw',
      dns: ['plc-gw.plant.local', 'plc-gw.plant.local'],
      ips: ['10.1.2.3', '::1'],
      uris: ['spiffe://plant/gw'],
    });
    const d = describeCertificate(leaf.certPem);
    assert.equal(d.subject, 'CN=plc-gw');
    assert.equal(d.issuer, 'CN=Contents CA');
    assert.deepEqual(d.san, ['DNS:plc-gw.plant.local', 'IP:10.1.2.3', 'IP:0:0:0:0:0:0:0:1', 'URI:spiffe://plant/gw']);
    assert.equal(d.isCa, false);
    assert.equal(d.fingerprint256, new X509Certificate(leaf.certPem).fingerprint256);
    assert.ok(d.notBefore instanceof Date && d.notAfter > d.notBefore);
    const c = describeCertificate(ca.certPem);
    assert.equal(c.isCa, true);
    assert.deepEqual(c.san, []);
    assert.equal(c.subject, c.issuer);
  });

  it('uses random, positive, 16-byte serial numbers', T, async () => {
    const serials = new Set<string>([describeCertificate(ca.certPem).serial]);
    for (let i = 0; i < 8; i++) {
      serials.add(describeCertificate((await issueCertificate(ca, { kind: 'client', commonName: `c${i}` })).certPem).serial);
    }
    assert.equal(serials.size, 9);
    for (const s of serials) {
      assert.match(s, /^[0-7][0-9A-F]{31}$/, `serial ${s}`);
      assert.notEqual(s.slice(0, 2), '00');
    }
  });

  it('gives a server certificate without dns/ips the DNS name of its commonName', T, async () => {
    const leaf = await issueCertificate(ca, { kind: 'server', commonName: 'historian.plant.local', uris: ['spiffe://plant/historian'] });
    assert.deepEqual(describeCertificate(leaf.certPem).san, ['DNS:historian.plant.local', 'URI:spiffe://plant/historian']);
    const client = await issueCertificate(ca, { kind: 'client', commonName: 'operator 7' });
    assert.deepEqual(describeCertificate(client.certPem).san, [], 'no SAN on a client certificate without SAN entries');
    await assert.rejects(issueCertificate(ca, { kind: 'server', commonName: 'not a host name' }), TlsMaterialError);
  });

  it('keeps special characters of the common name verbatim', T, async () => {
    const odd = await createCa({ commonName: 'Plant 7, "North" = CA' });
    const x = new X509Certificate(odd.certPem);
    assert.match(x.subject, /^CN=Plant 7\\?, \\?"North\\?" \\?= CA$/);
    const leaf = await issueCertificate(odd, { kind: 'client', commonName: 'op' });
    assert.ok(new X509Certificate(leaf.certPem).verify(x.publicKey));
    assert.ok(new X509Certificate(leaf.certPem).checkIssued(x));
  });

  it('defaults the validity: CA 3650 days, leaf 825 days, notBefore 5 minutes back; explicit dates win', T, async () => {
    const now = Date.now();
    const near = (actual: Date, expected: number, what: string): void =>
      assert.ok(Math.abs(actual.getTime() - expected) <= 5000, `${what}: ${actual.toISOString()} vs ${new Date(expected).toISOString()}`);
    const c = describeCertificate(ca.certPem);
    near(c.notAfter, now + 3650 * DAY_MS, 'CA notAfter');
    const leaf = describeCertificate((await issueCertificate(ca, { kind: 'client', commonName: 'x' })).certPem);
    near(leaf.notBefore, now - 5 * 60 * 1000, 'leaf notBefore');
    near(leaf.notAfter, now + 825 * DAY_MS, 'leaf notAfter');
    const short = describeCertificate((await issueCertificate(ca, { kind: 'client', commonName: 'x', validityDays: 2 })).certPem);
    near(short.notAfter, now + 2 * DAY_MS, 'validityDays');
    const notBefore = new Date('2030-01-01T00:00:00Z');
    const notAfter = new Date('2031-06-30T12:00:00Z');
    const explicit = describeCertificate(
      (await issueCertificate(ca, { kind: 'client', commonName: 'x', notBefore, notAfter, validityDays: 1 })).certPem,
    );
    assert.equal(explicit.notBefore.getTime(), notBefore.getTime());
    assert.equal(explicit.notAfter.getTime(), notAfter.getTime());
    const fromStart = describeCertificate((await issueCertificate(ca, { kind: 'client', commonName: 'x', notBefore, validityDays: 10 })).certPem);
    assert.equal(fromStart.notAfter.getTime(), notBefore.getTime() + 10 * DAY_MS);
  });

  it('creates RSA-3072 keys on request, and an RSA CA signs an EC leaf with RSA/SHA-256', T, async (t) => {
    const rsaCa = await createCa({ commonName: 'RSA CA', algorithm: 'rsa-3072' });
    assert.equal(createPrivateKey(rsaCa.keyPem).asymmetricKeyDetails?.modulusLength, 3072);
    const leaf = await issueCertificate(rsaCa, { kind: 'server', commonName: 'localhost' });
    assert.equal(createPrivateKey(leaf.keyPem).asymmetricKeyType, 'ec');
    assert.ok(new X509Certificate(leaf.certPem).verify(new X509Certificate(rsaCa.certPem).publicKey));
    if (!needOpenssl(t)) return;
    const dir = tmpDir();
    try {
      const caFile = (await writeIssued(dir, 'ca', rsaCa)).certFile;
      const leafFile = (await writeIssued(dir, 'leaf', leaf)).certFile;
      assert.ok(verify(caFile, leafFile, 'sslserver').ok);
      assert.match(text(leafFile), /Signature Algorithm: sha256WithRSAEncryption/);
      assert.match(text(leafFile), /Key Usage: critical\s+Digital Signature\n/, 'no keyEncipherment for an EC key');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('issues from a CA created by openssl (traditional key formats, multi-attribute names)', T, async (t) => {
    if (!needOpenssl(t)) return;
    const dir = tmpDir();
    try {
      for (const [alg, convert] of [
        [['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], ['ec']],
        [['-newkey', 'rsa:2048'], ['rsa', '-traditional']],
      ] as const) {
        const caFile = path.join(dir, 'ext-ca.pem');
        const pkcs8 = path.join(dir, 'ext-ca.p8');
        const keyFile = path.join(dir, 'ext-ca.key');
        const req = openssl('req', '-x509', ...alg, '-nodes', '-days', '30', '-subj', '/C=DE/O=Plant North/CN=External CA',
          '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
          '-keyout', pkcs8, '-out', caFile);
        assert.ok(req.ok, req.out);
        const conv = openssl(...convert, '-in', pkcs8, '-out', keyFile);
        assert.ok(conv.ok, conv.out);
        const keyPem = fs.readFileSync(keyFile, 'utf8');
        assert.match(keyPem, /BEGIN (EC|RSA) PRIVATE KEY/);
        const leaf = await issueCertificate({ certPem: fs.readFileSync(caFile, 'utf8'), keyPem }, { kind: 'client', commonName: 'op' });
        const leafFile = (await writeIssued(dir, 'leaf', leaf)).certFile;
        const v = verify(caFile, leafFile, 'sslclient');
        assert.ok(v.ok, v.out);
        assert.equal(describeCertificate(leaf.certPem).issuer, 'C=DE, O=Plant North, CN=External CA');
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses bad input with TlsMaterialError', T, async () => {
    const leaf = await issueCertificate(ca, { kind: 'client', commonName: 'leaf' });
    const other = await createCa({ commonName: 'Other' });
    const cases: Array<[string, () => Promise<Issued>, RegExp]> = [
      ['empty CN', () => createCa({ commonName: ' ' }), /commonName/],
      ['unknown algorithm', () => createCa({ commonName: 'x', algorithm: 'dsa' as KeyAlgorithm }), /unknown key algorithm/],
      ['validityDays 0', () => createCa({ commonName: 'x', validityDays: 0 }), /validityDays/],
      ['notAfter before notBefore', () => issueCertificate(ca, { kind: 'client', commonName: 'x', notBefore: new Date(), notAfter: new Date(Date.now() - DAY_MS) }), /notAfter/],
      ['bad IP', () => issueCertificate(ca, { kind: 'server', commonName: 'x', ips: ['10.0.0.256'] }), /invalid IP/],
      ['IP with zone', () => issueCertificate(ca, { kind: 'server', commonName: 'x', ips: ['fe80::1%eth0'] }), /invalid IP/],
      ['URI without scheme', () => issueCertificate(ca, { kind: 'client', commonName: 'x', uris: ['plant/hmi'] }), /invalid URI/],
      ['DNS with space', () => issueCertificate(ca, { kind: 'server', commonName: 'x', dns: ['a b'] }), /invalid DNS/],
      ['bad kind', () => issueCertificate(ca, { kind: 'peer' as 'client', commonName: 'x' }), /kind/],
      ['leaf as CA', () => issueCertificate(leaf, { kind: 'client', commonName: 'x' }), /not a CA/],
      ['key of another CA', () => issueCertificate({ certPem: ca.certPem, keyPem: other.keyPem }, { kind: 'client', commonName: 'x' }), /does not match/],
      ['garbage CA', () => issueCertificate({ certPem: 'nope', keyPem: ca.keyPem }, { kind: 'client', commonName: 'x' }), /cannot be parsed/],
    ];
    for (const [what, fn, message] of cases) {
      await assert.rejects(fn(), (err: Error) => {
        assert.ok(err instanceof TlsMaterialError, `${what}: ${err.name}: ${err.message}`);
        assert.match(err.message, message, what);
        return true;
      });
    }
  });
});

describe('writeIssued', T, () => {
  let issued: Issued;
  let dir: string;
  before(async () => {
    issued = await createCa({ commonName: 'Files CA' });
    dir = tmpDir();
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const mode = (file: string): number => fs.statSync(file).mode & 0o777;

  it('writes <base>.pem 0644 and <base>.key 0600 whatever the umask; a new directory is 0700', T, async () => {
    const old = process.umask(0o000);
    try {
      const target = path.join(dir, 'fresh', 'nested');
      const f = await writeIssued(target, 'ca', issued);
      assert.deepEqual(f, { certFile: path.join(target, 'ca.pem'), keyFile: path.join(target, 'ca.key') });
      assert.equal(mode(target), 0o700);
      assert.equal(mode(f.keyFile), 0o600);
      assert.equal(mode(f.certFile), 0o644);
      assert.equal(fs.readFileSync(f.certFile, 'utf8'), issued.certPem);
      assert.equal(fs.readFileSync(f.keyFile, 'utf8'), issued.keyPem);
      assert.deepEqual(fs.readdirSync(target).sort(), ['ca.key', 'ca.pem'], 'no temporary files left');
    } finally {
      process.umask(old);
    }
  });

  it('replaces existing files and tightens a loose key file to 0600; leaves an existing directory alone', T, async () => {
    const target = path.join(dir, 'existing');
    fs.mkdirSync(target, { mode: 0o755 });
    fs.chmodSync(target, 0o755);
    fs.writeFileSync(path.join(target, 'srv.key'), 'old', { mode: 0o666 });
    fs.chmodSync(path.join(target, 'srv.key'), 0o666);
    const f = await writeIssued(target, 'srv', issued);
    assert.equal(mode(target), 0o755);
    assert.equal(mode(f.keyFile), 0o600);
    assert.equal(fs.readFileSync(f.keyFile, 'utf8'), issued.keyPem);
  });

  it('refuses a base name that is a path', T, async () => {
    for (const base of ['', '..', 'a/b', 'a\\b']) {
      await assert.rejects(writeIssued(dir, base, issued), TlsMaterialError, JSON.stringify(base));
    }
  });
});

describe('test PKI helper', T, () => {
  let pki: TestPki;
  let ms = 0;
  before(async () => {
    const t0 = performance.now();
    pki = await createTestPki();
    ms = performance.now() - t0;
  });
  after(() => pki?.cleanup());

  it('creates the CA, server, client, other-CA and expired certificates', T, (t) => {
    t.diagnostic(`createTestPki() took ${ms.toFixed(0)} ms`);
    for (const f of [pki.caFile, pki.otherCaFile, ...[pki.server, pki.client, pki.otherCaClient, pki.expiredClient].flatMap((c) => [c.cert, c.key])]) {
      assert.ok(f.startsWith(pki.dir + path.sep) && fs.existsSync(f), f);
    }
    const server = describeCertificate(fs.readFileSync(pki.server.cert, 'utf8'));
    assert.equal(server.subject, 'CN=localhost');
    assert.deepEqual(server.san, ['DNS:localhost', 'IP:127.0.0.1', 'IP:0:0:0:0:0:0:0:1']);
    const ca = describeCertificate(fs.readFileSync(pki.caFile, 'utf8'));
    const client = describeCertificate(fs.readFileSync(pki.client.cert, 'utf8'));
    assert.equal(client.subject, 'CN=test-client');
    assert.equal(client.issuer, ca.subject);
    const other = describeCertificate(fs.readFileSync(pki.otherCaClient.cert, 'utf8'));
    assert.equal(other.subject, 'CN=test-client');
    assert.notEqual(other.issuer, ca.subject);
    assert.equal(other.issuer, describeCertificate(fs.readFileSync(pki.otherCaFile, 'utf8')).subject);
    const expired = describeCertificate(fs.readFileSync(pki.expiredClient.cert, 'utf8'));
    assert.equal(expired.subject, 'CN=test-client');
    assert.ok(expired.notAfter.getTime() < Date.now());
  });

  it('issueClient issues once per name, with SANs, and refuses the same name with other options', T, async () => {
    const a = await pki.issueClient('operator-7');
    assert.equal(await pki.issueClient('operator-7'), a);
    assert.equal(describeCertificate(fs.readFileSync(a.cert, 'utf8')).subject, 'CN=operator-7');
    const svc = await pki.issueClient('svc x', { uris: ['spiffe://plant/hmi'], dns: ['svc.plant.local'] });
    assert.deepEqual(describeCertificate(fs.readFileSync(svc.cert, 'utf8')).san, ['DNS:svc.plant.local', 'URI:spiffe://plant/hmi']);
    await assert.rejects(pki.issueClient('operator-7', { uris: ['spiffe://x/y'] }), /different options/);
    const old = await pki.issueClient('old', { expired: true });
    assert.ok(describeCertificate(fs.readFileSync(old.cert, 'utf8')).notAfter.getTime() < Date.now());
  });

  it('its certificates work for loopback mutual TLS, and readTls reads them', T, async () => {
    const serverTls = readTls(pki.server, pki.caFile);
    assert.ok(Buffer.isBuffer(serverTls.cert) && Buffer.isBuffer(serverTls.key) && Buffer.isBuffer(serverTls.ca));
    const good = await handshake(serverTls, readTls(pki.client, pki.caFile));
    assert.equal(good.ok, true, JSON.stringify(good));
    assert.equal(good.peerCn, 'test-client');
    const op = await handshake(serverTls, readTls(await pki.issueClient('operator-7'), pki.caFile));
    assert.equal(op.peerCn, 'operator-7');
    assert.equal((await handshake(serverTls, readTls(pki.expiredClient, pki.caFile))).ok, false);
    assert.equal((await handshake(serverTls, readTls(pki.otherCaClient, pki.caFile))).ok, false);
    const noCert = await handshake(serverTls, { ca: serverTls.ca });
    assert.equal(noCert.ok, false, 'a client without a certificate is refused');
    const distrust = await handshake(serverTls, readTls(pki.otherCaClient, pki.otherCaFile));
    assert.equal(distrust.ok, false, 'a client trusting only the other CA refuses the server');
    // the server sends its chain up to the root it trusts, so the client sees a self-signed root it does not know
    assert.match(distrust.clientError ?? '', /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
  });

  it('cleanup removes the directory', T, async () => {
    const extra = await createTestPki();
    assert.ok(fs.existsSync(extra.dir));
    extra.cleanup();
    assert.equal(fs.existsSync(extra.dir), false);
  });
});
