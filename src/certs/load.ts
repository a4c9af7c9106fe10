/** Reading an existing project CA (certificate + key PEM) from a certificate directory, to sign with. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { CertificateError, type Issued } from './x509.js';

/**
 * The CA's file names inside a certificate directory: `ca.pem` and `ca.key`, as `writeIssued(dir, 'ca', …)` writes
 * them, and its revocation list `crl.pem`.
 */
export function caFiles(dir: string): { certFile: string; keyFile: string; crlFile: string } {
  return { certFile: path.join(dir, 'ca.pem'), keyFile: path.join(dir, 'ca.key'), crlFile: path.join(dir, 'crl.pem') };
}

/** The CA files are not there (as opposed to unreadable): callers can suggest creating a CA. */
export class CaNotFoundError extends CertificateError {
  constructor(readonly missing: string[]) {
    super(`no CA in ${missing.length === 1 ? 'file' : 'files'} ${missing.join(', ')}`);
    this.name = 'CaNotFoundError';
  }
}

async function readOrNull(file: string): Promise<string | null> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new CertificateError(`cannot read ${file}: ${(err as Error).message}`);
  }
}

/** Reads `<dir>/ca.pem` and `<dir>/ca.key`. Whether they form a usable CA is checked by `issueCertificate`. */
export async function loadCa(dir: string): Promise<Issued> {
  const { certFile, keyFile } = caFiles(dir);
  return loadCaFiles(certFile, keyFile);
}

/** Reads a CA certificate and key from files named one by one. */
export async function loadCaFiles(certFile: string, keyFile: string): Promise<Issued> {
  const [certPem, keyPem] = await Promise.all([readOrNull(certFile), readOrNull(keyFile)]);
  if (certPem === null || keyPem === null) {
    throw new CaNotFoundError([certPem === null ? certFile : null, keyPem === null ? keyFile : null].filter((f) => f !== null));
  }
  return { certPem, keyPem };
}
