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

/** What the policy reads of the leaf: Node's CA flag and SHA-256 fingerprint (as getPeerCertificate gives them). */
export type PolicyLeaf = Pick<PeerCertificate, 'ca' | 'fingerprint256'>;

export type ClientPolicy = (socket: TLSSocket, peer: PolicyLeaf) => ClientRefusal | null;

/** Leaf certificates whose issuer verdict is remembered; the oldest is forgotten first. */
const VERDICTS_KEPT = 4096;

/** The policy for a CA bundle (PEM), once per terminator (a reload builds a new one, with no verdicts). */
export function clientPolicy(caPem: string | Buffer): ClientPolicy {
  const anchors = pemCertificates(caPem);
  // With pathLen 0 on every anchor OpenSSL already refuses intermediates; only otherwise is the (dearer)
  // X509Certificate of the peer needed.
  const checkIssuer = anchors.some(allowsSubCas);
  // The verdict depends only on the leaf and the anchors, and a plant's clients come back with the same few
  // certificates: it is kept per leaf (SHA-256 fingerprint, from the terminator's per-certificate facts). The first
  // getPeerX509Certificate of a socket costs ~120 µs, more than the rest of the policy and identity together.
  const verdicts = new Map<string, boolean>();
  const issuedByAnAnchor = (socket: TLSSocket, peer: PolicyLeaf): boolean => {
    const key = peer.fingerprint256;
    const known = key ? verdicts.get(key) : undefined;
    if (known !== undefined) return known;
    const verdict = issuedByAnchor(socket.getPeerX509Certificate(), anchors);
    if (key) {
      if (verdicts.size >= VERDICTS_KEPT) verdicts.delete(verdicts.keys().next().value as string);
      verdicts.set(key, verdict);
    }
    return verdict;
  };
  return (socket, peer) => {
    if (peer.ca) {
      return { code: 'ERR_CLIENT_IS_CA', message: 'client certificate rejected: it is a CA certificate (basicConstraints CA:TRUE)' };
    }
    if (checkIssuer && !issuedByAnAnchor(socket, peer)) {
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
