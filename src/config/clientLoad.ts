/** Reading the client side of a config file ([general] mxProxy, [client]) and printing it back. */
import fs from 'node:fs';
import path from 'node:path';
import { hasSection, parseConfigText, sectionEntries } from './parse.js';
import { formatHostPort } from '../shared/address.js';
import { LOG_NOT_SET, renderLogKeys } from './load.js';
import { LOG_KEY_DOCS } from './logKeys.js';
import { PROXY_SECTION } from './proxyKeys.js';
import { buildProxyConfig } from './proxySection.js';
import {
  buildClientConfig,
  CLIENT_DEFAULTS,
  CLIENT_SECTION,
  GENERAL_SECTION,
  type ClientConfig,
  type ClientSectionOptions,
} from './clientSection.js';
import { ConfigError } from '../errors.js';
import { DEFAULTS, type ConfigIssue } from './types.js';

export type ReadClientConfigOptions = Omit<ClientSectionOptions, 'servers'>;

const byLine = (issues: ConfigIssue[]): ConfigIssue[] => [...issues].sort((a, b) => a.line - b.line);

/** Parses and validates the [client] side of config text. Throws a ConfigError listing every problem. */
export function readClientConfig(text: string, file: string, opts: ReadClientConfigOptions = {}): ClientConfig {
  const parsed = parseConfigText(text, file);
  const issues: ConfigIssue[] = [...parsed.issues];
  const absFile = path.resolve(file);
  if (!hasSection(parsed, CLIENT_SECTION)) {
    const other = parsed.sections.find((s) => s.name.toLowerCase() === CLIENT_SECTION);
    issues.push({
      file,
      line: other?.line ?? 0,
      entry: other ? `[${other.name}]` : '',
      message: other
        ? `no [client] section (section names are case-sensitive: write [client], not [${other.name}])`
        : 'no [client] section: the forwarder reads mxProxy, forward and sslCertificate from it',
    });
    throw new ConfigError(byLine(issues));
  }
  // A [proxy] section in the same file (single host) names the targets' addresses for mxProxy = "none".
  const servers = hasSection(parsed, PROXY_SECTION)
    ? buildProxyConfig(sectionEntries(parsed, PROXY_SECTION), file, absFile, { checkFiles: false }).config.servers
    : undefined;
  const header = parsed.sections.find((s) => s.name === CLIENT_SECTION);
  const built = buildClientConfig(
    sectionEntries(parsed, GENERAL_SECTION),
    sectionEntries(parsed, CLIENT_SECTION),
    file,
    absFile,
    { ...opts, servers },
    header?.line ?? 0,
  );
  issues.push(...built.issues);
  if (issues.length > 0) throw new ConfigError(byLine(issues));
  return built.config;
}

/** Reads and validates the client side of a config file. Throws a ConfigError (also when unreadable). */
export function loadClientConfig(file: string, opts: ReadClientConfigOptions = {}): ClientConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError([{ file, line: 0, entry: '', message: `cannot read config file: ${(e as Error).message}` }]);
  }
  return readClientConfig(text, file, opts);
}

const quote = (s: string): string => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

/** The effective client configuration as config-file text that reads back as the same config. */
export function describeClientConfig(c: ClientConfig): string {
  const lines = [`# mxproxy effective client configuration, read from ${c.file}`, '[client]'];
  lines.push(`mxProxy = ${quote(c.proxy ? formatHostPort(c.proxy) : 'none')}${c.proxy ? '' : '  # proxy switched off'}`);
  for (const f of c.forwards) {
    lines.push(`forward = ${quote([formatHostPort(f.listen), f.target, ...f.direct.map(formatHostPort)].join(' '))}`);
  }
  if (c.forwards.length === 0) lines.push('# forward: none');
  lines.push(c.tls ? `sslCertificate = ${quote(`${c.tls.certFile} ${c.tls.keyFile} ${c.tls.caFile}`)}` : '# sslCertificate: not set');
  lines.push(`connectTimeout = ${c.connectTimeout}${c.connectTimeout === CLIENT_DEFAULTS.connectTimeout ? '  # default' : ''}`);
  const eventLog = c.eventLog;
  if (eventLog) {
    const dflt = (isDefault: boolean) => (isDefault ? '  # default' : '');
    lines.push(`eventLog = ${quote(eventLog.path)}`);
    lines.push(`eventLogLevel = ${quote(eventLog.level)}${dflt(eventLog.level === DEFAULTS.eventLogLevel)}`);
    lines.push(`eventLogMaxBytes = ${eventLog.maxBytes}${dflt(eventLog.maxBytes === DEFAULTS.eventLogMaxBytes)}`);
    lines.push(`eventLogFiles = ${eventLog.files}${dflt(eventLog.files === DEFAULTS.eventLogFiles)}`);
  } else {
    lines.push('# eventLog: not set (no event log)');
  }
  lines.push(`drainTimeout = ${c.drainTimeout}${c.drainTimeout === DEFAULTS.drainTimeout ? '  # default' : ''}`);
  const log = renderLogKeys(c.log);
  for (const { name } of LOG_KEY_DOCS.client) {
    const { values, isDefault } = log[name];
    if (values.length === 0) lines.push(`# ${name}: ${LOG_NOT_SET[name] ?? 'not set'}`);
    for (const v of values) lines.push(`${name} = ${v}${isDefault ? '  # default' : ''}`);
  }
  // As describeConfig does for [proxy]: the token itself is never printed.
  lines.push(c.admin ? `adminListen = ${quote(formatHostPort(c.admin.listen))}` : '# adminListen: not set (no admin endpoint)');
  lines.push(c.admin?.token ? `adminToken = ${quote('***')}` : '# adminToken: not set');
  return lines.join('\n') + '\n';
}
