/**
 * `mxproxy forward`: unmodified TCP clients (psql, redis-cli, a SCADA client) connect to a local port; each
 * connection gets its own mxproxy/1 connection to the named target and the two are linked. With the proxy
 * switched off (mxProxy = "none") it connects straight to the target's own addresses instead.
 */
import net from 'node:net';
import type { ClientConfig, ForwardRule } from '../config/index.js';
import { formatHostPort, type HostPort } from '../shared/address.js';
import { connect } from '../client/connect.js';
import { DialError, ProxyDeclinedError, TlsMaterialError } from '../errors.js';
import type { TlsMaterial } from '../net/tlsTerminator.js';
import type { Logger } from '../log.js';
import { printable } from '../shared/printable.js';
import { link } from './link.js';

export interface ForwarderOptions {
  config: ClientConfig;
  /** Client certificate, key and CA; required unless the proxy is off. */
  tls: TlsMaterial | undefined;
  logger: Logger;
  /** ms a half-closed pair may take to close by itself. Default 2000. */
  graceMs?: number;
}

export interface ForwarderStats {
  /** Local connections accepted, currently open, linked, and refused (declined by the proxy or unreachable). */
  accepted: number;
  active: number;
  linked: number;
  refused: number;
}

export interface Forwarder {
  /** The bound local addresses, in config order (port 0 in the config resolves here). */
  addresses: { target: string; address: HostPort }[];
  stats(): ForwarderStats;
  /** Stops listening and destroys open connections. */
  stop(): Promise<void>;
}

/** Connects straight to the target, trying its addresses in order, each within `timeout` ms. */
async function dialDirect(addresses: HostPort[], timeout: number): Promise<net.Socket> {
  let lastError: Error = new DialError('ERR_DIAL', 'no address');
  for (const a of addresses) {
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect({ host: a.host, port: a.port, allowHalfOpen: true });
        const timer = setTimeout(() => {
          s.destroy();
          reject(new DialError('ERR_DIAL', `${formatHostPort(a)}: no answer within ${timeout} ms`, { causeCode: 'ETIMEDOUT' }));
        }, timeout);
        s.once('connect', () => {
          clearTimeout(timer);
          s.off('error', reject);
          resolve(s);
        });
        s.once('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
      });
    } catch (err) {
      lastError = err as Error;
    }
  }
  throw lastError;
}

function listen(server: net.Server, at: HostPort): Promise<HostPort> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: at.host, port: at.port }, () => {
      server.off('error', reject);
      const a = server.address() as net.AddressInfo;
      resolve({ host: a.address, port: a.port });
    });
  });
}

export async function startForwarder(opts: ForwarderOptions): Promise<Forwarder> {
  const { config, logger } = opts;
  const graceMs = opts.graceMs ?? 2000;
  const proxy = config.proxy;
  if (proxy && !opts.tls) {
    throw new TlsMaterialError('ERR_TLS_SETUP', 'the forwarder needs a client certificate to use the proxy (sslCertificate)');
  }
  const stats: ForwarderStats = { accepted: 0, active: 0, linked: 0, refused: 0 };
  const open = new Set<net.Socket>();
  const servers: net.Server[] = [];

  const upstreamFor = (rule: ForwardRule): Promise<net.Socket> =>
    proxy && opts.tls
      ? connect({ proxy, target: rule.target, tls: opts.tls, timeout: config.connectTimeout })
      : dialDirect(rule.direct, config.connectTimeout);

  const onConnection = (rule: ForwardRule, via: string) => (local: net.Socket) => {
    stats.accepted++;
    stats.active++;
    open.add(local);
    local.pause(); // the client may speak first: its bytes wait in the kernel until upstream is linked
    local.setNoDelay(true);
    const peer = formatHostPort({ host: local.remoteAddress ?? '?', port: local.remotePort ?? 0 });
    local.once('close', () => {
      open.delete(local);
      stats.active--;
    });
    local.on('error', () => undefined); // before linking: a reset client only means the upstream is not wanted
    const started = performance.now();
    upstreamFor(rule).then(
      (up) => {
        if (local.destroyed) {
          up.destroy();
          return;
        }
        open.add(up);
        up.once('close', () => open.delete(up));
        stats.linked++;
        logger.debug('linked', { target: rule.target, peer, via, ms: Math.round(performance.now() - started) });
        link(local, up, graceMs, (r) => logger.debug('unlinked', { target: rule.target, peer, ...r }));
        local.resume();
      },
      (err: NodeJS.ErrnoException) => {
        stats.refused++;
        // The log names the failure itself: the reply code of a decline, else the errno or TLS verdict.
        const code =
          err instanceof ProxyDeclinedError ? err.code
          : err instanceof DialError ? (err.causeCode ?? err.code)
          : (err.code ?? 'EUNKNOWN');
        // `error` quotes the proxy's reply, which quotes this client's target and identity: the log escapes fields.
        logger.warn(`${printable(rule.target)}: ${err instanceof ProxyDeclinedError ? 'declined by the proxy' : 'cannot connect'}`, {
          target: rule.target,
          peer,
          via,
          code,
          error: err.message,
        });
        // A reset, not a clean end: the local client must not mistake a refusal for an empty answer.
        if (!local.destroyed) local.resetAndDestroy();
      },
    );
  };

  const addresses: Forwarder['addresses'] = [];
  try {
    for (const rule of config.forwards) {
      const server = net.createServer({ allowHalfOpen: true, noDelay: true });
      servers.push(server);
      const via = proxy ? `proxy ${formatHostPort(proxy)}` : `direct ${rule.direct.map(formatHostPort).join(' ')}`;
      server.on('connection', onConnection(rule, via));
      const bound = await listen(server, rule.listen);
      addresses.push({ target: rule.target, address: bound });
      logger.info(`forwarding ${formatHostPort(bound)} → ${rule.target} via ${via}`);
    }
  } catch (err) {
    for (const s of servers) s.close();
    throw err;
  }
  if (!proxy) {
    logger.warn('mxProxy is "none": the proxy is switched off, connecting straight to each target (no TLS, no authorization)');
  }

  return {
    addresses,
    stats: () => ({ ...stats }),
    stop: async () => {
      const closing = servers.map((s) => new Promise<void>((r) => s.close(() => r())));
      for (const s of open) s.destroy();
      await Promise.all(closing);
    },
  };
}
