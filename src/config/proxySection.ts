/**
 * The step from the entries of the `[proxy]` section(s) to a `ProxyConfig`: which keys, how often, values
 * checked by the schemas, references between entries (allow → server), defaults. The keys are documented in
 * proxyKeys.ts, the value shapes in schemas.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { addressKey, formatHostPort, type HostPort } from '../shared/address.js';
import { ACCOUNT_SPEC, lookupAccount } from '../process/accounts.js';
import { EVENT_LOG_LEVELS, type EventLogLevel } from '../shared/eventLogLevel.js';
import { parseIdentityPattern } from '../shared/identity.js';
import type { Rate } from '../shared/tokenBucket.js';
import { checkReadableFile, FILE_ROLES } from './files.js';
import { AdminEntries } from './adminKeys.js';
import { LogEntries } from './logKeys.js';
import type { ConfigEntry } from './parse.js';
import { PROXY_KEY_BY_NAME, PROXY_KEYS, type NumberKey } from './proxyKeys.js';
import {
  allowSchema,
  firstMessage,
  hostPortSchema,
  NAME_RE,
  NUMBER_SCHEMAS,
  rateSchema,
  serverSchema,
  sslCertificateSchema,
} from './schemas.js';
import { suggestKey } from './suggest.js';
import {
  DEFAULTS,
  RULE_CHANGE_POLICIES,
  type AllowRule,
  type RuleChangePolicy,
  type ConfigIssue,
  type ProxyConfig,
  type RunAs,
  type TargetServer,
  type TlsFiles,
} from './types.js';

const PROXY_KEY_NAMES = PROXY_KEYS.map((k) => k.name);

export interface ProxySectionOptions {
  /** Report a missing sslCertificate entry as an issue. Default false. */
  requireTls?: boolean;
  /** Check that the certificate files exist and are readable. Default true. */
  checkFiles?: boolean;
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
  let crlFile: string | undefined;
  let pidFile: string | undefined;
  let onRuleChange: RuleChangePolicy | undefined;
  const account: { user?: ConfigEntry; group?: ConfigEntry } = {};
  let connectRate: Rate | null | undefined;
  let workers: number | 'auto' | undefined;
  const log = new LogEntries(file, baseDir, checkFiles);
  const admin = new AdminEntries(file);
  const firstLine = new Map<string, number>();

  for (const e of entries) {
    const doc = PROXY_KEY_BY_NAME.get(e.key);
    if (!doc) {
      const hint = suggestKey(e.key, PROXY_KEY_NAMES);
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
    // workers is the one number key that also takes a word ("auto"); its case checks both.
    if (doc.type === 'number' && e.value.kind !== 'number' && doc.name !== 'workers') {
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
      case 'sslCrl': {
        const p = String(v).trim();
        if (p === '' || /\s/.test(p)) {
          issue(e, 'sslCrl needs one file name without spaces, e.g. sslCrl = "certs/crl.pem"; leave the entry out for no revocation check');
          break;
        }
        crlFile = path.resolve(baseDir, p);
        const problem = checkFiles ? checkReadableFile(crlFile, 'CRL') : undefined;
        if (problem) issue(e, problem);
        break;
      }
      case 'user':
      case 'group': {
        if (!ACCOUNT_SPEC.test(String(v))) issue(e, `${doc.name} must be a ${doc.name} name or a numeric id, e.g. ${doc.example}`);
        else account[doc.name] = e;
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
          // A missing directory is created at start (for the user the proxy runs as); its parent must exist.
          const dir = path.dirname(eventLogPath);
          const problem = !fs.existsSync(path.dirname(dir))
            ? `eventLog directory ${dir} does not exist, nor its parent`
            : fs.existsSync(eventLogPath) && !fs.statSync(eventLogPath).isFile()
              ? `eventLog ${eventLogPath} exists and is not a regular file`
              : undefined;
          if (problem) issue(e, problem);
        }
        break;
      }
      case 'pidFile': {
        const p = String(v).trim();
        if (p === '') {
          issue(e, 'pidFile needs a file name, e.g. pidFile = "/run/mxproxy/mxproxy.pid"; leave the entry out for no pid file');
          break;
        }
        pidFile = path.resolve(baseDir, p);
        if (checkFiles) {
          // As for the event log: a missing directory is created at start, its parent must exist.
          const dir = path.dirname(pidFile);
          const problem = !fs.existsSync(path.dirname(dir))
            ? `pidFile directory ${dir} does not exist, nor its parent`
            : fs.existsSync(pidFile) && !fs.statSync(pidFile).isFile()
              ? `pidFile ${pidFile} exists and is not a regular file`
              : undefined;
          if (problem) issue(e, problem);
        }
        break;
      }
      case 'onRuleChange': {
        const policy = RULE_CHANGE_POLICIES.find((p) => p === v);
        if (policy) onRuleChange = policy;
        else issue(e, `onRuleChange must be one of ${RULE_CHANGE_POLICIES.map((p) => `"${p}"`).join(', ')}`);
        break;
      }
      case 'adminListen':
      case 'adminToken':
        admin.read(e, issue);
        break;
      case 'eventLogLevel': {
        const level = EVENT_LOG_LEVELS.find((l) => l === v);
        if (level) eventLogLevel = level;
        else issue(e, `eventLogLevel must be one of ${EVENT_LOG_LEVELS.map((l) => `"${l}"`).join(', ')}`);
        break;
      }
      case 'connectRate': {
        const r = rateSchema.safeParse(v);
        if (r.success) connectRate = r.data;
        else issue(e, firstMessage(r.error));
        break;
      }
      case 'workers': {
        if (e.value.kind === 'string') {
          if (v === 'auto') workers = 'auto';
          else issue(e, `workers is a number of processes or "auto", e.g. ${doc.example} or workers = "auto"`);
          break;
        }
        const r = NUMBER_SCHEMAS.workers.safeParse(v);
        if (r.success) workers = r.data;
        else issue(e, firstMessage(r.error));
        break;
      }
      case 'logFile':
      case 'logFileMaxBytes':
      case 'logFiles':
      case 'syslog':
      case 'syslogFacility':
        log.read(e, issue);
        break;
      case 'handshakeTimeout':
      case 'connectTimeout':
      case 'teardownTimeout':
      case 'halfCloseTimeout':
      case 'idleTimeout':
      case 'tcpKeepAlive':
      case 'maxRequestBytes':
      case 'sessionTicketRotation':
      case 'eventLogMaxBytes':
      case 'eventLogFiles':
      case 'maxConnections':
      case 'maxPendingHandshakes':
      case 'maxPendingPerSource':
      case 'maxConnectionsPerIdentity':
      case 'maxConnectionsPerServer':
      case 'drainTimeout': {
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

  const runAs = resolveRunAs(account, file, issues);
  const adminConfig = admin.resolve(issues);

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
    halfCloseTimeout: numbers.halfCloseTimeout ?? DEFAULTS.halfCloseTimeout,
    idleTimeout: numbers.idleTimeout ?? DEFAULTS.idleTimeout,
    tcpKeepAlive: numbers.tcpKeepAlive ?? DEFAULTS.tcpKeepAlive,
    maxRequestBytes: numbers.maxRequestBytes ?? DEFAULTS.maxRequestBytes,
    sessionTicketRotation: numbers.sessionTicketRotation ?? DEFAULTS.sessionTicketRotation,
    eventLog: eventLogPath
      ? {
          path: eventLogPath,
          level: eventLogLevel ?? DEFAULTS.eventLogLevel,
          maxBytes: numbers.eventLogMaxBytes ?? DEFAULTS.eventLogMaxBytes,
          files: numbers.eventLogFiles ?? DEFAULTS.eventLogFiles,
        }
      : undefined,
    crlFile,
    runAs,
    maxConnections: numbers.maxConnections,
    maxPendingHandshakes: numbers.maxPendingHandshakes ?? DEFAULTS.maxPendingHandshakes,
    maxPendingPerSource: numbers.maxPendingPerSource ?? DEFAULTS.maxPendingPerSource,
    connectRate: connectRate === undefined ? { ...DEFAULTS.connectRate } : connectRate,
    maxConnectionsPerIdentity: numbers.maxConnectionsPerIdentity,
    maxConnectionsPerServer: numbers.maxConnectionsPerServer,
    log: log.config(),
    pidFile,
    onRuleChange: onRuleChange ?? DEFAULTS.onRuleChange,
    drainTimeout: numbers.drainTimeout ?? DEFAULTS.drainTimeout,
    workers: workers ?? DEFAULTS.workers,
    admin: adminConfig,
  };
  return { config, issues };
}

/** user / group → ids, looked up on this host; problems are reported at their entries. */
function resolveRunAs(account: { user?: ConfigEntry; group?: ConfigEntry }, file: string, issues: ConfigIssue[]): RunAs | undefined {
  const { user, group } = account;
  const issue = (e: ConfigEntry, message: string): undefined => {
    issues.push({ file, line: e.line, entry: e.text, message });
    return undefined;
  };
  if (!user) return group ? issue(group, 'group is given without user: name the account to run as, e.g. user = "mxproxy"') : undefined;
  const u = lookupAccount('passwd', String(user.value.value));
  if (!u) return issue(user, `user "${String(user.value.value)}" does not exist on this host`);
  const g = group ? lookupAccount('group', String(group.value.value)) : lookupAccount('group', String(u.gid));
  if (group && !g) return issue(group, `group "${String(group.value.value)}" does not exist on this host`);
  return {
    user: u.name,
    uid: u.id,
    group: g?.name ?? String(u.gid), // a primary gid without a group entry is still a valid gid
    gid: g?.id ?? u.gid,
    source: { file, line: user.line },
  };
}
