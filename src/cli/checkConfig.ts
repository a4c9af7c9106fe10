/**
 * `mxproxy check-config`: validate a config file — its [proxy] section, its client side ([client] and
 * [general] mxProxy), or both — and print the effective configuration (exit 0) or every error (exit 2).
 */
import fs from 'node:fs';
import {
  CLIENT_SECTION,
  describeClientConfig,
  describeConfig,
  formatIssue,
  hasSection,
  parseConfigText,
  PROXY_SECTION,
  readClientConfig,
  readProxyConfig,
  sectionEntries,
  type ConfigIssue,
  type ParsedConfig,
  type TlsFiles,
} from '../config/index.js';
import { ConfigError, TlsMaterialError } from '../errors.js';
import { loadTlsMaterial } from '../net/tlsMaterial.js';

/**
 * What `start`/`forward` would refuse about the certificates themselves: a public or non-CA trust anchor,
 * bad PEM, a key that does not match, an unusable CRL. Reported at the section's sslCertificate (or sslCrl)
 * entry; what start would only warn about goes to `warnings`, at the same lines.
 */
function checkTls(
  parsed: ParsedConfig,
  section: string,
  tls: TlsFiles | undefined,
  file: string,
  warnings: ConfigIssue[],
  crlFile?: string,
): ConfigIssue[] {
  if (!tls) return [];
  const at = (key: string): ConfigIssue => {
    const entry = sectionEntries(parsed, section).find((e) => e.key === key);
    return { file, line: entry?.line ?? 0, entry: entry?.text ?? '', message: '' };
  };
  try {
    loadTlsMaterial(tls, {
      crlFile,
      // Each warning begins with the file it is about.
      warn: (m) => warnings.push({ ...at(crlFile && m.startsWith(crlFile) ? 'sslCrl' : 'sslCertificate'), message: `warning: ${m}` }),
    });
    return [];
  } catch (err) {
    if (!(err instanceof TlsMaterialError)) throw err;
    return [{ ...at(err.code.includes('_CRL_') ? 'sslCrl' : 'sslCertificate'), message: `${err.code}: ${err.message}` }];
  }
}

export function checkConfigCommand(opts: { config: string; files: boolean }): void {
  const issues: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [];
  const out: string[] = [];
  let text = '';
  try {
    text = fs.readFileSync(opts.config, 'utf8');
  } catch (e) {
    issues.push({ file: opts.config, line: 0, entry: '', message: `cannot read config file: ${(e as Error).message}` });
  }
  if (issues.length === 0) {
    const parsed = parseConfigText(text, opts.config);
    const readers: (() => string)[] = [];
    if (hasSection(parsed, PROXY_SECTION)) {
      readers.push(() => {
        const c = readProxyConfig(text, opts.config, { requireTls: true, checkFiles: opts.files });
        if (opts.files) issues.push(...checkTls(parsed, PROXY_SECTION, c.tls, opts.config, warnings, c.crlFile));
        return describeConfig(c);
      });
    }
    if (hasSection(parsed, CLIENT_SECTION)) {
      readers.push(() => {
        const c = readClientConfig(text, opts.config, { checkFiles: opts.files });
        if (opts.files && c.proxy) issues.push(...checkTls(parsed, CLIENT_SECTION, c.tls, opts.config, []));
        return describeClientConfig(c);
      });
    }
    // Neither section: let the proxy reader say so (with its hint on wrongly cased section names).
    if (readers.length === 0) readers.push(() => describeConfig(readProxyConfig(text, opts.config)));
    for (const read of readers) {
      try {
        out.push(read());
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        issues.push(...err.issues);
      }
    }
  }
  // Weak but allowed (what start logs as warnings): said, and the file is still OK.
  if (warnings.length > 0) process.stderr.write(`${warnings.map(formatIssue).join('\n')}\n`);
  if (issues.length === 0) {
    process.stdout.write(`${out.join('\n')}\n`);
    process.stderr.write(`${opts.config}: OK\n`);
    return;
  }
  // Syntax problems are found by both readers; each is reported once.
  const unique = [...new Map(issues.map((i) => [formatIssue(i), i])).values()].sort((a, b) => a.line - b.line);
  process.stderr.write(`${unique.map(formatIssue).join('\n')}\n${opts.config}: ${unique.length} problem(s)\n`);
  process.exitCode = 2;
}
