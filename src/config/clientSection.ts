/**
 * The client side of a config file: `[client]` (the forwarder: which proxy, which local ports go to which
 * target, the client certificate, its event log) and `mxProxy` in `[general]`, the reference's switch: `mxProxy = "none"`
 * turns the proxy off and clients connect straight to their servers.
 */
import path from 'node:path';
import { z } from 'zod';
import { addressKey, formatHostPort, parseHostPort, type HostPort } from '../shared/address.js';
import { EVENT_LOG_LEVELS, type EventLogLevel } from '../shared/eventLogLevel.js';
import { AdminEntries, adminKeyDocs, type AdminKeyName } from './adminKeys.js';
import { checkReadableFile, eventLogPathProblem, FILE_ROLES } from './files.js';
import type { ConfigEntry } from './parse.js';
import { LOG_KEY_DOCS, LogEntries, type LogKeyName } from './logKeys.js';
import { NUMBER_BOUNDS } from './proxyKeys.js';
import { firstMessage, hostPortSchema, NAME_RE, NUMBER_SCHEMAS, sslCertificateSchema } from './schemas.js';
import { suggestKey } from './suggest.js';
import {
  DEFAULTS,
  type AdminConfig,
  type ConfigIssue,
  type EventLogConfig,
  type KeyDoc,
  type LogConfig,
  type SourceRef,
  type TargetServer,
  type TlsFiles,
} from './types.js';

export const CLIENT_SECTION = 'client';
export const GENERAL_SECTION = 'general';
/** The value of mxProxy that switches the proxy off. */
export const PROXY_OFF = 'none';

export type ClientKeyName =
  | 'mxProxy'
  | 'forward'
  | 'sslCertificate'
  | 'connectTimeout'
  | 'eventLog'
  | 'eventLogLevel'
  | 'eventLogMaxBytes'
  | 'eventLogFiles'
  | 'drainTimeout'
  | LogKeyName
  | AdminKeyName;

export const CLIENT_DEFAULTS = { connectTimeout: 10_000 } as const;
const CONNECT_TIMEOUT = { min: 1, max: 600_000 } as const;

