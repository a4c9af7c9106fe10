/**
 * Whether a CA may sign intermediate CAs. The proxy trusts every chain that ends at its CA file, so a CA
 * without a pathLen limit (or one above 0) lets any intermediate it signs issue client certificates the proxy
 * accepts, without the project CA's holder seeing them. `mxproxy certs init` makes CAs with pathLen 0.
 */
import 'reflect-metadata'; // @peculiar/x509 uses tsyringe, which needs the Reflect metadata API before it loads
import * as x509 from '@peculiar/x509';

/** A CA's basicConstraints pathLen; 'unlimited' when the CA has none; 'not-a-ca' without basicConstraints CA:TRUE. */
export type CaPathLen = number | 'unlimited' | 'not-a-ca';

/** The pathLen constraint of the first certificate in `pem`. Throws when it cannot be parsed. */
export function caPathLen(pem: string): CaPathLen {
  const bc = new x509.X509Certificate(pem).getExtension(x509.BasicConstraintsExtension);
  if (!bc?.ca) return 'not-a-ca';
  return bc.pathLength ?? 'unlimited';
}

/** True when the first certificate in `pem` is a CA that may sign other CAs. */
export function allowsSubCa(pem: string): boolean {
  const pathLen = caPathLen(pem);
  return pathLen === 'unlimited' || (typeof pathLen === 'number' && pathLen > 0);
}
