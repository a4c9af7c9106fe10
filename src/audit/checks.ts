/**
 * The host checks of `mxproxy audit`, after the WinCC OA reference's rule for a proxy host: the servers behind
 * the proxy must be unreachable except through it, and the proxy's own TLS must be worth trusting.
 */
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { caPathLen } from '../certs/pathLen.js';
import { DEV_CA_NAME, isDevCertificateSet } from '../certs/devSet.js';
import type { ConfigEntry, ProxyConfig, SourceRef } from '../config/index.js';
import { formatHostPort } from '../shared/address.js';
import type { Finding } from './findings.js';
import { isThisHost, isWildcard, reachableFromOutside, type TcpListener } from './host.js';

const DAY_MS = 24 * 60 * 60 * 1000;
export const EXPIRY_WARNING_DAYS = 30;
const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

const at = (s: SourceRef): string => `${s.file}:${s.line}`;
const describeIp = (ip: string): string => (isWildcard(ip) ? `${ip} (all addresses)` : ip);

/** Certificates in a PEM file, parsed; the caller has read the file. */
export function pemCertificates(pem: string): { pem: string; cert: X509Certificate }[] {
  return (pem.match(PEM_CERT) ?? []).map((block) => ({ pem: block, cert: new X509Certificate(block) }));
}

const subjectOf = (cert: X509Certificate): string => cert.subject.split('\n').join(', ');

/**
 * Servers on this host whose port also listens on an address other hosts reach: they can be used without the
 * proxy, its TLS and its allow rules. `notes` gets what could not be judged here (servers on other hosts).
 */
export async function checkServerBypass(
  config: ProxyConfig,
  listeners: TcpListener[],
  local: Set<string>,
  notes: string[],
): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const server of config.servers.values()) {
    for (const hp of server.addresses) {
      const here = await isThisHost(hp.host, local);
      if (here === undefined) {
        notes.push(`server "${server.name}" at ${formatHostPort(hp)}: ${hp.host} does not resolve here, not checked`);
        continue;
      }
      if (!here) {
        notes.push(`server "${server.name}" at ${formatHostPort(hp)} is on another host: check there that only this proxy can reach it`);
        continue;
      }
      const open = [...new Set(listeners.filter((l) => l.port === hp.port && reachableFromOutside(l.address)).map((l) => l.address))];
      for (const address of open) {
        findings.push({
          severity: 'high',
          check: 'server-bypass',
          message: `server "${server.name}" (${formatHostPort(hp)}) is on this host and port ${hp.port} listens on ${describeIp(address)}: other hosts can reach it without the proxy`,
          fix: `make the server listen on 127.0.0.1 only (and point the server entry there), or block port ${hp.port} in the host firewall`,
          where: at(server.source),
        });
      }
    }
  }
  return findings;
}

/** The development certificates on a listener other hosts can reach. */
export function checkDevCertificates(config: ProxyConfig, caCerts: X509Certificate[], where: string): Finding[] {
  if (!config.tls) return [];
  const devCa = (c: X509Certificate) => c.subject.split('\n').some((rdn) => rdn.startsWith(`CN=${DEV_CA_NAME}`));
  const dev = isDevCertificateSet(config.tls) || caCerts.some(devCa);
  // A listen host name counts as reachable from other hosts unless it is localhost.
  const open = config.listen.filter((hp) => (net.isIP(hp.host) ? reachableFromOutside(hp.host) : hp.host.toLowerCase() !== 'localhost'));
  if (!dev || open.length === 0) return [];
  return [
    {
      severity: 'high',
      check: 'dev-certificates',
      message: `the proxy listens on ${open.map(formatHostPort).join(', ')} with the DEVELOPMENT certificates (${path.dirname(config.tls.certFile)}): made for one developer's checkout, their CA key next to them, not for a plant`,
      fix: 'create a project CA and a server certificate with `mxproxy certs` (docs/certificates.md) and point sslCertificate at them, or listen on 127.0.0.1 only',
      where,
    },
  ];
}

