/**
 * Addresses, `"<host>:<port>"`: the one parser, printer and comparison every layer uses (config, listeners,
 * dialing, the client, the forwarder, logs, tests). IPv6 is written in brackets (`"[::1]:5678"`) and held
 * without them. Only `node:net` below it, so the lowest layers can use it without the config or zod.
 */
import net from 'node:net';

export interface HostPort {
  host: string;
  port: number;
}

export type ParsedHostPort = { ok: true; value: HostPort } | { ok: false; message: string };

export interface ParseHostPortOptions {
  /** Also accept port 0, "any free port" (local listen addresses). Default: ports 1..65535 only. */
  anyPort?: boolean;
}

const HOST_LABEL_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

function isHostName(host: string): boolean {
  if (host.length > 253) return false;
  const labels = host.endsWith('.') ? host.slice(0, -1).split('.') : host.split('.');
  if (!labels.every((l) => HOST_LABEL_RE.test(l))) return false;
  // A name whose last label is all digits is a mistyped IPv4 address, not a host name.
  return !/^\d+$/.test(labels[labels.length - 1] ?? '');
}

/**
 * `"<host>:<port>"` → HostPort. The host is an IPv4 address, an IPv6 address in brackets or a host name;
 * the port 1..65535 (or 0 with `anyPort`). The message says what is wrong, quoting `s`.
 */
export function parseHostPort(s: string, opts: ParseHostPortOptions = {}): ParsedHostPort {
  const fail = (why: string): ParsedHostPort => ({ ok: false, message: `bad address "${s}": ${why}` });
  let host: string;
  let portText: string;
  if (s.startsWith('[')) {
    const m = /^\[([^\]]*)\]:(.*)$/.exec(s);
    if (!m) return fail('expected "[<IPv6>]:<port>", e.g. "[::1]:5678"');
    host = m[1] ?? '';
    portText = m[2] ?? '';
    if (!net.isIPv6(host)) return fail(`"${host}" is not an IPv6 address`);
  } else {
    const colon = s.lastIndexOf(':');
    if (colon < 0) return fail('port missing, expected "<host>:<port>", e.g. "10.0.0.5:4897"');
    host = s.slice(0, colon);
    portText = s.slice(colon + 1);
    if (host.includes(':')) return fail('an IPv6 address must be in brackets, e.g. "[::1]:5678"');
    if (host === '') return fail('host missing, expected "<host>:<port>"');
    if (!net.isIPv4(host) && !isHostName(host)) {
      return fail(
        /^[\d.]+$/.test(host) ? `"${host}" is not a valid IPv4 address` : `"${host}" is not a valid host name or IP address`,
      );
    }
  }
  if (!/^\d+$/.test(portText)) return fail(`port "${portText}" is not a number 1..65535`);
  const port = Number(portText);
  if (!Number.isSafeInteger(port)) return fail('port must be a whole number');
  if ((port === 0 && !opts.anyPort) || port > 65535) return fail('port must be between 1 and 65535');
  return { ok: true, value: { host, port } };
}

/** HostPort → `"<host>:<port>"`, IPv6 in brackets. */
export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

/** A comparable form of an address: lower case, no trailing dot, IPv6 in canonical form. */
export function addressKey(hp: HostPort): string {
  let host = hp.host.toLowerCase().replace(/\.$/, '');
  if (net.isIPv6(host)) {
    try {
      host = new URL(`http://[${host}]/`).hostname;
    } catch {
      // keep as written
    }
  }
  return `${host}:${hp.port}`;
}

/** The same address in other spellings (`Host.local:1` and `host.local:1`, `[::1]:1` and `[0:0::1]:1`). */
export function sameAddress(a: HostPort, b: HostPort): boolean {
  return addressKey(a) === addressKey(b);
}

/**
 * The source address of a connection as one key, for per-source limits and the lines about them: an
 * IPv4-mapped IPv6 address (`::ffff:127.0.0.2`, what a dual-stack listener reports) is its IPv4 address, other
 * IPv6 addresses are in canonical lower-case form. Anything else (an unknown address) is kept as given.
 */
export function sourceAddress(host: string): string {
  const lower = host.toLowerCase();
  if (!net.isIPv6(lower)) return lower;
  let canonical = lower;
  try {
    canonical = new URL(`http://[${lower}]/`).hostname.slice(1, -1);
  } catch {
    // keep as written
  }
  // The canonical form of a mapped address is hex (::ffff:7f00:2): back to dotted IPv4.
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical);
  if (hex) {
    const hi = parseInt(hex[1]!, 16);
    const lo = parseInt(hex[2]!, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return canonical;
}

/**
 * Whether connections to `host` can only come from this machine: 127.0.0.0/8, ::1, ::ffff:127.x.y.z, or the
 * name `localhost`. Any other name counts as reachable from elsewhere, whatever it resolves to today.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  if (h === 'localhost') return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  if (!net.isIPv6(h)) return false;
  // The WHATWG URL parser writes IPv6 canonically: [::1], and ::ffff:127.0.0.1 as [::ffff:7f00:1].
  const canonical = new URL(`http://[${h}]/`).hostname.slice(1, -1);
  return canonical === '::1' || /^::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}$/.test(canonical);
}
