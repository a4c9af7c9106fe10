/** The effective configuration, after parsing, validation and defaults. */
import type { HostPort } from '../shared/address.js';
import type { EventLogLevel } from '../shared/eventLogLevel.js';
import type { IdentityField } from '../shared/identity.js';

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
  /** The event log; undefined: none. */
  eventLog: EventLogConfig | undefined;
  /** sslCrl (absolute path); undefined: no revocation check. */
  crlFile: string | undefined;
  /** user / group: the account to drop to after start; undefined: keep the one started with. */
  runAs: RunAs | undefined;
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
  eventLogLevel: 'lifecycle',
  eventLogMaxBytes: 64 * 1024 * 1024,
  eventLogFiles: 5,
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
