/**
 * Dropping root after start (`[proxy] user` / `group`): what needs root — ports below 1024, a key file only root
 * may read — is done by then, and a compromise of the TLS or protocol code afterwards gets an unprivileged
 * account. setuid(2) as root sets the real, effective and saved ids, so the drop cannot be undone.
 */
import fs from 'node:fs';
import type { RunAs } from '../config/types.js';
import { PrivilegeError } from '../errors.js';


function fail(runAs: RunAs, why: string): never {
  throw new PrivilegeError(`cannot run as user ${runAs.user} (${runAs.uid}), group ${runAs.group} (${runAs.gid}): ${why}`);
}

/** setgroups, setgid, setuid — in that order: each needs the privilege the next one gives up. */
export function dropPrivileges(runAs: RunAs): void {
  const p = process;
  if (!p.getuid || !p.setgroups || !p.setgid || !p.setuid || !p.geteuid || !p.getegid) fail(runAs, 'not supported on this platform');
  const uid = p.getuid();
  if (uid !== 0) {
    // Not root: only "becoming" the account it already is can work; anything else is a configuration mistake.
    if (uid === runAs.uid && p.getegid() === runAs.gid) return;
    fail(runAs, `the proxy was started as uid ${uid}, not root; start it as root or leave user/group out`);
  }
  try {
    p.setgroups([runAs.gid]);
    p.setgid(runAs.gid);
    p.setuid(runAs.uid);
  } catch (err) {
    fail(runAs, (err as Error).message);
  }
  if (p.geteuid() !== runAs.uid || p.getegid() !== runAs.gid) fail(runAs, 'the ids did not change');
  if (runAs.uid !== 0) {
    let regained = false;
    try {
      p.setuid(0);
      regained = true;
    } catch {
      /* expected: EPERM */
    }
    if (regained) fail(runAs, 'root could be regained after the drop');
  }
}

/**
 * The event log's directory, before the drop: created if missing (mode 0750, owned by the account to run as,
 * so rotation works after the drop). Returns true when it created it.
 */
export function prepareLogDirectory(dir: string, runAs: RunAs | undefined): boolean {
  if (fs.existsSync(dir)) return false;
  fs.mkdirSync(dir, { mode: 0o750 });
  if (runAs && process.getuid?.() === 0) fs.chownSync(dir, runAs.uid, runAs.gid);
  return true;
}

/**
 * After the drop: rotation renames and creates files in the directory of the event log (or the log file), so
 * the account must be able to write there. Asked of the kernel (access(2)), which knows ACLs and every path
 * component.
 */
export function checkLogDirectory(dir: string, runAs: RunAs, what: 'event log' | 'log file' = 'event log'): void {
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
  } catch (err) {
    fail(
      runAs,
      `the ${what} directory ${dir} is not writable for it (${(err as NodeJS.ErrnoException).code ?? 'error'}), so the ${what} ` +
        `could not rotate: chown ${runAs.user}:${runAs.group} ${dir} (and let it pass through the directories above)`,
    );
  }
}
