/**
 * A throw-away PKI for tests that run real loopback TLS: a project CA with a server and a client certificate,
 * plus the certificates the proxy must refuse (another CA's client, an expired client, a client that is a CA,
 * one issued through an intermediate CA, revoked ones). Everything is EC P-256 (key generation in milliseconds)
 * and lives in one temp directory removed by cleanup().
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { X509Certificate, randomBytes, webcrypto } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createCa, createCrl, issueCertificate, writeIssued, type Issued, type RevocationReason } from '../../src/certs/index.js';
import { loadSigner } from '../../src/certs/x509.js';
import { issueWithCommonNames } from './rawCert.js';

export interface CertFiles {
  cert: string;
  key: string;
}

export interface IssueClientOptions {
  dns?: string[];
  uris?: string[];
  expired?: boolean;
}

export interface TestPki {
  /** temp dir holding everything */
  dir: string;
  /** project CA certificate (PEM path) */
  caFile: string;
  /** CN=localhost, SAN DNS:localhost, IP:127.0.0.1, IP:::1 */
  server: CertFiles;
  /** CN=test-client */
  client: CertFiles;
  /** Another client of the same CA (CN=name), with optional SANs; cached by name. */
  issueClient(name: string, opts?: IssueClientOptions): Promise<CertFiles>;
  /** A client of the same CA whose subject has all of these CNs (which the proxy refuses when more than one). */
  issueWithCommonNames(base: string, commonNames: string[], dns?: string[]): Promise<CertFiles>;
  /** CN=test-client, signed by a different CA */
  otherCaClient: CertFiles;
  /** The other CA's certificate (PEM path): trusting only it must refuse the proxy's server certificate. */
  otherCaFile: string;
  /** CN=test-client, same CA, notAfter in the past */
  expiredClient: CertFiles;
  /** A client certificate (clientAuth) of the project CA that is itself a CA: basicConstraints CA:TRUE. */
  issueCaClient(name: string): Promise<CertFiles>;
  /**
   * A client certificate issued by an intermediate CA (CA:TRUE, issued by the project CA); the certificate file
   * holds the leaf and the intermediate, as a client sends them.
   */
  issueViaSubCa(name: string): Promise<CertFiles>;
  /** Writes a CRL of the project CA listing `revoked` to <dir>/<base>.pem; returns its path. */
  writeCrl(base: string, revoked: CertFiles[], opts?: { nextUpdate?: Date; reason?: RevocationReason }): Promise<string>;
  /** The project CA (certificate and key), for tests that sign with it. */
  ca: Issued;
  /** rm -rf dir */
  cleanup(): void;
}

export interface TestPkiOptions {
  /** The project CA without a pathLen constraint (as a CA from another tool may be); default pathLen 0. */
  caWithoutPathLen?: boolean;
}

const DAY_MS = 24 * 60 * 60 * 1000;

function expiredWindow(): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  return { notBefore: new Date(now - 2 * DAY_MS), notAfter: new Date(now - DAY_MS) };
}

async function save(dir: string, base: string, issued: Issued): Promise<CertFiles> {
  const { certFile, keyFile } = await writeIssued(dir, base, issued);
  return { cert: certFile, key: keyFile };
}

// ---- certificates `mxproxy certs` never makes, built here with the X.509 library directly ----------------

const EC: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGN: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

async function keyPair(): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
}

async function pkcs8(key: webcrypto.CryptoKey): Promise<string> {
  return `${x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY')}\n`;
}

function window(): { notBefore: Date; notAfter: Date } {
  return { notBefore: new Date(Date.now() - 5 * 60_000), notAfter: new Date(Date.now() + 30 * DAY_MS) };
}

/** A self-signed CA with no pathLen constraint. */
async function caWithoutPathLen(commonName: string): Promise<Issued> {
  const keys = await keyPair();
  const ski = await x509.SubjectKeyIdentifierExtension.create(keys.publicKey);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8).toString('hex').replace(/^[89a-f]/, '1'),
    name: new x509.Name([{ CN: [{ utf8String: commonName }] }]),
    ...window(),
    keys,
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      ski,
    ],
  });
  return { certPem: `${cert.toString('pem')}\n`, keyPem: await pkcs8(keys.privateKey) };
}

/** A certificate signed by `issuer`: CA:TRUE or not, with clientAuth for a client. */
async function childOf(issuer: Issued, commonName: string, opts: { ca: boolean; client: boolean }): Promise<Issued> {
  const signer = await loadSigner(issuer);
  const keys = await keyPair();
  const usage = opts.ca ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.digitalSignature : x509.KeyUsageFlags.digitalSignature;
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(opts.ca, undefined, true),
    new x509.KeyUsagesExtension(usage, true),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    new x509.AuthorityKeyIdentifierExtension(signer.keyId),
  ];
  if (opts.client) extensions.push(new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomBytes(8).toString('hex').replace(/^[89a-f]/, '1'),
    subject: new x509.Name([{ CN: [{ utf8String: commonName }] }]),
    issuer: signer.cert.subjectName,
    ...window(),
    publicKey: keys.publicKey,
    signingKey: signer.key,
    signingAlgorithm: SIGN,
    extensions,
  });
  return { certPem: `${cert.toString('pem')}\n`, keyPem: await pkcs8(keys.privateKey) };
}

