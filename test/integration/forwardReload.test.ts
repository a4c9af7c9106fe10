/**
 * `mxproxy forward`'s reload and drain on loopback, through a real proxy: a forward added, one removed (its
 * open connection goes on), one changed (the next connection goes to the new target); a broken file rejected;
 * stop with drain (linked connections go on; reset at the deadline or by a second stop). And the CLI: SIGHUP
 * to `mxproxy forward -c`, then SIGTERM.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { loadClientConfig } from '../../src/config/index.js';
import { startForwarder, type Forwarder } from '../../src/forward/forwarder.js';
import { createLogger } from '../../src/log.js';
import { loadTlsMaterial } from '../../src/net/tlsMaterial.js';
import { closed, deadPort, echoHandler, startBackend, startHarness, waitFor, type Backend, type Harness } from '../helpers/harness.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

function tcp(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Writes `text`, resolves with what comes back once at least as many bytes arrived. */
function roundTrip(s: net.Socket, text: string, expectLength = text.length, ms = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no answer to "${text}" within ${ms} ms (got "${buf}")`)), ms);
    const onData = (d: Buffer) => {
      buf += d.toString();
      if (buf.length < expectLength) return;
      clearTimeout(timer);
      s.off('data', onData);
      resolve(buf);
    };
    s.on('data', onData);
    s.write(text);
  });
}

describe('forwarder reload and drain (library, through a real proxy)', () => {
  let pki: TestPki;
  let echo: Backend;
  let other: Backend;
  let h: Harness;
  let file: string;
  let ports: { a: number; b: number; c: number };
  let fwd: Forwarder;
  const logs: Record<string, unknown>[] = [];

  const write = (forwards: string[], extra: string[] = []) =>
    fs.writeFileSync(
      file,
      ['[client]', `mxProxy = "127.0.0.1:${h.port}"`, `sslCertificate = "${pki.client.cert} ${pki.client.key} ${pki.caFile}"`, ...forwards, ...extra, ''].join('\n'),
    );

  before(async () => {
    pki = await createTestPki();
    echo = await startBackend(echoHandler);
    // Tells the two targets apart.
    other = await startBackend((s) => s.on('data', (d: Buffer) => s.write(`other:${d.toString()}`)));
    h = await startHarness(pki, { servers: { echo: [echo.address], other: [other.address] }, allow: ['test-client echo other'] });
    file = path.join(pki.dir, 'client.config');
    ports = { a: await deadPort(), b: await deadPort(), c: await deadPort() };
    write([`forward = "127.0.0.1:${ports.a} echo"`, `forward = "127.0.0.1:${ports.b} echo"`], ['drainTimeout = 400']);
    const config = loadClientConfig(file, { requireForwards: true });
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n')) if (l.trim()) logs.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    });
    fwd = await startForwarder({ config, tls: loadTlsMaterial(config.tls!), logger: createLogger({ format: 'json', level: 'debug', stream: sink }) });
  });
  after(async () => {
    await fwd?.stop();
    await h?.stop();
    await echo?.close();
    await other?.close();
    pki?.cleanup();
  });

  let onB: net.Socket;
  it('reload: a forward added listens, a removed one stops listening while its open connection goes on, a changed one leads elsewhere', async () => {
    onB = await tcp(ports.b);
    assert.equal(await roundTrip(onB, 'b1'), 'b1');
    write([`forward = "127.0.0.1:${ports.a} other"`, `forward = "127.0.0.1:${ports.c} echo"`], ['drainTimeout = 400']);
    const result = await fwd.reload();
    assert.deepEqual(result, { ok: true, added: 1, removed: 1, changed: 1 });
    assert.deepEqual(
      fwd.addresses.map((x) => [x.target, x.address.port]),
      [
        ['other', ports.a],
        ['echo', ports.c],
      ],
    );
    // The removed forward's connection goes on; its port takes no new one.
    assert.equal(await roundTrip(onB, 'b2'), 'b2');
    await assert.rejects(tcp(ports.b), /ECONNREFUSED/);
    const onA = await tcp(ports.a);
    assert.equal(await roundTrip(onA, 'a', 'other:a'.length), 'other:a');
    onA.destroy();
    const onC = await tcp(ports.c);
    assert.equal(await roundTrip(onC, 'c'), 'c');
    onC.destroy();
    assert.ok(logs.some((l) => String(l.message).startsWith(`reload: stopped listening on 127.0.0.1:${ports.b}`)));
  });

  it('a broken file is rejected with file:line, and the forwards in force stay', async () => {
    write([`forward = "127.0.0.1:${ports.a} other"`, 'forward = "nonsense"', 'bogus = 1']);
    const result = await fwd.reload();
    assert.equal(result.ok, false);
    assert.ok(!result.ok && result.problems.length === 2);
    const rejected = logs.filter((l) => String(l.message).startsWith(`reload rejected: ${file}:`)).map((l) => String(l.message));
    assert.deepEqual(
      rejected.map((m) => /:(\d+): /.exec(m)?.[1]),
      ['5', '6'],
    );
    assert.equal(fwd.addresses.length, 2);
    const onC = await tcp(ports.c);
    assert.equal(await roundTrip(onC, 'still'), 'still');
    onC.destroy();
  });

  it('stop({ drain: true }): no new connections, a linked one goes on and is reset at drainTimeout', async () => {
    const onC = await tcp(ports.c);
    assert.equal(await roundTrip(onC, 'x'), 'x');
    const gone = Promise.all([closed(onC, 5000), closed(onB, 5000)]);
    onC.on('error', () => {});
    onB.on('error', () => {});
    const t0 = Date.now();
    const stopped = fwd.stop({ drain: true });
    await waitFor(() => logs.some((l) => String(l.message).startsWith('draining:')), 2000, 'draining');
    await assert.rejects(tcp(ports.c), /ECONNREFUSED/);
    assert.equal(await roundTrip(onC, 'during the drain'), 'during the drain');
    await gone;
    await stopped;
    assert.ok(Date.now() - t0 >= 350, `reset at the deadline (${Date.now() - t0} ms)`);
    assert.equal(fwd.stats().active, 0);
  });
});

describe('mxproxy forward -c: SIGHUP reloads, SIGTERM twice stops at once', () => {
  let pki: TestPki;
  let echo: Backend;
  let h: Harness;
  before(async () => {
    pki = await createTestPki();
    echo = await startBackend(echoHandler);
    h = await startHarness(pki, { servers: { echo: [echo.address] }, allow: ['test-client echo'] });
  });
  after(async () => {
    await h?.stop();
    await echo?.close();
    pki?.cleanup();
  });

  it('a forward added by SIGHUP listens; a linked connection survives the first SIGTERM, not the second; exit 0', async () => {
    const [a, b] = [await deadPort(), await deadPort()];
    const file = path.join(pki.dir, 'fwd.config');
    const write = (forwards: number[]) =>
      fs.writeFileSync(
        file,
        [
          '[client]',
          `mxProxy = "127.0.0.1:${h.port}"`,
          `sslCertificate = "${pki.client.cert} ${pki.client.key} ${pki.caFile}"`,
          ...forwards.map((p) => `forward = "127.0.0.1:${p} echo"`),
          '',
        ].join('\n'),
      );
    write([a]);
    const child = spawn(process.execPath, [MAIN, 'forward', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const until = (re: RegExp) => waitFor(() => re.test(out), 10_000, `${re} in:\n${out}`);
    try {
      await until(new RegExp(`forwarding 127\\.0\\.0\\.1:${a} → echo`));
      write([a, b]);
      child.kill('SIGHUP');
      await until(/reload: configuration in force, 2 forward\(s\): 1 added, 0 removed, 0 changed/);
      const s = await tcp(b);
      s.on('error', () => {});
      assert.equal(await roundTrip(s, 'via the new forward'), 'via the new forward');
      child.kill('SIGTERM');
      await until(/draining:/);
      assert.equal(await roundTrip(s, 'draining'), 'draining');
      child.kill('SIGTERM');
      await closed(s, 3000);
      assert.equal(await exit, 0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
