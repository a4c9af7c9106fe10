/**
 * The shipped OpenSSL settings (config/openssl.cnf): read by a node started with --openssl-config, they make a
 * full TLS 1.3 handshake send one session ticket instead of two, and the ticket still resumes. Which
 * configuration a process runs with is read from its command line and environment; an operator's own is kept.
 * The CPU it saves is measured by benchmarks (npm run bench, docs/performance.md), not here.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { createCa, issueCertificate } from '../../src/certs/index.js';
import { OPENSSL_CONFIG, opensslConfigInForce, ticketsNote, withOpensslConfig } from '../../src/process/opensslConfig.js';
import { ROOT } from '../helpers/project.js';

/** Two connections to a loopback mutual-TLS server, the second offering the first's last ticket. */
const CLIENT_SCRIPT = `
import tls from 'node:tls';
const { ca, server, client } = JSON.parse(process.env.PKI);
const srv = tls.createServer({ cert: server.certPem, key: server.keyPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true }, (s) => s.end('x'));
srv.listen(0, '127.0.0.1', async () => {
  const opts = { host: '127.0.0.1', port: srv.address().port, servername: 'localhost', ca: ca.certPem, cert: client.certPem, key: client.keyPem };
  const out = [];
  let ticket;
  for (let i = 0; i < 2; i++) {
    await new Promise((resolve, reject) => {
      let tickets = 0, reused = false;
      const c = tls.connect({ ...opts, ...(ticket ? { session: ticket } : {}) });
      c.on('secureConnect', () => (reused = c.isSessionReused()));
      c.on('session', (t) => { tickets++; ticket = t; });
      c.on('data', () => {});
      c.on('error', reject);
      c.on('close', () => { out.push({ tickets, reused }); resolve(); });
    });
  }
  srv.close();
  console.log(JSON.stringify(out));
});`;

async function handshakes(nodeOptions: string[]): Promise<{ tickets: number; reused: boolean }[]> {
  const ca = await createCa({ commonName: 'openssl config CA' });
  const server = await issueCertificate(ca, { kind: 'server', commonName: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
  const client = await issueCertificate(ca, { kind: 'client', commonName: 'c' });
  const env: NodeJS.ProcessEnv = { ...process.env, PKI: JSON.stringify({ ca, server, client }) };
  delete env.OPENSSL_CONF;
  delete env.NODE_OPTIONS;
  const child = spawn(process.execPath, [...nodeOptions, '--input-type=module', '-e', CLIENT_SCRIPT], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  assert.equal(code, 0, stderr);
  return JSON.parse(stdout) as { tickets: number; reused: boolean }[];
}

describe('config/openssl.cnf', () => {
  test('one TLS 1.3 ticket per full handshake with it, two without; the ticket resumes, a resumption issues none', async () => {
    assert.deepEqual(await handshakes([`--openssl-config=${OPENSSL_CONFIG}`]), [
      { tickets: 1, reused: false },
      { tickets: 0, reused: true },
    ]);
    assert.deepEqual(await handshakes([]), [
      { tickets: 2, reused: false },
      { tickets: 0, reused: true },
    ]);
  });

  test('npm start and the service unit give it; the file is where the module says', () => {
    assert.ok(fs.existsSync(OPENSSL_CONFIG));
    assert.equal(OPENSSL_CONFIG, path.join(ROOT, 'config', 'openssl.cnf'));
    const start = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts['start'];
    const flag = / --openssl-config=(\S+) /.exec(start ?? '');
    assert.ok(flag, `npm start: ${start}`);
    // npm runs scripts from the package's directory
    assert.equal(path.resolve(ROOT, flag[1]!), OPENSSL_CONFIG);
    assert.match(fs.readFileSync(path.join(ROOT, 'scripts', 'mxproxy.service'), 'utf8'), /^ExecStart=\S+ node --openssl-config=\/opt\/mxproxy\/config\/openssl\.cnf /m);
  });
});

describe('opensslConfigInForce', () => {
  const relative = path.relative(process.cwd(), OPENSSL_CONFIG);
  test('ours, by path however written: flag (either form), NODE_OPTIONS, OPENSSL_CONF', () => {
    assert.deepEqual(opensslConfigInForce([`--openssl-config=${OPENSSL_CONFIG}`], {}), { kind: 'mxproxy', file: OPENSSL_CONFIG });
    assert.deepEqual(opensslConfigInForce(['--openssl-config', relative], {}), { kind: 'mxproxy', file: relative });
    assert.equal(opensslConfigInForce([], { NODE_OPTIONS: `--max-old-space-size=512 --openssl-config=${OPENSSL_CONFIG}` }).kind, 'mxproxy');
    assert.equal(opensslConfigInForce([], { OPENSSL_CONF: OPENSSL_CONFIG }).kind, 'mxproxy');
  });

  test("an operator's own: another file, the shared config, OPENSSL_CONF; the flag wins over the environment", () => {
    assert.deepEqual(opensslConfigInForce(['--openssl-config=/etc/ssl/openssl.cnf'], {}), { kind: 'operator', how: '--openssl-config=/etc/ssl/openssl.cnf' });
    assert.deepEqual(opensslConfigInForce(['--openssl-shared-config'], {}), { kind: 'operator', how: '--openssl-shared-config' });
    assert.deepEqual(opensslConfigInForce([], { OPENSSL_CONF: '/etc/ssl/openssl.cnf' }), { kind: 'operator', how: 'OPENSSL_CONF=/etc/ssl/openssl.cnf' });
    assert.equal(opensslConfigInForce([`--openssl-config=${OPENSSL_CONFIG}`], { OPENSSL_CONF: '/etc/ssl/openssl.cnf' }).kind, 'mxproxy');
    assert.deepEqual(opensslConfigInForce(['--max-old-space-size=512'], {}), { kind: 'none' });
  });

  test('withOpensslConfig adds ours only when none is given; the start line says which is in force', () => {
    assert.deepEqual(withOpensslConfig(['--max-old-space-size=512'], {}), ['--max-old-space-size=512', `--openssl-config=${OPENSSL_CONFIG}`]);
    assert.deepEqual(withOpensslConfig(['--openssl-config=/etc/ssl/openssl.cnf'], {}), ['--openssl-config=/etc/ssl/openssl.cnf']);
    assert.deepEqual(withOpensslConfig([], { OPENSSL_CONF: '/etc/ssl/openssl.cnf' }), []);
    assert.deepEqual(withOpensslConfig(withOpensslConfig([], {}), {}), withOpensslConfig([], {}), 'once');
    assert.match(ticketsNote({ kind: 'mxproxy', file: OPENSSL_CONFIG }), /^one TLS 1\.3 session ticket per full handshake/);
    assert.match(ticketsNote({ kind: 'none' }), /^two TLS 1\.3 session tickets per full handshake, OpenSSL's default: node --openssl-config=/);
    assert.match(ticketsNote({ kind: 'operator', how: 'OPENSSL_CONF=/x' }), /OPENSSL_CONF=\/x/);
  });
});
