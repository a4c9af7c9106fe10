/** The CLI as a user runs it: `mxproxy start -c <file>` in its own process, first start on dev certificates. */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { deadPort, digestUntilEnd, echoHandler, request, startBackend, type Backend } from '../helpers/harness.js';
import type { TestPki } from '../helpers/pki.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

function waitForLine(child: ChildProcess, re: RegExp, ms = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no line matching ${re} within ${ms} ms; output:\n${out}`)), ms);
    const onData = (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => re.test(l));
      if (line) {
        clearTimeout(timer);
        resolve(out);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
  });
}

describe('mxproxy CLI', () => {
  let dir: string;
  let echo: Backend;
  let port: number;
  let child: ChildProcess | undefined;
  let output = '';

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxproxy-cli-'));
    echo = await startBackend(echoHandler);
    port = await deadPort();
    fs.writeFileSync(
      path.join(dir, 'mx.config'),
      [
        '[proxy]',
        `listen = "127.0.0.1:${port}"`,
        'sslCertificate = "dev-certs/server.pem dev-certs/server.key dev-certs/ca.pem"',
        `server = "data ${echo.address}"`,
        'allow = "mxproxy-dev-client data"',
      ].join('\n'),
    );
  });
  after(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await echo?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('starts on a fresh dev-certs folder: creates the certificates, warns, prints the configuration', async () => {
    child = spawn(process.execPath, [MAIN, 'start', '-c', path.join(dir, 'mx.config'), '--dbg', 'work', '--report', 'dispatch'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    await waitForLine(child, /listening on 127\.0\.0\.1:\d+/);
    assert.match(output, /DEVELOPMENT certificates/);
    assert.match(output, /# effective configuration/);
    assert.match(output, /server = "data 127\.0\.0\.1:\d+"/);
    const key = fs.statSync(path.join(dir, 'dev-certs', 'server.key'));
    assert.equal(key.mode & 0o777, 0o600);
  });

  it('links the generated development client and reports the dispatch', async () => {
    const certs = path.join(dir, 'dev-certs');
    const pki = {
      caFile: path.join(certs, 'ca.pem'),
      client: { cert: path.join(certs, 'client.pem'), key: path.join(certs, 'client.key') },
    } as unknown as TestPki;
    const { socket, reply, rest } = await request({ port, pki, target: 'data' });
    assert.equal(reply.ok, true);
    const got = digestUntilEnd(socket, rest);
    socket.end('over the CLI');
    assert.equal((await got).bytes, 12);
    await waitForLine(child!, /unlink .*identity=mxproxy-dev-client/);
    assert.match(output, /accept conn=\S+ peer=127\.0\.0\.1:\d+ local=127\.0\.0\.1:\d+/);
    assert.match(output, /link conn=\S+ peer=127\.0\.0\.1:\d+ identity=mxproxy-dev-client target=data/);
  });

  it('exits 0 on SIGTERM', async () => {
    const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
    child!.kill('SIGTERM');
    assert.equal(await exited, 0);
  });

  it('refuses a bad config with file:line and exit status 2', () => {
    const bad = path.join(dir, 'bad.config');
    fs.writeFileSync(bad, '[proxy]\nlisten = "127.0.0.1:99999"\nbogus = 1\n');
    const r = spawnSync(process.execPath, [MAIN, 'start', '-c', bad], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /bad\.config:2: /);
    assert.match(r.stderr, /bad\.config:3: .*unknown key/);
  });

  it('check-config prints the effective configuration and exits 0 on a good file', () => {
    const r = spawnSync(process.execPath, [MAIN, 'check-config', '-c', path.join(dir, 'mx.config')], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /handshakeTimeout = 5000/);
  });
});
