/**
 * The OpenSSL settings the proxy ships (config/openssl.cnf): one TLS 1.3 session ticket per full handshake
 * instead of OpenSSL's two, about 8 % of the CPU of a new connection (docs/performance.md).
 *
 * Node reads its OpenSSL configuration once, when the process starts, so nothing here can apply it to a process
 * that is already running: `--openssl-config=<file>` goes on the node command line. The service unit and npm
 * start carry it, the workers' primary adds it to theirs, npm run bench to the proxies it starts. An operator's
 * own OpenSSL configuration (OPENSSL_CONF, --openssl-config, --openssl-shared-config) is left as it is.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** config/openssl.cnf of this installation (from dist/src/process/). */
export const OPENSSL_CONFIG = fileURLToPath(new URL('../../../config/openssl.cnf', import.meta.url));

export type OpensslConfigInForce =
  | { kind: 'mxproxy'; file: string }
  | { kind: 'operator'; how: string }
  | { kind: 'none' };

const FLAG = /^--openssl-(config|shared-config)(=(.*))?$/;

/** Which OpenSSL configuration this node process was started with, from its command line and environment. */
export function opensslConfigInForce(
  execArgv: readonly string[] = process.execArgv,
  env: NodeJS.ProcessEnv = process.env,
): OpensslConfigInForce {
  const args = [...execArgv, ...(env.NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean)];
  for (let i = 0; i < args.length; i++) {
    const m = FLAG.exec(args[i]!);
    if (!m) continue;
    if (m[1] === 'shared-config') return { kind: 'operator', how: '--openssl-shared-config' };
    const file = m[2] !== undefined ? m[3]! : (args[i + 1] ?? '');
    return isOurs(file) ? { kind: 'mxproxy', file } : { kind: 'operator', how: `--openssl-config=${file}` };
  }
  const fromEnv = env.OPENSSL_CONF;
  if (fromEnv) return isOurs(fromEnv) ? { kind: 'mxproxy', file: fromEnv } : { kind: 'operator', how: `OPENSSL_CONF=${fromEnv}` };
  return { kind: 'none' };
}

/** This installation's file, however the path was written (relative to where node started, a symlink). */
function isOurs(file: string): boolean {
  const real = (p: string) => {
    try {
      return fs.realpathSync(p);
    } catch {
      return path.resolve(p);
    }
  };
  return file !== '' && real(file) === real(OPENSSL_CONFIG);
}

/** The node options for a process of ours (a worker, a benchmarked proxy): `execArgv` and, unless an OpenSSL
 * configuration is already given, ours. */
export function withOpensslConfig(execArgv: readonly string[], env: NodeJS.ProcessEnv = process.env): string[] {
  return opensslConfigInForce(execArgv, env).kind === 'none' ? [...execArgv, `--openssl-config=${OPENSSL_CONFIG}`] : [...execArgv];
}

/** For the start line: how many TLS 1.3 session tickets a full handshake sends. */
export function ticketsNote(inForce: OpensslConfigInForce = opensslConfigInForce()): string {
  switch (inForce.kind) {
    case 'mxproxy':
      return `one TLS 1.3 session ticket per full handshake (${inForce.file})`;
    case 'operator':
      return `TLS session tickets as the OpenSSL configuration given says (${inForce.how})`;
    case 'none':
      return `two TLS 1.3 session tickets per full handshake, OpenSSL's default: node --openssl-config=${OPENSSL_CONFIG} sends one, ~8 % less CPU per new connection (docs/performance.md)`;
  }
}
