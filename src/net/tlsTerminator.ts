/**
 * TLS termination for accepted TCP sockets. A never-listening tls.Server does the work: sockets are handed to
 * it with `emit('connection')` (documented for injecting connections), so Node's own client-certificate
 * verification applies (chain to the configured CA, validity, required certificate, the CRL) — no
 * re-implementation. On top, what it lets through: clients that are CAs (net/clientPolicy.ts), and on a resumed
 * session what OpenSSL does not check again (net/resumption.ts).
 *
 * Session resumption: one secure context for the process, its session-ticket key in memory only (random at
 * start, replaced by rotateTicketKeys on a schedule the runtime keeps). Node's setTicketKeys holds one key, so
 * a rotation ends resumption for every ticket issued before it: those clients do one full handshake.
 */
import { constants, createHash, randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import tls, { type PeerCertificate } from 'node:tls';
import type { CertSummary } from '../shared/events.js';
import { ALPN_PROTOCOL } from '../protocol/frame.js';
import { encodeIdentity } from '../shared/identity.js';
import { clientPolicy, type ClientPolicy } from './clientPolicy.js';
import { sessionPeerCertificate } from './der.js';
import { certificateIdentities } from './identity.js';
import { resumptionCheck, type ResumptionCheck } from './resumption.js';
import { errorCode } from './socketEvents.js';

export interface TlsMaterial {
  cert: string | Buffer;
  key: string | Buffer;
  ca: string | Buffer;
  /** CRLs (PEM, one per element: OpenSSL reads only the first CRL of a string). Set: every chain is checked. */
  crl?: string[];
}

/** What a verified handshake tells about the client (TLS_OK's fields). */
export interface TlsOkInfo {
  identity: string | null;
  identities: string[];
  protocol: string;
  alpn: string | null;
  resumed: boolean;
  cert: CertSummary;
}

export interface TlsOutcome {
  /**
   * `identity`: the first name's value, as logs show it; `identities`: every name as `cn:…`, `dns:…`, `uri:…`.
   * `cert`: the client certificate's serial (hex) and notAfter (ms), for a later CRL or expiry check.
   */
  ok(
    raw: Socket,
    socket: tls.TLSSocket,
    info: TlsOkInfo,
    cert: { serial: string; notAfter: number },
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

/** What the gate reads from a verified leaf certificate: a function of the certificate alone. */
interface LeafFacts {
  names: ReturnType<typeof certificateIdentities>;
  identity: string | null;
  identities: string[];
  summary: CertSummary;
  cert: { serial: string; notAfter: number };
  /** What the client policy and the resumption check ask of the leaf (net/clientPolicy.ts, net/resumption.ts). */
  peer: { ca: boolean; fingerprint256: string; raw: PeerCertificate['raw'] };
}

/** Frozen: every connection with the same certificate shares them. */
function leafFactsOf(peer: PeerCertificate): LeafFacts {
  const names = certificateIdentities(peer);
  return Object.freeze({
    names,
    identity: names.ok ? (names.identities[0]?.value ?? null) : null,
    identities: Object.freeze(names.ok ? names.identities.map(encodeIdentity) : []) as string[],
    summary: Object.freeze(certSummary(peer)),
    // Verified by Node, so valid_to is a date OpenSSL printed ("Dec  1 02:05:00 2026 GMT").
    cert: Object.freeze({ serial: peer.serialNumber, notAfter: Date.parse(peer.valid_to) }),
    peer: Object.freeze({ ca: peer.ca === true, fingerprint256: peer.fingerprint256 ?? '', raw: peer.raw }),
  });
}

/** Leaf certificates whose facts are kept; the oldest is forgotten first. */
const LEAVES_KEPT = 4096;
/** By the certificate's DER itself (as a latin1 string): an exact key, no digest to compute or trust. */
const leaves = new Map<string, LeafFacts>();

/**
 * A plant's clients come back with the same few certificates: their names, summary and dates are parsed once
 * per certificate, not once per connection. The certificate is found in the session (getSession: OpenSSL
 * serializes what it holds, ~6 µs), not with getPeerCertificate, which costs ~35 µs a call — three digests and
 * every field converted to JavaScript — and more in a busy proxy; that is left for a certificate not seen before.
 * Both read the same certificate (the session's peer), and a fact is only kept under the DER it was read from.
 */
function leafFacts(socket: tls.TLSSocket): LeafFacts {
  const session = socket.getSession();
  const der = session ? sessionPeerCertificate(session) : undefined;
  const known = der ? leaves.get(Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('latin1')) : undefined;
  if (known) return known;
  const peer = socket.getPeerCertificate(false);
  const facts = leafFactsOf(peer);
  if (peer.raw) {
    if (leaves.size >= LEAVES_KEPT) leaves.delete(leaves.keys().next().value as string);
    leaves.set(peer.raw.toString('latin1'), facts);
  }
  return facts;
}

/** Bytes of a session-ticket key as Node takes it (name, HMAC and AES keys, 16 each). */
export const TICKET_KEY_BYTES = 48;

/**
 * Seconds a session may be resumed after the full handshake that began it. Node's default, written out: it
 * bounds how long a client can go without its certificate chain being verified again (a resumption issues no
 * new ticket with OpenSSL 3, so the window is not extended by resuming).
 */
export const SESSION_LIFETIME_S = 300;

export interface TerminatorOptions {
  /** The first ticket key (48 bytes) instead of a random one: two terminators that share it resume each other's
   * sessions (tests, embedding). Rotation replaces it like any other key. */
  ticketKeys?: Buffer | undefined;
  /** Wall-clock ms for the resumption checks; default Date.now, the clock OpenSSL judges validity by. */
  now?: (() => number) | undefined;
}

/**
 * The secure-context options for a material, for the server and for any later setSecureContext (a reload):
 * everything Node would otherwise reset. No `ticketKeys` on purpose: a server remembers that option and puts
 * it back on every setSecureContext, which would revive the first key after rotations.
 */
export function secureContextOptions(material: TlsMaterial): tls.SecureContextOptions {
  return {
    cert: material.cert,
    key: material.key,
    // Replaces Node's default (public) roots: only the project CA is trusted.
    ca: material.ca,
    minVersion: 'TLSv1.2',
    // With a CRL Node has OpenSSL check every certificate of the chain against it (CRL_CHECK_ALL).
    ...(material.crl && material.crl.length > 0 ? { crl: material.crl } : {}),
    // TLS 1.2 renegotiation started by the client is refused by OpenSSL itself (a no_renegotiation alert), so no
    // second handshake is ever computed; TLS 1.3 has none.
    secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
    // A session is only resumed under the trust anchors it was verified against (OpenSSL compares this context
    // id with the one in the ticket), whatever the ticket key; Node's default is a hash of the command line.
    sessionIdContext: createHash('sha256').update('mxproxy session\0').update(material.ca).digest('hex').slice(0, 32),
    sessionTimeout: SESSION_LIFETIME_S,
  };
}

/** What the 'secureConnection' handler judges with; replaced as a whole when the material changes. */
interface Gate {
  policy: ClientPolicy;
  resumption: ResumptionCheck;
}

const gates = new WeakMap<tls.Server, Gate>();

function gateFor(material: TlsMaterial): Gate {
  return { policy: clientPolicy(material.ca), resumption: resumptionCheck(material.ca, material.crl) };
}

/**
 * A new session-ticket key (random unless given): tickets issued before no longer resume, those clients do a
 * full handshake and get tickets under the new key. Effective for handshakes that start afterwards.
 */
export function rotateTicketKeys(server: tls.Server, keys: Buffer = randomBytes(TICKET_KEY_BYTES)): void {
  server.setTicketKeys(keys);
}

/**
 * Puts new material in force (a reload): a new secure context built as at start, the CA-as-client policy and
 * the resumption checks from the new CA file and CRLs, and a new ticket key — no session verified under the
 * old material resumes under the new one. Handshakes already under way finish with the old context.
 */
export function reloadTlsTerminator(server: tls.Server, material: TlsMaterial): void {
  server.setSecureContext(secureContextOptions(material));
  gates.set(server, gateFor(material));
  // setSecureContext already gave the new context a random key of Node's; this one is ours, like at start.
  rotateTicketKeys(server);
}

export function createTlsTerminator(material: TlsMaterial, outcome: TlsOutcome, opts: TerminatorOptions = {}): tls.Server {
  const server = tls.createServer({
    ...secureContextOptions(material),
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: [ALPN_PROTOCOL],
  });
  rotateTicketKeys(server, opts.ticketKeys);
  gates.set(server, gateFor(material));
  const now = opts.now ?? Date.now;
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    // The earliest moment the socket is ours; a renegotiation attempt now also fails the socket with
    // ERR_TLS_RENEGOTIATION_DISABLED, so the pair ends with that code in the log.
    socket.disableRenegotiation();
    const raw = rawOf(socket);
    if (!raw) {
      socket.destroy();
      return;
    }
    const facts = leafFacts(socket);
    const gate = gates.get(server)!;
    const resumed = socket.isSessionReused();
    // Verified by Node, refused here (a CA as client, an intermediate outside the CA file, more than one CN; on
    // a resumed session also expired, revoked): as a TLS failure, before any request is read.
    const refusal = (resumed ? gate.resumption(facts.peer, now()) : null) ?? gate.policy(socket, facts.peer);
    const names = facts.names;
    if (refusal || !names.ok) {
      // The TLS socket first: the pair's teardown then destroys the accepted socket, which must not vanish
      // from under a live TLS socket in the middle of its handshake callback (that crashes the process).
      socket.destroy();
      if (refusal) outcome.failed(raw, refusal.code, refusal.message);
      else if (!names.ok) outcome.failed(raw, names.code, names.message);
      return;
    }
    outcome.ok(
      raw,
      socket,
      {
        identity: facts.identity,
        identities: facts.identities,
        protocol: socket.getProtocol() ?? 'unknown',
        alpn: typeof socket.alpnProtocol === 'string' ? socket.alpnProtocol : null,
        resumed,
        cert: facts.summary,
      },
      facts.cert,
    );
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
