/** Every decline answers its code on the wire, closes the connection, and leaves the proxy serving others. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import {
  closed,
  deadPort,
  digestUntilEnd,
  echoHandler,
  readReply,
  request,
  startBackend,
  startHarness,
  tlsConnect,
  waitFor,
  type Backend,
  type Harness,
} from '../helpers/harness.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';
import { encodeFrame } from '../../src/protocol/frame.js';

describe('declines', () => {
  let pki: TestPki;
  let echo: Backend;
  let h: Harness;

  before(async () => {
    pki = await createTestPki();
    echo = await startBackend(echoHandler);
    const dead = await deadPort();
    h = await startHarness(pki, {
      servers: { echo: [echo.address], secret: [echo.address], down: [`127.0.0.1:${dead}`] },
      allow: ['test-client echo down', 'operator-* secret'],
      extra: 'handshakeTimeout = 400\nmaxRequestBytes = 64',
    });
  });
  after(async () => {
    await h?.stop();
    await echo?.close();
    pki?.cleanup();
  });

  /** After each decline the proxy must still link an allowed client. */
  async function stillServes() {
    const { socket, reply, rest } = await request({ port: h.port, pki, target: 'echo' });
    assert.equal(reply.ok, true);
    const got = digestUntilEnd(socket, rest);
    socket.end('still here');
    assert.equal((await got).bytes, 10);
  }

  async function expectDecline(s: TLSSocket, code: string) {
    const { reply } = await readReply(s);
    assert.equal(reply.ok, false);
    assert.equal(reply.ok === false && reply.code, code);
    assert.ok(reply.ok === false && reply.message.length > 0, 'a human-readable message comes with the code');
    s.resume();
    await closed(s); // the proxy closes the connection after a decline
    return reply;
  }

  it('declines an unknown target with ERR_UNKNOWN_TARGET', async () => {
    const s = await tlsConnect({ port: h.port, pki });
    s.write(encodeFrame({ v: 1, target: 'nosuch' }));
    await expectDecline(s, 'ERR_UNKNOWN_TARGET');
    await stillServes();
  });

  it('declines an identity without a matching rule with ERR_NOT_ALLOWED', async () => {
    const s = await tlsConnect({ port: h.port, pki });
    s.write(encodeFrame({ v: 1, target: 'secret' }));
    const reply = await expectDecline(s, 'ERR_NOT_ALLOWED');
    assert.match(reply.ok === false ? reply.message : '', /test-client/);
    await stillServes();
  });

  it('lets an identity matching a glob rule through', async () => {
    const op = await pki.issueClient('operator-7');
    const { socket, reply } = await request({ port: h.port, pki, cert: op, target: 'secret' });
    assert.equal(reply.ok, true);
    socket.destroy();
  });

  it('matches rules on SAN URI identities too', async () => {
    const svc = await pki.issueClient('svc-x', { uris: ['operator-spiffe://plant/hmi'] });
    const { socket, reply } = await request({ port: h.port, pki, cert: svc, target: 'secret' });
    assert.equal(reply.ok, true);
    socket.destroy();
  });

  it('declines a target whose server is down with ERR_TARGET_UNREACHABLE', async () => {
    const s = await tlsConnect({ port: h.port, pki });
    s.write(encodeFrame({ v: 1, target: 'down' }));
    await expectDecline(s, 'ERR_TARGET_UNREACHABLE');
    await stillServes();
  });

  it('declines an oversized frame with ERR_BAD_REQUEST before reading its body', async () => {
    const s = await tlsConnect({ port: h.port, pki });
    const header = Buffer.alloc(4);
    header.writeUInt32BE(1_000_000);
    s.write(header);
    const reply = await expectDecline(s, 'ERR_BAD_REQUEST');
    assert.match(reply.ok === false ? reply.message : '', /maxRequestBytes/);
    await stillServes();
  });

  it('declines garbage instead of a frame with ERR_BAD_REQUEST', async () => {
    const s = await tlsConnect({ port: h.port, pki });
    s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await expectDecline(s, 'ERR_BAD_REQUEST');
    await stillServes();
  });

  it('declines a well-framed body that is not msgpack with ERR_BAD_REQUEST', async () => {
    const s = await tlsConnect({ port: h.port, pki });
    const body = Buffer.from([0xc1, 0xc1, 0xc1]); // 0xc1 is never valid msgpack
    const header = Buffer.alloc(4);
    header.writeUInt32BE(body.length);
    s.write(Buffer.concat([header, body]));
    await expectDecline(s, 'ERR_BAD_REQUEST');
  });

  it('declines a request of another protocol version or without target', async () => {
    for (const body of [{ v: 2, target: 'echo' }, { v: 1 }, { v: 1, target: 7 }]) {
      const s = await tlsConnect({ port: h.port, pki });
      s.write(encodeFrame(body));
      await expectDecline(s, 'ERR_BAD_REQUEST');
    }
  });

  it('ignores unknown extra keys in the request', async () => {
    const s = await tlsConnect({ port: h.port, pki });
    s.write(encodeFrame({ v: 1, target: 'echo', client: 'ui-3', future: [1, 2] }));
    const { reply } = await readReply(s);
    assert.equal(reply.ok, true);
    s.destroy();
  });

  it('declines with ERR_HANDSHAKE_TIMEOUT when no request arrives within the deadline', async () => {
    const s = await tlsConnect({ port: h.port, pki });
    s.write(Buffer.from([0, 0])); // half a header, then silence
    await expectDecline(s, 'ERR_HANDSHAKE_TIMEOUT');
    await stillServes();
  });

  it('closes a TCP connection that never starts TLS at the handshake deadline', async () => {
    const net = await import('node:net');
    const s = net.connect({ host: '127.0.0.1', port: h.port });
    s.on('error', () => {});
    const ms = await closed(s, 3000);
    assert.ok(ms >= 300, `closed by the deadline (after ${ms} ms), not at once`);
    await waitFor(() => h.proxy.stats().active === 0 || h.events.some((e) => e.type === 'HANDSHAKE_TIMEOUT'), 2000, 'timeout event');
    assert.ok(h.events.some((e) => e.type === 'HANDSHAKE_TIMEOUT'));
    await stillServes();
  });

  it('leaves no pair behind after all these declines', async () => {
    await waitFor(() => h.proxy.stats().active === 0, 3000, 'no active pairs');
    assert.equal(h.proxy.registry.size, 0);
  });
});
