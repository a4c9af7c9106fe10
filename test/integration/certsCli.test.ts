/** `mxproxy certs …` as a user runs it: files on disk, checked by openssl and used for real mutual TLS. */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const HAVE_OPENSSL = spawnSync('openssl', ['version'], { timeout: 5000 }).status === 0;
const OPENSSL = HAVE_OPENSSL ? {} : { skip: 'openssl not installed' };
const DAY_MS = 24 * 60 * 60 * 1000;
const T = { timeout: 20_000 };

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function openssl(...args: string[]): Run {
  const r = spawnSync('openssl', args, { encoding: 'utf8', timeout: 10_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function assertOk(r: Run): string {
  assert.equal(r.status, 0, `exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

describe('mxproxy certs', () => {
  let cwd: string;
  let certs: string; // the default --dir, "certs" under cwd
  const file = (name: string) => path.join(certs, name);

  let serverOut: string;
  let clientOut: string;

  /** The built CLI in `cwd`, so the default --dir lands in the temp dir. Async, so independent runs overlap. */
  function cli(...args: string[]): Promise<Run> {
    return new Promise((resolve) => {
      execFile(process.execPath, [MAIN, 'certs', ...args], { cwd, encoding: 'utf8', timeout: 15_000 }, (err, stdout, stderr) => {
        const status = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ status, stdout, stderr });
      });
    });
  }

  before(async () => {
    cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'mxproxy-certs-'));
    certs = path.join(cwd, 'certs');
    assertOk(await cli('init'));
    [serverOut, clientOut] = (
      await Promise.all([
        cli('issue', 'server', '--name', 'proxy.test', '--ip', '127.0.0.1', '--dns', 'localhost', '--days', '30'),
        cli('issue', 'client', '--name', 'hmi-1', '--uri', 'urn:example:hmi', '--days', '90'),
      ])
    ).map(assertOk) as [string, string];
  });
  after(() => fs.rmSync(cwd, { recursive: true, force: true }));

  describe('files', () => {
    it('init writes ca.pem and a 0600 ca.key into a new 0700 directory', T, () => {
      assert.equal(fs.statSync(certs).mode & 0o777, 0o700);
      assert.equal(fs.statSync(file('ca.key')).mode & 0o777, 0o600);
      assert.match(fs.readFileSync(file('ca.pem'), 'utf8'), /^-----BEGIN CERTIFICATE-----/);
    });

    it('issue writes <name>.pem and a 0600 <name>.key for the server and the client', T, () => {
      for (const base of ['proxy.test', 'hmi-1']) {
        assert.match(fs.readFileSync(file(`${base}.pem`), 'utf8'), /^-----BEGIN CERTIFICATE-----/);
        assert.equal(fs.statSync(file(`${base}.key`)).mode & 0o777, 0o600);
      }
    });

    it('issue server prints the files, the SANs and the sslCertificate line', T, () => {
      const out = serverOut;
      assert.match(out, /certs\/proxy\.test\.pem/);
      assert.match(out, /certs\/proxy\.test\.key/);
      assert.match(out, /subject +CN=proxy\.test/);
      assert.match(out, /SAN +DNS:proxy\.test, DNS:localhost, IP:127\.0\.0\.1/);
      assert.match(out, /expires +\d{4}-\d\d-\d\dT.* \(in 30 days\)/);
      assert.ok(out.includes('sslCertificate = "certs/proxy.test.pem certs/proxy.test.key certs/ca.pem"'), out);
    });

    it('issue client prints the [client] hint and an allow example', T, async () => {
      assert.match(clientOut, /subject +CN=hmi-1/);
      assert.match(clientOut, /SAN +URI:urn:example:hmi/);
      assert.ok(clientOut.includes('allow = "hmi-1 <target>"'), clientOut);
      const out = assertOk(await cli('issue', 'client', '--name', 'historian', '--dns', 'historian.plant', '--out', 'hist'));
      assert.match(out, /subject +CN=historian/);
      assert.match(out, /SAN +DNS:historian\.plant/);
      assert.match(out, /\[client\]/);
      assert.ok(out.includes('sslCertificate = "certs/hist.pem certs/hist.key certs/ca.pem"'), out);
      assert.ok(out.includes('allow = "historian <target>"'), out);
      assert.ok(fs.existsSync(file('hist.key')));
    });

    it('certs show prints the subject, SANs, key type and fingerprint', T, async () => {
      const out = assertOk(await cli('show', file('proxy.test.pem')));
      assert.match(out, /subject +CN=proxy\.test/);
      assert.match(out, /issuer +CN=mxproxy project CA \(/);
      assert.match(out, /SAN +DNS:proxy\.test, DNS:localhost, IP:127\.0\.0\.1/);
      assert.match(out, /key +EC P-256/);
      assert.match(out, /CA +no/);
      assert.match(out, /SHA-256 +([0-9A-F]{2}:){31}[0-9A-F]{2}/);
    });
  });

  describe('openssl', () => {
    it('verifies the server and client certificates against ca.pem, for their purpose', { ...T, ...OPENSSL }, () => {
      assert.match(assertOk(openssl('verify', '-CAfile', file('ca.pem'), '-purpose', 'sslserver', file('proxy.test.pem'))), /: OK/);
      assert.match(assertOk(openssl('verify', '-CAfile', file('ca.pem'), '-purpose', 'sslclient', file('hmi-1.pem'))), /: OK/);
    });

    it('shows CA:TRUE for the CA, the SANs, and the client CN', { ...T, ...OPENSSL }, () => {
      const text = (f: string) => assertOk(openssl('x509', '-noout', '-text', '-in', file(f)));
      assert.match(text('ca.pem'), /CA:TRUE/);
      const server = text('proxy.test.pem');
      assert.match(server, /CA:FALSE/);
      assert.match(server, /DNS:proxy\.test/);
      assert.match(server, /DNS:localhost/);
      assert.match(server, /IP Address:127\.0\.0\.1/);
      const client = text('hmi-1.pem');
      assert.match(client, /Subject: CN ?= ?hmi-1/);
      assert.match(client, /URI:urn:example:hmi/);
      assert.match(client, /TLS Web Client Authentication/);
    });

    it('the CA has pathlen:0 (it cannot sign another CA), and init wrote an empty CRL signed by it', { ...T, ...OPENSSL }, () => {
      assert.match(assertOk(openssl('x509', '-noout', '-text', '-in', file('ca.pem'))), /CA:TRUE, pathlen:0/);
      const crl = assertOk(openssl('crl', '-noout', '-text', '-in', file('crl.pem'), '-CAfile', file('ca.pem')));
      assert.match(crl, /No Revoked Certificates/);
      assert.match(crl, /CRL Number: *\n *0\b/);
      assert.equal(fs.statSync(file('crl.pem')).mode & 0o777, 0o644);
    });

    it('honours --days (notAfter within a day of the request)', { ...T, ...OPENSSL }, () => {
      for (const [f, days] of [['proxy.test.pem', 30], ['hmi-1.pem', 90], ['ca.pem', 3650]] as const) {
        const out = assertOk(openssl('x509', '-noout', '-enddate', '-in', file(f)));
        const notAfter = Date.parse(out.trim().replace(/^notAfter=/, ''));
        assert.ok(Number.isFinite(notAfter), out);
        assert.ok(Math.abs(notAfter - (Date.now() + days * DAY_MS)) < DAY_MS, `${f}: ${out} is not ${days} days ahead`);
      }
    });

    it('accepts the private keys', { ...T, ...OPENSSL }, () => {
      for (const f of ['ca.key', 'proxy.test.key', 'hmi-1.key']) assertOk(openssl('pkey', '-in', file(f), '-noout'));
    });

    it('--algorithm rsa-2048 gives a 2048-bit RSA key that verifies', { ...T, ...OPENSSL }, async () => {
      assertOk(await cli('issue', 'server', '--name', 'rsa.test', '--algorithm', 'rsa-2048'));
      const text = assertOk(openssl('x509', '-noout', '-text', '-in', file('rsa.test.pem')));
      assert.match(text, /Public Key Algorithm: rsaEncryption/);
      assert.match(text, /Public-Key: \(2048 bit\)/);
      assert.match(assertOk(openssl('verify', '-CAfile', file('ca.pem'), file('rsa.test.pem'))), /: OK/);
      assertOk(openssl('pkey', '-in', file('rsa.test.key'), '-noout'));
      assert.match(assertOk(await cli('show', file('rsa.test.pem'))), /key +RSA 2048 bits/);
    });
  });

  it('a TLS server and client on the issued certificates authenticate each other', T, async () => {
    const read = (f: string) => fs.readFileSync(file(f));
    const server = tls.createServer({
      cert: read('proxy.test.pem'),
      key: read('proxy.test.key'),
      ca: read('ca.pem'),
      requestCert: true,
      rejectUnauthorized: true,
    });
    // TLS 1.3: the client is connected before the server has checked its certificate, so wait for both sides.
    const serverSide = new Promise<{ authorized: boolean; cn: unknown }>((resolve, reject) => {
      server.once('secureConnection', (s) => resolve({ authorized: s.authorized, cn: s.getPeerCertificate().subject.CN }));
      server.once('tlsClientError', reject);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const client = tls.connect({ host: '127.0.0.1', port, ca: read('ca.pem'), cert: read('hmi-1.pem'), key: read('hmi-1.key') });
      try {
        await new Promise<void>((resolve, reject) => {
          client.once('secureConnect', resolve);
          client.once('error', reject);
        });
        assert.equal(client.authorized, true, String(client.authorizationError));
        assert.equal(client.getPeerCertificate().subject.CN, 'proxy.test');
        assert.deepEqual(await serverSide, { authorized: true, cn: 'hmi-1' });
      } finally {
        client.destroy();
      }
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  describe('revoke', () => {
    const serialOf = (f: string) => new X509Certificate(fs.readFileSync(file(f))).serialNumber;

    it('adds the serial to crl.pem with the reason; openssl lists it and refuses the certificate', { ...T, ...OPENSSL }, async () => {
      assertOk(await cli('issue', 'client', '--name', 'lost-1'));
      assertOk(await cli('issue', 'client', '--name', 'kept-1'));
      const out = assertOk(await cli('revoke', file('lost-1.pem'), '--reason', 'keyCompromise'));
      assert.match(out, /Revoked CN=lost-1 \(keyCompromise\)/);
      assert.match(out, /CRL +.*certs\/crl\.pem: 1 revoked, CRL number 1/);
      assert.ok(out.includes(`sslCrl = "${file('crl.pem').replace(cwd + '/', '')}"`), out);
      const text = assertOk(openssl('crl', '-noout', '-text', '-in', file('crl.pem')));
      assert.match(text, new RegExp(`Serial Number: ${serialOf('lost-1.pem')}`));
      assert.match(text, /Key Compromise/);
      const verify = openssl('verify', '-crl_check', '-CRLfile', file('crl.pem'), '-CAfile', file('ca.pem'), file('lost-1.pem'), file('kept-1.pem'));
      assert.match(verify.stdout + verify.stderr, /lost-1\.pem: verification failed|certificate revoked/);
      assert.match(verify.stdout, /kept-1\.pem: OK/);
    });

    it('a second revoke keeps the first entry and counts up; revoking again changes nothing', T, async () => {
      assertOk(await cli('issue', 'client', '--name', 'lost-2'));
      assert.match(assertOk(await cli('revoke', file('lost-2.pem'))), /2 revoked, CRL number 2/);
      const before = fs.readFileSync(file('crl.pem'), 'utf8');
      assert.match(assertOk(await cli('revoke', file('lost-1.pem'))), /already revoked .*nothing changed/);
      assert.equal(fs.readFileSync(file('crl.pem'), 'utf8'), before);
    });

    it('--ca/--ca-key/--crl name the files one by one; a new CRL is created', { ...T, ...OPENSSL }, async () => {
      assertOk(await cli('issue', 'client', '--name', 'lost-3'));
      const crl = path.join(cwd, 'separate-crl.pem');
      const out = assertOk(await cli('revoke', file('lost-3.pem'), '--ca', file('ca.pem'), '--ca-key', file('ca.key'), '--crl', crl, '--days', '7'));
      assert.match(out, /separate-crl\.pem \(new\): 1 revoked/);
      assert.match(out, /next update .*\(in 7 days\)/);
      assert.match(assertOk(openssl('crl', '-noout', '-text', '-in', crl)), new RegExp(serialOf('lost-3.pem')));
    });

    it('refuses the CA itself, a certificate of another CA, --ca without --ca-key, an unknown reason (exit 2)', T, async () => {
      const other = path.join(cwd, 'other');
      assertOk(await cli('init', '--dir', other));
      assertOk(await cli('issue', 'client', '--dir', other, '--name', 'foreign'));
      const runs = await Promise.all([
        cli('revoke', file('ca.pem')),
        cli('revoke', path.join(other, 'foreign.pem')),
        cli('revoke', file('hmi-1.pem'), '--ca', file('ca.pem')),
        cli('revoke', file('hmi-1.pem'), '--reason', 'whim'),
      ]);
      const expected = [/is the CA itself/, /was not issued by the CA in certs\/ca\.pem/, /--ca and --ca-key go together/, /--reason <reason>.*whim.*is invalid/];
      for (const [i, r] of runs.entries()) {
        assert.equal(r.status, 2, `${i}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, expected[i]!);
      }
    });
  });

  describe('errors (exit status 2)', () => {
    it('issue without a CA names ca.pem and suggests certs init', T, async () => {
      const r = await cli('issue', 'server', '--name', 'x.test', '--dir', 'empty');
      assert.equal(r.status, 2);
      assert.match(r.stderr, /empty\/ca\.pem/);
      assert.match(r.stderr, /mxproxy certs init --dir empty/);
      assert.equal(fs.existsSync(path.join(cwd, 'empty')), false);
    });

    it('init twice without --force leaves the existing CA key alone', T, async () => {
      const before = fs.readFileSync(file('ca.key'), 'utf8');
      const r = await cli('init');
      assert.equal(r.status, 2);
      assert.match(r.stderr, /already exist.*--force/);
      assert.equal(fs.readFileSync(file('ca.key'), 'utf8'), before);
    });

    it('--days must be a positive whole number', T, async () => {
      const bad = ['0', 'abc', '1.5'];
      const runs = await Promise.all([...bad.map((d) => cli('issue', 'client', '--name', 'days-test', '--days', d)), cli('init', '--dir', 'other', '--days', '0')]);
      for (const [i, r] of runs.entries()) {
        assert.equal(r.status, 2, `--days ${bad[i] ?? '0 (init)'}`);
        assert.match(r.stderr, /--days <n>.*is invalid/);
      }
      assert.equal(fs.existsSync(file('days-test.pem')), false);
    });

    it('refuses bad names', T, async () => {
      const cases: [string[], RegExp][] = [
        [['server', '--name', ''], /--name is empty/],
        [['server', '--name', '../escape'], /not a host name/],
        [['client', '--name', 'a/b'], /cannot be used as a file name/],
        [['client', '--name', 'hmi-*'], /not a usable identity/],
        [['client', '--name', 'ca'], /"ca" is the file name of the CA/],
        [['client', '--name', 'ok', '--out', '../escape'], /--out "..\/escape" is not a usable file name/],
      ];
      const runs = await Promise.all(cases.map(([args]) => cli('issue', ...args)));
      for (const [i, r] of runs.entries()) {
        assert.equal(r.status, 2, `${cases[i]![0].join(' ')}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, cases[i]![1]);
      }
    });

    it('will not replace an existing certificate or key without --force', T, async () => {
      const key = fs.readFileSync(file('hmi-1.key'), 'utf8');
      const r = await cli('issue', 'client', '--name', 'hmi-1');
      assert.equal(r.status, 2);
      assert.match(r.stderr, /certs\/hmi-1\.pem and certs\/hmi-1\.key already exist; pass --force/);
      assert.equal(fs.readFileSync(file('hmi-1.key'), 'utf8'), key);
      assertOk(await cli('issue', 'client', '--name', 'hmi-1', '--force'));
      assert.notEqual(fs.readFileSync(file('hmi-1.key'), 'utf8'), key);
    });
  });

  it('--help for certs issue and its subcommands shows examples', T, async () => {
    const [issue, server] = (await Promise.all([cli('issue', '--help'), cli('issue', 'server', '--help')])).map(assertOk);
    assert.match(issue!, /Examples:\n {2}mxproxy certs issue server .*\n {2}mxproxy certs issue client /);
    assert.match(server!, /Examples:[^]*mxproxy certs issue server --name proxy\.plant\.local --ip 10\.0\.0\.5/);
  });
});
