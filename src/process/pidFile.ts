/**
 * `[proxy] pidFile`: the running proxy's process id, for `mxproxy reload` (cli/reload.ts). Written at start
 * before the drop to `user` (the directory may be root's to create), removed at stop — which then needs the
 * account to be able to write the directory, as for the event log.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { RunAs } from '../config/types.js';
import { PidFileError } from '../errors.js';

/** The process's command line (/proc/<pid>/cmdline), or undefined where there is no /proc or no such process. */
export function commandLine(pid: number): string[] | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
  } catch {
    return undefined;
  }
}

/**
 * Whether a command line is `mxproxy start`: node running the CLI (dist/src/cli/main.js, or the `mxproxy` bin
 * link), or the bin itself. A pid the kernel has given to another program since must not get our signal.
 */
export function isMxproxyStart(argv: readonly string[]): boolean {
  const cli = argv.findIndex((a, i) => i < 3 && (path.basename(a) === 'mxproxy' || a.endsWith(path.join('cli', 'main.js')) || a.endsWith(path.join('scripts', 'start.mjs'))));
  if (cli < 0) return false;
  const exe = path.basename(argv[0] ?? '');
  return (cli === 0 || /^(node|nodejs)\d*$/.test(exe)) && argv.slice(cli + 1).includes('start');
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, as another user's process.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid in the file. Throws PidFileError when it cannot be read or holds no pid. */
export function readPidFile(file: string): number {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new PidFileError(
      code === 'ENOENT' ? `no pid file ${file}: is the proxy running (with this pidFile)?` : `cannot read the pid file ${file}: ${code ?? (err as Error).message}`,
      { cause: err },
    );
  }
  const pid = Number(text.trim());
  if (!Number.isSafeInteger(pid) || pid <= 1) throw new PidFileError(`the pid file ${file} holds no process id: "${text.trim().slice(0, 40)}"`);
  return pid;
}

/**
 * Writes this process's id, creating the directory (owned by `runAs` when root) if missing. Refuses when the
 * file names another live `mxproxy start`: two proxies on one pid file would signal each other's reloads.
 */
export function writePidFile(file: string, runAs: RunAs | undefined): void {
  const dir = path.dirname(file);
  try {
    if (!fs.existsSync(dir)) {
      fs.mkdirSync(dir, { mode: 0o755 });
      if (runAs && process.getuid?.() === 0) fs.chownSync(dir, runAs.uid, runAs.gid);
    }
    const previous = fs.existsSync(file) ? Number(fs.readFileSync(file, 'utf8').trim()) : NaN;
    if (Number.isSafeInteger(previous) && previous !== process.pid && isAlive(previous)) {
      const argv = commandLine(previous);
      if (argv === undefined || isMxproxyStart(argv)) {
        throw new PidFileError(`the pid file ${file} names a running mxproxy (pid ${previous}): stop it first, or give this one another pidFile`);
      }
    }
    fs.writeFileSync(file, `${process.pid}\n`, { mode: 0o644 });
  } catch (err) {
    if (err instanceof PidFileError) throw err;
    throw new PidFileError(`cannot write the pid file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

/** Removes the file if it still holds this process's id; returns a problem to log, or undefined. */
export function removePidFile(file: string): string | undefined {
  try {
    if (Number(fs.readFileSync(file, 'utf8').trim()) !== process.pid) return undefined;
    fs.rmSync(file);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? undefined : `cannot remove the pid file ${file}: ${code ?? (err as Error).message}`;
  }
}

/** After the drop: the account must be able to remove the file at stop. */
export function pidDirectoryProblem(file: string, runAs: RunAs): string | undefined {
  const dir = path.dirname(file);
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
    return undefined;
  } catch (err) {
    return (
      `the pid file directory ${dir} is not writable for user ${runAs.user} (${(err as NodeJS.ErrnoException).code ?? 'error'}): ` +
      `the pid file will be left behind at stop; chown ${runAs.user}:${runAs.group} ${dir}`
    );
  }
}
