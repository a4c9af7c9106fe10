/**
 * The `[proxy]` section: the keys table (used by docs/config.md and `describeConfig`), per-key value
 * validation (zod), and the step from parsed entries to a `ProxyConfig`.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import type { ConfigEntry } from './parse.js';
import { EVENT_LOG_LEVELS, type EventLogLevel } from '../shared/eventLogLevel.js';
import { parseIdentityPattern } from '../shared/identity.js';
import {
  DEFAULTS,
  type AllowRule,
  type ConfigIssue,
  type HostPort,
  type ProxyConfig,
  type TargetServer,
  type TlsFiles,
} from './types.js';

export const PROXY_SECTION = 'proxy';

export type ProxyKeyName =
  | 'listen'
  | 'sslCertificate'
  | 'server'
  | 'allow'
  | 'handshakeTimeout'
  | 'connectTimeout'
  | 'teardownTimeout'
  | 'maxRequestBytes'
  | 'eventLog'
  | 'eventLogLevel'
  | 'eventLogMaxBytes'
  | 'eventLogFiles';

/** Documentation of one config key. */
export interface KeyDoc<N extends string = ProxyKeyName> {
  name: N;
  /** How the value is written: a double-quoted string or a bare number. */
  type: 'string' | 'number';
  /** The entry's shape, e.g. `listen = "<host>:<port>"`. */
  syntax: string;
  /** The default as it would be written in the file (e.g. `"0.0.0.0:5678"`, `5000`); undefined: none. */
  default: string | undefined;
  repeatable: boolean;
  /** For number keys: the allowed range (inclusive). */
  min?: number;
  max?: number;
  /** A secret value is never printed (describeConfig shows "***"). */
  secret?: boolean;
  description: string;
  /** A complete example line. */
  example: string;
}

const NUMBER_BOUNDS = {
  handshakeTimeout: { min: 1, max: 600_000 },
  connectTimeout: { min: 1, max: 600_000 },
  teardownTimeout: { min: 1, max: 600_000 },
  maxRequestBytes: { min: 16, max: 1_048_576 },
  eventLogMaxBytes: { min: 65_536, max: 1_099_511_627_776 },
  eventLogFiles: { min: 1, max: 1000 },
} as const;

type NumberKey = keyof typeof NUMBER_BOUNDS;