export const CLIENT_KEYS: readonly KeyDoc<ClientKeyName>[] = [
  {
    name: 'mxProxy',
    type: 'string',
    syntax: 'mxProxy = "<host>:<port>" | "none"',
    default: undefined,
    repeatable: false,
    description:
      'The proxy the forwarder connects to. "none" switches the proxy off: each forward connects straight to ' +
      "its target's own address. May also be written in [general], as in the reference; " +
      'mxProxy = "none" in [general] switches the proxy off whatever [client] says, and [client] mxProxy ' +
      'otherwise takes precedence. The proxy\'s certificate must name this host (SAN DNS or IP).',
    example: 'mxProxy = "scada-gw.plant.local:5678"',
  },
  {
    name: 'forward',
    type: 'string',
    syntax: 'forward = "<listen host>:<port> <target> [<direct host>:<port> ...]"',
    default: undefined,
    repeatable: true,
    description:
      'A local port whose connections are forwarded to <target> (a server name of the proxy). The direct ' +
      'addresses are used only when mxProxy is "none" (tried in order); without them, a [proxy] server entry ' +
      'of the same name in this file gives the addresses. Listen on loopback unless other hosts must use it; ' +
      'port 0 takes any free port (logged at start).',
    example: 'forward = "127.0.0.1:14897 data 10.0.1.10:4897"',
  },
  {
    name: 'sslCertificate',
    type: 'string',
    syntax: 'sslCertificate = "<cert.pem> <key.pem> <ca.pem>"',
    default: undefined,
    repeatable: false,
    description:
      "The client certificate (its CN or SAN DNS/URI is the identity the proxy's allow rules match), its " +
      "private key, and the project CA the proxy's certificate must be signed by. Relative paths are relative " +
      'to the config file. Required unless mxProxy is "none".',
    example: 'sslCertificate = "certs/hmi-1.pem certs/hmi-1.key certs/ca.pem"',
  },
  {
    name: 'connectTimeout',
    type: 'number',
    syntax: 'connectTimeout = <ms>',
    default: String(CLIENT_DEFAULTS.connectTimeout),
    repeatable: false,
    ...CONNECT_TIMEOUT,
    description:
      "Milliseconds for one forwarded connection to be linked: TLS handshake and the proxy's reply (or, with " +
      'mxProxy "none", one direct connection attempt).',
    example: 'connectTimeout = 10000',
  },
  // The event log, as for [proxy] (same defaults and ranges), recording the forwarder's machines.
  {
    name: 'eventLog',
    type: 'string',
    syntax: 'eventLog = "<file>"',
    default: undefined,
    repeatable: false,
    description:
      "Records every event that enters the forwarder's actors (one pair per local connection) and every state " +
      "transition to this file, for `mxproxy replay`; its header marks it as a forwarder's log. Relative to the " +
      'config file; its directory must exist. An existing file is rotated away at start. Unset: no event log. ' +
      "Use another file than [proxy] eventLog when one host runs both.",
    example: 'eventLog = "/var/log/mxproxy/forward.mxlog"',
  },
  {
    name: 'eventLogLevel',
    type: 'string',
    syntax: 'eventLogLevel = "lifecycle" | "traffic" | "payload"',
    default: `"${DEFAULTS.eventLogLevel}"`,
    repeatable: false,
    description:
      '"lifecycle": events and transitions only (cheap). "traffic": also the size of every forwarded chunk. ' +
      '"payload": also the bytes themselves — plant data in a file, for deep debugging only; the forwarder warns at start.',
    example: 'eventLogLevel = "lifecycle"',
  },
  {
    name: 'eventLogMaxBytes',
    type: 'number',
    syntax: 'eventLogMaxBytes = <bytes>',
    default: String(DEFAULTS.eventLogMaxBytes),
    repeatable: false,
    ...NUMBER_BOUNDS.eventLogMaxBytes,
    description: 'The forwarder\'s event log is rotated before it grows past this size: <file> becomes <file>.1, and so on.',
    example: 'eventLogMaxBytes = 67108864',
  },
  {
    name: 'eventLogFiles',
    type: 'number',
    syntax: 'eventLogFiles = <count>',
    default: String(DEFAULTS.eventLogFiles),
    repeatable: false,
    ...NUMBER_BOUNDS.eventLogFiles,
    description: "The forwarder's event log files kept, the current one included; the oldest is deleted at rotation.",
    example: 'eventLogFiles = 5',
  },
  {
    name: 'drainTimeout',
    type: 'number',
    syntax: 'drainTimeout = <ms>',
    default: String(DEFAULTS.drainTimeout),
    repeatable: false,
    ...NUMBER_BOUNDS.drainTimeout,
    description:
      'On SIGTERM the forwarder stops listening, resets connections not yet linked and lets linked ones go on ' +
      'for up to this many milliseconds; those still open then are reset (reason shutdown). A second SIGTERM or ' +
      'SIGINT resets them at once. 0: at once.',
    example: 'drainTimeout = 30000',
  },
  ...LOG_KEY_DOCS.client,
  ...adminKeyDocs('forwarder'),
];

const KEY_BY_NAME = new Map<string, KeyDoc<ClientKeyName>>(CLIENT_KEYS.map((k) => [k.name, k]));

export interface ForwardRule {
  listen: HostPort;
  target: string;
  /** Addresses to connect to when the proxy is off, tried in order. */
  direct: HostPort[];
  source: SourceRef;
}

export interface ClientConfig {
  /** The file it was read from (absolute path), or '<command line>'. */
  file: string;
  /** The proxy to connect through; undefined when mxProxy is "none". */
  proxy: HostPort | undefined;
  /** The entry that decided `proxy` (undefined when none was given). */
  proxySource: SourceRef | undefined;
  forwards: ForwardRule[];
  tls: TlsFiles | undefined;
  connectTimeout: number;
  /** The forwarder's event log; undefined: none. */
  eventLog: EventLogConfig | undefined;
  /** Where the forwarder's log lines go besides stdout. */
  log: LogConfig;
  /** ms linked pairs may go on after SIGTERM. */
  drainTimeout: number;
  /** adminListen / adminToken: the forwarder's admin endpoint; undefined: off. */
  admin: AdminConfig | undefined;
}

export interface ClientSectionOptions {
  /** Check that the certificate files exist and are readable. Default true. */
  checkFiles?: boolean;
  /** Report a config without forward entries. Default false. */
  requireForwards?: boolean;
  /** `server` entries of a [proxy] section in the same file: direct addresses when the proxy is off. */
  servers?: ReadonlyMap<string, TargetServer>;
}

const mxProxySchema = z.string().transform((s, ctx): HostPort | typeof PROXY_OFF => {
  const v = s.trim();
  if (v === PROXY_OFF) return PROXY_OFF;
  const r = hostPortSchema.safeParse(v);
  if (r.success) return r.data;
  ctx.addIssue({ code: 'custom', message: `mxProxy: ${firstMessage(r.error)}, or "none" to switch the proxy off` });
  return z.NEVER;
});

