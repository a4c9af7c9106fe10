/**
 * Writing a certificate and its key to disk: keys 0600 and certificates 0644 whatever the umask, a new
 * directory 0700. Each file is written to a temporary name and renamed into place, so a reader never sees a
 * half-written file and an existing key file never keeps looser permissions than 0600.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { TlsMaterialError } from '../errors.js';
import type { Issued } from './x509.js';

async function writeFileAtomic(file: string, data: string, mode: number): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await fs.open(tmp, 'wx', mode); // created with `mode` (minus umask): never readable by others
  try {
    await handle.chmod(mode); // umask-proof
    await handle.writeFile(data, 'utf8');
    await handle.sync();
  } catch (err) {
    await handle.close().catch(() => undefined);
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  try {
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Writes `<dir>/<baseName>.pem` (certificate, 0644) and `<dir>/<baseName>.key` (PKCS#8 key, 0600), replacing
 * existing files. `dir` is created if missing (0700 for the directory created here).
 */
export async function writeIssued(dir: string, baseName: string, issued: Issued): Promise<{ certFile: string; keyFile: string }> {
  if (!baseName || baseName === '.' || baseName === '..' || /[/\\\0]/.test(baseName)) {
    throw new TlsMaterialError('ERR_CERTS', `invalid certificate base name "${baseName}" (a file name, not a path)`);
  }
  const created = await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  if (created !== undefined) await fs.chmod(dir, 0o700);
  const certFile = path.join(dir, `${baseName}.pem`);
  const keyFile = path.join(dir, `${baseName}.key`);
  await writeFileAtomic(keyFile, issued.keyPem, 0o600);
  await writeFileAtomic(certFile, issued.certPem, 0o644);
  return { certFile, keyFile };
}

/** Writes a CRL (PEM) to `file`, 0644: every proxy host reads it. The directory must exist. */
export async function writeCrlFile(file: string, pem: string): Promise<void> {
  await writeFileAtomic(file, pem, 0o644);
}
