/** Reading a config file or text into a validated ProxyConfig, and printing the effective configuration. */
import fs from 'node:fs';
import path from 'node:path';
import { hasSection, parseConfigText } from './parse.js';
import { ConfigError } from '../errors.js';
import { describeDerivedMaxConnections } from '../process/openFiles.js';
import { formatHostPort, sameAddress } from '../shared/address.js';
import { rateLabel } from '../shared/tokenBucket.js';
import { PROXY_KEYS, PROXY_SECTION, type KeyDoc, type ProxyKeyName } from './proxyKeys.js';
import { buildProxyConfig, type ProxySectionOptions } from './proxySection.js';
import { LOG_DEFAULTS, type LogKeyName } from './logKeys.js';
import { DEFAULTS, type ConfigIssue, type LogConfig, type ProxyConfig } from './types.js';

export type ReadProxyConfigOptions = ProxySectionOptions;

function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  // Array.prototype.sort is stable: issues of one line keep the order they were found in.
  return [...issues].sort((a, b) => a.line - b.line);
}

/**
 * Parses and validates config text. `file` is the path shown in messages; relative certificate paths are
 * resolved against its directory. Throws a ConfigError listing every problem found.
 */
export function readProxyConfig(text: string, file: string, opts: ReadProxyConfigOptions = {}): ProxyConfig {
  const parsed = parseConfigText(text, file);
  const issues: ConfigIssue[] = [...parsed.issues];
  const absFile = path.resolve(file);

  if (!hasSection(parsed, PROXY_SECTION)) {
    const other = parsed.sections.find((s) => s.name.toLowerCase() === PROXY_SECTION);
    issues.push({
      file,
      line: other ? other.line : 0,
      entry: other ? `[${other.name}]` : '',
      message: other
        ? `no [proxy] section (section names are case-sensitive: write [proxy], not [${other.name}])`
        : 'no [proxy] section',
    });
    throw new ConfigError(sortIssues(issues));
  }

  const header = parsed.sections.find((s) => s.name === PROXY_SECTION);
  const entries = parsed.sections.filter((s) => s.name === PROXY_SECTION).flatMap((s) => s.entries);
  const built = buildProxyConfig(entries, file, absFile, opts, header?.line ?? 0);
  issues.push(...built.issues);
  if (issues.length > 0) throw new ConfigError(sortIssues(issues));
  return built.config;
}

/** Reads and validates a config file. Throws a ConfigError (also when the file cannot be read). */
export function loadProxyConfig(file: string, opts: ReadProxyConfigOptions = {}): ProxyConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new ConfigError([{ file, line: 0, entry: '', message: `cannot read config file: ${err.message}` }]);
  }
  return readProxyConfig(text, file, opts);
}

// ---------------------------------------------------------------------------------------------------------

