/**
 * `mxproxy audit` run as a user runs it, against real listeners on this host and real certificate files.
 * The one 0.0.0.0 listener exists only for the length of one audit: bound, audited, closed in the same test.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { webcrypto } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { parseProcNetTcp, type Finding } from '../../src/audit/index.js';
import { matchesEverything } from '../../src/audit/checks.js';
import { caPathLen, createCa } from '../../src/certs/index.js';
import { ensureDevCertificates } from '../../src/cli/devCerts.js';
import { createLogger } from '../../src/log.js';
import { deadPort } from '../helpers/harness.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const DAY_MS = 24 * 60 * 60 * 1000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function mxproxy(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** `audit --format json`: the findings, parsed (the output must be a JSON array). */
async function auditJson(config: string): Promise<{ code: number | null; findings: Finding[]; stderr: string }> {
  const r = await mxproxy(['audit', '-c', config, '--format', 'json']);
  const findings = JSON.parse(r.stdout) as Finding[];
  assert.ok(Array.isArray(findings), r.stdout);
  return { code: r.code, findings, stderr: r.stderr };
}

function listenOn(host: string): Promise<net.Server & { port: number }> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((s) => s.destroy());
    server.once('error', reject);
    server.listen(0, host, () => resolve(Object.assign(server, { port: (server.address() as net.AddressInfo).port })));
  });
}

const close = (server: net.Server) => new Promise<void>((r) => server.close(() => r()));

/** A self-signed CA with basicConstraints CA:TRUE and no pathLen, valid for `days` more days. */
async function subCaCapableCa(days: number): Promise<string> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=audit test CA without pathLen',
    notBefore: new Date(Date.now() - DAY_MS),
    notAfter: new Date(Date.now() + days * DAY_MS),
    keys,
    signingAlgorithm: alg,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
  });
  return cert.toString('pem') + '\n';
}

