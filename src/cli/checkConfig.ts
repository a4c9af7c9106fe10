/**
 * `mxproxy check-config`: validate a config file — its [proxy] section, its client side ([client] and
 * [general] mxProxy), or both — and print the effective configuration (exit 0) or every error (exit 2).
 */
import fs from 'node:fs';
import {
  CLIENT_SECTION,
  ConfigError,
  describeClientConfig,
  describeConfig,
  formatIssue,
  hasSection,
  parseConfigText,
  PROXY_SECTION,
  readClientConfig,
  readProxyConfig,
  type ConfigIssue,
} from '../config/index.js';

export function checkConfigCommand(opts: { config: string; files: boolean }): void {
  const issues: ConfigIssue[] = [];
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
      readers.push(() => describeConfig(readProxyConfig(text, opts.config, { requireTls: true, checkFiles: opts.files })));
    }
    if (hasSection(parsed, CLIENT_SECTION)) {
      readers.push(() => describeClientConfig(readClientConfig(text, opts.config, { checkFiles: opts.files })));
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
