/**
 * A throw-away PKI for tests that run real loopback TLS: a project CA with a server and a client certificate,
 * plus the certificates the proxy must refuse (another CA's client, an expired client). Everything is EC P-256
 * (key generation in milliseconds) and lives in one temp directory removed by cleanup().
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createCa, issueCertificate, writeIssued, type Issued } from '../../src/certs/index.js';
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
  /** rm -rf dir */
  cleanup(): void;
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

export async function createTestPki(): Promise<TestPki> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxproxy-pki-'));
  try {
    const [ca, otherCa] = await Promise.all([
      createCa({ commonName: 'mxproxy test CA' }),
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