const connectTimeoutSchema = z
  .number()
  .int({ error: 'connectTimeout must be a whole number' })
  .min(CONNECT_TIMEOUT.min, { error: `connectTimeout must be between ${CONNECT_TIMEOUT.min} and ${CONNECT_TIMEOUT.max}` })
  .max(CONNECT_TIMEOUT.max, { error: `connectTimeout must be between ${CONNECT_TIMEOUT.min} and ${CONNECT_TIMEOUT.max}` });

/**
 * Builds a ClientConfig from `[general]` entries (only `mxProxy` is read there; the section belongs to
 * other programs too) and `[client]` entries. Returns the issues found; the config is only meaningful
 * when there are none.
 */
export function buildClientConfig(
  general: readonly ConfigEntry[],
  client: readonly ConfigEntry[],
  file: string,
  absFile: string,
  opts: ClientSectionOptions = {},
  headerLine = 0,
): { config: ClientConfig; issues: ConfigIssue[] } {
  const issues: ConfigIssue[] = [];
  const issue = (e: ConfigEntry, message: string): void => {
    issues.push({ file, line: e.line, entry: e.text, message });
  };
  const baseDir = path.dirname(absFile);
  const checkFiles = opts.checkFiles ?? true;

  type MxProxy = { value: HostPort | typeof PROXY_OFF; source: SourceRef };
  const readMxProxy = (e: ConfigEntry): MxProxy | undefined => {
    if (e.value.kind !== 'string') {
      issue(e, 'quoted string expected, e.g. mxProxy = "10.0.0.1:5678" or mxProxy = "none"');
      return undefined;
    }
    const r = mxProxySchema.safeParse(e.value.value);
    if (!r.success) {
      issue(e, firstMessage(r.error));
      return undefined;
    }
    return { value: r.data, source: { file, line: e.line } };
  };

  let generalProxy: MxProxy | undefined;
  for (const e of general) {
    if (e.key !== 'mxProxy') continue;
    if (generalProxy) {
      issue(e, `mxProxy may be given only once in [general] (first given at line ${generalProxy.source.line})`);
      continue;
    }
    generalProxy = readMxProxy(e);
  }

  let clientProxy: MxProxy | undefined;
  let tls: TlsFiles | undefined;
  let connectTimeout: number | undefined;
  let eventLogPath: string | undefined;
  let eventLogLevel: EventLogLevel | undefined;
  const eventLogNumbers: { eventLogMaxBytes?: number; eventLogFiles?: number } = {};
  let drainTimeout: number | undefined;
  const forwards: ForwardRule[] = [];
  const forwardEntries: ConfigEntry[] = [];
  const listenSeen = new Map<string, number>();
  const firstLine = new Map<string, number>();
  const log = new LogEntries(file, baseDir, checkFiles);
  const admin = new AdminEntries(file);

  for (const e of client) {
    const doc = KEY_BY_NAME.get(e.key);
    if (!doc) {
      const hint = suggestKey(e.key, CLIENT_KEYS.map((k) => k.name));
      issue(e, `unknown key "${e.key}" in [client]` + (hint ? `; did you mean ${hint}?` : ''));
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
      case 'mxProxy':
        clientProxy = readMxProxy(e);
        break;
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
      case 'logFile':
      case 'logFileMaxBytes':
      case 'logFiles':
      case 'syslog':
      case 'syslogFacility':
        log.read(e, issue);
        break;
      case 'adminListen':
      case 'adminToken':
        admin.read(e, issue);
        break;
      case 'connectTimeout': {
        const r = connectTimeoutSchema.safeParse(v);
        if (r.success) connectTimeout = r.data;
        else issue(e, firstMessage(r.error));
        break;
      }
      case 'eventLog': {
        if (String(v).trim() === '') {
          issue(e, 'eventLog needs a file name, e.g. eventLog = "forward.mxlog"; leave the entry out for no log');
          break;
        }
        eventLogPath = path.resolve(baseDir, String(v));
        const problem = checkFiles ? eventLogPathProblem(eventLogPath) : undefined;
        if (problem) issue(e, problem);
        break;
      }
      case 'eventLogLevel': {
        const level = EVENT_LOG_LEVELS.find((l) => l === v);
        if (level) eventLogLevel = level;
        else issue(e, `eventLogLevel must be one of ${EVENT_LOG_LEVELS.map((l) => `"${l}"`).join(', ')}`);
        break;
      }
      case 'eventLogMaxBytes':
      case 'eventLogFiles': {
        const r = NUMBER_SCHEMAS[doc.name].safeParse(v);
        if (r.success) eventLogNumbers[doc.name] = r.data;
        else issue(e, firstMessage(r.error));
        break;
      }
      case 'drainTimeout': {
        const r = NUMBER_SCHEMAS.drainTimeout.safeParse(v);
        if (r.success) drainTimeout = r.data;
        else issue(e, firstMessage(r.error));
        break;
      }
      case 'forward': {
        const rule = readForward(String(v), e, file, issue);
        if (!rule) break;
        const k = addressKey(rule.listen);
        const prev = rule.listen.port === 0 ? undefined : listenSeen.get(k);
        if (prev !== undefined) {
          issue(e, `duplicate forward listen address ${formatHostPort(rule.listen)} (already given at line ${prev})`);
          break;
        }
        listenSeen.set(k, e.line);
        forwards.push(rule);
        forwardEntries.push(e);
        break;
      }
    }
  }

  // [general] "none" is the reference's off switch and wins; otherwise [client] names the proxy.
  const decided = generalProxy?.value === PROXY_OFF ? generalProxy : (clientProxy ?? generalProxy);
  const proxyOff = decided?.value === PROXY_OFF;
  const at = { file, line: headerLine, entry: headerLine > 0 ? '[client]' : '' };

  if (decided === undefined && !issues.some((i) => i.entry.startsWith('mxProxy'))) {
    issues.push({ ...at, message: 'mxProxy is missing: name the proxy ("<host>:<port>") or write mxProxy = "none"' });
  }
  if (!proxyOff && decided !== undefined && !firstLine.has('sslCertificate')) {
    issues.push({
      ...at,
      message: 'sslCertificate is missing: the forwarder needs its client certificate, key and the project CA',
    });
  }
  if (opts.requireForwards && forwards.length === 0 && forwardEntries.length === 0 && !issues.some((i) => i.entry.startsWith('forward'))) {
    issues.push({ ...at, message: 'no forward entries: add forward = "<listen host>:<port> <target>"' });
  }
  if (proxyOff) {
    forwards.forEach((rule, i) => {
      if (rule.direct.length > 0) return;
      const server = opts.servers?.get(rule.target);
      if (server && server.addresses.length > 0) {
        rule.direct = server.addresses.map((a) => ({ ...a }));
        return;
      }
      const e = forwardEntries[i];
      if (!e) return;
      issue(
        e,
        `mxProxy is "none" and forward "${rule.target}" has no direct address: write ` +
          `forward = "${formatHostPort(rule.listen)} ${rule.target} <host>:<port>"`,
      );
    });
  }

  const adminConfig = admin.resolve(issues);

  const config: ClientConfig = {
    file: absFile,
    proxy: decided && decided.value !== PROXY_OFF ? decided.value : undefined,
    proxySource: decided?.source,
    forwards,
    tls,
    connectTimeout: connectTimeout ?? CLIENT_DEFAULTS.connectTimeout,
    eventLog: eventLogPath
      ? {
          path: eventLogPath,
          level: eventLogLevel ?? DEFAULTS.eventLogLevel,
          maxBytes: eventLogNumbers.eventLogMaxBytes ?? DEFAULTS.eventLogMaxBytes,
          files: eventLogNumbers.eventLogFiles ?? DEFAULTS.eventLogFiles,
        }
      : undefined,
    log: log.config(),
    drainTimeout: drainTimeout ?? DEFAULTS.drainTimeout,
    admin: adminConfig,
  };
  return { config, issues };
}

function readForward(
  value: string,
  e: ConfigEntry,
  file: string,
  issue: (e: ConfigEntry, message: string) => void,
): ForwardRule | undefined {
  const parts = value.trim().split(/\s+/).filter((p) => p !== '');
  const [listenText, target, ...directTexts] = parts;
  if (listenText === undefined || target === undefined) {
    issue(e, 'expected "<listen host>:<port> <target> [<direct host>:<port> ...]"');
    return undefined;
  }
  // Port 0: any free port, reported in the start-up log (scripts and tests).
  const listen = parseHostPort(listenText, { anyPort: true });
  if (!listen.ok) {
    issue(e, `forward listen: ${listen.message}`);
    return undefined;
  }
  if (!NAME_RE.test(target)) {
    issue(e, `bad target name "${target}": use letters, digits, "_", "." or "-"`);
    return undefined;
  }
  const direct: HostPort[] = [];
  for (const d of directTexts) {
    const r = parseHostPort(d);
    if (r.ok) direct.push(r.value);
    else issue(e, `forward "${target}" direct address: ${r.message}`);
  }
  return { listen: listen.value, target, direct, source: { file, line: e.line } };
}
