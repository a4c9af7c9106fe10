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

  constructor(opts: SessionCacheOptions = {}) {
    this.perProxy = Math.max(1, opts.perProxy ?? 2);
    this.proxies = Math.max(1, opts.proxies ?? 64);
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
    list.push(session);
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
