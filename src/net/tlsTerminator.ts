/**
 * TLS termination for accepted TCP sockets. A never-listening tls.Server does the work: sockets are handed to
 * it with `emit('connection')` (documented for injecting connections), so Node's own client-certificate
 * verification applies (chain to the configured CA, validity, required certificate, the CRL) — no
 * re-implementation. On top, what it lets through: clients that are CAs (net/clientPolicy.ts).
 */
import { constants } from 'node:crypto';
import type { Socket } from 'node:net';
import tls, { type PeerCertificate } from 'node:tls';
import type { CertSummary } from '../shared/events.js';
import { ALPN_PROTOCOL } from '../protocol/frame.js';
import { encodeIdentity } from '../shared/identity.js';
import { clientPolicy } from './clientPolicy.js';
import { certificateIdentities } from './identity.js';
import { errorCode } from './socketEvents.js';

export interface TlsMaterial {
  cert: string | Buffer;
  key: string | Buffer;
  ca: string | Buffer;
  /** CRLs (PEM, one per element: OpenSSL reads only the first CRL of a string). Set: every chain is checked. */
  crl?: string[];
}

export interface TlsOutcome {
  /** `identity`: the first name's value, as logs show it; `identities`: every name as `cn:…`, `dns:…`, `uri:…`. */
  ok(
    raw: Socket,
    socket: tls.TLSSocket,
    info: { identity: string | null; identities: string[]; protocol: string; alpn: string | null; resumed: boolean; cert: CertSummary },
  ): void;
  failed(raw: Socket, code: string, message: string): void;
}

/**
 * Node hands 'secureConnection' and 'tlsClientError' the TLSSocket, which keeps the accepted socket it wraps
 * as `_parent` (lib/_tls_wrap.js). That is the only link back to our connection; the tests on TLS refusals
 * fail loudly if a Node release ever drops it.
 */
function rawOf(socket: tls.TLSSocket): Socket | undefined {
  return (socket as unknown as { _parent?: Socket })._parent;
}

/** What the event log keeps of a verified client certificate: fields Node has already parsed, no DER work. */
export function certSummary(peer: Pick<PeerCertificate, 'serialNumber' | 'fingerprint256' | 'issuer' | 'valid_to'>): CertSummary {
  const issuer = Object.entries((peer.issuer ?? {}) as unknown as Record<string, string | string[] | undefined>)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : (v ?? '')}`)
    .join(', ');
  const notAfter = new Date(peer.valid_to);
  return {
    serial: peer.serialNumber ?? '',
    fingerprint256: peer.fingerprint256 ?? '',
    issuer,
    notAfter: Number.isNaN(notAfter.getTime()) ? String(peer.valid_to ?? '') : notAfter.toISOString(),
  };
}

export function createTlsTerminator(material: TlsMaterial, outcome: TlsOutcome): tls.Server {
  const server = tls.createServer({
    cert: material.cert,
    key: material.key,
    // Replaces Node's default (public) roots: only the project CA is trusted.
    ca: material.ca,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    ALPNProtocols: [ALPN_PROTOCOL],
    // With a CRL Node has OpenSSL check every certificate of the chain against it (CRL_CHECK_ALL).
    ...(material.crl && material.crl.length > 0 ? { crl: material.crl } : {}),
    // TLS 1.2 renegotiation started by the client is refused by OpenSSL itself (a no_renegotiation alert), so no
    // second handshake is ever computed; TLS 1.3 has none.
    secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
  });
  const policy = clientPolicy(material.ca);
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    // The earliest moment the socket is ours; a renegotiation attempt now also fails the socket with
    // ERR_TLS_RENEGOTIATION_DISABLED, so the pair ends with that code in the log.
    socket.disableRenegotiation();
    const raw = rawOf(socket);
    if (!raw) {
      socket.destroy();
      return;
    }
    const peer = socket.getPeerCertificate(false);
    // Verified by Node, refused here (a CA as client, an intermediate outside the CA file, more than one CN):
    // as a TLS failure, before any request is read.
    const refusal = policy(socket, peer);
    const names = certificateIdentities(peer);
    if (refusal || !names.ok) {
      // The TLS socket first: the pair's teardown then destroys the accepted socket, which must not vanish
      // from under a live TLS socket in the middle of its handshake callback (that crashes the process).
      socket.destroy();
      if (refusal) outcome.failed(raw, refusal.code, refusal.message);
      else if (!names.ok) outcome.failed(raw, names.code, names.message);
      return;
    }
    outcome.ok(raw, socket, {
      identity: names.identities[0]?.value ?? null,
      identities: names.identities.map(encodeIdentity),
      protocol: socket.getProtocol() ?? 'unknown',
      alpn: typeof socket.alpnProtocol === 'string' ? socket.alpnProtocol : null,
      resumed: socket.isSessionReused(),
      cert: certSummary(peer),
    });
  });
  server.on('tlsClientError', (err: Error, socket: tls.TLSSocket) => {
    const raw = rawOf(socket);
    if (!raw) return;
    // A certificate that failed verification closes the socket without an error of its own; the verdict is
    // in authorizationError (CERT_HAS_EXPIRED, UNABLE_TO_VERIFY_LEAF_SIGNATURE, …).
    const verdict = socket.authorizationError;
    const code = verdict ? String(verdict) : errorCode(err);
    outcome.failed(raw, code, verdict ? `client certificate rejected: ${String(verdict)}` : err.message.trim());
  });
  return server;
}
