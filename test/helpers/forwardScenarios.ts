/**
 * `mxproxy forward` stories on real loopback sockets, recorded with [client] eventLog: the material of the
 * forwarder's recorded fixtures (scripts/recordEventLogFixtures.ts). Each story ends when the forwarder has
 * forgotten the pair.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { Writable } from 'node:stream';
import { readClientConfig } from '../../src/config/index.js';
import { startForwarder, type Forwarder } from '../../src/forward/forwarder.js';
import { createLogger } from '../../src/log.js';
import { loadTlsMaterial } from '../../src/net/tlsMaterial.js';
import { deadPort, digestUntilEnd, echoHandler, startBackend, startHarness, waitFor } from './harness.js';
import type { TestPki } from './pki.js';

const quiet = () => createLogger({ format: 'json', level: 'error', stream: new Writable({ write: (_c, _e, cb) => cb() }) });

function portOf(fwd: Forwarder, target: string): number {
  const a = fwd.addresses.find((x) => x.target === target);
  assert.ok(a, `no forward for ${target}`);
  return a.address.port;
}

async function echoOnce(fwd: Forwarder, target: string, data: string): Promise<void> {
  const s = net.connect({ host: '127.0.0.1', port: portOf(fwd, target), allowHalfOpen: true });
  await new Promise((r) => s.once('connect', r));
  const got = digestUntilEnd(s);
  s.end(data);
  assert.equal((await got).bytes, data.length);
  s.destroy();
  await waitFor(() => fwd.stats().active === 0, 3000, 'the forwarder forgot the pair');
}

async function refusedOnce(fwd: Forwarder, target: string): Promise<void> {
  const s = net.connect({ host: '127.0.0.1', port: portOf(fwd, target) });
  s.on('error', () => undefined);
  s.resume();
  await new Promise((r) => s.once('close', r));
  await waitFor(() => fwd.stats().active === 0, 3000, 'the forwarder forgot the pair');
}

/**
 * Through a real proxy: `echo` round trip, `secret` declined ERR_NOT_ALLOWED, `down` declined
 * ERR_TARGET_UNREACHABLE (the proxy cannot reach it). Or with mxProxy = "none": `echo` fails over from a
 * dead address to the echo server, `gone` has only a dead address (unreachable).
 */
export async function recordForwarderLog(pki: TestPki, file: string, mode: 'proxy' | 'direct', level = 'lifecycle'): Promise<void> {
  const echo = await startBackend(echoHandler);
  const dead = `127.0.0.1:${await deadPort()}`;
  const h =
    mode === 'proxy'
      ? await startHarness(pki, { servers: { echo: [echo.address], secret: [echo.address], down: [dead] }, allow: ['test-client echo down'] })
      : undefined;
  const lines = ['[client]', `sslCertificate = "${pki.client.cert} ${pki.client.key} ${pki.caFile}"`, `eventLog = "${file}"`, `eventLogLevel = "${level}"`];
  if (h) lines.push(`mxProxy = "127.0.0.1:${h.port}"`, 'forward = "127.0.0.1:0 echo"', 'forward = "127.0.0.1:0 secret"', 'forward = "127.0.0.1:0 down"');
  else lines.push('mxProxy = "none"', `forward = "127.0.0.1:0 echo ${dead} ${echo.address}"`, `forward = "127.0.0.1:0 gone ${dead}"`);
  const config = readClientConfig(lines.join('\n'), `${pki.dir}/client.config`, { requireForwards: true });
  const fwd = await startForwarder({ config, tls: config.proxy && config.tls ? loadTlsMaterial(config.tls) : undefined, logger: quiet() });
  try {
    await echoOnce(fwd, 'echo', 'hello');
    if (h) {
      await refusedOnce(fwd, 'secret');
      await refusedOnce(fwd, 'down');
    } else {
      await refusedOnce(fwd, 'gone');
    }
  } finally {
    await fwd.stop();
    await h?.stop();
    await echo.close();
  }
}
