/** Reads the sslCertificate triple and checks it before any client is accepted. */
import fs from 'node:fs';
import tls from 'node:tls';
import type { TlsFiles } from '../config/types.js';
import type { TlsMaterial } from './tlsTerminator.js';
import { checkTrustAnchors, TrustError } from './trust.js';

export type TlsSetupCode = 'ERR_TLS_SETUP' | 'ERR_CA_PUBLIC' | 'ERR_CA_NOT_CA' | 'ERR_CA_INVALID';

export class TlsSetupError extends Error {
  constructor(
    message: string,
    /** ERR_TLS_SETUP, or the trust anchor's own code (ERR_CA_PUBLIC, …). */
    readonly code: TlsSetupCode = 'ERR_TLS_SETUP',
  ) {
    super(message);
    this.name = 'TlsSetupError';
  }
}

function read(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new TlsSetupError(`cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export function loadTlsMaterial(files: TlsFiles): TlsMaterial {
  const material = {
    cert: read(files.certFile, 'certificate'),
    key: read(files.keyFile, 'private key'),
    ca: read(files.caFile, 'CA certificate'),
  };
  try {
    checkTrustAnchors(material.ca, files.caFile);
  } catch (err) {
    throw new TlsSetupError((err as Error).message, err instanceof TrustError ? err.code : 'ERR_TLS_SETUP');
  }
  try {
    tls.createSecureContext(material); // bad PEM, key not matching the certificate, …
  } catch (err) {
    throw new TlsSetupError(`sslCertificate ${files.certFile} / ${files.keyFile}: ${(err as Error).message}`);
  }
  return material;
}
