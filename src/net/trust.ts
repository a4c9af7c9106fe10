/**
 * The trust anchor: only the project's own CA. A certificate from the system's public roots as anchor would let
 * in every holder of any publicly issued certificate, so it is refused outright.
 */
import { rootCertificates } from 'node:tls';
import { X509Certificate as CryptoX509 } from 'node:crypto';
import { TlsMaterialError } from '../errors.js';
import { basicConstraints } from './der.js';

type TrustCode = 'ERR_CA_PUBLIC' | 'ERR_CA_NOT_CA' | 'ERR_CA_INVALID';
const trustError = (message: string, code: TrustCode = 'ERR_CA_INVALID'): TlsMaterialError => new TlsMaterialError(code, message);

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

let publicFingerprints: Set<string> | null = null;
function publicRoots(): Set<string> {
  publicFingerprints ??= new Set(rootCertificates.map((pem) => new CryptoX509(pem).fingerprint256));
  return publicFingerprints;
}

/** Checks a CA bundle (PEM text) and returns its certificates; throws TlsMaterialError with a clear reason. */
export function checkTrustAnchors(pem: string, file: string): CryptoX509[] {
  const blocks = pem.match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw trustError(`${file}: no PEM certificate found in the CA file`);
  // OpenSSL reads "-----END CERTIFICATE----------BEGIN CERTIFICATE-----" as one certificate: the second CA
  // would be silently ignored.
  if (/-----END CERTIFICATE-----[ \t]*-----BEGIN/.test(pem)) {
    throw trustError(`${file}: two certificates are joined on one line; put a line break after each "-----END CERTIFICATE-----"`);
  }
  return blocks.map((block, i) => {
    let cert: CryptoX509;
    try {
      cert = new CryptoX509(block);
    } catch (err) {
      throw trustError(`${file}: certificate #${i + 1} cannot be parsed (${(err as Error).message})`);
    }
    if (publicRoots().has(cert.fingerprint256)) {
      throw trustError(
        `${file}: "${cert.subject.replace(/\n/g, ', ')}" is a public CA from the system trust store; ` +
          'mxproxy only trusts the project\'s own CA (create one with `mxproxy certs init`)',
        'ERR_CA_PUBLIC',
      );
    }
    if (!cert.ca) throw trustError(`${file}: "${cert.subject.replace(/\n/g, ', ')}" is not a CA certificate`, 'ERR_CA_NOT_CA');
    return cert;
  });
}

/** A CA certificate's pathLen constraint: a number, 'none', or 'unreadable' (treated as none). */
export function pathLenOf(cert: CryptoX509): number | 'none' | 'unreadable' {
  try {
    return basicConstraints(cert)?.pathLen ?? 'none';
  } catch {
    return 'unreadable';
  }
}

/**
 * Whether a CA certificate may sign other CA certificates: no pathLen constraint, or one above 0. With pathLen 0
 * OpenSSL itself refuses a chain through an intermediate (PATH_LENGTH_EXCEEDED).
 */
export function allowsSubCas(cert: CryptoX509): boolean {
  const pathLen = pathLenOf(cert);
  return cert.ca && (typeof pathLen !== 'number' || pathLen > 0);
}

/** The warnings about a CA bundle: each CA that allows intermediate CAs, named with its file. */
export function subCaWarnings(certs: CryptoX509[], file: string): string[] {
  return certs.filter(allowsSubCas).map((cert) => {
    const pathLen = pathLenOf(cert);
    const constraint = pathLen === 'none' ? 'no pathLen constraint' : pathLen === 'unreadable' ? 'basicConstraints unreadable' : `pathLen ${pathLen}`;
    return (
      `${file}: the CA "${cert.subject.replace(/\n/g, ', ')}" allows intermediate CAs (${constraint}): a CA ` +
      'certificate it issues could issue identities. mxproxy refuses clients whose certificate is a CA or was issued ' +
      'by a CA not in this file, but a CA made by `mxproxy certs init` (pathLen 0) closes this at the source'
    );
  });
}

/** The certificates of a PEM bundle that parse; for checks on material that was already accepted by TLS. */
export function pemCertificates(pem: string | Buffer): CryptoX509[] {
  const out: CryptoX509[] = [];
  for (const block of String(pem).match(PEM_CERT) ?? []) {
    try {
      out.push(new CryptoX509(block));
    } catch {
      /* createSecureContext has judged the file; a block it skipped is not an anchor */
    }
  }
  return out;
}
