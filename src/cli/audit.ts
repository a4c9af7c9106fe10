/**
 * `mxproxy audit -c <file>`: checks this host against the proxy's configuration (servers reachable around the
 * proxy, development or expiring certificates, readable keys, a CA that allows sub-CAs, allow-everything rules).
 * Exit 0: nothing found; 1: findings; 2: usage or configuration errors.
 */
import { Command, Option } from 'commander';
import { formatFinding, runAudit } from '../audit/index.js';
import { ConfigError } from '../errors.js';
import { formatIssue } from '../config/index.js';

const FOUND_EXIT = 1;
const USAGE_EXIT = 2;

interface AuditOptions {
  config: string;
  format: 'text' | 'json';
}

async function auditCommand(opts: AuditOptions): Promise<void> {
  let result;
  try {
    result = await runAudit(opts.config);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`mxproxy: ${err.issues.length} problem(s) in the configuration:\n${err.issues.map(formatIssue).join('\n')}\n`);
    process.exitCode = USAGE_EXIT;
    return;
  }
  const { findings, notes } = result;
  for (const note of notes) process.stderr.write(`note: ${note}\n`);
  if (opts.format === 'json') process.stdout.write(`${JSON.stringify(findings, null, 2)}\n`);
  else if (findings.length > 0) process.stdout.write(`${findings.map(formatFinding).join('\n')}\n`);
  process.stderr.write(`${opts.config}: ${findings.length === 0 ? 'no findings' : `${findings.length} finding(s)`}\n`);
  process.exitCode = findings.length > 0 ? FOUND_EXIT : 0;
}

export function registerAuditCommand(program: Command): void {
  program
    .command('audit')
    .description('check this host: servers reachable without the proxy, certificates, key permissions, rules')
    .requiredOption('-c, --config <file>', 'config file with a [proxy] section')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .addHelpText(
      'after',
      '\nOne line per finding: [severity] check where: what; fix: what to do.' +
        '\nExit status: 0 nothing found, 1 findings, 2 usage or configuration errors.' +
        '\n\nExamples:\n  mxproxy audit -c /etc/mxproxy/mxproxy.config\n  mxproxy audit -c config/mxproxy.config --format json',
    )
    // commander exits 1 on a usage error, which here means "findings".
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : USAGE_EXIT))
    .action(auditCommand);
}