export const PROXY_KEYS: readonly KeyDoc[] = [
  {
    name: 'listen',
    type: 'string',
    syntax: 'listen = "<host>:<port>"',
    default: `"${DEFAULTS.listen.map(formatHostPort).join('" / "')}"`,
    repeatable: true,
    description:
      'An address the proxy accepts client connections on. Repeat the entry to listen on several addresses. ' +
      'The host is an IPv4 address, an IPv6 address in brackets ("[::]:5678", "[::1]:5678") or a host name; ' +
      'the port is 1..65535. Without any listen entry the proxy listens on port 5678 on all IPv4 addresses.',
    example: 'listen = "0.0.0.0:5678"',
  },
  {
    name: 'sslCertificate',
    type: 'string',
    syntax: 'sslCertificate = "<cert.pem> <key.pem> <ca.pem>"',
    default: undefined,
    repeatable: false,
    description:
      "The proxy's own certificate, its private key, and the CA certificate(s) client and server certificates " +
      "must be signed by (PEM files), separated by whitespace. Relative paths are relative to the config file's " +
      'directory. Paths cannot contain spaces. Required by "mxproxy start".',
    example: 'sslCertificate = "certs/proxy.pem certs/proxy-key.pem certs/ca.pem"',
  },
  {
    name: 'server',
    type: 'string',
    syntax: 'server = "<name> <host>:<port> [<host>:<port> ...]"',
    default: undefined,
    repeatable: true,
    description:
      'A named backend clients can ask for. The name is letters, digits, "_", "." and "-". More than one address ' +
      'means redundant servers: they are tried in the order given until one accepts.',
    example: 'server = "scada1 10.0.1.10:4897 10.0.1.11:4897"',
  },
  {
    name: 'allow',
    type: 'string',
    syntax: 'allow = "[cn:|dns:|uri:]<identity-glob> <target> [<target> ...]"',
    default: undefined,
    repeatable: true,
    description:
      'Lets clients whose certificate identity matches <identity-glob> reach the given targets. With cn:, dns: ' +
      'or uri: the glob matches only the subject CN, a SAN DNS or a SAN URI entry; bare, any of them. A target is a ' +
      'server name or a glob over server names; "*" matches any run of characters, "?" one character. A plain ' +
      'name must be defined by a server entry (anywhere in the section).',
    example: 'allow = "hmi-* scada1 historian-?"',
  },
  {
    name: 'handshakeTimeout',
    type: 'number',
    syntax: 'handshakeTimeout = <ms>',
    default: String(DEFAULTS.handshakeTimeout),
    repeatable: false,
    ...NUMBER_BOUNDS.handshakeTimeout,
    description:
      'Milliseconds a client has, from the TCP accept, to finish the TLS handshake and send its complete ' +
      'request frame.',
    example: 'handshakeTimeout = 5000',
  },
  {
    name: 'connectTimeout',
    type: 'number',
    syntax: 'connectTimeout = <ms>',
    default: String(DEFAULTS.connectTimeout),
    repeatable: false,
    ...NUMBER_BOUNDS.connectTimeout,
    description: 'Milliseconds for one attempt to connect to one backend address.',
    example: 'connectTimeout = 5000',
  },
  {
    name: 'teardownTimeout',
    type: 'number',
    syntax: 'teardownTimeout = <ms>',
    default: String(DEFAULTS.teardownTimeout),
    repeatable: false,
    ...NUMBER_BOUNDS.teardownTimeout,
    description:
      'Milliseconds a closing connection pair may take to flush and close before both sockets are destroyed.',
    example: 'teardownTimeout = 1000',
  },
  {
    name: 'maxRequestBytes',
    type: 'number',
    syntax: 'maxRequestBytes = <bytes>',
    default: String(DEFAULTS.maxRequestBytes),
    repeatable: false,
    ...NUMBER_BOUNDS.maxRequestBytes,
    description: 'The largest request frame body (bytes) a client may send; a larger one is refused.',
    example: 'maxRequestBytes = 4096',
  },
  {
    name: 'eventLog',
    type: 'string',
    syntax: 'eventLog = "<file>"',
    default: undefined,
    repeatable: false,
    description:
      'Records every event that enters the actors, and every state transition, to this file (msgpack records), ' +
      'for `mxproxy replay`. Relative to the config file; its directory must exist. An existing file is rotated ' +
      'away at start. Unset: no event log.',
    example: 'eventLog = "/var/log/mxproxy/events.mxlog"',
  },
  {
    name: 'eventLogLevel',
    type: 'string',
    syntax: 'eventLogLevel = "lifecycle" | "traffic" | "payload"',
    default: `"${DEFAULTS.eventLogLevel}"`,
    repeatable: false,
    description:
      '"lifecycle": events and transitions only, no payload bytes (cheap). "traffic": also the size of every ' +
      'forwarded chunk. "payload": also the bytes themselves — plant data in a file, for deep debugging only; ' +
      'the proxy warns at start.',
    example: 'eventLogLevel = "lifecycle"',
  },
  {
    name: 'eventLogMaxBytes',
    type: 'number',
    syntax: 'eventLogMaxBytes = <bytes>',
    default: String(DEFAULTS.eventLogMaxBytes),
    repeatable: false,
    ...NUMBER_BOUNDS.eventLogMaxBytes,
    description: 'The event log is rotated before it grows past this size: <file> becomes <file>.1, and so on.',
    example: 'eventLogMaxBytes = 67108864',
  },
  {
    name: 'eventLogFiles',
    type: 'number',
    syntax: 'eventLogFiles = <count>',
    default: String(DEFAULTS.eventLogFiles),
    repeatable: false,
    ...NUMBER_BOUNDS.eventLogFiles,
    description: 'Event log files kept, the current one included; the oldest is deleted at rotation.',
    example: 'eventLogFiles = 5',
  },
];

const KEY_BY_NAME = new Map<string, KeyDoc>(PROXY_KEYS.map((k) => [k.name, k]));

// ---------------------------------------------------------------------------------------------------------
// Value schemas. Every zod issue carries a hand-written message; users never see zod's own wording.

export const NAME_RE = /^[A-Za-z0-9_.-]+$/;
const TARGET_GLOB_RE = /^[A-Za-z0-9_.*?-]+$/;
const HOST_LABEL_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

const portSchema = z
  .number()
  .int({ error: 'port must be a whole number' })
  .min(1, { error: 'port must be between 1 and 65535' })
  .max(65535, { error: 'port must be between 1 and 65535' });

