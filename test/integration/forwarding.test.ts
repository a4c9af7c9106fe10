/** The accepted path over real loopback mutual TLS: bytes both ways, early bytes, failover. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  closed,
  deadPort,
  digestUntilEnd,
  echoHandler,
  patternBytes,
  request,
  sha256,
  startBackend,
  startHarness,
  waitFor,
  type Backend,
  type Harness,
} from '../helpers/harness.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';
import { createHash } from 'node:crypto';

const MiB = 1 << 20;

describe('forwarding', () => {
  let pki: TestPki;
  let echo: Backend;
  let upload: Backend; // hashes what it receives, answers with the hex digest, then closes
  let download: Backend; // sends a known 64 MiB, then closes
  let h: Harness;
  const big = patternBytes(64 * MiB, 7);

  before(async () => {
    pki = await createTestPki();
    echo = await startBackend(echoHandler);
    upload = await startBackend((s) => {
      const hash = createHash('sha256');
      let n = 0;
      s.on('data', (d: Buffer) => {
        hash.update(d);
        n += d.length;
      });
      s.on('end', () => s.end(`${hash.digest('hex')} ${n}`));
    });
    download = await startBackend((s) => s.end(big));
    const dead = await deadPort();
    h = await startHarness(pki, {
      servers: {
        echo: [echo.address],
        upload: [upload.address],
        download: [download.address],
        redundant: [`127.0.0.1:${dead}`, echo.address],
      },
      allow: ['test-client *'],
    });
  });
  after(async () => {
    await h?.stop();
    await Promise.all([echo, upload, download].map((b) => b?.close()));
    pki?.cleanup();
  });

  for (const size of [1 * MiB, 64 * MiB]) {
    it(`echoes ${size / MiB} MiB both ways with matching SHA-256`, async () => {
      const data = patternBytes(size, size);
      const { socket, reply, rest } = await request({ port: h.port, pki, target: 'echo' });
      assert.deepEqual(reply, { v: 1, ok: true });
      const got = digestUntilEnd(socket, rest);
      socket.end(data); // half-close: the FIN travels to the echo server, which ends after echoing
      const { sha256: digest, bytes } = await got;
      assert.equal(bytes, size);
      assert.equal(digest, sha256(data));
      await closed(socket);
    });
  }

  it('uploads 64 MiB to a server that checks the SHA-256', async () => {
    const { socket, reply, rest } = await request({ port: h.port, pki, target: 'upload' });
    assert.equal(reply.ok, true);
    const answer = digestAndText(socket, rest);
    socket.end(big);
    assert.equal(await answer, `${sha256(big)} ${big.length}`);
  });

  it('downloads 64 MiB from a server with matching SHA-256', async () => {
    const { socket, reply, rest } = await request({ port: h.port, pki, target: 'download' });
    assert.equal(reply.ok, true);
    const { sha256: digest, bytes } = await digestUntilEnd(socket, rest);
    assert.equal(bytes, big.length);
    assert.equal(digest, sha256(big));
    socket.end();
    await closed(socket);
  });

  it('delivers bytes sent right after the request frame, before the reply', async () => {
    const early = Buffer.from('hello before the reply');
    const { socket, reply, rest } = await request({ port: h.port, pki, target: 'echo', early });
    assert.equal(reply.ok, true);
    const got = digestUntilEnd(socket, rest);
    socket.end();
    const r = await got;
    assert.equal(r.bytes, early.length);
    assert.equal(r.sha256, sha256(early));
  });

  it('fails over to the next address of a redundant server', async () => {
    const { socket, reply, rest } = await request({ port: h.port, pki, target: 'redundant' });
    assert.equal(reply.ok, true);
    const got = digestUntilEnd(socket, rest);
    socket.end('ping');
    assert.equal((await got).bytes, 4);
    const failed = h.events.filter((e) => e.type === 'BACKEND_FAILED');
    assert.ok(failed.length >= 1, 'the dead address was tried first');
    assert.equal((failed.at(-1) as { code: string }).code, 'ECONNREFUSED');
  });

  it('logs link and unlink with identity, target and byte counts', async () => {
    const { socket, rest } = await request({ port: h.port, pki, target: 'echo' });
    const got = digestUntilEnd(socket, rest);
    socket.end('12345');
    await got;
    await closed(socket);
    await waitFor(() => h.logs.some((l) => l.message === 'unlink' && l.serverOut === 5), 3000, 'unlink log');
    const unlink = h.logs.filter((l) => l.message === 'unlink').at(-1)!;
    assert.equal(unlink.identity, 'test-client');
    assert.equal(unlink.target, 'echo');
    assert.equal(typeof unlink.conn, 'string');
    assert.match(String(unlink.peer), /^127\.0\.0\.1:\d+$/);
    assert.equal(unlink.serverOut, 5, 'the 5 payload bytes reached the server');
    assert.equal(unlink.serverIn, 5, 'and came back');
  });
});

function digestAndText(s: import('node:net').Socket, rest: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = rest.length ? [rest] : [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.once('end', () => resolve(Buffer.concat(chunks).toString()));
    s.once('error', reject);
    s.resume();
  });
}
