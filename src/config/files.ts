/**
 * Checks on the files a config names (certificate, key, CA): present, a regular file, readable. Only
 * existence and access; whether the PEM inside is usable is the TLS layer's question.
 */
import fs from 'node:fs';

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