function numberSchema(key: NumberKey): z.ZodNumber {
  const { min, max } = NUMBER_BOUNDS[key];
  const range = `${key} must be between ${min} and ${max}`;
  return z
    .number()
    .int({ error: `${key} must be a whole number` })
    .min(min, { error: range })
    .max(max, { error: range });
}

const NUMBER_SCHEMAS: Record<NumberKey, z.ZodNumber> = {
  handshakeTimeout: numberSchema('handshakeTimeout'),
  connectTimeout: numberSchema('connectTimeout'),
  teardownTimeout: numberSchema('teardownTimeout'),
  maxRequestBytes: numberSchema('maxRequestBytes'),
  eventLogMaxBytes: numberSchema('eventLogMaxBytes'),
  eventLogFiles: numberSchema('eventLogFiles'),
};

function isHostName(host: string): boolean {
  if (host.length > 253) return false;
  const labels = host.endsWith('.') ? host.slice(0, -1).split('.') : host.split('.');
  if (!labels.every((l) => HOST_LABEL_RE.test(l))) return false;
  // A name whose last label is all digits is a mistyped IPv4 address, not a host name.
  return !/^\d+$/.test(labels[labels.length - 1] ?? '');
}

/** `"<host>:<port>"` → HostPort (IPv6 without brackets in `host`). */
export const hostPortSchema = z.string().transform((s, ctx): HostPort => {
  const fail = (message: string): never => {
    ctx.addIssue({ code: 'custom', message });
    return z.NEVER;
  };
  let host: string;
  let portText: string;
  if (s.startsWith('[')) {
    const m = /^\[([^\]]*)\]:(.*)$/.exec(s);
    if (!m) return fail(`bad address "${s}": expected "[<IPv6>]:<port>", e.g. "[::1]:5678"`);
    host = m[1] ?? '';
    portText = m[2] ?? '';
    if (net.isIPv6(host) === false) return fail(`bad address "${s}": "${host}" is not an IPv6 address`);
  } else {
    const colon = s.lastIndexOf(':');
    if (colon < 0) return fail(`bad address "${s}": port missing, expected "<host>:<port>", e.g. "10.0.0.5:4897"`);
    host = s.slice(0, colon);
    portText = s.slice(colon + 1);
    if (host.includes(':')) {
      return fail(`bad address "${s}": an IPv6 address must be in brackets, e.g. "[::1]:5678"`);
    }
    if (host === '') return fail(`bad address "${s}": host missing, expected "<host>:<port>"`);
    if (net.isIPv4(host) === false && !isHostName(host)) {
      return fail(
        /^[\d.]+$/.test(host)
          ? `bad address "${s}": "${host}" is not a valid IPv4 address`
          : `bad address "${s}": "${host}" is not a valid host name or IP address`,
      );
    }
  }
  if (!/^\d+$/.test(portText)) return fail(`bad address "${s}": port "${portText}" is not a number 1..65535`);
  const port = portSchema.safeParse(Number(portText));
  if (!port.success) return fail(`bad address "${s}": ${firstMessage(port.error)}`);
  return { host, port: port.data };
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

const serverSchema = z
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

const allowSchema = z
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

export function firstMessage(err: z.ZodError): string {
  return err.issues[0]?.message ?? 'invalid value';
}

// ---------------------------------------------------------------------------------------------------------

/** Levenshtein distance, for "did you mean" hints. */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] ?? 0;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j] ?? 0;
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      prev[j] = Math.min(up + 1, (prev[j - 1] ?? 0) + 1, diag + cost);
      diag = up;
    }
  }
  return prev[b.length] ?? 0;
}

/** The known key closest to `key` (case-insensitive, edit distance ≤ 2), if any. */
export function suggestKey(key: string, known: readonly string[] = PROXY_KEYS.map((k) => k.name)): string | undefined {
  let best: string | undefined;
  let bestDist = 3;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDist) {
      best = k;
      bestDist = d;
    }
  }
  return best;
}

export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

/** A comparable form of an address: lower case, IPv6 in canonical form. */
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

/** Parses one `"<host>:<port>"` string; for other config readers (e.g. the client side). */
export function parseHostPort(s: string): { ok: true; value: HostPort } | { ok: false; message: string } {
  const r = hostPortSchema.safeParse(s);
  return r.success ? { ok: true, value: r.data } : { ok: false, message: firstMessage(r.error) };
}

export interface ProxySectionOptions {
  /** Report a missing sslCertificate entry as an issue. Default false. */
  requireTls?: boolean;
  /** Check that the certificate files exist and are readable. Default true. */
  checkFiles?: boolean;
}

