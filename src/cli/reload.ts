/**
 * `mxproxy reload -c <file>`: SIGHUP to the proxy running with this config, found through its `pidFile`. The
 * file is checked first, as the proxy will read it: a broken one is reported here (exit 2) and not sent.
 * Exit 1: no running proxy found (no pid file, a stale one, a pid that is not `mxproxy start`, not permitted).
 */
import type { Command } from 'commander';
import { formatIssue } from '../config/index.js';
import { PidFileError } from '../errors.js';
import { commandLine, isAlive, isMxproxyStart, readPidFile } from '../process/pidFile.js';
import { readForReload } from '../proxy/reload.js';

function fail(status: 1 | 2, message: string): never {
  process.stderr.write(`mxproxy reload: ${message}\n`);
  process.exit(status);
}

export function reloadCommand(opts: { config: string }): void {
  const read = readForReload(opts.config);
  if (!read.ok) {
    fail(2, `${read.issues.length} problem(s) in the configuration, not sent to the proxy:\n${read.issues.map(formatIssue).join('\n')}`);
  }
  for (const w of read.warnings) process.stderr.write(`mxproxy reload: warning: ${w}\n`);
  const file = read.config.pidFile;
  if (!file) {
    fail(2, `no pidFile in [proxy] of ${opts.config}: add one (pidFile = "/run/mxproxy/mxproxy.pid") and restart, or send SIGHUP yourself (systemctl reload mxproxy)`);
  }
  let pid: number;
  try {
    pid = readPidFile(file);
  } catch (err) {
    if (err instanceof PidFileError) fail(1, `${err.code}: ${err.message}`);
    throw err;
  }
  if (!isAlive(pid)) fail(1, `ERR_PID_FILE: ${file} names pid ${pid}, which is not running (a stale pid file: the proxy is not running)`);
  // Where there is no /proc the check is left out; kill(2) is all there is.
  const argv = commandLine(pid);
  if (argv !== undefined && !isMxproxyStart(argv)) {
    fail(1, `ERR_PID_FILE: pid ${pid} from ${file} is not mxproxy start (${argv.join(' ').slice(0, 200)}); not signalled`);
  }
  try {
    process.kill(pid, 'SIGHUP');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    fail(1, `cannot signal pid ${pid}: ${code}${code === 'EPERM' ? ' (run it as the proxy\'s user or as root)' : ''}`);
  }
  process.stdout.write(
    `mxproxy reload: SIGHUP sent to pid ${pid}; the proxy logs "reload: configuration … in force", or "reload rejected: …" and keeps the old one\n`,
  );
}

export function registerReloadCommand(program: Command): void {
  program
    .command('reload')
    .description('make the running proxy re-read its config file (SIGHUP through [proxy] pidFile)')
    .requiredOption('-c, --config <file>', 'the config file the proxy was started with')
    .addHelpText('after', '\nExample:\n  mxproxy reload -c /etc/mxproxy/mxproxy.config')
    .action((opts: { config: string }) => reloadCommand(opts));
}