/** Expired, or expiring within EXPIRY_WARNING_DAYS: the server certificate(s) and every CA certificate. */
export function checkExpiry(files: { file: string; what: 'server' | 'CA'; certs: X509Certificate[] }[], now: Date): Finding[] {
  const findings: Finding[] = [];
  for (const { file, what, certs } of files) {
    for (const cert of certs) {
      const notAfter = new Date(cert.validTo);
      const days = Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS);
      if (days >= EXPIRY_WARNING_DAYS) continue;
      const expired = notAfter.getTime() <= now.getTime();
      findings.push({
        severity: expired ? 'high' : 'medium',
        check: 'certificate-expiry',
        message: `${what} certificate "${subjectOf(cert)}" ${expired ? 'expired' : `expires in ${days} day(s),`} on ${notAfter.toISOString()}`,
        fix:
          what === 'server'
            ? 'issue a new server certificate (`mxproxy certs issue server`, docs/certificates.md "Renewing and rotating") and restart'
            : 'create a new CA, issue new certificates from it and distribute ca.pem to every host (docs/certificates.md "Renewing and rotating")',
        where: file,
      });
    }
  }
  return findings;
}

/** A private key others than its owner can read. */
export function checkKeyMode(keyFile: string): Finding[] {
  const mode = fs.statSync(keyFile).mode & 0o777;
  if ((mode & 0o077) === 0) return [];
  const who = mode & 0o007 ? 'every user of this host' : 'its group';
  return [
    {
      severity: mode & 0o007 ? 'high' : 'medium',
      check: 'key-permissions',
      message: `private key readable by ${who} (mode 0${mode.toString(8)})`,
      fix: `chmod 600 ${keyFile} (owned by the account that reads it, see docs/operations.md)`,
      where: keyFile,
    },
  ];
}

/** A CA certificate that may sign intermediate CAs. */
export function checkSubCa(caFile: string, caPems: string[]): Finding[] {
  const findings: Finding[] = [];
  for (const pem of caPems) {
    const pathLen = caPathLen(pem);
    if (pathLen === 'not-a-ca' || pathLen === 0) continue;
    findings.push({
      severity: 'medium',
      check: 'ca-sub-ca',
      message: `CA "${subjectOf(new X509Certificate(pem))}" may sign intermediate CAs (${pathLen === 'unlimited' ? 'no pathLen limit' : `pathLen ${pathLen}`}): an intermediate it signs can issue client certificates this proxy accepts`,
      fix: 'use a CA with pathLen 0 (`mxproxy certs init` makes one) and reissue the certificates from it',
      where: caFile,
    });
  }
  return findings;
}

/** A glob that matches every identity or target: only `*`, or `*` with one `?` (identities are never empty). */
export function matchesEverything(glob: string): boolean {
  return /^[*?]+$/.test(glob) && glob.includes('*') && (glob.match(/\?/g)?.length ?? 0) <= 1;
}

/** allow rules with an identity or a target that matches everything. */
export function checkAllowRules(config: ProxyConfig): Finding[] {
  const findings: Finding[] = [];
  for (const rule of config.allow) {
    const anyone = matchesEverything(rule.identity);
    const everything = rule.targets.some(matchesEverything);
    if (!anyone && !everything) continue;
    const who = anyone ? 'any client with a certificate from the CA' : `identity "${rule.identity}"`;
    const what = everything ? 'every server' : rule.targets.map((t) => `"${t}"`).join(', ');
    findings.push({
      severity: 'medium',
      check: 'allow-everything',
      message: `allow "${[rule.identity, ...rule.targets].join(' ')}" lets ${who} reach ${what}`,
      fix: 'name the identities (e.g. hmi-*) and the servers each may reach, one allow entry per group',
      where: at(rule.source),
    });
  }
  return findings;
}

/** file:line of the first entry `key` in the [proxy] section, or the file alone. */
export function entryWhere(file: string, entries: ConfigEntry[], ...keys: string[]): string {
  for (const key of keys) {
    const e = entries.find((x) => x.key === key);
    if (e) return `${file}:${e.line}`;
  }
  return file;
}
