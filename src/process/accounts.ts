/**
 * User and group lookup for `[proxy] user` / `group`. Node resolves names only inside process.setuid(), too
 * late to report an unknown name as a config error, so this asks `getent` (the C library's own lookup: local
 * files, LDAP, … as nsswitch.conf says) and reads /etc/passwd and /etc/group where there is no getent.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

export interface Account {
  name: string;
  id: number;
  /** A user's primary group id; for a group, the same as id. */
  gid: number;
}

/** What a user or group entry may say: a name as useradd(8) allows it, or a numeric id. */
export const ACCOUNT_SPEC = /^(?:[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?|\d{1,10})$/;

function parse(line: string, db: 'passwd' | 'group'): Account | null {
  const f = line.split(':');
  const name = f[0];
  const id = Number(f[2]);
  const gid = db === 'passwd' ? Number(f[3]) : id;
  if (!name || !Number.isInteger(id) || !Number.isInteger(gid)) return null;
  return { name, id, gid };
}

function fromFile(db: 'passwd' | 'group', spec: string): Account | null {
  let text: string;
  try {
    text = fs.readFileSync(`/etc/${db}`, 'utf8');
  } catch {
    return null;
  }
  const numeric = /^\d+$/.test(spec);
  for (const line of text.split('\n')) {
    const a = parse(line, db);
    if (a && (numeric ? a.id === Number(spec) : a.name === spec)) return a;
  }
  return null;
}

/** The account named (or numbered) by `spec` in `db`; null when there is none. */
export function lookupAccount(db: 'passwd' | 'group', spec: string): Account | null {
  if (!ACCOUNT_SPEC.test(spec)) return null;
  const r = spawnSync('getent', [db, spec], { encoding: 'utf8', timeout: 5000 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') return fromFile(db, spec);
  if (r.status !== 0) return null; // 2: not found
  return parse(r.stdout.split('\n')[0] ?? '', db);
}
