/**
 * The client-side forwarder on real loopback sockets: unmodified TCP clients → forwarder → mutual TLS →
 * proxy → backend, and the same with the proxy switched off (mxProxy = "none").
 */
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Writable } from 'node:stream';
import { readClientConfig } from '../../src/config/index.js';
import { startForwarder, type Forwarder } from '../../src/forward/forwarder.js';
import { createLogger } from '../../src/log.js';
import { loadTlsMaterial } from '../../src/net/tlsMaterial.js';
import {
  closed,
  deadPort,
  digestUntilEnd,
  echoHandler,
  patternBytes,
  sha256,
  startBackend,
  startHarness,
  waitFor,
  type Backend,
  type Harness,
} from '../helpers/harness.js';
import { createTestPki, type CertFiles, type TestPki } from '../helpers/pki.js';

interface Started {
  fwd: Forwarder;
  logs: Record<string, unknown>[];
  port(target: string): number;
}

/** A forwarder from [client] config text (certificate paths filled in), its JSON log lines collected. */
async function forwarder(pki: TestPki, lines: string[], cert: CertFiles = pki.client): Promise<Started> {
  const text = ['[client]', `sslCertificate = "${cert.cert} ${cert.key} ${pki.caFile}"`, ...lines].join('\n');
  const config = readClientConfig(text, `${pki.dir}/client.config`, { requireForwards: true });
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) logs.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const fwd = await startForwarder({
    config,
    tls: config.proxy && config.tls ? loadTlsMaterial(config.tls) : undefined,
    logger: createLogger({ format: 'json', level: 'debug', stream: sink }),
  });
  return {
    fwd,
    logs,
    port: (target) => {
      const a = fwd.addresses.find((x) => x.target === target);
      assert.ok(a, `no forward for ${target}`);
      return a.address.port;
    },
  };
}