export const FILE_ROLES = ['certificate', 'private key', 'CA certificate'] as const;

export function checkReadableFile(p: string, role: string): string | undefined {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    return code === 'ENOENT' ? `${role} file not found: ${p}` : `cannot read ${role} file ${p}: ${code}`;
  }
  if (!st.isFile()) return `${role} file ${p} is not a regular file`;
  try {
    fs.accessSync(p, fs.constants.R_OK);
  } catch (e) {
    return `cannot read ${role} file ${p}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`;
  }
  return undefined;
}

/**
 * Builds a ProxyConfig from the entries of the `[proxy]` section(s). `file` is used in issues, `absFile`
 * is the absolute path relative certificate paths are resolved against. Returns the issues found; the
 * config is only meaningful when there are none.
 */
export function buildProxyConfig(
  entries: readonly ConfigEntry[],
  file: string,
  absFile: string,
  opts: ProxySectionOptions = {},
  headerLine = 0,
): { config: ProxyConfig; issues: ConfigIssue[] } {
  const issues: ConfigIssue[] = [];
  const issue = (e: ConfigEntry, message: string): void => {
    issues.push({ file, line: e.line, entry: e.text, message });
  };
  const baseDir = path.dirname(absFile);
  const checkFiles = opts.checkFiles ?? true;

  const listen: HostPort[] = [];
  const listenSeen = new Map<string, number>();
  let tls: TlsFiles | undefined;
  const servers = new Map<string, TargetServer>();
  const serverLines = new Map<string, number>();
  const allow: AllowRule[] = [];
  const allowTargets: { entry: ConfigEntry; targets: string[] }[] = [];
  const numbers: Partial<Record<NumberKey, number>> = {};
  let eventLogPath: string | undefined;
  let eventLogLevel: EventLogLevel | undefined;
  const firstLine = new Map<string, number>();

  for (const e of entries) {
    const doc = KEY_BY_NAME.get(e.key);
    if (!doc) {
      const hint = suggestKey(e.key);
      issue(e, `unknown key "${e.key}" in [proxy]` + (hint ? `; did you mean ${hint}?` : ''));
      continue;
    }
    if (!doc.repeatable) {
      const first = firstLine.get(doc.name);
      if (first !== undefined) {
        issue(e, `${doc.name} may be given only once (first given at line ${first})`);
        continue;
      }
      firstLine.set(doc.name, e.line);
    }
    if (doc.type === 'number' && e.value.kind !== 'number') {
      issue(e, `number expected: write ${doc.name} without quotes, e.g. ${doc.example}`);
      continue;
    }
    if (doc.type === 'string' && e.value.kind !== 'string') {
      issue(e, `quoted string expected, e.g. ${doc.example}`);
      continue;
    }
    const v = e.value.value;

    switch (doc.name) {
      case 'listen': {
        const r = hostPortSchema.safeParse(v);
        if (!r.success) {
          issue(e, firstMessage(r.error));
          break;
        }
        const k = addressKey(r.data);
        const prev = listenSeen.get(k);
        if (prev !== undefined) {
          issue(e, `duplicate listen address ${formatHostPort(r.data)} (already given at line ${prev})`);
          break;
        }
        listenSeen.set(k, e.line);
        listen.push(r.data);
        break;
      }
      case 'sslCertificate': {
        const r = sslCertificateSchema.safeParse(v);
        if (!r.success) {
          issue(e, firstMessage(r.error));
          break;
        }
        const [certFile, keyFile, caFile] = r.data.map((p) => path.resolve(baseDir, p));
        if (certFile === undefined || keyFile === undefined || caFile === undefined) break;
        let ok = true;
        if (checkFiles) {
          [certFile, keyFile, caFile].forEach((p, i) => {
            const problem = checkReadableFile(p, FILE_ROLES[i] ?? 'certificate');
            if (problem) {
              issue(e, problem);
              ok = false;
            }
          });
        }
        if (ok) tls = { certFile, keyFile, caFile };
        break;
      }
      case 'server': {
        const r = serverSchema.safeParse(v);
        if (!r.success) {
          for (const i of r.error.issues) issue(e, i.message);
        }
        const parts = r.success ? r.data : String(v).trim().split(/\s+/);
        const name = parts[0] ?? '';
        if (name === '' || !NAME_RE.test(name)) break;
        const prev = serverLines.get(name);
        if (prev !== undefined) {
          issue(e, `duplicate server "${name}" (first defined at line ${prev})`);
          break;
        }
        // Register the name even if an address is bad, so allow entries naming it give no follow-up errors.
        serverLines.set(name, e.line);
        const addresses: HostPort[] = [];
        const seen = new Set<string>();
        for (const a of parts.slice(1)) {
          const hp = hostPortSchema.safeParse(a);
          if (!hp.success) {
            issue(e, `server "${name}": ${firstMessage(hp.error)}`);
            continue;
          }
          const k = addressKey(hp.data);
          if (seen.has(k)) {
            issue(e, `server "${name}": address ${formatHostPort(hp.data)} is listed twice`);
            continue;
          }
          seen.add(k);
          addresses.push(hp.data);
        }
        servers.set(name, { name, addresses, source: { file, line: e.line } });
        break;
      }
      case 'allow': {
        const r = allowSchema.safeParse(v);
        if (!r.success) {
          for (const i of r.error.issues) issue(e, i.message);
          break;
        }
        const [identity, ...targets] = r.data;
        const pattern = parseIdentityPattern(identity ?? '');
        if (identity === undefined || !pattern.ok) break;
        allow.push({ identity, field: pattern.field, glob: pattern.glob, targets, source: { file, line: e.line } });
        allowTargets.push({ entry: e, targets });
        break;
      }
      case 'eventLog': {
        if (String(v).trim() === '') {
          issue(e, 'eventLog needs a file name, e.g. eventLog = "events.mxlog"; leave the entry out for no log');
          break;
        }
        eventLogPath = path.resolve(baseDir, String(v));
        if (checkFiles) {
          const dir = path.dirname(eventLogPath);
          const problem = !fs.existsSync(dir)
            ? `eventLog directory ${dir} does not exist`
            : fs.existsSync(eventLogPath) && !fs.statSync(eventLogPath).isFile()
              ? `eventLog ${eventLogPath} exists and is not a regular file`
              : undefined;
          if (problem) issue(e, problem);
        }
        break;
      }
      case 'eventLogLevel': {
        const level = EVENT_LOG_LEVELS.find((l) => l === v);
        if (level) eventLogLevel = level;
        else issue(e, `eventLogLevel must be one of ${EVENT_LOG_LEVELS.map((l) => `"${l}"`).join(', ')}`);
        break;
      }
      case 'handshakeTimeout':
      case 'connectTimeout':
      case 'teardownTimeout':
      case 'maxRequestBytes':
      case 'eventLogMaxBytes':
      case 'eventLogFiles': {
        const r = NUMBER_SCHEMAS[doc.name].safeParse(v);
        if (!r.success) {
          issue(e, firstMessage(r.error));
          break;
        }
        numbers[doc.name] = r.data;
        break;
      }
    }
  }

  // Plain target names must name a server; servers may be defined after the allow entry.
  for (const { entry, targets } of allowTargets) {
    for (const t of targets) {
      if (/[*?]/.test(t) || serverLines.has(t)) continue;
      const hint = suggestKey(t, [...serverLines.keys()]);
      issue(entry, `allow names unknown server "${t}"` + (hint ? `; did you mean ${hint}?` : '; no server entry defines it'));
    }
  }

  if (opts.requireTls && !firstLine.has('sslCertificate')) {
    issues.push({
      file,
      line: headerLine,
      entry: headerLine > 0 ? '[proxy]' : '',
      message: 'sslCertificate is missing: the proxy needs its certificate, key and CA files to start',
    });
  }

  const config: ProxyConfig = {
    file: absFile,
    listen: listen.length > 0 ? listen : DEFAULTS.listen.map((hp) => ({ ...hp })),
    tls,
    servers,
    allow,
    handshakeTimeout: numbers.handshakeTimeout ?? DEFAULTS.handshakeTimeout,
    connectTimeout: numbers.connectTimeout ?? DEFAULTS.connectTimeout,
    teardownTimeout: numbers.teardownTimeout ?? DEFAULTS.teardownTimeout,
    maxRequestBytes: numbers.maxRequestBytes ?? DEFAULTS.maxRequestBytes,
    eventLog: eventLogPath
      ? {
          path: eventLogPath,
          level: eventLogLevel ?? DEFAULTS.eventLogLevel,
          maxBytes: numbers.eventLogMaxBytes ?? DEFAULTS.eventLogMaxBytes,
          files: numbers.eventLogFiles ?? DEFAULTS.eventLogFiles,
        }
      : undefined,
  };
  return { config, issues };
}
