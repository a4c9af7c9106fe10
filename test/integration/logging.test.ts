/**
 * The log on real loopback sockets: warnings a client can cause are rate-limited per source; byte counts are
 * right when a pair is cut at the teardown deadline.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { ALPN_PROTOCOL, encodeFrame, encodeRequest } from '../../src/protocol/frame.js';
import {
  closed,
  echoHandler,
  patternBytes,
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

/** A client without a certificate: refused in the TLS handshake (TLS 1.3: seen once it reads). */
async function refusedTls(port: number, pki: TestPki): Promise<void> {
  await assert.rejects(async () => {
    const s = await tlsConnect({ port, pki, cert: null });
    s.write(encodeFrame({ v: 1, target: 'echo' }));
    await readReply(s);
  });
}

describe('warnings a client can cause: at warn, rate-limited per source', () => {
  let pki: TestPki;
  let echo: Backend;
  let h: Harness;

  before(async () => {
    pki = await createTestPki();
    echo = await startBackend(echoHandler);
    h = await startHarness(pki, { servers: { echo: [echo.address], secret: [echo.address] }, allow: ['test-client echo'], warnIntervalMs: 400 });
  });
  after(async () => {
    await h?.stop();
    await echo?.close();
    pki?.cleanup();
  });

  const lines = (re: RegExp) => h.logs.filter((l) => re.test(String(l.message)));

  it('declines: the first from 127.0.0.1 at warn at once, the next ones at debug, then one summary with the count', async () => {
    for (let i = 0; i < 3; i++) {
      const { socket, reply } = await request({ port: h.port, pki, target: 'secret' });
      assert.equal(reply.ok === false && reply.code, 'ERR_NOT_ALLOWED');
      socket.resume();
      await closed(socket);
    }
    await waitFor(() => lines(/^decline ERR_NOT_ALLOWED/).length === 3, 2000, 'three decline lines');
    assert.deepEqual(lines(/^decline ERR_NOT_ALLOWED/).map((l) => l.level), ['warn', 'debug', 'debug']);
    await waitFor(() => lines(/more decline ERR_NOT_ALLOWED/).length > 0, 2000, 'the summary');
    const [summary] = lines(/more decline ERR_NOT_ALLOWED/);
    assert.equal(summary!.level, 'warn');
    assert.equal(summary!.message, '2 more decline ERR_NOT_ALLOWED from 127.0.0.1 in 0.4 s (rate-limited)');
    assert.equal(summary!.source, '127.0.0.1');
    assert.equal(summary!.suppressed, 2);
    assert.match(String(summary!.last), /secret/);
  });

  it('TLS refusals: the same, under their own kind', async () => {
    await refusedTls(h.port, pki);
    await refusedTls(h.port, pki);
    await waitFor(() => lines(/^tls refused/).length === 2, 2000, 'two refusals logged');
    assert.deepEqual(lines(/^tls refused/).map((l) => l.level), ['warn', 'debug']);
    assert.match(String(lines(/^tls refused/)[0]!.reason), /^tls-failed:/);
    await waitFor(() => lines(/more tls refused from 127\.0\.0\.1/).length > 0, 2000, 'the summary');
    assert.equal(lines(/more tls refused/)[0]!.suppressed, 1);
    // a quiet interval later the source is forgotten: its next refusal is a warning again
    await new Promise((r) => setTimeout(r, 900));
    await refusedTls(h.port, pki);
    await waitFor(() => lines(/^tls refused/).length === 3, 2000, 'the third refusal');
    assert.equal(lines(/^tls refused/)[2]!.level, 'warn');
  });
});

describe('byte counts when the teardown deadline cuts a pair', () => {
  let pki: TestPki;
  let backend: net.Server;
  let address: string;
  let received = 0;
  const peers: net.Socket[] = [];

  before(async () => {
    pki = await createTestPki();
    // A peer that never closes: it keeps its side open after the proxy's FIN.
    backend = net.createServer({ allowHalfOpen: true }, (s) => {
      peers.push(s);
      s.on('error', () => {});
      s.on('data', (d: Buffer) => (received += d.length));
    });
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    address = `127.0.0.1:${(backend.address() as net.AddressInfo).port}`;
  });
  after(async () => {
    for (const s of peers) s.destroy();
    await new Promise((r) => backend.close(r));
    pki?.cleanup();
  });

  it('a pair that moved megabytes and whose peers never close is logged with its real counts at shutdown', async () => {
    const h = await startHarness(pki, { servers: { sink: [address] }, allow: ['test-client sink'], extra: 'teardownTimeout = 300' });
    const UP = 4 * 1024 * 1024;
    const DOWN = 3 * 1024 * 1024;
    // A client that never closes either: it keeps its side open after the proxy's close_notify and FIN.
    // Node passes allowHalfOpen on to the TLSSocket; @types/node does not list it.
    const options: tls.ConnectionOptions & { allowHalfOpen: boolean } = {
      host: '127.0.0.1',
      port: h.port,
      allowHalfOpen: true,
      servername: 'localhost',
      ca: fs.readFileSync(pki.caFile),
      cert: fs.readFileSync(pki.client.cert),
      key: fs.readFileSync(pki.client.key),
      ALPNProtocols: [ALPN_PROTOCOL],
    };
    const socket = tls.connect(options);
    socket.on('error', () => {});
    await once(socket, 'secureConnect');
    socket.write(encodeRequest('sink'));
    let down = 0;
    socket.on('data', (d: Buffer) => (down += d.length));
    socket.write(patternBytes(UP));
    await waitFor(() => received === UP && peers.length === 1, 10_000, 'the upload at the backend');
    peers[0]!.write(patternBytes(DOWN));
    await waitFor(() => down >= DOWN, 10_000, 'the download at the client');

    await h.stop();
    assert.ok(h.events.some((e) => e.type === 'TEARDOWN_TIMEOUT'), 'the pair was cut at the deadline');
    assert.ok(!h.events.some((e) => e.type === 'CLIENT_CLOSED' || e.type === 'SERVER_CLOSED'), 'no side had closed by then' + JSON.stringify(h.events.map((e) => e.type)));
    const unlink = h.logs.find((l) => l.message === 'unlink');
    assert.ok(unlink, 'the unlink line');
    assert.equal(unlink.reason, 'shutdown');
    // The client side counts TLS records, a little more than the payload.
    assert.ok(Number(unlink.clientIn) >= UP, `clientIn ${String(unlink.clientIn)}`);
    assert.ok(Number(unlink.clientOut) >= DOWN, `clientOut ${String(unlink.clientOut)}`);
    assert.equal(unlink.serverOut, UP);
    assert.equal(unlink.serverIn, DOWN);
    socket.destroy();
  });
});
