/**
 * A public CA as trust anchor is refused with ERR_CA_PUBLIC wherever a user meets it: check-config (at the
 * sslCertificate line), start and forward (at start, exit 1), on both sides of the proxy.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { rootCertificates } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createTestPki, type TestPki } from '../helpers/pki.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const run = promisify(execFile);

async function cli(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const r = await run(process.execPath, [MAIN, ...args], { timeout: 20_000 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

describe('a public CA as trust anchor', () => {
  let pki: TestPki;
  let publicCa: string;
  let proxyFile: string;
  let clientFile: string;

  before(async () => {
    pki = await createTestPki();
    publicCa = path.join(pki.dir, 'public-root.pem');
    fs.writeFileSync(publicCa, rootCertificates[0]!);
    proxyFile = path.join(pki.dir, 'proxy.config');
    fs.writeFileSync(
      proxyFile,
      ['[proxy]', 'listen = "127.0.0.1:1"', `sslCertificate = "${pki.server.cert} ${pki.server.key} ${publicCa}"`, ''].join('\n'),
    );
    clientFile = path.join(pki.dir, 'client.config');
    fs.writeFileSync(
      clientFile,
      ['[client]', 'mxProxy = "127.0.0.1:1"', 'forward = "127.0.0.1:0 data"', `sslCertificate = "${pki.client.cert} ${pki.client.key} ${publicCa}"`, ''].join('\n'),
    );
  });
  after(() => pki?.cleanup());

  it('check-config: exit 2, ERR_CA_PUBLIC at the sslCertificate line, for [proxy] and for [client]', async () => {
    const p = await cli('check-config', '-c', proxyFile);
    assert.equal(p.code, 2);
    assert.match(p.out, /proxy\.config:3: ERR_CA_PUBLIC: .* is a public CA from the system trust store/);
    const c = await cli('check-config', '-c', clientFile);
    assert.equal(c.code, 2);
    assert.match(c.out, /client\.config:4: ERR_CA_PUBLIC/);
  });

  it('start and forward refuse to run: exit 1 with the code', async () => {
    const s = await cli('start', '-c', proxyFile);
    assert.equal(s.code, 1);
    assert.match(s.out, /cannot start: ERR_CA_PUBLIC: /);
    const f = await cli('forward', '-c', clientFile);
    assert.equal(f.code, 1);
    assert.match(f.out, /cannot start: ERR_CA_PUBLIC: /);
  });

  it('check-config passes the project CA', async () => {
    const good = path.join(pki.dir, 'good.config');
    fs.writeFileSync(good, fs.readFileSync(proxyFile, 'utf8').replace(publicCa, pki.caFile));
    const r = await cli('check-config', '-c', good);
    assert.equal(r.code, 0, r.out);
  });
});
