/**
 * The pieces of reload and drain below the runtime: the new [proxy] keys, what a reload keeps of the config in
 * force, the revoked serials of a CRL (RevocationList), the pid file and the command-line check of `mxproxy
 * reload`.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createCa, createCrl, issueCertificate, type Issued } from '../../src/certs/index.js';
import { DEFAULTS, readProxyConfig, type ConfigIssue, type ProxyConfig } from '../../src/config/index.js';
import { ConfigError, PidFileError } from '../../src/errors.js';
import { normalSerial, readCrl } from '../../src/net/der.js';
import { RevocationList } from '../../src/net/revocation.js';
import { isMxproxyStart, readPidFile, removePidFile, writePidFile } from '../../src/process/pidFile.js';
import { keepRestartOnly } from '../../src/proxy/reload.js';

let dir: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxproxy-reload-'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const read = (...lines: string[]): ProxyConfig => readProxyConfig(['[proxy]', ...lines].join('\n'), path.join(dir, 'x.config'), { checkFiles: false });

function issues(...lines: string[]): ConfigIssue[] {
  try {
    read(...lines);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.issues;
  }
  assert.fail('expected a ConfigError');
}

describe('[proxy] pidFile, onRuleChange, drainTimeout', () => {
  test('defaults: no pid file, close, 30 s', () => {
    const c = read();
    assert.deepEqual([c.pidFile, c.onRuleChange, c.drainTimeout], [undefined, 'close', DEFAULTS.drainTimeout]);
    assert.equal(DEFAULTS.drainTimeout, 30_000);
  });

  test('values; pidFile is relative to the config file', () => {
    const c = read('pidFile = "run/mx.pid"', 'onRuleChange = "keep"', 'drainTimeout = 0');
    assert.deepEqual([c.pidFile, c.onRuleChange, c.drainTimeout], [path.join(dir, 'run/mx.pid'), 'keep', 0]);
  });

  test('errors, each at its line', () => {
    const found = issues('onRuleChange = "drop"', 'drainTimeout = 3600001', 'pidFile = ""', 'drainTimeout = 5');
    assert.deepEqual(
      found.map((i) => [i.line, i.message.replace(/[,;].*$/, '')]),
      [
        [2, 'onRuleChange must be one of "close"'],
        [3, 'drainTimeout must be between 0 and 3600000'],
        [4, 'pidFile needs a file name'],
        [5, 'drainTimeout may be given only once (first given at line 3)'],
      ],
    );
  });

  test('with file checks: the pid file directory or its parent must exist', () => {
    const text = ['[proxy]', `pidFile = "${path.join(dir, 'no', 'such', 'mx.pid')}"`].join('\n');
    assert.throws(() => readProxyConfig(text, path.join(dir, 'x.config')), /pidFile directory .* does not exist, nor its parent/);
    assert.doesNotThrow(() => readProxyConfig(['[proxy]', `pidFile = "${path.join(dir, 'new', 'mx.pid')}"`].join('\n'), path.join(dir, 'x.config')));
  });
});

describe('keepRestartOnly', () => {
  test('listen, eventLog, user/group and pidFile keep the values in force, each with a warning; the rest is taken', () => {
    const current = read('listen = "127.0.0.1:5678"', `eventLog = "${path.join(dir, 'a.mxlog')}"`, 'pidFile = "a.pid"', 'allow = "x *"');
    const next = read('listen = "127.0.0.1:5679"', `eventLog = "${path.join(dir, 'b.mxlog')}"`, 'pidFile = "b.pid"', 'allow = "y *"', 'idleTimeout = 5000');
    const { config, warnings } = keepRestartOnly(current, next);
    assert.deepEqual(config.listen, current.listen);
    assert.deepEqual(config.eventLog, current.eventLog);
    assert.equal(config.pidFile, current.pidFile);
    assert.deepEqual(config.allow, next.allow);
    assert.equal(config.idleTimeout, 5000);
    assert.deepEqual(
      warnings.map((w) => /^reload: (\S+) changed/.exec(w)?.[1]),
      ['listen', 'eventLog', 'pidFile'],
    );
    assert.match(warnings[0]!, /127\.0\.0\.1:5678 → 127\.0\.0\.1:5679\): that needs a restart; the proxy keeps 127\.0\.0\.1:5678/);
  });

  test('the same settings in another order or spelling: no warning', () => {
    const a = read('listen = "127.0.0.1:1"', 'listen = "[::1]:2"');
    const b = read('listen = "[0:0::1]:2"', 'listen = "127.0.0.1:1"');
    assert.deepEqual(keepRestartOnly(a, b).warnings, []);
  });
});

describe('RevocationList', () => {
  let ca: Issued;
  let revoked: X509Certificate;
  let kept: X509Certificate;
  let crl: string;
  before(async () => {
    ca = await createCa({ commonName: 'reload unit CA' });
    revoked = new X509Certificate((await issueCertificate(ca, { kind: 'client', commonName: 'gone' })).certPem);
    kept = new X509Certificate((await issueCertificate(ca, { kind: 'client', commonName: 'stays' })).certPem);
    crl = await createCrl(ca, [{ serial: revoked.serialNumber, revokedAt: new Date(), reason: undefined }], {
      number: 2n,
      nextUpdate: new Date(Date.now() + 86_400_000),
    });
  });

  test("the DER reader lists a CRL's revoked serials; none for an empty CRL", async () => {
    const der = (pem: string) => Buffer.from(pem.replace(/-----[^-]+-----|\s+/g, ''), 'base64');
    assert.deepEqual(readCrl(der(crl)).revoked, [normalSerial(revoked.serialNumber)]);
    const empty = await createCrl(ca, [], { number: 3n, nextUpdate: new Date(Date.now() + 86_400_000) });
    assert.deepEqual(readCrl(der(empty)).revoked, []);
  });

  test('revokes the listed serial, however it is written, and no other', () => {
    const list = RevocationList.of({ cert: '', key: '', ca: ca.certPem, crl: [crl] });
    const never = () => assert.fail('one CA: the certificate is not needed');
    assert.equal(list.revokes(revoked.serialNumber, never), true);
    assert.equal(list.revokes(`00${revoked.serialNumber.toLowerCase()}`, never), true);
    assert.equal(list.revokes(kept.serialNumber, never), false);
    assert.equal(RevocationList.of({ cert: '', key: '', ca: ca.certPem }).size, 0, 'no CRL: nothing revoked');
  });

  test('with two CAs the issuer decides: the same serial from the other CA is not revoked', async () => {
    const other = await createCa({ commonName: 'other reload unit CA' });
    const otherCrl = await createCrl(other, [], { number: 1n, nextUpdate: new Date(Date.now() + 86_400_000) });
    const list = RevocationList.of({ cert: '', key: '', ca: `${ca.certPem}${other.certPem}`, crl: [crl, otherCrl] });
    const fromOther = new X509Certificate((await issueCertificate(other, { kind: 'client', commonName: 'elsewhere' })).certPem);
    assert.equal(list.revokes(revoked.serialNumber, () => revoked), true);
    assert.equal(list.revokes(revoked.serialNumber, () => fromOther), false, 'same serial, another issuer');
    assert.equal(list.revokes(revoked.serialNumber, () => undefined), true, 'no certificate to ask: cut');
  });
});

describe('pid file', () => {
  test('written with this pid (its directory created), read back, removed only while it is ours', () => {
    const file = path.join(dir, 'run', 'mx.pid');
    writePidFile(file, undefined);
    assert.equal(readPidFile(file), process.pid);
    writePidFile(file, undefined); // our own pid in it: fine
    fs.writeFileSync(file, '999999999\n');
    assert.equal(removePidFile(file), undefined);
    assert.equal(fs.existsSync(file), true, "another process's pid file is left alone");
    fs.writeFileSync(file, `${process.pid}\n`);
    assert.equal(removePidFile(file), undefined);
    assert.equal(fs.existsSync(file), false);
    assert.equal(removePidFile(file), undefined, 'already gone: nothing to say');
  });

  test('a pid file naming a live process that is not mxproxy start is taken over', () => {
    const file = path.join(dir, 'taken.pid');
    fs.writeFileSync(file, `${process.ppid}\n`);
    writePidFile(file, undefined);
    assert.equal(readPidFile(file), process.pid);
  });

  test('readPidFile: missing, empty, not a pid', () => {
    assert.throws(() => readPidFile(path.join(dir, 'none.pid')), (e: unknown) => e instanceof PidFileError && /no pid file/.test(e.message));
    fs.writeFileSync(path.join(dir, 'bad.pid'), 'hello\n');
    assert.throws(() => readPidFile(path.join(dir, 'bad.pid')), /holds no process id: "hello"/);
  });

  test('isMxproxyStart: the CLI, the bin, npm start; not other programs or other commands', () => {
    assert.equal(isMxproxyStart(['/usr/bin/node', '/opt/mxproxy/dist/src/cli/main.js', 'start', '-c', '/etc/mx.config']), true);
    assert.equal(isMxproxyStart(['node', '/usr/local/bin/mxproxy', 'start', '-c', 'x']), true);
    assert.equal(isMxproxyStart(['/usr/local/bin/mxproxy', 'start']), true);
    assert.equal(isMxproxyStart(['node', '/srv/mxproxy/scripts/start.mjs', 'start', '-c', 'config/mxproxy.config']), true);
    assert.equal(isMxproxyStart(['node', '/opt/mxproxy/dist/src/cli/main.js', 'forward', '-c', 'x']), false);
    assert.equal(isMxproxyStart(['/usr/bin/python3', '/opt/mxproxy/dist/src/cli/main.js', 'start']), false);
    assert.equal(isMxproxyStart(['/usr/sbin/sshd', '-D']), false);
    assert.equal(isMxproxyStart([]), false);
  });
});