function tcp(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Sends `data`, half-closes, and resolves with everything received until the other side ends. */
async function roundTrip(port: number, data: Buffer) {
  const s = await tcp(port);
  const got = digestUntilEnd(s);
  s.end(data);
  return got;
}

const run = promisify(execFile);
const hasCommand = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

describe('mxproxy forward', () => {
  let pki: TestPki;
  let echo: Backend;
  let h: Harness;
  let via: Started;

  before(async () => {
    pki = await createTestPki();
    echo = await startBackend(echoHandler);
    h = await startHarness(pki, {
      servers: { echo: [echo.address], secret: [echo.address], down: [`127.0.0.1:${await deadPort()}`] },
      allow: ['test-client echo down'],
    });
    via = await forwarder(pki, [
      `mxProxy = "127.0.0.1:${h.port}"`,
      'forward = "127.0.0.1:0 echo"',
      'forward = "127.0.0.1:0 secret"',
      'forward = "127.0.0.1:0 down"',
    ]);
  });
  after(async () => {
    await via?.fwd.stop();
    await h?.stop();
    await echo?.close();
    pki?.cleanup();
  });

  it('forwards a plain TCP client through the proxy: 1 MiB both ways, unchanged', async () => {
    const data = patternBytes(1 << 20, 7);
    const r = await roundTrip(via.port('echo'), data);
    assert.equal(r.bytes, data.length);
    assert.equal(r.sha256, sha256(data));
    const linked = h.logs.filter((l) => l.message === 'link');
    assert.ok(linked.length >= 1, 'the proxy linked the pair');
  });

  it('carries 20 concurrent clients, each its own pair', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => roundTrip(via.port('echo'), patternBytes(4096 + i, i + 1))),
    );
    results.forEach((r, i) => assert.equal(r.sha256, sha256(patternBytes(4096 + i, i + 1))));
    await waitFor(() => via.fwd.stats().active === 0, 3000, 'all local connections closed');
    assert.equal(echo.open.size, 0, 'every backend connection closed');
  });

  it('a client that sends first is not lost while the pair is being linked', async () => {
    const s = await tcp(via.port('echo'));
    s.write('early'); // before TLS and the proxy's reply can have happened
    const got = digestUntilEnd(s);
    s.end(' and late');
    assert.equal((await got).bytes, 'early and late'.length);
  });

  it('a decline resets the local client, logs the code, and the forwarder keeps serving', async () => {
    const before = via.fwd.stats().refused;
    const s = await tcp(via.port('secret'));
    const err = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      s.once('error', resolve);
      s.once('close', () => resolve(undefined));
      s.resume();
    });
    assert.equal(err?.code, 'ECONNRESET', 'a refusal is a reset, not an empty answer');
    assert.equal(via.fwd.stats().refused, before + 1);
    await waitFor(() => via.logs.some((l) => l.code === 'ERR_NOT_ALLOWED'), 2000, 'decline logged');
    const r = await roundTrip(via.port('echo'), Buffer.from('still here'));
    assert.equal(r.bytes, 10);
  });

  it('an unreachable target is refused with ERR_TARGET_UNREACHABLE', async () => {
    const s = await tcp(via.port('down'));
    s.on('error', () => undefined);
    s.resume();
    await closed(s, 5000);
    await waitFor(() => via.logs.some((l) => l.code === 'ERR_TARGET_UNREACHABLE'), 2000, 'refusal logged');
  });

  it('teardown is paired: the local client closing closes the backend side', async () => {
    const s = await tcp(via.port('echo'));
    s.write('x');
    await new Promise((r) => s.once('data', r));
    const backendSide = echo.accepted[echo.accepted.length - 1]!;
    s.destroy();
    await closed(backendSide, 3000);
  });

  it('teardown is paired: the backend closing ends the local client', async () => {
    const closing = await startBackend((sock) => sock.end('bye'));
    const hh = await startHarness(pki, { servers: { bye: [closing.address] }, allow: ['test-client bye'] });
    const f = await forwarder(pki, [`mxProxy = "127.0.0.1:${hh.port}"`, 'forward = "127.0.0.1:0 bye"']);
    try {
      const s = await tcp(f.port('bye'));
      const r = await digestUntilEnd(s);
      assert.equal(r.bytes, 3, 'the last bytes arrive before the end');
      s.end(); // our client is half-open: its own end completes the close
      await closed(s, 3000);
      await waitFor(() => f.fwd.stats().active === 0, 3000, 'the forwarder forgot the pair');
    } finally {
      await f.fwd.stop();
      await hh.stop();
      await closing.close();
    }
  });

  it('a certificate the proxy does not allow: refused, the local client is reset', async () => {
    const stranger = await pki.issueClient('stranger');
    const f = await forwarder(pki, [`mxProxy = "127.0.0.1:${h.port}"`, 'forward = "127.0.0.1:0 echo"'], stranger);
    try {
      const s = await tcp(f.port('echo'));
      s.on('error', () => undefined);
      s.resume();
      await closed(s, 5000);
      assert.equal(f.fwd.stats().refused, 1);
      assert.ok(f.logs.some((l) => l.code === 'ERR_NOT_ALLOWED'));
    } finally {
      await f.fwd.stop();
    }
  });

  it('mxProxy = "none": connects straight to the direct address and says so', async () => {
    const f = await forwarder(pki, ['[general]', 'mxProxy = "none"', '[client]', `forward = "127.0.0.1:0 echo ${echo.address}"`]);
    try {
      assert.equal(f.fwd.addresses.length, 1);
      const acceptedBefore = echo.accepted.length;
      const linksBefore = h.logs.filter((l) => l.message === 'link').length;
      const r = await roundTrip(f.port('echo'), Buffer.from('direct'));
      assert.equal(r.bytes, 6);
      assert.equal(echo.accepted.length, acceptedBefore + 1, 'the backend saw the connection');
      assert.equal(h.logs.filter((l) => l.message === 'link').length, linksBefore, 'the proxy did not');
      assert.ok(f.logs.some((l) => l.level === 'warn' && /switched off/.test(String(l.message))));
    } finally {
      await f.fwd.stop();
    }
  });

  it('mxProxy = "none" with redundant direct addresses: the second is used when the first is down', async () => {
    const dead = await deadPort();
    const f = await forwarder(pki, ['mxProxy = "none"', `forward = "127.0.0.1:0 echo 127.0.0.1:${dead} ${echo.address}"`]);
    try {
      const r = await roundTrip(f.port('echo'), Buffer.from('failover'));
      assert.equal(r.bytes, 8);
    } finally {
      await f.fwd.stop();
    }
  });

  it('a forward port already in use: startForwarder rejects with EADDRINUSE', async () => {
    await assert.rejects(
      forwarder(pki, [`mxProxy = "127.0.0.1:${h.port}"`, `forward = "127.0.0.1:${via.port('echo')} echo"`]),
      (err: NodeJS.ErrnoException) => err.code === 'EADDRINUSE',
    );
  });

  it('redis-cli works unmodified through the forwarder (real redis-server behind the proxy)', { skip: !hasCommand('redis-server') && 'redis-server not installed' }, async () => {
    const port = await deadPort();
    const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    try {
      await waitFor(() => spawnSync('redis-cli', ['-p', String(port), 'PING']).stdout?.toString().trim() === 'PONG', 5000, 'redis-server up'); // nothing of ours runs yet: sync is fine
      const hh = await startHarness(pki, { servers: { redis: [`127.0.0.1:${port}`] }, allow: ['test-client redis'] });
      const f = await forwarder(pki, [`mxProxy = "127.0.0.1:${hh.port}"`, 'forward = "127.0.0.1:0 redis"']);
      try {
        // Asynchronously: the forwarder and proxy run in this very process.
        const cli = async (...args: string[]) =>
          (await run('redis-cli', ['-h', '127.0.0.1', '-p', String(f.port('redis')), ...args], { timeout: 5000 })).stdout.trim();
        assert.equal(await cli('PING'), 'PONG');
        assert.equal(await cli('SET', 'mxproxy:test', 'through the proxy'), 'OK');
        assert.equal(await cli('GET', 'mxproxy:test'), 'through the proxy');
        assert.ok(hh.logs.filter((l) => l.message === 'link').length >= 3, 'each redis-cli run was its own linked pair');
      } finally {
        await f.fwd.stop();
        await hh.stop();
      }
    } finally {
      redis.kill('SIGTERM');
      await new Promise((r) => redis.once('exit', r));
    }
  });
});
