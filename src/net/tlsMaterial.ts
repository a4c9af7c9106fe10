/** Reads the sslCertificate triple and checks it before any client is accepted. */
import fs from 'node:fs';
import tls from 'node:tls';
import type { TlsFiles } from '../config/types.js';
import type { TlsMaterial } from './tlsTerminator.js';
import { TlsMaterialError } from '../errors.js';
import { checkTrustAnchors } from './trust.js';

function read(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new TlsMaterialError('ERR_TLS_SETUP', `cannot read ${what} ${file}: ${why}`, { cause: err });
  }
}

export function loadTlsMaterial(files: TlsFiles): TlsMaterial {
  const material = {
    cert: read(files.certFile, 'certificate'),
    key: read(files.keyFile, 'private key'),
    ca: read(files.caFile, 'CA certificate'),
  };
  checkTrustAnchors(material.ca, files.caFile); // throws TlsMaterialError with the trust anchor's own code
  try {
    tls.createSecureContext(material); // bad PEM, key not matching the certificate, …
  } catch (err) {
    const why = (err as Error).message;
    throw new TlsMaterialError('ERR_TLS_SETUP', `sslCertificate ${files.certFile} / ${files.keyFile}: ${why}`, { cause: err });
  }
  return material;
}