export async function createTestPki(opts: TestPkiOptions = {}): Promise<TestPki> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxproxy-pki-'));
  try {
    const [ca, otherCa] = await Promise.all([
      opts.caWithoutPathLen ? caWithoutPathLen('mxproxy test CA') : createCa({ commonName: 'mxproxy test CA' }),
      createCa({ commonName: 'mxproxy other test CA' }),
    ]);
    const [caFile, otherCaFile, server, client, otherCaClient, expiredClient] = await Promise.all([
      writeIssued(dir, 'ca', ca).then((f) => f.certFile),
      writeIssued(dir, 'other-ca', otherCa).then((f) => f.certFile),
      issueCertificate(ca, { kind: 'server', commonName: 'localhost', dns: ['localhost'], ips: ['127.0.0.1', '::1'] }).then((c) =>
        save(dir, 'server', c),
      ),
      issueCertificate(ca, { kind: 'client', commonName: 'test-client' }).then((c) => save(dir, 'client', c)),
      issueCertificate(otherCa, { kind: 'client', commonName: 'test-client' }).then((c) => save(dir, 'other-ca-client', c)),
      issueCertificate(ca, { kind: 'client', commonName: 'test-client', ...expiredWindow() }).then((c) =>
        save(dir, 'expired-client', c),
      ),
    ]);

    const issued = new Map<string, { key: string; files: Promise<CertFiles> }>();
    const issueClient = (name: string, opts: IssueClientOptions = {}): Promise<CertFiles> => {
      const key = JSON.stringify([opts.dns ?? [], opts.uris ?? [], opts.expired === true]);
      const cached = issued.get(name);
      if (cached) {
        if (cached.key !== key) {
          return Promise.reject(new Error(`issueClient("${name}") was already called with different options`));
        }
        return cached.files;
      }
      const base = `client-${issued.size + 1}-${name.replace(/[^A-Za-z0-9._-]/g, '_')}`;
      const files = issueCertificate(ca, {
        kind: 'client',
        commonName: name,
        ...(opts.dns ? { dns: opts.dns } : {}),
        ...(opts.uris ? { uris: opts.uris } : {}),
        ...(opts.expired ? expiredWindow() : {}),
      }).then((c) => save(dir, base, c));
      issued.set(name, { key, files });
      files.catch(() => issued.delete(name)); // a failed issue can be retried
      return files;
    };

    let made = 0;
    const issueCaClient = async (name: string): Promise<CertFiles> =>
      save(dir, `ca-client-${++made}`, await childOf(ca, name, { ca: true, client: true }));
    const issueViaSubCa = async (name: string): Promise<CertFiles> => {
      const sub = await childOf(ca, `${name} issuing CA`, { ca: true, client: false });
      const leaf = await childOf(sub, name, { ca: false, client: true });
      return save(dir, `via-sub-ca-${++made}`, { certPem: leaf.certPem + sub.certPem, keyPem: leaf.keyPem });
    };
    const writeCrl = async (base: string, revoked: CertFiles[], o: { nextUpdate?: Date; reason?: RevocationReason } = {}) => {
      const entries = revoked.map((f) => ({
        serial: new X509Certificate(fs.readFileSync(f.cert)).serialNumber,
        revokedAt: new Date(),
        reason: o.reason ?? 'keyCompromise',
      }));
      const file = path.join(dir, `${base}.pem`);
      fs.writeFileSync(file, await createCrl(ca, entries, { number: 1n, nextUpdate: o.nextUpdate ?? new Date(Date.now() + 30 * DAY_MS) }));
      return file;
    };

    return {
      dir,
      caFile,
      server,
      client,
      issueClient,
      issueWithCommonNames: (base, commonNames, dns) => issueWithCommonNames(ca, commonNames, dns).then((c) => save(dir, `raw-${base}`, c)),
      otherCaClient,
      otherCaFile,
      expiredClient,
      issueCaClient,
      issueViaSubCa,
      writeCrl,
      ca,
      cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** The buffers for tls.connect / tls.createServer options: own certificate and key, and the CA to trust. */
export function readTls(files: CertFiles, caFile: string): { cert: Buffer; key: Buffer; ca: Buffer } {
  return { cert: fs.readFileSync(files.cert), key: fs.readFileSync(files.key), ca: fs.readFileSync(caFile) };
}
