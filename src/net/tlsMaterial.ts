/** Reads the sslCertificate triple (and the sslCrl file) and checks them before any client is accepted. */
import fs from 'node:fs';
import tls from 'node:tls';
import type { TlsFiles } from '../config/types.js';
import { TlsMaterialError } from '../errors.js';
import type { TlsMaterial } from './tlsTerminator.js';
import { checkCrls } from './crl.js';
import { checkTrustAnchors, subCaWarnings } from './trust.js';

function read(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new TlsMaterialError('ERR_TLS_SETUP', `cannot read ${what} ${file}: ${why}`, { cause: err });
  }
}

export interface TlsLoadOptions {
  /** The proxy's sslCrl file. */
  crlFile?: string | undefined;
  /** Told what is allowed but weak (a CA that allows intermediate CAs, a CRL about to expire); the proxy logs it. */
  warn?: (message: string) => void;
}

/** Throws TlsMaterialError with the problem's own code (ERR_TLS_SETUP, ERR_CA_PUBLIC, ERR_CRL_MISSING, …). */
export function loadTlsMaterial(files: TlsFiles, opts: TlsLoadOptions = {}): TlsMaterial {
  const ca = read(files.caFile, 'CA certificate');
  const material: TlsMaterial = { cert: read(files.certFile, 'certificate'), key: read(files.keyFile, 'private key'), ca };
  const anchors = checkTrustAnchors(ca, files.caFile);
  const warnings = subCaWarnings(anchors, files.caFile);
  if (opts.crlFile !== undefined) {
    const checked = checkCrls(read(opts.crlFile, 'CRL'), opts.crlFile, anchors, files.caFile);
    material.crl = checked.crls;
    warnings.push(...checked.warnings);
  }
  try {
    tls.createSecureContext(material); // bad PEM, key not matching the certificate, a CRL OpenSSL cannot read, …
  } catch (err) {
    const message = (err as Error).message;
    if (opts.crlFile !== undefined && /CRL/.test(message)) {
      throw new TlsMaterialError('ERR_CRL_INVALID', `sslCrl ${opts.crlFile}: ${message}`, { cause: err });
    }
    throw new TlsMaterialError('ERR_TLS_SETUP', `sslCertificate ${files.certFile} / ${files.keyFile}: ${message}`, { cause: err });
  }
  for (const w of warnings) opts.warn?.(w);
  return material;
}
