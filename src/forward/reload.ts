/** Reading the [client] side of a config file for a forwarder's reload (SIGHUP): the config and its certificate. */
import fs from 'node:fs';
import { CLIENT_SECTION, parseConfigText, readClientConfig, sectionEntries, type ClientConfig, type ConfigIssue } from '../config/index.js';
import { ConfigError, TlsMaterialError } from '../errors.js';
import { loadTlsMaterial } from '../net/tlsMaterial.js';
import type { TlsMaterial } from '../net/tlsTerminator.js';

export type ClientReloadRead = { ok: true; config: ClientConfig; tls: TlsMaterial | undefined } | { ok: false; issues: ConfigIssue[] };

/** As `mxproxy forward -c` reads it; every problem with its file:line (a certificate problem at sslCertificate). */
export function readClientForReload(file: string): ClientReloadRead {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    // '<command line>': started with flags, there is no file to read again.
    return { ok: false, issues: [{ file, line: 0, entry: '', message: `cannot read config file: ${(err as Error).message}` }] };
  }
  let config: ClientConfig;
  try {
    config = readClientConfig(text, file, { requireForwards: true });
  } catch (err) {
    if (err instanceof ConfigError) return { ok: false, issues: err.issues };
    throw err;
  }
  try {
    return { ok: true, config, tls: config.proxy && config.tls ? loadTlsMaterial(config.tls) : undefined };
  } catch (err) {
    if (!(err instanceof TlsMaterialError)) throw err;
    const entry = sectionEntries(parseConfigText(text, file), CLIENT_SECTION).find((e) => e.key === 'sslCertificate');
    return { ok: false, issues: [{ file, line: entry?.line ?? 0, entry: entry?.text ?? '', message: `${err.code}: ${err.message}` }] };
  }
}
