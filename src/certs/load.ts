/** Reading an existing project CA (certificate + key PEM) from a certificate directory, to sign with. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { TlsMaterialError } from '../errors.js';
import type { Issued } from './x509.js';

/**
 * The CA's file names inside a certificate directory: `ca.pem` and `ca.key`, as `writeIssued(dir, 'ca', …)` writes
 * them, and its revocation list `crl.pem`.
 */
export function caFiles(dir: string): { certFile: string; keyFile: string; crlFile: string } {
  return { certFile: path.join(dir, 'ca.pem'), keyFile: path.join(dir, 'ca.key'), crlFile: path.join(dir, 'crl.pem') };
}

async function readOrNull(file: string): Promise<string | null> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new TlsMaterialError('ERR_CERTS', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Reads `<dir>/ca.pem` and `<dir>/ca.key`. Whether they form a usable CA is checked by `issueCertificate`. Files
 * that are not there (as opposed to unreadable) are ERR_CA_NOT_FOUND, so callers can suggest creating a CA.
 */
export async function loadCa(dir: string): Promise<Issued> {
  const { certFile, keyFile } = caFiles(dir);
  return loadCaFiles(certFile, keyFile);
}

/** Reads a CA certificate and key from files named one by one. */
export async function loadCaFiles(certFile: string, keyFile: string): Promise<Issued> {
  const [certPem, keyPem] = await Promise.all([readOrNull(certFile), readOrNull(keyFile)]);
  if (certPem === null || keyPem === null) {
    const missing = [certPem === null ? certFile : null, keyPem === null ? keyFile : null].filter((f) => f !== null);
    throw new TlsMaterialError('ERR_CA_NOT_FOUND', `no CA in ${missing.length === 1 ? 'file' : 'files'} ${missing.join(', ')}`);
  }
  return { certPem, keyPem };
}
