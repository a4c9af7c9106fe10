/**
 * The pieces of the certificate and privilege defences that need no sockets: reading basicConstraints and CRLs
 * from DER, the sslCrl / user / group config entries, account lookup.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createCa, createCrl, issueCertificate, readCrl, type Issued } from '../../src/certs/index.js';
import { describeConfig, readProxyConfig, type ConfigIssue } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';
import { basicConstraints, readCrl as readCrlDer, subjectDer } from '../../src/net/der.js';
import { allowsSubCas } from '../../src/net/trust.js';
import { lookupAccount } from '../../src/process/accounts.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';

const DAY_MS = 24 * 60 * 60 * 1000;
let dir: string;
let ca: Issued;
let pki: TestPki;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxproxy-certsec-'));
  [ca, pki] = await Promise.all([createCa({ commonName: 'unit CA' }), createTestPki({ caWithoutPathLen: true })]);
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  pki?.cleanup();
});

const pemToDer = (pem: string): Buffer => Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');

describe('basicConstraints from DER', () => {
  test('a CA from createCa (mxproxy certs init) has pathLen 0 and allows no intermediates', () => {
    const cert = new X509Certificate(ca.certPem);
    assert.deepEqual(basicConstraints(cert), { ca: true, pathLen: 0 });
    assert.equal(allowsSubCas(cert), false);
  });

  test('a CA without pathLen allows intermediates; a leaf is CA:FALSE', async () => {
    const loose = new X509Certificate(fs.readFileSync(pki.caFile));
    assert.deepEqual(basicConstraints(loose), { ca: true, pathLen: undefined });
    assert.equal(allowsSubCas(loose), true);
    const leaf = new X509Certificate((await issueCertificate(ca, { kind: 'client', commonName: 'x' })).certPem);
    assert.deepEqual(basicConstraints(leaf), { ca: false, pathLen: undefined });
    assert.equal(allowsSubCas(leaf), false);
  });
});

describe('CRLs', () => {
  test('createCrl → readCrl round trip: entries, reason, number; the DER reader sees issuer and dates', async () => {
    const leaf = new X509Certificate((await issueCertificate(ca, { kind: 'client', commonName: 'gone' })).certPem);
    const nextUpdate = new Date(Date.now() + 10 * DAY_MS);
    const pem = await createCrl(ca, [{ serial: leaf.serialNumber, revokedAt: new Date(), reason: 'keyCompromise' }], { number: 7n, nextUpdate });
    assert.match(pem, /^-----BEGIN X509 CRL-----\n[^]*-----END X509 CRL-----\n$/);
    const back = await readCrl(pem, ca);
    assert.equal(back.number, 7n);
    assert.equal(back.entries.length, 1);
    assert.equal(back.entries[0]?.serial.toUpperCase(), leaf.serialNumber);
    assert.equal(back.entries[0]?.reason, 'keyCompromise');

    const info = readCrlDer(pemToDer(pem));
    assert.ok(info.issuer.equals(subjectDer(new X509Certificate(ca.certPem))), 'issuer bytes equal the CA subject');
    assert.equal(info.issuerText, 'CN=unit CA');
    assert.equal(Math.floor(info.nextUpdate!.getTime() / 1000), Math.floor(nextUpdate.getTime() / 1000));
    assert.ok(info.thisUpdate.getTime() <= Date.now());
  });

  test('readCrl refuses a CRL of another CA', async () => {
    const other = await createCa({ commonName: 'other unit CA' });
    const pem = await createCrl(other, [], { number: 1n, nextUpdate: new Date(Date.now() + DAY_MS) });
    await assert.rejects(readCrl(pem, ca), /not issued by the CA/);
  });
});

describe('config: sslCrl, user, group', () => {
  let certs: string;
  before(() => {
    certs = path.join(dir, 'c.pem');
    fs.writeFileSync(certs, '-----BEGIN TEST-----\n');
  });
  const file = () => path.join(dir, 'test.config');
  const read = (...ls: string[]) => readProxyConfig(ls.join('\n') + '\n', file());
  function issues(...ls: string[]): ConfigIssue[] {
    try {
      read(...ls);
    } catch (e) {
      assert.ok(e instanceof ConfigError, String(e));
      return e.issues;
    }
    assert.fail('expected a ConfigError');
  }

  test('sslCrl is resolved against the config file and must be readable', () => {
    assert.equal(read('[proxy]', 'sslCrl = "c.pem"').crlFile, certs);
    const [i, ...rest] = issues('[proxy]', 'sslCrl = "missing-crl.pem"');
    assert.equal(rest.length, 0);
    assert.equal(i?.line, 2);
    assert.match(i?.message ?? '', /CRL file not found: .*missing-crl\.pem/);
  });

  test('user = "nobody" resolves to its uid and primary group; numeric ids work too', () => {
    const nobody = lookupAccount('passwd', 'nobody');
    if (!nobody) return; // no such account on this host
    const c = read('[proxy]', 'user = "nobody"');
    assert.equal(c.runAs?.uid, nobody.id);
    assert.equal(c.runAs?.gid, nobody.gid);
    assert.deepEqual(c.runAs?.source, { file: file(), line: 2 });
    assert.equal(read('[proxy]', `user = "${nobody.id}"`).runAs?.user, 'nobody');
    const root = read('[proxy]', 'user = "nobody"', 'group = "0"').runAs;
    assert.equal(root?.gid, 0);
    assert.match(describeConfig(c), /^user = "nobody"$/m);
  });

  test('an unknown user or group, a group without user, a bad name: errors with file:line', () => {
    const [u] = issues('[proxy]', 'listen = "127.0.0.1:1"', 'user = "no-such-user-mx"');
    assert.equal(u?.line, 3);
    assert.match(u?.message ?? '', /user "no-such-user-mx" does not exist on this host/);
    const [g] = issues('[proxy]', 'user = "0"', 'group = "no-such-group-mx"');
    assert.equal(g?.line, 3);
    assert.match(g?.message ?? '', /group "no-such-group-mx" does not exist/);
    const [alone] = issues('[proxy]', 'group = "0"');
    assert.match(alone?.message ?? '', /group is given without user/);
    const [bad] = issues('[proxy]', 'user = "-rf"');
    assert.match(bad?.message ?? '', /user must be a user name or a numeric id/);
  });

  test('not set: described as such', () => {
    const text = describeConfig(read('[proxy]'));
    assert.match(text, /^# sslCrl: not set \(no revocation check\)$/m);
    assert.match(text, /^# user: not set/m);
  });
});

describe('lookupAccount', () => {
  test('finds root by name and by id, and nothing for an unknown name', () => {
    assert.deepEqual(lookupAccount('passwd', 'root'), { name: 'root', id: 0, gid: 0 });
    assert.equal(lookupAccount('passwd', '0')?.name, 'root');
    assert.equal(lookupAccount('group', '0')?.id, 0);
    assert.equal(lookupAccount('passwd', 'no-such-user-mx'), null);
    assert.equal(lookupAccount('passwd', '--help'), null, 'never handed to getent as an option');
  });
});
