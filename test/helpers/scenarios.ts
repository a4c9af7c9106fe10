/**
 * Connection stories on real loopback mutual TLS, each ending when the proxy has forgotten the pair: the
 * material of the event log tests and of the recorded fixtures (scripts/recordEventLogFixtures.ts).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { encodeFrame } from '../../src/protocol/frame.js';
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
} from './harness.js';
import type { TestPki } from './pki.js';

export interface ScenarioWorld {
  h: Harness;
  pki: TestPki;
  backends: Backend[];
  stop(): Promise<void>;
}

/** A proxy with an event log at `eventLog`, and the backends the stories need. */
export async function startWorld(pki: TestPki, eventLog: string, level = 'lifecycle'): Promise<ScenarioWorld> {
  const echo = await startBackend(echoHandler);
  const bye = await startBackend((s) => s.end('bye\n'));
  const resetter = await startBackend((s) => s.once('data', () => s.resetAndDestroy()));
  const dead = await deadPort();
  const h = await startHarness(pki, {
    servers: {
      echo: [echo.address],
      bye: [bye.address],
      reset: [resetter.address],
      secret: [echo.address],
      down: [`127.0.0.1:${dead}`],
      redundant: [`127.0.0.1:${dead}`, echo.address],
    },
    // Two rules, the second naming its field: replay's what-if (--config) takes one away.
    allow: ['test-client echo bye reset', 'cn:test-client down redundant'],
    extra: `handshakeTimeout = 300\neventLog = "${eventLog}"\neventLogLevel = "${level}"`,
  });
  const backends = [echo, bye, resetter];
  return {
    h,
    pki,
    backends,
    stop: async () => {
      await h.stop();
      for (const b of backends) await b.close();
    },
  };
}

const settled = (h: Harness) => waitFor(() => h.proxy.stats().active === 0, 3000, 'the proxy forgot every pair');

/** Echo through the proxy, then the client closes. */
export async function clientCloses(w: ScenarioWorld): Promise<void> {
  const { socket, reply, rest } = await request({ port: w.h.port, pki: w.pki, target: 'echo' });
  assert.equal(reply.ok, true);
  const got = digestUntilEnd(socket, rest);
  socket.end('hello');
  assert.equal((await got).bytes, 5);
  await settled(w.h);
}

/** The server says bye and closes; the proxy closes the client side. */
export async function serverCloses(w: ScenarioWorld): Promise<void> {
  const { socket, reply, rest } = await request({ port: w.h.port, pki: w.pki, target: 'bye' });
  assert.equal(reply.ok, true);
  assert.equal((await digestUntilEnd(socket, rest)).bytes, 4);
  socket.end();
  await settled(w.h);
}

/** The server resets the connection on the first bytes. */
export async function serverResets(w: ScenarioWorld): Promise<void> {
  const { socket, reply } = await request({ port: w.h.port, pki: w.pki, target: 'reset' });
  assert.equal(reply.ok, true);
  socket.write('boom');
  socket.resume();
  await closed(socket);
  await settled(w.h);
}

/** The client resets its TCP connection while linked. */
export async function clientResets(w: ScenarioWorld): Promise<void> {
  const { socket, reply } = await request({ port: w.h.port, pki: w.pki, target: 'echo' });
  assert.equal(reply.ok, true);
  socket.raw.resetAndDestroy();
  await settled(w.h);
}

/** The first address of `redundant` is down; the second one links. */
export async function failover(w: ScenarioWorld): Promise<void> {
  const { socket, reply, rest } = await request({ port: w.h.port, pki: w.pki, target: 'redundant' });
  assert.equal(reply.ok, true);
  const got = digestUntilEnd(socket, rest);
  socket.end('x');
  assert.equal((await got).bytes, 1);
  await settled(w.h);
}

async function declined(w: ScenarioWorld, frame: Buffer, code: string): Promise<void> {
  const s = await tlsConnect({ port: w.h.port, pki: w.pki });
  s.on('error', () => undefined);
  s.write(frame);
  const { reply } = await readReply(s);
  assert.equal(reply.ok === false && reply.code, code);
  s.resume();
  await closed(s);
  await settled(w.h);
}

export const unknownTarget = (w: ScenarioWorld) => declined(w, encodeFrame({ v: 1, target: 'nosuch' }), 'ERR_UNKNOWN_TARGET');
export const notAllowed = (w: ScenarioWorld) => declined(w, encodeFrame({ v: 1, target: 'secret' }), 'ERR_NOT_ALLOWED');
export const unreachable = (w: ScenarioWorld) => declined(w, encodeFrame({ v: 1, target: 'down' }), 'ERR_TARGET_UNREACHABLE');
export const garbage = (w: ScenarioWorld) => declined(w, Buffer.from('GET / HTTP/1.1\r\n\r\n'), 'ERR_BAD_REQUEST');

/** TCP connected, TLS never started: closed at the handshake deadline. */
export async function handshakeTimeout(w: ScenarioWorld): Promise<void> {
  const s = net.connect({ host: '127.0.0.1', port: w.h.port });
  s.on('error', () => undefined);
  s.resume();
  await closed(s, 3000);
  await settled(w.h);
}

/** TCP connected, then reset before any TLS byte: Node's TLS socket, which has taken the accepted one over, reports
 * it as TLS_FAILED ECONNRESET. */
export async function resetBeforeTls(w: ScenarioWorld): Promise<void> {
  const s = net.connect({ host: '127.0.0.1', port: w.h.port });
  s.on('error', () => undefined);
  await new Promise((r) => s.once('connect', r));
  // Let the proxy accept it (and start TLS on it) before the reset.
  await waitFor(() => w.h.proxy.stats().active > 0, 3000, 'the proxy accepted the socket');
  s.resetAndDestroy();
  await settled(w.h);
}

/** No client certificate: TLS refused. */
export async function tlsRefused(w: ScenarioWorld): Promise<void> {
  await assert.rejects(async () => {
    const s = await tlsConnect({ port: w.h.port, pki: w.pki, cert: null });
    // TLS 1.3: the refusal arrives after the client thinks it is connected.
    s.write(encodeFrame({ v: 1, target: 'echo' }));
    await readReply(s);
  });
  await settled(w.h);
}

/** Every story, one after the other. */
export const ALL_SCENARIOS: [string, (w: ScenarioWorld) => Promise<void>][] = [
  ['client closes', clientCloses],
  ['server closes', serverCloses],
  ['server resets', serverResets],
  ['client resets', clientResets],
  ['failover', failover],
  ['unknown target', unknownTarget],
  ['not allowed', notAllowed],
  ['unreachable', unreachable],
  ['garbage', garbage],
  ['handshake timeout', handshakeTimeout],
  ['tls refused', tlsRefused],
  ['reset before TLS', resetBeforeTls],
];
