/** `mxproxy audit`: reads the [proxy] config and this host's state, returns the findings. */
import fs from 'node:fs';
import { loadProxyConfig, parseConfigText, PROXY_SECTION, sectionEntries } from '../config/index.js';
import { ConfigError } from '../errors.js';
import {
  checkAllowRules,
  checkDevCertificates,
  checkExpiry,
  checkKeyMode,
  checkServerBypass,
  checkSubCa,
  entryWhere,
  pemCertificates,
} from './checks.js';
import type { Finding } from './findings.js';
import { localAddresses, readTcpListeners } from './host.js';

export { formatFinding, type CheckName, type Finding, type Severity } from './findings.js';
export { parseProcNetTcp, type TcpListener } from './host.js';

export interface AuditOptions {
  /** "Now", for the expiry check. */
  now?: Date;
  /** Where tcp and tcp6 are read from (Linux: /proc/net). */
  procNet?: string;
}

export interface AuditResult {
  findings: Finding[];
  /** What could not be checked here, and why: not findings, but worth saying. */
  notes: string[];
}

/**
 * Audits the proxy configured in `configFile` on this host. Throws a ConfigError for a config that `start`
 * would refuse, or certificate files that cannot be read or parsed.
 */
export async function runAudit(configFile: string, opts: AuditOptions = {}): Promise<AuditResult> {
  const config = loadProxyConfig(configFile, { requireTls: true });
  const entries = sectionEntries(parseConfigText(fs.readFileSync(configFile, 'utf8'), configFile), PROXY_SECTION);
  const tls = config.tls!; // requireTls
  const tlsEntry = entries.find((e) => e.key === 'sslCertificate');
  // Files the config names but the audit cannot read: what start would fail on too, reported the same way.
  const problem = (message: string) =>
    new ConfigError([{ file: configFile, line: tlsEntry?.line ?? 0, entry: tlsEntry?.text ?? '', message }]);
  const readCerts = (file: string) => {
    try {
      const certs = pemCertificates(fs.readFileSync(file, 'utf8'));
      if (certs.length === 0) throw new Error('no PEM certificate in it');
      return certs;
    } catch (err) {
      throw problem(`cannot read certificate file ${file}: ${(err as Error).message}`);
    }
  };
  const server = readCerts(tls.certFile);
  const ca = readCerts(tls.caFile);

  const keyMode = () => {
    try {
      return checkKeyMode(tls.keyFile);
    } catch (err) {
      throw problem(`cannot stat key file ${tls.keyFile}: ${(err as Error).message}`);
    }
  };

  const notes: string[] = [];
  const { listeners, unreadable } = readTcpListeners(opts.procNet);
  if (unreadable.length > 0) notes.push(`cannot read ${unreadable.join(', ')}: listeners there were not checked`);
  const findings: Finding[] = [
    ...(await checkServerBypass(config, listeners, localAddresses(), notes)),
    ...checkDevCertificates(config, ca.map((c) => c.cert), entryWhere(configFile, entries, 'listen', 'sslCertificate')),
    ...checkExpiry(
      [
        { file: tls.certFile, what: 'server', certs: server.map((c) => c.cert) },
        { file: tls.caFile, what: 'CA', certs: ca.map((c) => c.cert) },
      ],
      opts.now ?? new Date(),
    ),
    ...keyMode(),
    ...checkSubCa(tls.caFile, ca.map((c) => c.pem)),
    ...checkAllowRules(config),
  ];
  return { findings, notes };
}
