/**
 * The systemd path of docs/operations.md, as a process: certificates made by `mxproxy certs`, installed with the
 * ownership the docs give (certificate and CA root:<group> 0644, key <user>:<group> 0600, config root:<group>
 * 0640), and the proxy started directly as the service account (what `User=` does): it reads its files, serves
 * a client whose certificate `mxproxy certs` issued, and stops cleanly. `nobody` stands in for `mxproxy`.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect } from '../../src/client/connect.js';
import { deadPort, digestUntilEnd, echoHandler, startBackend, type Backend } from '../helpers/harness.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const NOBODY = 65534;

function certs(cwd: string, ...args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [MAIN, 'certs', ...args], { cwd, encoding: 'utf8', timeout: 20_000 }, (err, _out, stderr) =>
      err ? reject(new Error(`certs ${args.join(' ')}: ${stderr}`)) : resolve(),
    );
  });
}

/** Why the test cannot run here, or undefined: it needs root, and the built project readable by nobody. */
function cannotRun(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to install files for another account';
  const probe = spawnSync(process.execPath, ['-e', `require('fs').readFileSync(${JSON.stringify(MAIN)})`], { uid: NOBODY, gid: NOBODY });
  return probe.status === 0 ? undefined : `the built project (${path.dirname(MAIN)}) is not readable by uid ${NOBODY}`;
}

const skip = cannotRun();

describe('started as the service account, with files as docs/operations.md installs them', { skip }, () => {
  let dir: string;
  let backend: Backend;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxproxy-service-'));
    fs.chmodSync(dir, 0o755);
    backend = await startBackend(echoHandler);
  });
  after(async () => {
    await backend?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reads its files, serves a client certified by mxproxy certs, runs as that account, stops with 0', async () => {
    // On the CA machine.
    const ca = path.join(dir, 'ca-machine');
    fs.mkdirSync(ca);
    await certs(ca, 'init', '--dir', 'certs', '--name', 'Service Test CA');
    await certs(ca, 'issue', 'server', '--dir', 'certs', '--name', 'proxy.test', '--ip', '127.0.0.1');
    await certs(ca, 'issue', 'client', '--dir', 'certs', '--name', 'hmi-1');
    const made = (f: string) => path.join(ca, 'certs', f);

    // On the proxy host, as root: the table of docs/operations.md ("Which files the service user reads").
    const etc = path.join(dir, 'etc');
    const installed = path.join(etc, 'certs');
    fs.mkdirSync(installed, { recursive: true, mode: 0o755 });
    const install = (from: string, to: string, uid: number, mode: number) => {
      fs.copyFileSync(from, to);
      fs.chownSync(to, uid, NOBODY);
      fs.chmodSync(to, mode);
    };
    install(made('proxy.test.pem'), path.join(installed, 'proxy.test.pem'), 0, 0o644);
    install(made('ca.pem'), path.join(installed, 'ca.pem'), 0, 0o644);
    install(made('proxy.test.key'), path.join(installed, 'proxy.test.key'), NOBODY, 0o600);
    const port = await deadPort();
    const config = path.join(etc, 'mxproxy.config');
    fs.writeFileSync(
      config,
      [
        '[proxy]',
        `listen = "127.0.0.1:${port}"`,
        'sslCertificate = "certs/proxy.test.pem certs/proxy.test.key certs/ca.pem"',
        `server = "echo ${backend.address}"`,
        'allow = "cn:hmi-1 echo"',
        '',
      ].join('\n'),
    );
    fs.chownSync(config, 0, NOBODY);
    fs.chmodSync(config, 0o640);

    const child = spawn(process.execPath, [MAIN, 'start', '-c', config], { uid: NOBODY, gid: NOBODY, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    try {
      const t0 = Date.now();
      while (!/listening on/.test(out)) {
        if (child.exitCode !== null) assert.fail(`exited ${child.exitCode}:\n${out}`);
        if (Date.now() - t0 > 15_000) assert.fail(`not listening within 15 s:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const uid = /^Uid:\s+(\d+)\s+(\d+)/m.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      assert.deepEqual([uid?.[1], uid?.[2]], [String(NOBODY), String(NOBODY)], 'runs as the service account');
      const socket = await connect({
        proxy: `127.0.0.1:${port}`,
        target: 'echo',
        tls: { cert: fs.readFileSync(made('hmi-1.pem')), key: fs.readFileSync(made('hmi-1.key')), ca: fs.readFileSync(made('ca.pem')) },
      });
      const got = digestUntilEnd(socket);
      socket.end('as the service user');
      assert.equal((await got).bytes, 19);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, out);
    assert.match(out, /mxproxy stopped/);
  });
});
