/**
 * TLS sessions a client keeps to resume with (src/client/connect.ts): a resumed handshake skips the certificate
 * exchange and both signatures, most of a connection's cost on either side. Memory only, small and bounded.
 *
 * A session carries the identity it began with: the proxy takes the client certificate from the ticket, not from
 * the connection. So sessions are kept per proxy address, server name, client certificate and trusted CA — one
 * made with another certificate is never offered. With TLS 1.3 the tickets arrive after the handshake, in the
 * socket's 'session' events (OpenSSL sends two after a full handshake, none after a resumption), so the latest
 * ones are kept and used again until the proxy stops taking them; it then does a full handshake, which brings
 * new tickets.
 *
 * With `keepPeerCertificate: false` (what `mxproxy forward` uses) a TLS 1.3 session is kept without the copy of
 * the proxy's certificate OpenSSL puts in it. Offering a session makes OpenSSL decode all of it, and decoding that
 * certificate's public key is slow in OpenSSL 3.0 (about 200 µs, most of what offering the session costs, measured
 * in the forwarder). Nothing is checked with that copy on resumption: TLS 1.3 resumption authenticates the proxy by
 * the session's secret, OpenSSL does not verify the certificate again and Node skips the host name check; the
 * only difference is that getPeerCertificate() on a resumed connection returns an empty object. TLS 1.2 sessions
 * are kept whole (there Node wants the certificate).
 */
import { createHash } from 'node:crypto';

/** The TLS material a session belongs to (the `tls` of ConnectOptions). */
export interface SessionOwner {
  cert: string | Buffer;
  key: string | Buffer;
  ca: string | Buffer;
}

export interface SessionCacheOptions {
  /** Sessions kept per proxy (the latest); default 2, what one full TLS 1.3 handshake brings. */
  perProxy?: number;
  /** Proxies (address, name and certificate) remembered; the least recently used goes first. Default 64. */
  proxies?: number;
  /**
   * Keep the copy of the proxy's certificate in TLS 1.3 sessions (default true): getPeerCertificate() then works
   * on a resumed connection too. False saves decoding it each time a session is offered (see above).
   */
  keepPeerCertificate?: boolean;
}

/** The header of the DER element at `at`: where its contents begin and where it ends. Single-byte tags only. */
function derElement(der: Buffer, at: number): { body: number; end: number } | undefined {
  if (at + 2 > der.length || (der[at]! & 0x1f) === 0x1f) return undefined;
  const first = der[at + 1]!;
  if (first < 0x80) return { body: at + 2, end: at + 2 + first };
  const n = first & 0x7f;
  if (n === 0 || n > 3 || at + 2 + n > der.length) return undefined;
  let length = 0;
  for (let k = 0; k < n; k++) length = length * 256 + der[at + 2 + k]!;
  return { body: at + 2 + n, end: at + 2 + n + length };
}

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/**
 * A TLS 1.3 session (OpenSSL's DER, as Node's 'session' event gives it) without its `peer` field ([3], the
 * server's certificate). Anything else — TLS 1.2, no such field, a layout not recognised — comes back unchanged.
 */
export function withoutPeerCertificate(session: Buffer): Buffer {
  const outer = session[0] === 0x30 ? derElement(session, 0) : undefined;
  if (!outer || outer.end !== session.length) return session;
  const kept: Buffer[] = [];
  let tls13 = false;
  let dropped = false;
  for (let at = outer.body, index = 0; at < outer.end; index++) {
    const e = derElement(session, at);
    if (!e || e.end > outer.end) return session;
    // SSL_SESSION_ASN1: version, then ssl_version (INTEGER 0x0304 for TLS 1.3), …, peer [3] EXPLICIT OPTIONAL, …
    if (index === 1) tls13 = session[at] === 0x02 && e.end - e.body === 2 && session[e.body] === 0x03 && session[e.body + 1] === 0x04;
    if (session[at] === 0xa3) dropped = true;
    else kept.push(session.subarray(at, e.end));
    at = e.end;
  }
  if (!tls13 || !dropped) return session;
  const body = Buffer.concat(kept);
  return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
}

/** The certificate and CA, hashed once per material object (the same object on every connect of a forwarder). */
const owners = new WeakMap<SessionOwner, string>();
function ownerHash(owner: SessionOwner): string {
  let h = owners.get(owner);
  if (h === undefined) {
    h = createHash('sha256').update(owner.cert).update('\0').update(owner.ca).digest('hex').slice(0, 32);
    owners.set(owner, h);
  }
  return h;
}

export class TlsSessionCache {
  private readonly sessions = new Map<string, Buffer[]>();
  private readonly perProxy: number;
  private readonly proxies: number;
  private readonly keepPeerCertificate: boolean;

  constructor(opts: SessionCacheOptions = {}) {
    this.perProxy = Math.max(1, opts.perProxy ?? 2);
    this.proxies = Math.max(1, opts.proxies ?? 64);
    this.keepPeerCertificate = opts.keepPeerCertificate ?? true;
  }

  /** Where a session may be offered again: the same address, server name, certificate and CA. */
  static keyOf(host: string, port: number, servername: string | undefined, owner: SessionOwner): string {
    return `${host}|${port}|${servername ?? ''}|${ownerHash(owner)}`;
  }

  /** The latest session for `key`. */
  get(key: string): Buffer | undefined {
    const list = this.sessions.get(key);
    if (!list) return undefined;
    // Most recently used last: the first key is the one to evict.
    this.sessions.delete(key);
    this.sessions.set(key, list);
    return list.at(-1);
  }

  add(key: string, session: Buffer): void {
    const list = this.sessions.get(key) ?? [];
    this.sessions.delete(key);
    list.push(this.keepPeerCertificate ? session : withoutPeerCertificate(session));
    if (list.length > this.perProxy) list.splice(0, list.length - this.perProxy);
    this.sessions.set(key, list);
    while (this.sessions.size > this.proxies) {
      const oldest = this.sessions.keys().next().value;
      if (oldest === undefined) break;
      this.sessions.delete(oldest);
    }
  }

  /**
   * Forgets the sessions for `key`: a connection that resumed one was refused (the proxy refuses a resumed
   * session whose certificate has expired or been revoked since). All of them, as they hold the same
   * certificate; the next attempt is a full handshake, with the proxy's own verdict.
   */
  forget(key: string): void {
    this.sessions.delete(key);
  }

  /** Sessions held, over all proxies. */
  get size(): number {
    let n = 0;
    for (const list of this.sessions.values()) n += list.length;
    return n;
  }

  clear(): void {
    this.sessions.clear();
  }
}
