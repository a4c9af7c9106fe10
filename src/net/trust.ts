/**
 * The trust anchor: only the project's own CA. A certificate from the system's public roots as anchor would let
 * in every holder of any publicly issued certificate, so it is refused outright.
 */
import { rootCertificates } from 'node:tls';
import { X509Certificate as CryptoX509 } from 'node:crypto';
import { TlsMaterialError } from '../errors.js';

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

let publicFingerprints: Set<string> | null = null;
function publicRoots(): Set<string> {
  publicFingerprints ??= new Set(rootCertificates.map((pem) => new CryptoX509(pem).fingerprint256));
  return publicFingerprints;
}

/** Checks a CA bundle (PEM text) and returns its certificates; throws TlsMaterialError with a clear reason. */
export function checkTrustAnchors(pem: string, file: string): CryptoX509[] {
  const blocks = pem.match(PEM_CERT) ?? [];
  if (blocks.length === 0) {
    throw new TlsMaterialError('ERR_CA_INVALID', `${file}: no PEM certificate found in the CA file`);
  }
  // OpenSSL reads "-----END CERTIFICATE----------BEGIN CERTIFICATE-----" as one certificate: the second CA
  // would be silently ignored.
  if (/-----END CERTIFICATE-----[ \t]*-----BEGIN/.test(pem)) {
    throw new TlsMaterialError(
      'ERR_CA_INVALID',
      `${file}: two certificates are joined on one line; put a line break after each "-----END CERTIFICATE-----"`,
    );
  }
  return blocks.map((block, i) => {
    let cert: CryptoX509;
    try {
      cert = new CryptoX509(block);
    } catch (err) {
      const why = (err as Error).message;
      throw new TlsMaterialError('ERR_CA_INVALID', `${file}: certificate #${i + 1} cannot be parsed (${why})`, { cause: err });
    }
    if (publicRoots().has(cert.fingerprint256)) {
      throw new TlsMaterialError(
        'ERR_CA_PUBLIC',
        `${file}: "${cert.subject.replace(/\n/g, ', ')}" is a public CA from the system trust store; ` +
          'mxproxy only trusts the project\'s own CA (create one with `mxproxy certs init`)',
      );
    }
    if (!cert.ca) {
      throw new TlsMaterialError('ERR_CA_NOT_CA', `${file}: "${cert.subject.replace(/\n/g, ', ')}" is not a CA certificate`);
    }
    return cert;
  });
}
