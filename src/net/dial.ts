/** Backend dialing: one attempt at one address. Timeouts and failover are the machine's decisions. */
import net from 'node:net';
import { DialError } from '../errors.js';
import { parseHostPort, type HostPort } from '../shared/address.js';
import { errorCode } from './socketEvents.js';

export interface Dial {
  socket: net.Socket;
  abort(): void;
}

/** Backend addresses come from the config, so they are few: parse each once, not per connection. */
const parsedAddresses = new Map<string, HostPort>();
function hostPortOf(address: string): HostPort {
  let hp = parsedAddresses.get(address);
  if (!hp) {
    const parsed = parseHostPort(address);
    if (!parsed.ok) throw new DialError('ERR_DIAL', `bad backend address ${address}: ${parsed.message}`);
    hp = parsed.value;
    parsedAddresses.set(address, hp);
  }
  return hp;
}

export function dial(
  address: string,
  onConnected: (socket: net.Socket) => void,
  onFailed: (code: string, message: string) => void,
): Dial {
  const { host, port } = hostPortOf(address);
  // noDelay: request/response traffic must not wait on Nagle; allowHalfOpen: the pair closes each half itself
  const socket = net.connect({ host, port, noDelay: true, allowHalfOpen: true });
  let settled = false;
  const onError = (err: Error) => {
    if (settled) return;
    settled = true;
    socket.destroy();
    onFailed(errorCode(err), err.message);
  };
  socket.once('error', onError);
  socket.once('connect', () => {
    if (settled) return;
    settled = true;
    socket.off('error', onError);
    onConnected(socket);
  });
  return {
    socket,
    abort() {
      if (settled) return;
      settled = true;
      socket.off('error', onError);
      socket.on('error', () => {});
      socket.destroy();
    },
  };
}
