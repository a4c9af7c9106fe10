/**
 * The client side of mxproxy/1 as a library: connect({ proxy, target, tls }) resolves to a socket that is
 * already linked to the target server, or rejects with a ProxyDeclinedError whose `code` is the proxy's
 * reply code (ERR_NOT_ALLOWED, …), or with a ProxyConnectError (ERR_PROXY_CONNECT; `causeCode` says why:
 * ECONNREFUSED, a TLS verdict, ETIMEDOUT, ERR_BAD_REPLY). Tests build on it; the forwarder's pair machine
 * takes its two steps one at a time (dialProxy, then requestTarget), each outcome an event. With a
 * `sessionCache` (./sessionCache.ts) connections resume TLS sessions instead of doing a full handshake each.
 */
import net from 'node:net';
import tls from 'node:tls';
import { ProxyConnectError, ProxyDeclinedError } from '../errors.js';
import { formatHostPort, parseHostPort, type HostPort } from '../shared/address.js';
import { ALPN_PROTOCOL, FrameReader, decodeBody, encodeRequest, parseReply, type Reply } from '../protocol/frame.js';
import { TlsSessionCache } from './sessionCache.js';

export { TlsSessionCache } from './sessionCache.js';

export interface ConnectOptions {
  /** The proxy, "host:port" or { host, port }. */
  proxy: string | HostPort;
  /** Name of the server to reach (a `server` entry of the proxy). */
  target: string;
  /** Client certificate, key and the project CA (PEM). `servername` defaults to the proxy host
   * when it is a name. `secureContext`: the same certificate, key and CA as a context made once with
   * clientSecureContext(), used instead of building one from the PEM text on each connection (what a client that
   * connects often wants: building it costs more than a resumed handshake). */
  tls: { cert: string | Buffer; key: string | Buffer; ca: string | Buffer; servername?: string; secureContext?: tls.SecureContext };
  /** ms for TLS plus the proxy's reply; default 10000. */
  timeout?: number;
  /** Resume with sessions from here, and keep the ones the proxy sends (one cache per client, for its lifetime). */
  sessionCache?: TlsSessionCache;
  /** A session to offer (from a socket's 'session' event), instead of the cache's. */
  session?: Buffer;
}

/** Session resumption for one dial: where sessions come from and go to. */
export interface ResumeOptions {
  sessionCache?: TlsSessionCache | undefined;
  session?: Buffer | undefined;
}

/**
 * The TLS context of a client with this certificate, key and CA, to be made once and given to every connection
 * as `tls.secureContext`: tls.connect() would otherwise parse the PEM, the key and the CA anew each time. Trusts
 * only `ca` (never the system's roots), as a connection given the PEM text does.
 */
export function clientSecureContext(material: { cert: string | Buffer; key: string | Buffer; ca: string | Buffer }): tls.SecureContext {
  return tls.createSecureContext({ cert: material.cert, key: material.key, ca: material.ca });
}

function splitHostPort(proxy: ConnectOptions['proxy']): HostPort {
  if (typeof proxy !== 'string') return proxy;
  const parsed = parseHostPort(proxy);
  if (!parsed.ok) throw new TypeError(`proxy must be "host:port", got "${proxy}"`);
  return parsed.value;
}

/** One TLS connection to the proxy, in progress. */
export interface ProxyDial {
  socket: tls.TLSSocket;
  /** Give up: destroy the socket; neither callback is called afterwards. */
  abort(): void;
}

/**
 * Opens the mutual-TLS connection to the proxy: `onConnected` once the handshake is done, or `onFailed` with
 * the error (refused, reset, a TLS verdict such as ERR_TLS_CERT_ALTNAME_INVALID). Exactly one of them, once.
 * After `onConnected` the socket's own errors are the caller's to handle. No timer: the caller's deadline.
 */
