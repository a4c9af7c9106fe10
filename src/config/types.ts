/** The effective configuration, after parsing, validation and defaults. */
import type { HostPort } from '../shared/address.js';
import type { EventLogLevel } from '../shared/eventLogLevel.js';
import type { IdentityField } from '../shared/identity.js';
import type { Rate } from '../shared/tokenBucket.js';

/** A named backend; more than one address means redundant servers, tried in order until one accepts. */
export interface TargetServer {
  name: string;
  addresses: HostPort[];
  /** Where it was defined, for messages. */
  source: SourceRef;
}

/** `allow = "[cn:|dns:|uri:]<identity-glob> <target-glob> [...]"` */
export interface AllowRule {
  /** As written, with its field prefix if any: `dns:*.plant.local`. */
  identity: string;
  /** The certificate field the glob matches; `any` (no prefix): the CN, a SAN DNS or a SAN URI entry. */
  field: IdentityField;
  /** `identity` without the prefix. */
  glob: string;
  targets: string[];
  source: SourceRef;
}

export interface SourceRef {
  file: string;
  line: number;
}

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  caFile: string;
}

export interface ProxyConfig {
  /** The file it was read from (absolute path), or '<built-in>'. */
  file: string;
  listen: HostPort[];
  /** Absent only when the file has no sslCertificate entry; `start` refuses to run without it. */
  tls: TlsFiles | undefined;
  servers: Map<string, TargetServer>;
  allow: AllowRule[];
  /** ms from TCP accept to a complete request frame. */
  handshakeTimeout: number;
  /** ms for one backend dial attempt. */
  connectTimeout: number;
  /** ms a closing pair may take to flush and close before both sockets are destroyed. */
  teardownTimeout: number;
  /** ms a linked pair may stay half-closed (one side sent FIN) before both sockets are destroyed; 0: off. */
  halfCloseTimeout: number;
  /** ms without a byte in either direction before a linked pair is ended; 0: off. */
  idleTimeout: number;
  /** ms of silence before the kernel's first keepalive probe on both sockets of a linked pair; 0: off. */
  tcpKeepAlive: number;
  /** Largest request frame body in bytes. */
  maxRequestBytes: number;
  /** ms between session-ticket key replacements. */
  sessionTicketRotation: number;
  /** The event log; undefined: none. */
  eventLog: EventLogConfig | undefined;
  /** Open client sockets at most; undefined: derived from the open-files limit at start (src/proxy/limits.ts). */
  maxConnections: number | undefined;
  /** Accepted sockets not yet past TLS and their request frame, over all sources. */
  maxPendingHandshakes: number;
  /** The same, per source address. */
  maxPendingPerSource: number;
  /** New connections per source address; null: no limit ("off"). */
  connectRate: Rate | null;
  /** Pairs (connecting or linked) per client identity; undefined: no limit. */
  maxConnectionsPerIdentity: number | undefined;
  /** Pairs (connecting or linked) per server entry; undefined: no limit. */
  maxConnectionsPerServer: number | undefined;
  /** sslCrl (absolute path); undefined: no revocation check. */
  crlFile: string | undefined;
  /** user / group: the account to drop to after start; undefined: keep the one started with. */
  runAs: RunAs | undefined;
  /** Where log lines go besides stdout. */
  log: LogConfig;
  /** Where the process id is written at start (absolute path); undefined: nowhere. */
  pidFile: string | undefined;
  /** What a reload does to established pairs the new rules or CRL no longer admit. */
  onRuleChange: RuleChangePolicy;
  /** ms linked pairs may go on after SIGTERM before they are closed; 0: closed at once. */
  drainTimeout: number;
  /** Worker processes (`workers`): 1 is a single process; "auto" is resolved at start (src/cluster/workers.ts). */
  workers: number | 'auto';
  /** adminListen / adminToken: the admin endpoint; undefined: off. */
  admin: AdminConfig | undefined;
}

/** The admin endpoint (src/inspect). */
export interface AdminConfig {
  listen: HostPort;
  /** Required unless `listen` is a loopback address. */
  token: string | undefined;
  /** The adminListen entry. */
  source: SourceRef;
}

export type RuleChangePolicy = 'close' | 'keep';
export const RULE_CHANGE_POLICIES: readonly RuleChangePolicy[] = ['close', 'keep'];

/** An account resolved from the user and group entries (names for messages, ids for setuid/setgid). */
export interface RunAs {
  user: string;
  uid: number;
  group: string;
  gid: number;
  source: SourceRef;
}

export interface EventLogConfig {
  /** Absolute path. */
  path: string;
  level: EventLogLevel;
  maxBytes: number;
  files: number;
}

/** Where log lines go besides stdout: the log keys of [proxy] or [client], or --log-file / --syslog. */
export interface LogConfig {
  file: LogFileConfig | undefined;
  syslog: SyslogConfig | undefined;
  /** logFileMaxBytes, logFiles and syslogFacility as given (or their defaults), for --log-file and --syslog too. */
  maxBytes: number;
  files: number;
  facility: SyslogFacility;
}

export interface LogFileConfig {
  /** Absolute path. */
  path: string;
  maxBytes: number;
  /** Files kept, the current one included. */
  files: number;
  /** The entry (or the command line) that named it, for errors. */
  source: SourceRef;
}

/** The facilities a plant service may log as, with their RFC 5424 codes. */
export const SYSLOG_FACILITIES = {
  user: 1,
  daemon: 3,
  auth: 4,
  authpriv: 10,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
} as const;
export type SyslogFacility = keyof typeof SYSLOG_FACILITIES;

export interface SyslogConfig {
  /** As written: `udp://127.0.0.1:514`. */
  url: string;
  protocol: 'udp' | 'tcp';
  host: string;
  port: number;
  facility: SyslogFacility;
  source: SourceRef;
}

export const DEFAULT_PORT = 5678;

export const DEFAULTS = {
  listen: [{ host: '0.0.0.0', port: DEFAULT_PORT }] as HostPort[],
  handshakeTimeout: 5000,
  connectTimeout: 5000,
  teardownTimeout: 1000,
  halfCloseTimeout: 60_000,
  // Plant connections are long-lived and often quiet for hours: no idle limit unless asked for.
  idleTimeout: 0,
  tcpKeepAlive: 60_000,
  maxRequestBytes: 4096,
  sessionTicketRotation: 3_600_000,
  eventLogLevel: 'lifecycle',
  eventLogMaxBytes: 64 * 1024 * 1024,
  eventLogFiles: 5,
  maxPendingHandshakes: 512,
  maxPendingPerSource: 32,
  connectRate: { count: 500, per: 's', burst: 1000 } as Rate,
  onRuleChange: 'close' as RuleChangePolicy,
  drainTimeout: 30_000,
  workers: 1,
} as const;

/** One problem found in a config file. */
export interface ConfigIssue {
  file: string;
  line: number;
  /** The entry as written (`key = value`), or the section header, or '' for file-level problems. */
  entry: string;
  message: string;
}

export function formatIssue(i: ConfigIssue): string {
  const where = i.line > 0 ? `${i.file}:${i.line}` : i.file;
  return i.entry ? `${where}: ${i.message} (in: ${i.entry})` : `${where}: ${i.message}`;
}

/** Documentation of one config key. */
export interface KeyDoc<N extends string = string> {
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

