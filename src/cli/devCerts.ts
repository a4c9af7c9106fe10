/**
 * First start on the default configuration: development certificates, unique to this checkout, created on
 * demand so `npm install && npm start` works — never shipped in the repository, and loudly labelled.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEV_CA_NAME, isDevCertificateSet } from '../certs/devSet.js';
import type { TlsFiles } from '../config/types.js';
import type { Logger } from '../log.js';

export { DEV_CERTS_DIR, isDevCertificateSet } from '../certs/devSet.js';
export const DEV_CLIENT_IDENTITY = 'mxproxy-dev-client';

/** Creates ca, server and client certificates when the config names a dev-certs set that does not exist yet.
 * Returns true when it created them. */
export async function ensureDevCertificates(tls: TlsFiles, logger: Logger): Promise<boolean> {
  if (!isDevCertificateSet(tls)) return false;
  const present = [tls.certFile, tls.keyFile, tls.caFile].filter((f) => fs.existsSync(f));
  if (present.length > 0) return false; // a partial set is the user's to fix: the config check names what is missing
  const dir = path.dirname(tls.certFile);
  const host = os.hostname();
  // Loaded only here: the X.509 library adds ~20 MB to a process that merely starts on existing certificates.
  const { createCa, issueCertificate, writeIssued } = await import('../certs/index.js');
  const ca = await createCa({ commonName: `${DEV_CA_NAME} (${host}, ${new Date().toISOString().slice(0, 10)})` });
  const server = await issueCertificate(ca, {
    kind: 'server',
    commonName: 'localhost',
    dns: [...new Set(['localhost', host])],
    ips: ['127.0.0.1', '::1'],
  });
  const client = await issueCertificate(ca, { kind: 'client', commonName: DEV_CLIENT_IDENTITY });
  await writeIssued(dir, 'ca', ca);
  await writeIssued(dir, 'server', server);
  await writeIssued(dir, 'client', client);
  logger.warn(
    `created DEVELOPMENT certificates in ${dir} (CA, server, client CN=${DEV_CLIENT_IDENTITY}). ` +
      'They are for development only: for a plant, create a project CA and host certificates and point ' +
      'sslCertificate at them.',
  );
  return true;
}