export function dialProxy(
  proxy: ConnectOptions['proxy'],
  tlsOptions: ConnectOptions['tls'],
  onConnected: (socket: tls.TLSSocket) => void,
  onFailed: (err: NodeJS.ErrnoException) => void,
  resume: ResumeOptions = {},
): ProxyDial {
  const { host, port } = splitHostPort(proxy);
  // SNI carries host names only (RFC 6066); an IP address is still checked against the certificate's IP SANs.
  const servername = tlsOptions.servername ?? (net.isIP(host) ? undefined : host);
  const cache = resume.sessionCache;
  const key = cache ? TlsSessionCache.keyOf(host, port, servername, tlsOptions) : '';
  const session = resume.session ?? cache?.get(key);
  const socket = tls.connect({
    host,
    port,
    servername,
    ...(tlsOptions.secureContext ? { secureContext: tlsOptions.secureContext } : { cert: tlsOptions.cert, key: tlsOptions.key, ca: tlsOptions.ca }),
    ALPNProtocols: [ALPN_PROTOCOL],
    // A session the proxy no longer takes (its ticket key rotated, too old) costs nothing: a full handshake.
    ...(session ? { session } : {}),
  });
  socket.setNoDelay(true);
  if (cache) {
    // TLS 1.3 tickets come after the handshake, while the request is under way: listen for the socket's life.
    socket.on('session', (s: Buffer) => cache.add(key, s));
  }
  let settled = false;
  const onError = (err: NodeJS.ErrnoException) => {
    if (settled) return;
    settled = true;
    socket.off('close', onClose);
    socket.destroy();
    if (session) cache?.forget(key);
    onFailed(err);
  };
  const onClose = () => onError(Object.assign(new Error('the proxy closed the connection during the TLS handshake'), { code: 'ECONNRESET' }));
  socket.once('error', onError);
  socket.once('close', onClose);
  socket.once('secureConnect', () => {
    if (settled) return;
    settled = true;
    socket.off('error', onError);
    socket.off('close', onClose);
    if (cache && socket.isSessionReused()) {
      // The proxy judges a resumed session after the handshake (expired or revoked since) and then closes
      // without a byte: forget the sessions, so the next attempt is a full handshake with the proxy's verdict.
      socket.once('close', () => {
        if (socket.bytesRead === 0) cache.forget(key);
      });
    }
    onConnected(socket);
  });
  return {
    socket,
    abort() {
      if (settled) return;
      settled = true;
      socket.off('error', onError);
      socket.off('close', onClose);
      socket.on('error', () => {});
      socket.destroy();
    },
  };
}

/** What the proxy answered, or why its answer could not be read. */
export type RequestOutcome = { kind: 'reply'; reply: Reply } | { kind: 'bad-reply'; message: string };

/**
 * Sends the request for `target` on a connected socket and reads the reply frame: `onOutcome` once, when it is
 * complete. Bytes the server sent right after the reply are pushed back into the socket, so whoever reads or
 * pipes it next gets them. Returns a function that stops reading (nothing is reported after it).
 */
export function requestTarget(socket: net.Socket, target: string, onOutcome: (outcome: RequestOutcome) => void): () => void {
  const reader = new FrameReader(1 << 16);
  let done = false;
  const stop = () => {
    done = true;
    socket.off('readable', onReadable);
  };
  // 'readable' rather than 'data': once it is removed the stream is back in its initial mode, so the
  // caller's first 'data' listener or pipe() starts the flow (an explicit pause() would stick).
  const onReadable = () => {
    let chunk: Buffer | null;
    while (!done && (chunk = socket.read() as Buffer | null) !== null) onChunk(chunk);
  };
  const onChunk = (chunk: Buffer) => {
    const r = reader.push(chunk);
    if (r.kind === 'incomplete') return;
    stop();
    if (r.kind === 'error') return onOutcome({ kind: 'bad-reply', message: `bad reply frame: ${r.message}` });
    let reply: Reply;
    try {
      reply = parseReply(decodeBody(r.body));
    } catch (err) {
      return onOutcome({ kind: 'bad-reply', message: `bad reply: ${(err as Error).message}` });
    }
    if (r.rest.length) socket.unshift(r.rest);
    onOutcome({ kind: 'reply', reply });
  };
  socket.on('readable', onReadable);
  socket.write(encodeRequest(target));
  return stop;
}

/**
 * Resolves once the proxy said ok. Bytes the server sends right after the reply are not lost: they are
 * pushed back into the socket before it is handed over.
 */
export function connect(opts: ConnectOptions): Promise<tls.TLSSocket> {
  const { host, port } = splitHostPort(opts.proxy);
  const timeout = opts.timeout ?? 10_000;
  return new Promise((resolve, reject) => {
    let settled = false;
    let linked: tls.TLSSocket | undefined;
    let stopReading: (() => void) | undefined;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      cleanup();
      d.abort();
      linked?.destroy();
      reject(err);
    };
    const onError = (err: NodeJS.ErrnoException) => fail(new ProxyConnectError(err.code ?? 'EUNKNOWN', err.message, { cause: err }));
    const onClose = () => fail(new ProxyConnectError('ECONNRESET', 'the proxy closed the connection before replying'));
    const timer = setTimeout(() => fail(new ProxyConnectError('ETIMEDOUT', `no reply from ${formatHostPort({ host, port })} within ${timeout} ms`)), timeout);
    const cleanup = () => {
      clearTimeout(timer);
      stopReading?.();
      linked?.off('error', onError);
      linked?.off('close', onClose);
    };
    const d = dialProxy(
      { host, port },
      opts.tls,
      (socket) => {
        linked = socket;
        socket.on('error', onError);
        socket.on('close', onClose);
        stopReading = requestTarget(socket, opts.target, (outcome) => {
          if (outcome.kind === 'bad-reply') return fail(new ProxyConnectError('ERR_BAD_REPLY', outcome.message));
          if (!outcome.reply.ok) return fail(new ProxyDeclinedError(outcome.reply.code, outcome.reply.message));
          settled = true;
          cleanup();
          resolve(socket);
        });
      },
      onError,
      { sessionCache: opts.sessionCache, session: opts.session },
    );
  });
}
