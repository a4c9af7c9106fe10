/**
 * README's Quick start and walkthrough, as a newcomer runs them: in a fresh copy of the project (no dist/, no
 * certificates), `npm start` builds, creates the development certificates and runs the proxy on the default
 * config; `mxproxy forward -c config/mxproxy.config` opens the local port; a plain TCP client echoes through.
 * Only the config's port numbers are changed (loopback, free ports) so the test cannot collide with anything.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import net from 'node:net';
import { deadPort, digestUntilEnd, echoHandler, startBackend, type Backend } from '../helpers/harness.js';
import { copyProject, startInGroup as start, stopGroup as stop, useConfigPorts, waitForOutput, type Started } from '../helpers/project.js';

describe('Quick start in a fresh copy', () => {
  let dir: string;
  let echo: Backend;
  let proxy: Started | undefined;
  let forward: Started | undefined;
  let forwardPort: number;

  before(async () => {
    dir = copyProject('mxproxy-quickstart-');
    echo = await startBackend(echoHandler);
    const [proxyPort, fwd] = [await deadPort(), await deadPort()];
    forwardPort = fwd;
    useConfigPorts(dir, { proxy: proxyPort, data: echo.port, forward: fwd });
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
    assert.match(proxy.output(), /sources changed since the last build, building/);
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
