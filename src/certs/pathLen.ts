/**
 * Whether a CA may sign intermediate CAs, for a PEM at hand (`mxproxy audit`). The proxy reads the same
 * constraint at start (src/net/trust.ts) from the DER itself, without the X.509 library; this is that reader.
 * `mxproxy certs init` makes CAs with pathLen 0.
 */
import { X509Certificate } from 'node:crypto';
import { allowsSubCas, pathLenOf } from '../net/trust.js';

/** A CA's basicConstraints pathLen; 'unlimited' when the CA has none (or it cannot be read); 'not-a-ca' for a leaf. */
export type CaPathLen = number | 'unlimited' | 'not-a-ca';

/** The pathLen constraint of the first certificate in `pem`. Throws when it cannot be parsed. */
export function caPathLen(pem: string): CaPathLen {
  const cert = new X509Certificate(pem);
  if (!cert.ca) return 'not-a-ca';
  const pathLen = pathLenOf(cert);
  return typeof pathLen === 'number' ? pathLen : 'unlimited';
}

/** True when the first certificate in `pem` is a CA that may sign other CAs. */
export function allowsSubCa(pem: string): boolean {
  return allowsSubCas(new X509Certificate(pem));
}
