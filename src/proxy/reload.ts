/**
 * Reading a config for a reload (SIGHUP, `mxproxy reload`) and what of it a running proxy can take. The swap
 * itself is the runtime's (runtime.ts, `live`); this decides what goes into it.
 *
 * Taken at once: servers, allow rules, timeouts, limits, onRuleChange, drainTimeout, the certificate, key, CA
 * and CRL (a new secure context for new handshakes). Not without a restart: listen (the sockets are bound),
 * eventLog (the log is open), user/group (root is gone), pidFile (written at start); those keep their old
 * values, with a warning.
 */
import fs from 'node:fs';
import { parseConfigText, PROXY_SECTION, readProxyConfig, sectionEntries, type ConfigIssue, type ProxyConfig } from '../config/index.js';
import { ConfigError, TlsMaterialError } from '../errors.js';
import { loadTlsMaterial } from '../net/tlsMaterial.js';
import type { TlsMaterial } from '../net/tlsTerminator.js';
import { addressKey, formatHostPort } from '../shared/address.js';

export type ReloadRead =
  | { ok: true; config: ProxyConfig; material: TlsMaterial; warnings: string[] }
  | { ok: false; issues: ConfigIssue[] };

/**
 * The config file as `start` reads it, and its certificates: every problem found, each with its file:line (a
 * certificate or CRL problem at its sslCertificate or sslCrl entry, as check-config reports it).
 */
export function readForReload(file: string): ReloadRead {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    return { ok: false, issues: [{ file, line: 0, entry: '', message: `cannot read config file: ${(err as Error).message}` }] };
  }
  let config: ProxyConfig;
  try {
    config = readProxyConfig(text, file, { requireTls: true });
  } catch (err) {
    if (err instanceof ConfigError) return { ok: false, issues: err.issues };
    throw err;
  }
  const warnings: string[] = [];
  try {
    // requireTls: without an sslCertificate entry readProxyConfig has already refused the file.
    const material = loadTlsMaterial(config.tls!, { crlFile: config.crlFile, warn: (m) => warnings.push(m) });
    return { ok: true, config, material, warnings };
  } catch (err) {
    if (!(err instanceof TlsMaterialError)) throw err;
    const key = err.code.includes('_CRL_') ? 'sslCrl' : 'sslCertificate';
    const entry = sectionEntries(parseConfigText(text, file), PROXY_SECTION).find((e) => e.key === key);
    return { ok: false, issues: [{ file, line: entry?.line ?? 0, entry: entry?.text ?? '', message: `${err.code}: ${err.message}` }] };
  }
}

const listenText = (c: ProxyConfig): string => c.listen.map(formatHostPort).join(' ');
const sameListen = (a: ProxyConfig, b: ProxyConfig): boolean =>
  a.listen.map(addressKey).sort().join(' ') === b.listen.map(addressKey).sort().join(' ');
const eventLogText = (c: ProxyConfig): string =>
  c.eventLog ? `${c.eventLog.path} ${c.eventLog.level} ${c.eventLog.maxBytes} ${c.eventLog.files}` : 'none';
const runAsText = (c: ProxyConfig): string => (c.runAs ? `${c.runAs.user}:${c.runAs.group}` : 'none');

/** Settings fixed at start: the warning for each one `next` changes, and `next` with the values in force. */
export function keepRestartOnly(current: ProxyConfig, next: ProxyConfig): { config: ProxyConfig; warnings: string[] } {
  const warnings: string[] = [];
  const changed = (key: string, was: string, now: string): void => {
    warnings.push(`reload: ${key} changed (${was} → ${now}): that needs a restart; the proxy keeps ${was} until then`);
  };
  if (!sameListen(current, next)) changed('listen', listenText(current), listenText(next));
  if (eventLogText(current) !== eventLogText(next)) changed('eventLog', eventLogText(current), eventLogText(next));
  if (runAsText(current) !== runAsText(next)) changed('user/group', runAsText(current), runAsText(next));
  if ((current.pidFile ?? 'none') !== (next.pidFile ?? 'none')) changed('pidFile', current.pidFile ?? 'none', next.pidFile ?? 'none');
  return {
    config: { ...next, listen: current.listen, eventLog: current.eventLog, runAs: current.runAs, pidFile: current.pidFile },
    warnings,
  };
}
