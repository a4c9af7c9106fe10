/**
 * Value schemas (zod) for config entries: what one value must look like and what it becomes. Every issue
 * carries a hand-written message; users never see zod's own wording. Used by the [proxy] and [client] builders.
 */
import { parseIdentityPattern } from '../shared/identity.js';
import { z } from 'zod';
import { parseHostPort, type HostPort } from '../shared/address.js';
import { parseRate, type Rate } from '../shared/tokenBucket.js';
import { NUMBER_BOUNDS, type NumberKey } from './proxyKeys.js';

export const NAME_RE = /^[A-Za-z0-9_.-]+$/;
const TARGET_GLOB_RE = /^[A-Za-z0-9_.*?-]+$/;

export function firstMessage(err: z.ZodError): string {
  return err.issues[0]?.message ?? 'invalid value';
}

function numberSchema(key: NumberKey): z.ZodNumber {
  const { min, max } = NUMBER_BOUNDS[key];
  const range = `${key} must be between ${min} and ${max}`;
  return z
    .number()
    .int({ error: `${key} must be a whole number` })
    .min(min, { error: range })
    .max(max, { error: range });
}

/** The [proxy] number keys, each with its range from the keys table. */
export const NUMBER_SCHEMAS: Record<NumberKey, z.ZodNumber> = {
  handshakeTimeout: numberSchema('handshakeTimeout'),
  connectTimeout: numberSchema('connectTimeout'),
  teardownTimeout: numberSchema('teardownTimeout'),
  halfCloseTimeout: numberSchema('halfCloseTimeout'),
  idleTimeout: numberSchema('idleTimeout'),
  // Node hands the kernel whole seconds (a rest would be dropped silently, and 1..999 ms would mean the
  // system default of two hours).
  tcpKeepAlive: numberSchema('tcpKeepAlive').multipleOf(1000, {
    error: 'tcpKeepAlive counts whole seconds: write 0 (off) or a multiple of 1000, e.g. tcpKeepAlive = 60000',
  }),
  maxRequestBytes: numberSchema('maxRequestBytes'),
  sessionTicketRotation: numberSchema('sessionTicketRotation'),
  eventLogMaxBytes: numberSchema('eventLogMaxBytes'),
  eventLogFiles: numberSchema('eventLogFiles'),
  maxConnections: numberSchema('maxConnections'),
  maxPendingHandshakes: numberSchema('maxPendingHandshakes'),
  maxPendingPerSource: numberSchema('maxPendingPerSource'),
  maxConnectionsPerIdentity: numberSchema('maxConnectionsPerIdentity'),
  maxConnectionsPerServer: numberSchema('maxConnectionsPerServer'),
  drainTimeout: numberSchema('drainTimeout'),
  workers: numberSchema('workers'),
};

/** `"20/s burst 40"` → Rate, `"off"` → null. */
export const rateSchema = z.string().transform((s, ctx): Rate | null => {
  const r = parseRate(s);
  if (r.ok) return r.value;
  ctx.addIssue({ code: 'custom', message: `connectRate: ${r.message}` });
  return z.NEVER;
});

/** `"<host>:<port>"` → HostPort (IPv6 without brackets in `host`); see parseHostPort. */
export const hostPortSchema = z.string().transform((s, ctx): HostPort => {
  const r = parseHostPort(s);
  if (r.ok) return r.value;
  ctx.addIssue({ code: 'custom', message: r.message });
  return z.NEVER;
});

/** `"<cert> <key> <ca>"` → three path strings (not yet resolved). */
export const sslCertificateSchema = z
  .string()
  .transform((s) => s.trim().split(/\s+/).filter((p) => p !== ''))
  .refine((parts) => parts.length === 3, {
    error: (iss) =>
      `expected three paths "<cert.pem> <key.pem> <ca.pem>", got ${Array.isArray(iss.input) ? iss.input.length : 0}` +
      ' (paths cannot contain spaces)',
  });

/** `"<name> <address> [...]"` → its words; the addresses are checked one by one by the builder. */
export const serverSchema = z
  .string()
  .transform((s) => s.trim().split(/\s+/).filter((p) => p !== ''))
  .superRefine((parts, ctx) => {
    const name = parts[0];
    if (name === undefined) {
      ctx.addIssue({ code: 'custom', message: 'expected "<name> <host>:<port> [...]", got an empty value' });
      return;
    }
    if (!NAME_RE.test(name)) {
      ctx.addIssue({
        code: 'custom',
        message: `bad server name "${name}": use letters, digits, "_", "." or "-"`,
      });
    }
    if (parts.length < 2) {
      ctx.addIssue({ code: 'custom', message: `server "${name}" has no address: expected "<name> <host>:<port> [...]"` });
    }
  });

/** `"<identity-glob> <target> [...]"` → its words. */
export const allowSchema = z
  .string()
  .transform((s) => s.trim().split(/\s+/).filter((p) => p !== ''))
  .superRefine((parts, ctx) => {
    if (parts.length === 0) {
      ctx.addIssue({ code: 'custom', message: 'expected "<identity-glob> <target> [...]", got an empty value' });
      return;
    }
    if (parts.length < 2) {
      ctx.addIssue({ code: 'custom', message: `allow "${parts[0] ?? ''}" names no target: expected "<identity-glob> <target> [...]"` });
    }
    const identity = parseIdentityPattern(parts[0] ?? '');
    if (!identity.ok) ctx.addIssue({ code: 'custom', message: identity.message });
    for (const t of parts.slice(1)) {
      if (!TARGET_GLOB_RE.test(t)) {
        ctx.addIssue({
          code: 'custom',
          message: `bad target "${t}": use a server name or a glob of letters, digits, "_", ".", "-", "*" and "?"`,
        });
      }
    }
  });
