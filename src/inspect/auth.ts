/**
 * Who may use the admin endpoint. With a token: requests that carry it, as `Authorization: Bearer <token>` or
 * (what a browser sends after a 401) as the password of Basic authentication. Without one (loopback only, the
 * config refuses anything else): local clients, and only under a loopback Host name, so that a web page in a
 * browser on this machine cannot reach the endpoint by rebinding its own DNS name to 127.0.0.1.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isLoopbackHost } from '../shared/address.js';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export type AuthVerdict = 'ok' | 'unauthorized' | 'bad-host';

export function authorizer(token: string | undefined): (req: IncomingMessage) => AuthVerdict {
  if (token === undefined) return (req) => (loopbackHostHeader(req.headers.host) ? 'ok' : 'bad-host');
  // Digests of equal length, compared in constant time: neither the token's length nor a common prefix shows
  // in the time a wrong guess takes.
  const expected = digest(token);
  return (req) => {
    const offered = offeredToken(req.headers.authorization);
    return offered !== undefined && timingSafeEqual(digest(offered), expected) ? 'ok' : 'unauthorized';
  };
}

/** The token in an Authorization header, Bearer or Basic (user name ignored). */
function offeredToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^(Bearer|Basic)[ ]+(\S+)\s*$/i.exec(header);
  if (!m) return undefined;
  if (m[1]!.toLowerCase() === 'bearer') return m[2];
  const decoded = Buffer.from(m[2]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}

/** Host: 127.0.0.1:9678, [::1]:9678, localhost:9678 (the port is not checked; a name that resolves elsewhere is). */
function loopbackHostHeader(host: string | undefined): boolean {
  if (!host) return false;
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::\d+)?$/.exec(host);
  const name = m?.[1] ?? m?.[2];
  return name !== undefined && isLoopbackHost(name);
}
