/**
 * README's Quick start and walkthrough, as a newcomer runs them: in a fresh copy of the project (no dist/, no
 * certificates), `npm start` builds, creates the development certificates and runs the proxy on the default
 * config; `mxproxy forward -c config/mxproxy.config` opens the local port; a plain TCP client echoes through.
 * Only the config's port numbers are changed (loopback, free ports) so the test cannot collide with anything.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import { deadPort, digestUntilEnd, echoHandler, startBackend, type Backend } from '../helpers/harness.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
// What a clean clone has (docs aside): tsconfig compiles src, machines, scripts and test together.
const COPIED = ['package.json', 'package-lock.json', 'tsconfig.json', 'src', 'machines', 'scripts', 'test', 'config'];

/** Starts `cmd` in its own process group, so the npm → sh → node chain can be stopped as one. */
function start(cmd: string, args: string[], cwd: string): ChildProcess & { output: () => string } {
  const child = spawn(cmd, args, { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return Object.assign(child, { output: () => out });
}

async function waitForOutput(child: { output: () => string; exitCode: number | null }, re: RegExp, ms: number): Promise<void> {
  const t0 = Date.now();
  while (!re.test(child.output())) {
    if (child.exitCode !== null) throw new Error(`exited ${child.exitCode} before ${re}:\n${child.output()}`);
    if (Date.now() - t0 > ms) throw new Error(`no ${re} within ${ms} ms:\n${child.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * SIGTERM to the process group; resolves with the exit code, or the signal's name if it was killed, once the
 * output is complete: `close`, not `exit`, since npm may exit before the node under it has written its last lines.
 */
async function stop(child: ChildProcess | undefined): Promise<number | string | null> {
  if (!child?.pid) return null;
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? child.signalCode;
  const exited = new Promise<number | string | null>((r) => child.once('close', (code, signal) => r(code ?? signal)));
  process.kill(-child.pid, 'SIGTERM');
  const timer = setTimeout(() => child.pid && process.kill(-child.pid, 'SIGKILL'), 10_000);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

describe('Quick start in a fresh copy', () => {
  let dir: string;
  let echo: Backend;
  let proxy: (ChildProcess & { output: () => string }) | undefined;
  let forward: (ChildProcess & { output: () => string }) | undefined;
  let forwardPort: number;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxproxy-quickstart-'));
    for (const f of COPIED) fs.cpSync(path.join(ROOT, f), path.join(dir, f), { recursive: true });
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
    echo = await startBackend(echoHandler);
    const [proxyPort, fwd] = [await deadPort(), await deadPort()];
    forwardPort = fwd;
    const cfg = path.join(dir, 'config/mxproxy.config');
    const text = fs.readFileSync(cfg, 'utf8');
    const edited = text
      .replace('listen = "0.0.0.0:5678"', `listen = "127.0.0.1:${proxyPort}"`)
      .replace('server = "data 127.0.0.1:4897"', `server = "data 127.0.0.1:${echo.port}"`)
      .replace('mxProxy = "127.0.0.1:5678"', `mxProxy = "127.0.0.1:${proxyPort}"`)
      .replace('forward = "127.0.0.1:14897 data"', `forward = "127.0.0.1:${fwd} data"`);
    assert.equal((edited.match(new RegExp(String(proxyPort), 'g')) ?? []).length, 2, 'the default config has the expected entries');
    fs.writeFileSync(cfg, edited);
  });

  after(async () => {
    await stop(forward);
    await stop(proxy);
    await echo?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('npm start builds, creates development certificates with a warning, and listens', async () => {
    assert.equal(fs.existsSync(path.join(dir, 'dist')), false);
    proxy = start('npm', ['start', '--silent'], dir);
    await waitForOutput(proxy, /mxproxy listening on 127\.0\.0\.1:/, 90_000);
    assert.match(proxy.output(), /created DEVELOPMENT certificates/);
    const certs = path.join(dir, '.mxproxy/dev-certs');
    for (const f of ['ca.pem', 'server.pem', 'server.key', 'client.pem', 'client.key']) {
      assert.ok(fs.existsSync(path.join(certs, f)), `${f} created`);
    }
    assert.equal(fs.statSync(path.join(certs, 'client.key')).mode & 0o777, 0o600);
  });

  it('mxproxy forward -c config/mxproxy.config, then a plain TCP client echoes through the proxy', async () => {
    assert.ok(proxy, 'the proxy runs');
    forward = start(process.execPath, ['dist/src/cli/main.js', 'forward', '-c', 'config/mxproxy.config'], dir);
    await waitForOutput(forward, new RegExp(`forwarding 127\\.0\\.0\\.1:${forwardPort} → data`), 10_000);
    const s = await new Promise<net.Socket>((resolve, reject) => {
      const c = net.connect({ host: '127.0.0.1', port: forwardPort, allowHalfOpen: true }, () => resolve(c));
      c.once('error', reject);
    });
    const got = digestUntilEnd(s);
    s.end('hello through mxproxy\n');
    assert.equal((await got).bytes, 'hello through mxproxy\n'.length);
    assert.equal(echo.accepted.length, 1, 'the echo server saw exactly one connection, from the proxy');
  });

  it('both stop on SIGTERM: the forwarder exits 0, the proxy logs that it stopped', async () => {
    assert.equal(await stop(forward), 0);
    // npm re-raises the signal its script got; the proxy under it stops cleanly and says so.
    assert.ok([0, 'SIGTERM'].includes((await stop(proxy)) ?? -1));
    assert.match(proxy?.output() ?? '', /SIGTERM: stopping[\s\S]*mxproxy stopped/);
  });
});
