/**
 * How the development certificate set is recognised (`npm start` creates it, see src/cli/devCerts.ts):
 * here, below the CLI, so the audit can tell it apart too. Path logic only: no X.509 library is loaded.
 */
import path from 'node:path';
import type { TlsFiles } from '../config/types.js';

/** Certificates are generated only into a folder of this name, and only when all three files are missing. */
export const DEV_CERTS_DIR = 'dev-certs';
/** The development CA's common name starts with this (then host and date), also when copied elsewhere. */
export const DEV_CA_NAME = 'mxproxy development CA';

export function isDevCertificateSet(tls: TlsFiles): boolean {
  const dir = path.dirname(tls.certFile);
  return (
    path.basename(dir) === DEV_CERTS_DIR &&
    [tls.keyFile, tls.caFile].every((f) => path.dirname(f) === dir) &&
    path.basename(tls.certFile) === 'server.pem' &&
    path.basename(tls.keyFile) === 'server.key' &&
    path.basename(tls.caFile) === 'ca.pem'
  );
}