describe('mxproxy audit', () => {
  let pki: TestPki;
  let dir: string;
  let loopbackBackend: net.Server & { port: number };
  let proxyPort: number;
  let n = 0;

  before(async () => {
    pki = await createTestPki();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxproxy-audit-'));
    loopbackBackend = await listenOn('127.0.0.1');
    proxyPort = await deadPort();
  });
  after(async () => {
    await close(loopbackBackend);
    pki?.cleanup();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Writes a config; `lines` replace or extend the clean default (keys given replace those entries). */
  function config(opts: { listen?: string; tls?: string; servers?: string[]; allow?: string[] } = {}): string {
    const file = path.join(dir, `audit-${++n}.config`);
    fs.writeFileSync(
      file,
      [
        '[proxy]',
        `listen = "${opts.listen ?? `127.0.0.1:${proxyPort}`}"`,
        `sslCertificate = "${opts.tls ?? `${pki.server.cert} ${pki.server.key} ${pki.caFile}`}"`,
        ...(opts.servers ?? [`data 127.0.0.1:${loopbackBackend.port}`]).map((s) => `server = "${s}"`),
        ...(opts.allow ?? ['test-client data']).map((a) => `allow = "${a}"`),
        '',
      ].join('\n'),
    );
    return file;
  }
  const lineOf = (file: string, text: string): number => fs.readFileSync(file, 'utf8').split('\n').findIndex((l) => l.includes(text)) + 1;

  it('a clean config, its server on 127.0.0.1: exit 0, no findings, in text and JSON', async () => {
    const file = config();
    const text = await mxproxy(['audit', '-c', file]);
    assert.equal(text.code, 0, text.stdout + text.stderr);
    assert.equal(text.stdout, '');
    assert.match(text.stderr, /no findings/);
    const json = await auditJson(file);
    assert.equal(json.code, 0);
    assert.deepEqual(json.findings, []);
  });

  it('a server whose port also listens on 0.0.0.0 is reachable around the proxy: flagged at its server entry', async () => {
    const exposed = await listenOn('0.0.0.0');
    let result;
    try {
      const file = config({ servers: [`data 127.0.0.1:${exposed.port}`] });
      result = { file, ...(await auditJson(file)) };
    } finally {
      await close(exposed);
    }
    assert.equal(result.code, 1);
    assert.deepEqual(
      result.findings.map((f) => [f.severity, f.check, f.where]),
      [['high', 'server-bypass', `${result.file}:${lineOf(result.file, 'server =')}`]],
    );
    assert.match(result.findings[0]!.message, new RegExp(`port ${exposed.port} listens on 0\\.0\\.0\\.0`));
    assert.match(result.findings[0]!.fix, /127\.0\.0\.1/);
  });

  it('an allow rule for every identity or every server is flagged, one text line each', async () => {
    const file = config({ allow: ['* data', 'test-client *', 'test-client data'] });
    const r = await mxproxy(['audit', '-c', file]);
    assert.equal(r.code, 1);
    const lines = r.stdout.trim().split('\n');
    assert.deepEqual(lines.map((l) => l.split(' ').slice(0, 3).join(' ')), [
      `[medium] allow-everything ${file}:${lineOf(file, '"* data"')}:`,
      `[medium] allow-everything ${file}:${lineOf(file, '"test-client *"')}:`,
    ]);
    assert.match(lines[0]!, /any client with a certificate from the CA.*; fix: /);
  });

  it('a private key readable by everyone (0644) is flagged', async () => {
    const key = path.join(dir, 'server-0644.key');
    fs.copyFileSync(pki.server.key, key);
    fs.chmodSync(key, 0o644);
    const { code, findings } = await auditJson(config({ tls: `${pki.server.cert} ${key} ${pki.caFile}` }));
    assert.equal(code, 1);
    assert.deepEqual(findings.map((f) => [f.severity, f.check, f.where]), [['high', 'key-permissions', key]]);
    assert.match(findings[0]!.fix, /chmod 600/);
  });

  it('a CA that may sign sub-CAs and expires within 30 days is flagged twice', async () => {
    const ca = path.join(dir, 'ca-no-pathlen.pem');
    fs.writeFileSync(ca, await subCaCapableCa(10));
    const { code, findings } = await auditJson(config({ tls: `${pki.server.cert} ${pki.server.key} ${ca}` }));
    assert.equal(code, 1);
    assert.deepEqual(findings.map((f) => [f.severity, f.check, f.where]), [
      ['medium', 'certificate-expiry', ca],
      ['medium', 'ca-sub-ca', ca],
    ]);
    assert.match(findings[1]!.message, /no pathLen limit/);
  });

  it('development certificates on a non-loopback listener are flagged; on 127.0.0.1 they are not', async () => {
    const certs = path.join(dir, 'dev-certs');
    await ensureDevCertificates({ certFile: `${certs}/server.pem`, keyFile: `${certs}/server.key`, caFile: `${certs}/ca.pem` }, createLogger({ level: 'error' }));
    const tls = `${certs}/server.pem ${certs}/server.key ${certs}/ca.pem`;
    const open = config({ listen: `0.0.0.0:${proxyPort}`, tls });
    const exposed = await auditJson(open);
    assert.equal(exposed.code, 1);
    assert.deepEqual(exposed.findings.map((f) => [f.severity, f.check, f.where]), [['high', 'dev-certificates', `${open}:${lineOf(open, 'listen =')}`]]);
    assert.deepEqual((await auditJson(config({ tls }))).findings, []);
    // Copied and renamed, the set is still known by its CA's name.
    const copied = path.join(dir, 'renamed');
    fs.mkdirSync(copied);
    for (const [from, to] of [['server.pem', 'proxy.pem'], ['server.key', 'proxy.key'], ['ca.pem', 'plant-ca.pem']]) {
      fs.copyFileSync(path.join(certs, from!), path.join(copied, to!));
    }
    const renamed = await auditJson(config({ listen: `0.0.0.0:${proxyPort}`, tls: `${copied}/proxy.pem ${copied}/proxy.key ${copied}/plant-ca.pem` }));
    assert.deepEqual(renamed.findings.map((f) => f.check), ['dev-certificates']);
  });

  it('exit 2 on usage and configuration errors', async () => {
    assert.equal((await mxproxy(['audit'])).code, 2, 'no -c');
    assert.equal((await mxproxy(['audit', '-c', config(), '--format', 'xml'])).code, 2, 'bad --format');
    const missing = await mxproxy(['audit', '-c', path.join(dir, 'nonexistent.config')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read config file/);
  });
});

describe('audit building blocks', () => {
  it('reads LISTEN sockets from /proc/net/tcp and tcp6 text (little-endian words)', () => {
    const tcp = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:1313 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1',
      '   1: 00000000:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1',
      '   2: 0A01000A:1538 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 3 1',
    ].join('\n');
    assert.deepEqual(parseProcNetTcp(tcp, true), [
      { address: '127.0.0.1', port: 4883 },
      { address: '0.0.0.0', port: 5432 },
    ]);
    const tcp6 = [
      '  sl  local_address                         remote_address                        st',
      '   0: 00000000000000000000000001000000:1313 00000000000000000000000000000000:0000 0A',
      '   1: 00000000000000000000000000000000:1538 00000000000000000000000000000000:0000 0A',
      '   2: 0000000000000000FFFF00000100007F:162E 00000000000000000000000000000000:0000 0A',
    ].join('\n');
    assert.deepEqual(parseProcNetTcp(tcp6, true), [
      { address: '::1', port: 4883 },
      { address: '::', port: 5432 },
      { address: '::ffff:127.0.0.1', port: 5678 },
    ]);
  });

  it('finds this process’s own listener in the real /proc/net/tcp', async () => {
    if (!fs.existsSync('/proc/net/tcp')) return; // not Linux: the audit notes that it could not look
    const server = await listenOn('127.0.0.1');
    try {
      const found = parseProcNetTcp(fs.readFileSync('/proc/net/tcp', 'utf8'));
      assert.ok(found.some((l) => l.address === '127.0.0.1' && l.port === server.port));
    } finally {
      await close(server);
    }
  });

  it('a glob matches everything when it is only stars (with at most one ?)', () => {
    for (const g of ['*', '**', '?*', '*?*']) assert.equal(matchesEverything(g), true, g);
    for (const g of ['hmi-*', '?', '??*', 'data']) assert.equal(matchesEverything(g), false, g);
  });

  it('caPathLen: 0 for a CA made by mxproxy certs init, unlimited without a limit, not-a-ca for a leaf', async () => {
    assert.equal(caPathLen((await createCa({ commonName: 'pathlen test' })).certPem), 0);
    assert.equal(caPathLen(await subCaCapableCa(365)), 'unlimited');
    const pki = await createTestPki();
    try {
      assert.equal(caPathLen(fs.readFileSync(pki.server.cert, 'utf8')), 'not-a-ca');
    } finally {
      pki.cleanup();
    }
  });
});
