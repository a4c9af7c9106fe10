/** Reads the sslCertificate triple (and the sslCrl file) and checks them before any client is accepted. */
import fs from 'node:fs';
import tls from 'node:tls';
import type { TlsFiles } from '../config/types.js';
import type { TlsMaterial } from './tlsTerminator.js';
import { checkCrls, CrlError, type CrlErrorCode } from './crl.js';
import { checkTrustAnchors, subCaWarnings, TrustError } from './trust.js';

export type TlsSetupCode = 'ERR_TLS_SETUP' | 'ERR_CA_PUBLIC' | 'ERR_CA_NOT_CA' | 'ERR_CA_INVALID' | CrlErrorCode;

export class TlsSetupError extends Error {
  constructor(
    message: string,
    /** ERR_TLS_SETUP, or the trust anchor's or CRL's own code (ERR_CA_PUBLIC, ERR_CRL_MISSING, …). */
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

export interface TlsLoadOptions {
  /** The proxy's sslCrl file. */
  crlFile?: string;
  /** Told what is allowed but weak (a CA that allows intermediate CAs, a CRL about to expire); the proxy logs it. */
  warn?: (message: string) => void;
}

export function loadTlsMaterial(files: TlsFiles, opts: TlsLoadOptions = {}): TlsMaterial {
  const ca = read(files.caFile, 'CA certificate');
  const material: TlsMaterial = { cert: read(files.certFile, 'certificate'), key: read(files.keyFile, 'private key'), ca };
  let anchors;
  try {
    anchors = checkTrustAnchors(ca, files.caFile);
  } catch (err) {
    throw new TlsSetupError((err as Error).message, err instanceof TrustError ? err.code : 'ERR_TLS_SETUP');
  }
  const warnings = subCaWarnings(anchors, files.caFile);
  if (opts.crlFile !== undefined) {
    try {
      const checked = checkCrls(read(opts.crlFile, 'CRL'), opts.crlFile, anchors, files.caFile);
      material.crl = checked.crls;
      warnings.push(...checked.warnings);
    } catch (err) {
      if (err instanceof CrlError) throw new TlsSetupError(err.message, err.code);
      throw err;
    }
  }
  try {
    tls.createSecureContext(material); // bad PEM, key not matching the certificate, a CRL OpenSSL cannot read, …
  } catch (err) {
    const message = (err as Error).message;
    if (opts.crlFile !== undefined && /CRL/.test(message)) throw new TlsSetupError(`sslCrl ${opts.crlFile}: ${message}`, 'ERR_CRL_INVALID');
    throw new TlsSetupError(`sslCertificate ${files.certFile} / ${files.keyFile}: ${message}`);
  }
  for (const w of warnings) opts.warn?.(w);
  return material;
}
