/**
 * TCP listeners. Sockets are taken at accept, before any TLS work, so that limits on accept (coming with the
 * DoS protection) can refuse a connection for the price of a close.
 */
import net from 'node:net';
import { ListenError } from '../errors.js';
import { formatHostPort, type HostPort } from '../shared/address.js';

export interface Listening {
  servers: net.Server[];
  /** The bound addresses (port 0 resolved), "host:port". */
  addresses: string[];
  close(): Promise<void>;
}

export async function listen(addresses: HostPort[], onSocket: (socket: net.Socket) => void, backlog = 1024): Promise<Listening> {
  const servers: net.Server[] = [];
  const bound: string[] = [];
  const ports = (family: 4 | 6) => new Set(addresses.filter((a) => net.isIP(a.host) === family).map((a) => a.port));
  const v4Ports = ports(4);
  try {
    for (const a of addresses) {
      // Not half-open while TLS is being negotiated: a client that sends FIN mid-handshake must end the
      // socket (and so the handshake) at once. Linked sockets are switched to half-open (see runtime).
      const server = net.createServer({ allowHalfOpen: false, noDelay: true }, onSocket);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        // "[::]" next to "0.0.0.0" on the same port: keep them apart, or the second bind fails
        const ipv6Only = net.isIP(a.host) === 6 && v4Ports.has(a.port);
        server.listen({ host: a.host, port: a.port, backlog, ipv6Only }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      servers.push(server);
      const info = server.address() as net.AddressInfo;
      bound.push(formatHostPort({ host: info.address, port: info.port }));
    }
  } catch (err) {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
    const where = e.address !== undefined && e.port !== undefined ? formatHostPort({ host: e.address, port: e.port }) : '?';
    throw new ListenError(`cannot listen on ${where}: ${e.code ?? e.message}`, e.code, { cause: err });
  }
  return {
    servers,
    addresses: bound,
    close: () => Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r())))).then(() => undefined),
  };
}
