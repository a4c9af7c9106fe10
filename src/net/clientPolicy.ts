/**
 * What Node's chain verification lets through and the gate must not: a client certificate that is itself a CA
 * (basicConstraints CA:TRUE) — OpenSSL does not look at the leaf's basicConstraints — and, when a configured CA
 * allows intermediates (no pathLen 0), a certificate issued by an intermediate CA the client sent along.
 * Either would let the holder of one certificate mint identities the rules then authorize.
 */
import type { X509Certificate } from 'node:crypto';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { allowsSubCas, pemCertificates } from './trust.js';

export type ClientRefusalCode = 'ERR_CLIENT_IS_CA' | 'ERR_CLIENT_VIA_SUB_CA';

export interface ClientRefusal {
  code: ClientRefusalCode;
  message: string;
}

export type ClientPolicy = (socket: TLSSocket, peer: PeerCertificate) => ClientRefusal | null;

/** The policy for a CA bundle (PEM), once per terminator. */
export function clientPolicy(caPem: string | Buffer): ClientPolicy {
  const anchors = pemCertificates(caPem);
  // With pathLen 0 on every anchor OpenSSL already refuses intermediates; only otherwise is the (dearer)
  // X509Certificate of the peer needed.
  const checkIssuer = anchors.some(allowsSubCas);
  return (socket, peer) => {
    if (peer.ca) {
      return { code: 'ERR_CLIENT_IS_CA', message: 'client certificate rejected: it is a CA certificate (basicConstraints CA:TRUE)' };
    }
    if (checkIssuer && !issuedByAnchor(socket.getPeerX509Certificate(), anchors)) {
      return {
        code: 'ERR_CLIENT_VIA_SUB_CA',
        message: 'client certificate rejected: issued by an intermediate CA that is not in the CA file',
      };
    }
    return null;
  };
}

/**
 * The chain is verified already; this only asks whether its second link is one of the configured CAs, by name
 * and key identifier (X509_check_issued), not by a second signature check.
 */
function issuedByAnchor(leaf: X509Certificate | undefined, anchors: X509Certificate[]): boolean {
  return leaf !== undefined && anchors.some((ca) => leaf.checkIssued(ca));
}
