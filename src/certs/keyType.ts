/** The public key type of a certificate in words, which describeCertificate does not report. */
import { X509Certificate } from 'node:crypto';

const CURVES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

/** e.g. "EC P-256", "RSA 2048 bits"; the first certificate in `pem`. */
export function publicKeyType(pem: string): string {
  const key = new X509Certificate(pem).publicKey;
  const details = key.asymmetricKeyDetails;
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const curve = details?.namedCurve ?? 'unknown curve';
      return `EC ${CURVES[curve] ?? curve}`;
    }
    case 'rsa':
      return `RSA ${details?.modulusLength ?? '?'} bits`;
    default:
      return key.asymmetricKeyType ?? 'unknown';
  }
}
