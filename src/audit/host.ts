/**
 * What this host listens on and which addresses are its own: the facts the bypass check needs. Listening
 * sockets come from /proc/net/tcp and /proc/net/tcp6 (Linux; no `ss` or `netstat` to install or parse).
 */
import dns from 'node:dns/promises';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface TcpListener {
  /** The local address as an IP string: "0.0.0.0" or "::" for all addresses. */
  address: string;
  port: number;
}

/** /proc/net/tcp* state column: 0A is TCP_LISTEN. */
const LISTEN_STATE = '0A';

/**
 * The kernel prints each 32-bit word of the address as one hex number in host byte order: on a little-endian
 * host "0100007F" is 127.0.0.1. IPv6 is four such words.
 */
function hexToIp(hex: string, littleEndian: boolean): string {
  const bytes: number[] = [];
  for (let w = 0; w < hex.length; w += 8) {
    const word = [0, 2, 4, 6].map((i) => parseInt(hex.slice(w + i, w + i + 2), 16));
    bytes.push(...(littleEndian ? word.reverse() : word));
  }
  if (bytes.length === 4) return bytes.join('.');
  // IPv4-mapped (a socket bound to ::ffff:a.b.c.d): kept in that form, unmapped() turns it back into IPv4.
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return `::ffff:${bytes.slice(12).join('.')}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  // Canonical form (zero runs compressed) through the URL parser.
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

/** The listening sockets in the text of /proc/net/tcp or /proc/net/tcp6. */
export function parseProcNetTcp(text: string, littleEndian = os.endianness() === 'LE'): TcpListener[] {
  const listeners: TcpListener[] = [];
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    const local = fields[1];
    if (fields[3] !== LISTEN_STATE || !local || !/^[0-9A-Fa-f]+:[0-9A-Fa-f]{4}$/.test(local)) continue;
    const [addr, port] = local.split(':') as [string, string];
    if (addr.length !== 8 && addr.length !== 32) continue;
    listeners.push({ address: hexToIp(addr, littleEndian), port: parseInt(port, 16) });
  }
  return listeners;
}

/** Every listening TCP socket of this host (its network namespace); `unreadable` names files that could not be read. */
export function readTcpListeners(procNet = '/proc/net'): { listeners: TcpListener[]; unreadable: string[] } {
  const listeners: TcpListener[] = [];
  const unreadable: string[] = [];
  for (const name of ['tcp', 'tcp6']) {
    const file = path.join(procNet, name);
    try {
      listeners.push(...parseProcNetTcp(fs.readFileSync(file, 'utf8')));
    } catch {
      unreadable.push(file); // not Linux, or tcp6 on a host without IPv6
    }
  }
  return { listeners, unreadable };
}

/** A mapped IPv4 address (::ffff:a.b.c.d) as plain IPv4, anything else unchanged. */
function unmapped(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? m[1]! : ip;
}

export function isLoopback(ip: string): boolean {
  const a = unmapped(ip);
  return net.isIPv4(a) ? a.startsWith('127.') : a === '::1';
}

export function isWildcard(ip: string): boolean {
  return ip === '0.0.0.0' || ip === '::';
}

/** Reachable from other hosts: anything but loopback (the wildcard addresses included). */
export function reachableFromOutside(ip: string): boolean {
  return !isLoopback(ip);
}

/** The IP addresses of this host's interfaces, loopback included. */
export function localAddresses(): Set<string> {
  const found = new Set<string>();
  for (const list of Object.values(os.networkInterfaces())) {
    for (const info of list ?? []) found.add(unmapped(info.address.replace(/%.*$/, '')));
  }
  return found;
}

/**
 * Whether `host` (an IP or a name) is this host. Names are resolved; one that does not resolve returns
 * undefined (unknown), as does a failed lookup.
 */
export async function isThisHost(host: string, local: Set<string>): Promise<boolean | undefined> {
  const is = (ip: string) => isLoopback(ip) || isWildcard(ip) || local.has(unmapped(ip));
  if (net.isIP(host)) return is(host);
  if (host.toLowerCase() === 'localhost') return true;
  try {
    const addresses = await dns.lookup(host, { all: true });
    return addresses.some((a) => is(a.address));
  } catch {
    return undefined;
  }
}
