/**
 * Checks on the files a config names (certificate, key, CA): present, a regular file, readable. Only
 * existence and access; whether the PEM inside is usable is the TLS layer's question. And the event log's
 * place: a directory that exists.
 */
import fs from 'node:fs';
import path from 'node:path';

/** The roles of the three sslCertificate paths, in order, for messages. */
export const FILE_ROLES = ['certificate', 'private key', 'CA certificate'] as const;

/** The problem with file `p` as a readable `role` file, or undefined when there is none. */
export function checkReadableFile(p: string, role: string): string | undefined {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    return code === 'ENOENT' ? `${role} file not found: ${p}` : `cannot read ${role} file ${p}: ${code}`;
  }
  if (!st.isFile()) return `${role} file ${p} is not a regular file`;
  try {
    fs.accessSync(p, fs.constants.R_OK);
  } catch (e) {
    return `cannot read ${role} file ${p}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`;
  }
  return undefined;
}

/** The problem with `p` as an event log to create or rotate: its directory must exist, `p` be a file if it exists. */
export function eventLogPathProblem(p: string): string | undefined {
  const dir = path.dirname(p);
  if (!fs.existsSync(dir)) return `eventLog directory ${dir} does not exist`;
  if (fs.existsSync(p) && !fs.statSync(p).isFile()) return `eventLog ${p} exists and is not a regular file`;
  return undefined;
}
