/** Teardown is paired both ways, within 1 s, with the reason recorded; many pairs leave nothing behind. */
import assert from 'node:assert/strict';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { closed, echoHandler, request, startBackend, startHarness, tlsConnect, readReply, waitFor, type Backend, type Harness } from '../helpers/harness.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';

describe('teardown', () => {
  let pki: TestPki;
  let echo: Backend;
  let h: Harness;

  before(async () => {
    pki = await createTestPki();
    echo = await startBackend(echoHandler);
    h = await startHarness(pki, {
      servers: { echo: [echo.address] },
      allow: ['test-client echo'],
      // 200 pairs at once from one address: more than the per-source defaults let through (limits.test.ts).
      extra: 'connectRate = "off"\nmaxPendingPerSource = 1000',
    });
  });
  after(async () => {
    await h?.stop();
    await echo?.close();
    pki?.cleanup();
  });

  /** Opens a linked pair and returns the client socket and the backend's socket for it. */
  async function pair() {
    const n = echo.accepted.length;
    const { socket, reply } = await request({ port: h.port, pki, target: 'echo' });
    assert.equal(reply.ok, true);
    socket.on('error', () => {});
    await waitFor(() => echo.accepted.length > n, 2000, 'backend accept');
    return { client: socket, server: echo.accepted[echo.accepted.length - 1] as net.Socket };
  }

  function lastUnlinkReason(): unknown {
    return h.logs.filter((l) => l.message === 'unlink').at(-1)?.reason;
  }

  it('client closes → server side closed within 1 s', async () => {
    const { client, server } = await pair();
    client.destroy();
    const ms = await closed(server, 1000);
    assert.ok(ms <= 1000);
    await waitFor(() => lastUnlinkReason() !== undefined && h.proxy.stats().active === 0, 2000, 'unlink');
    assert.match(String(lastUnlinkReason()), /^client-/);
  });

  it('client resets → server side closed within 1 s', async () => {
    const { client, server } = await pair();
    client.raw.resetAndDestroy();
    await closed(server, 1000);
    await waitFor(() => h.proxy.stats().active === 0, 2000, 'pair finished');
  });

  it('server closes → client closed within 1 s', async () => {
    const { client, server } = await pair();
    client.resume();
    server.end();
    await closed(client, 1000);
    await waitFor(() => h.proxy.stats().active === 0, 2000, 'pair finished');
    assert.equal(lastUnlinkReason(), 'server-closed');
  });

  it('server resets → client closed within 1 s', async () => {
    const { client, server } = await pair();
    client.resume();
    server.resetAndDestroy();
    await closed(client, 1000);
    await waitFor(() => h.proxy.stats().active === 0, 2000, 'pair finished');
    assert.equal(lastUnlinkReason(), 'server-error:ECONNRESET');
  });

  it('a reset from the client is recorded as its reason', async () => {
    const { client, server } = await pair();
    client.raw.resetAndDestroy();
    await closed(server, 1000);
    await waitFor(() => h.proxy.stats().active === 0, 2000, 'pair finished');
    assert.equal(lastUnlinkReason(), 'client-error:ECONNRESET');
  });

  it('200 concurrent pairs opened and closed leave no actor or socket behind', async () => {
    const pairs = await Promise.all(Array.from({ length: 200 }, () => pair()));
    assert.equal(h.proxy.stats().active, 200);
    assert.equal(h.proxy.registry.size, 200);
    // every pair carries its own bytes
    await Promise.all(
      pairs.map(
        ({ client }, i) =>
          new Promise<void>((resolve) => {
            const msg = `pair-${i}`;
            let got = '';
            const onData = (d: Buffer) => {
              got += d.toString();
              if (got === msg) {
                client.off('data', onData);
                resolve();
              }
            };
            client.on('data', onData);
            client.resume(); // readReply left it paused so no byte after the reply is lost
            client.write(msg);
          }),
      ),
    );
    pairs.forEach(({ client }, i) => (i % 2 ? client.destroy() : client.end()));
    await waitFor(() => h.proxy.stats().active === 0, 5000, 'all pairs finished');
    assert.equal(h.proxy.registry.size, 0);
    await waitFor(() => echo.open.size === 0, 2000, 'backend sockets closed');
    await Promise.all(pairs.map(({ client }) => closed(client, 2000)));
  });

  it('stop() declines a pending request with ERR_SHUTTING_DOWN and closes linked pairs', async () => {
    const linked = await pair();
    linked.client.resume();
    const tlsDone = () => h.events.filter((e) => e.type === 'TLS_OK').length;
    const before = tlsDone();
    const pending = await tlsConnect({ port: h.port, pki });
    pending.on('error', () => {});
    // let the proxy see this TLS handshake complete, so the pair is awaiting its request when stop() comes
    await waitFor(() => tlsDone() > before && h.proxy.stats().active === 2, 2000, 'pending pair');
    const replyP = readReply(pending);
    const stopping = h.proxy.stop();
    const { reply } = await replyP;
    assert.equal(reply.ok === false && reply.code, 'ERR_SHUTTING_DOWN');
    await closed(linked.client, 2000);
    await closed(linked.server, 2000);
    await stopping;
    assert.equal(h.proxy.root.getSnapshot().status, 'done');
  });
});
