/**
 * The client side of mxproxy/1 as a library: connect({ proxy, target, tls }) resolves to a socket that is
 * already linked to the target server, or rejects with a ProxyDeclinedError whose `code` is the proxy's
 * reply code (ERR_NOT_ALLOWED, …), or with a ProxyConnectError (ERR_PROXY_CONNECT; `causeCode` says why:
 * ECONNREFUSED, a TLS verdict, ETIMEDOUT, ERR_BAD_REPLY). The forwarder and tests build on it.
 */
import net from 'node:net';
import tls from 'node:tls';
import { ProxyConnectError, ProxyDeclinedError } from '../errors.js';
import { formatHostPort, parseHostPort, type HostPort } from '../shared/address.js';
import { ALPN_PROTOCOL, FrameReader, decodeBody, encodeRequest, parseReply } from '../protocol/frame.js';

export interface ConnectOptions {
  /** The proxy, "host:port" or { host, port }. */
  proxy: string | HostPort;
  /** Name of the server to reach (a `server` entry of the proxy). */
  target: string;
  /** Client certificate, key and the project CA (PEM). `servername` defaults to the proxy host
   * when it is a name. */
  tls: { cert: string | Buffer; key: string | Buffer; ca: string | Buffer; servername?: string };
  /** ms for TLS plus the proxy's reply; default 10000. */
  timeout?: number;
}

function splitHostPort(proxy: ConnectOptions['proxy']): HostPort {
  if (typeof proxy !== 'string') return proxy;
  const parsed = parseHostPort(proxy);
  if (!parsed.ok) throw new TypeError(`proxy must be "host:port", got "${proxy}"`);
  return parsed.value;
}

/**
 * Resolves once the proxy said ok. Bytes the server sends right after the reply are not lost: they are
 * pushed back into the socket before it is handed over.
 */
export function connect(opts: ConnectOptions): Promise<tls.TLSSocket> {
  const { host, port } = splitHostPort(opts.proxy);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host,
      port,
      // SNI carries host names only (RFC 6066); an IP address is still checked against the certificate's IP SANs.
      servername: opts.tls.servername ?? (net.isIP(host) ? undefined : host),
      cert: opts.tls.cert,
      key: opts.tls.key,
      ca: opts.tls.ca,
      ALPNProtocols: [ALPN_PROTOCOL],
    });
    socket.setNoDelay(true);
    const reader = new FrameReader(1 << 16);
    let settled = false;
    const timer = setTimeout(() => fail(new ProxyConnectError('ETIMEDOUT', `no reply from ${formatHostPort({ host, port })} within ${opts.timeout ?? 10_000} ms`)), opts.timeout ?? 10_000);
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      cleanup();
      socket.destroy();
      reject(err);
    };
    const onError = (err: NodeJS.ErrnoException) => fail(new ProxyConnectError(err.code ?? 'EUNKNOWN', err.message, { cause: err }));
    const onClose = () => fail(new ProxyConnectError('ECONNRESET', 'the proxy closed the connection before replying'));
    // 'readable' rather than 'data': once it is removed the stream is back in its initial mode, so the
    // caller's first 'data' listener or pipe() starts the flow (an explicit pause() would stick).
    const onReadable = () => {
      let chunk: Buffer | null;
      while (!settled && (chunk = socket.read() as Buffer | null) !== null) onChunk(chunk);
    };
    const onChunk = (chunk: Buffer) => {
      const r = reader.push(chunk);
      if (r.kind === 'incomplete') return;
      if (r.kind === 'error') return fail(new ProxyConnectError('ERR_BAD_REPLY', `bad reply frame: ${r.message}`));
      let reply;
      try {
        reply = parseReply(decodeBody(r.body));
      } catch (err) {
        return fail(new ProxyConnectError('ERR_BAD_REPLY', `bad reply: ${(err as Error).message}`, { cause: err }));
      }
      if (!reply.ok) return fail(new ProxyDeclinedError(reply.code, reply.message));
      settled = true;
      cleanup();
      if (r.rest.length) socket.unshift(r.rest);
      resolve(socket);
    };
    socket.once('secureConnect', () => socket.write(encodeRequest(opts.target)));
    socket.on('readable', onReadable);
    socket.on('error', onError);
    socket.on('close', onClose);
  });
}
