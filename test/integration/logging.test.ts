/** Byte counts in the log are right on every path: a pair cut at the teardown deadline included. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { ALPN_PROTOCOL, encodeRequest } from '../../src/protocol/frame.js';
import { patternBytes, startHarness, waitFor } from '../helpers/harness.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';

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