function quote(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** The log keys, rendered alike for [proxy] and [client] (describeClientConfig). */
export function renderLogKeys(log: LogConfig): Record<LogKeyName, { values: string[]; isDefault: boolean }> {
  const { maxBytes, files, facility } = log;
  return {
    logFile: { values: log.file ? [quote(log.file.path)] : [], isDefault: false },
    logFileMaxBytes: { values: [String(maxBytes)], isDefault: maxBytes === LOG_DEFAULTS.logFileMaxBytes },
    logFiles: { values: [String(files)], isDefault: files === LOG_DEFAULTS.logFiles },
    syslog: { values: log.syslog ? [quote(log.syslog.url)] : [], isDefault: false },
    syslogFacility: { values: [quote(facility)], isDefault: facility === LOG_DEFAULTS.syslogFacility },
  };
}

export const LOG_NOT_SET: Partial<Record<LogKeyName, string>> = {
  logFile: 'not set (log lines go to stdout only)',
  syslog: 'not set (no syslog)',
};

const sameListen = (c: ProxyConfig): boolean =>
  c.listen.length === DEFAULTS.listen.length &&
  c.listen.every((hp, i) => {
    const d = DEFAULTS.listen[i];
    return d !== undefined && sameAddress(hp, d);
  });

/** Each key's effective values as written in a config file, and whether that is the default. */
const RENDER: Record<ProxyKeyName, (c: ProxyConfig) => { values: string[]; isDefault: boolean }> = {
  listen: (c) => ({ values: c.listen.map((hp) => quote(formatHostPort(hp))), isDefault: sameListen(c) }),
  sslCertificate: (c) => ({
    values: c.tls ? [quote(`${c.tls.certFile} ${c.tls.keyFile} ${c.tls.caFile}`)] : [],
    isDefault: false,
  }),
  sslCrl: (c) => ({ values: c.crlFile ? [quote(c.crlFile)] : [], isDefault: false }),
  user: (c) => ({ values: c.runAs ? [quote(c.runAs.user)] : [], isDefault: false }),
  group: (c) => ({ values: c.runAs ? [quote(c.runAs.group)] : [], isDefault: false }),
  server: (c) => ({
    values: [...c.servers.values()].map((s) => quote([s.name, ...s.addresses.map(formatHostPort)].join(' '))),
    isDefault: false,
  }),
  allow: (c) => ({ values: c.allow.map((r) => quote([r.identity, ...r.targets].join(' '))), isDefault: false }),
  handshakeTimeout: (c) => ({
    values: [String(c.handshakeTimeout)],
    isDefault: c.handshakeTimeout === DEFAULTS.handshakeTimeout,
  }),
  connectTimeout: (c) => ({ values: [String(c.connectTimeout)], isDefault: c.connectTimeout === DEFAULTS.connectTimeout }),
  teardownTimeout: (c) => ({
    values: [String(c.teardownTimeout)],
    isDefault: c.teardownTimeout === DEFAULTS.teardownTimeout,
  }),
  halfCloseTimeout: (c) => ({
    values: [String(c.halfCloseTimeout)],
    isDefault: c.halfCloseTimeout === DEFAULTS.halfCloseTimeout,
  }),
  idleTimeout: (c) => ({ values: [String(c.idleTimeout)], isDefault: c.idleTimeout === DEFAULTS.idleTimeout }),
  tcpKeepAlive: (c) => ({ values: [String(c.tcpKeepAlive)], isDefault: c.tcpKeepAlive === DEFAULTS.tcpKeepAlive }),
  maxRequestBytes: (c) => ({
    values: [String(c.maxRequestBytes)],
    isDefault: c.maxRequestBytes === DEFAULTS.maxRequestBytes,
  }),
  sessionTicketRotation: (c) => ({
    values: [String(c.sessionTicketRotation)],
    isDefault: c.sessionTicketRotation === DEFAULTS.sessionTicketRotation,
  }),
  eventLog: (c) => ({ values: c.eventLog ? [quote(c.eventLog.path)] : [], isDefault: false }),
  eventLogLevel: (c) => ({
    values: [quote(c.eventLog?.level ?? DEFAULTS.eventLogLevel)],
    isDefault: (c.eventLog?.level ?? DEFAULTS.eventLogLevel) === DEFAULTS.eventLogLevel,
  }),
  eventLogMaxBytes: (c) => ({
    values: [String(c.eventLog?.maxBytes ?? DEFAULTS.eventLogMaxBytes)],
    isDefault: (c.eventLog?.maxBytes ?? DEFAULTS.eventLogMaxBytes) === DEFAULTS.eventLogMaxBytes,
  }),
  adminListen: (c) => ({ values: c.admin ? [quote(formatHostPort(c.admin.listen))] : [], isDefault: false }),
  adminToken: (c) => ({ values: c.admin?.token ? [quote(c.admin.token)] : [], isDefault: false }),
  eventLogFiles: (c) => ({
    values: [String(c.eventLog?.files ?? DEFAULTS.eventLogFiles)],
    isDefault: (c.eventLog?.files ?? DEFAULTS.eventLogFiles) === DEFAULTS.eventLogFiles,
  }),
  maxConnections: (c) => ({ values: c.maxConnections === undefined ? [] : [String(c.maxConnections)], isDefault: false }),
  maxPendingHandshakes: (c) => ({
    values: [String(c.maxPendingHandshakes)],
    isDefault: c.maxPendingHandshakes === DEFAULTS.maxPendingHandshakes,
  }),
  maxPendingPerSource: (c) => ({
    values: [String(c.maxPendingPerSource)],
    isDefault: c.maxPendingPerSource === DEFAULTS.maxPendingPerSource,
  }),
  connectRate: (c) => {
    const label = c.connectRate ? rateLabel(c.connectRate) : 'off';
    return { values: [quote(label)], isDefault: label === rateLabel(DEFAULTS.connectRate) };
  },
  maxConnectionsPerIdentity: (c) => ({
    values: c.maxConnectionsPerIdentity === undefined ? [] : [String(c.maxConnectionsPerIdentity)],
    isDefault: false,
  }),
  maxConnectionsPerServer: (c) => ({
    values: c.maxConnectionsPerServer === undefined ? [] : [String(c.maxConnectionsPerServer)],
    isDefault: false,
  }),
  workers: (c) => ({ values: [c.workers === 'auto' ? quote('auto') : String(c.workers)], isDefault: c.workers === DEFAULTS.workers }),
  logFile: (c) => renderLogKeys(c.log).logFile,
  logFileMaxBytes: (c) => renderLogKeys(c.log).logFileMaxBytes,
  logFiles: (c) => renderLogKeys(c.log).logFiles,
  syslog: (c) => renderLogKeys(c.log).syslog,
  syslogFacility: (c) => renderLogKeys(c.log).syslogFacility,
  pidFile: (c) => ({ values: c.pidFile ? [quote(c.pidFile)] : [], isDefault: false }),
  onRuleChange: (c) => ({ values: [quote(c.onRuleChange)], isDefault: c.onRuleChange === DEFAULTS.onRuleChange }),
  drainTimeout: (c) => ({ values: [String(c.drainTimeout)], isDefault: c.drainTimeout === DEFAULTS.drainTimeout }),
};

const NOT_SET: Partial<Record<ProxyKeyName, string | (() => string)>> = {
  sslCertificate: 'not set (mxproxy start requires it)',
  server: 'none defined',
  allow: 'none (no client may reach any server)',
  eventLog: 'not set (no event log)',
  ...LOG_NOT_SET,
  sslCrl: 'not set (no revocation check)',
  user: 'not set (keeps the account it was started with)',
  group: "not set (the user's primary group)",
  // Read when printed: the limit of the process that prints it (the proxy itself under `start --dbg work`).
  maxConnections: () => `not set: derived from the open-files limit, ${describeDerivedMaxConnections()}`,
  maxConnectionsPerIdentity: 'not set (no limit)',
  maxConnectionsPerServer: 'not set (no limit)',
  pidFile: 'not set (no pid file: `mxproxy reload` needs one; SIGHUP works without)',
  adminListen: 'not set (no admin endpoint)',
  adminToken: 'not set',
};

function describeKey(doc: KeyDoc<ProxyKeyName>, c: ProxyConfig): string[] {
  const { values, isDefault } = RENDER[doc.name](c);
  if (values.length === 0) {
    const note = NOT_SET[doc.name];
    return [`# ${doc.name}: ${(typeof note === 'function' ? note() : note) ?? 'not set'}`];
  }
  return values.map((v) => {
    const shown = doc.secret ? quote('***') : v;
    return `${doc.name} = ${shown}${isDefault ? '  # default' : ''}`;
  });
}

/**
 * The effective configuration as config-file text: every [proxy] key with its value, values equal to the
 * built-in default marked `# default`, secret keys shown as "***". The output reads back as the same config.
 */
export function describeConfig(config: ProxyConfig): string {
  const lines = [`# mxproxy effective configuration, read from ${config.file}`, '[proxy]'];
  for (const doc of PROXY_KEYS) lines.push(...describeKey(doc, config));
  return lines.join('\n') + '\n';
}
