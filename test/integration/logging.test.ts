/**
 * Logs where admins want them, on real loopback sockets: warnings a client can cause are rate-limited per
 * source; byte counts are right when a pair is cut at the teardown deadline; and `mxproxy start` as a process
 * with `--log-format json --dbg work`, a log file and syslog to a real UDP socket.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ALPN_PROTOCOL, encodeFrame, encodeRequest } from '../../src/protocol/frame.js';
import {
  closed,
  deadPort,
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

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

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

describe('mxproxy start: JSON stdout, a log file and syslog', () => {
  let pki: TestPki;
  let echo: Backend;
  let dir: string;
  let sink: dgram.Socket;
  const datagrams: string[] = [];
  let child: ChildProcess | undefined;
  let stdout = '';
  let stderr = '';
  let port: number;

  before(async () => {
    pki = await createTestPki();
    echo = await startBackend(echoHandler);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxproxy-logging-'));
    fs.mkdirSync(path.join(dir, 'logs'));
    sink = dgram.createSocket('udp4');
    await new Promise<void>((r) => sink.bind(0, '127.0.0.1', r));
    sink.on('message', (m) => datagrams.push(m.toString('utf8')));
    port = await deadPort();
    fs.writeFileSync(
      path.join(dir, 'mx.config'),
      [
        '[proxy]',
        `listen = "127.0.0.1:${port}"`,
        `sslCertificate = "${pki.server.cert} ${pki.server.key} ${pki.caFile}"`,
        `server = "echo ${echo.address}"`,
        'allow = "test-client echo"',
        'logFile = "logs/from-config.log"',
        'logFiles = 3',
      ].join('\n'),
    );
  });
  after(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    sink?.close();
    await echo?.close();
    fs.rmSync(dir, { recursive: true, force: true });
    pki?.cleanup();
  });

  it('starts with --log-format json --dbg work --log-file --syslog: the configuration is one JSON record', async () => {
    const logFile = path.join(dir, 'logs', 'mxproxy.log');
    const args = ['start', '-c', path.join(dir, 'mx.config'), '--log-format', 'json', '--dbg', 'work', '--report', 'dispatch'];
    args.push('--log-file', logFile, '--syslog', `udp://127.0.0.1:${sink.address().port}`);
    child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await waitFor(() => /listening on/.test(stdout) || child!.exitCode !== null, 15_000, 'listening');
    assert.match(stdout, /listening on/, stderr);
    const config = stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((r) => r.message === 'effective configuration');
    assert.ok(config, 'an effective configuration record');
    assert.equal(config.level, 'info');
    assert.equal(config.file, path.join(dir, 'mx.config'));
    const c = config.config as Record<string, unknown>;
    assert.deepEqual(c.listen, [`127.0.0.1:${port}`]);
    assert.deepEqual(c.allow, ['test-client echo']);
    assert.equal(c.logFile, logFile, '--log-file in force, not the entry');
    assert.equal(c.logFiles, 3, 'the count still from the config');
    assert.equal(c.syslog, `udp://127.0.0.1:${sink.address().port}`);
    assert.equal(c.sslCrl, null);
    assert.ok(!fs.existsSync(path.join(dir, 'logs', 'from-config.log')), 'the entry was overridden');
  });

  it('a hostile target in a decline: escaped in the file, on stdout and in the RFC 5424 datagram', async () => {
    const target = 'nosuch\nFORGED\x1b[2J';
    const { socket, reply } = await request({ port, pki, target });
    assert.equal(reply.ok === false && reply.code, 'ERR_UNKNOWN_TARGET');
    socket.resume();
    await closed(socket);
    await waitFor(() => datagrams.some((d) => d.includes('decline ERR_UNKNOWN_TARGET')), 5000, 'the decline over syslog');
    const d = datagrams.find((g) => g.includes('decline ERR_UNKNOWN_TARGET'))!;
    // daemon (3) * 8 + warning (4) = 28; the JSON record is the message
    const m = new RegExp(`^<28>1 \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z \\S+ mxproxy ${child!.pid} - - (\\{.*\\})$`, 's').exec(d);
    assert.ok(m, d);
    assert.doesNotMatch(d, /[\x00-\x1f\x7f]/, 'no raw newline or ESC in the datagram');
    const record = JSON.parse(m[1]!) as Record<string, unknown>;
    assert.equal(record.level, 'warn');
    assert.equal(record.target, target, 'the same value for a JSON reader');
    assert.ok(d.includes('nosuch\\nFORGED\\u001b[2J'));
  });

  it('stops on SIGTERM: every stdout line a JSON object, the file has the same lines, syslog the last one', async () => {
    const exited = once(child!, 'exit');
    child!.kill('SIGTERM');
    const [code] = await exited;
    assert.equal(code, 0, stderr);
    const out = stdout.split('\n').filter((l) => l !== '');
    for (const l of out) assert.doesNotThrow(() => JSON.parse(l), `not JSON: ${l}`);
    assert.ok(out.length >= 5);
    const file = fs.readFileSync(path.join(dir, 'logs', 'mxproxy.log'), 'utf8').split('\n').filter(Boolean);
    assert.deepEqual(file, out, 'the file has the stdout lines');
    assert.match(file.at(-1)!, /"message":"mxproxy stopped"/);
    await waitFor(() => datagrams.some((g) => g.includes('mxproxy stopped')), 2000, 'the last line over syslog');
  });
});

describe('mxproxy forward: JSON stdout and a log file', () => {
  it('--log-format json --dbg work --log-file: every stdout line a JSON object, the same lines in the file', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxproxy-fwdlog-'));
    const logFile = path.join(dir, 'forward.log');
    const args = ['forward', '--proxy', 'none', '--listen', '127.0.0.1:0', '--target', 'data', '--direct', '127.0.0.1:9'];
    args.push('--log-format', 'json', '--dbg', 'work', '--log-file', logFile);
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      await waitFor(() => /forwarding 127\.0\.0\.1:\d+/.test(stdout) || child.exitCode !== null, 15_000, 'forwarding');
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      assert.equal((await exited)[0], 0, stderr);
      const out = stdout.split('\n').filter(Boolean);
      const records = out.map((l) => JSON.parse(l) as Record<string, unknown>);
      const config = records.find((r) => r.message === 'effective configuration');
      assert.equal((config?.config as Record<string, unknown> | undefined)?.mxProxy, 'none');
      assert.equal((config?.config as Record<string, unknown> | undefined)?.logFile, logFile);
      assert.deepEqual(fs.readFileSync(logFile, 'utf8').split('\n').filter(Boolean), out);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a log file in a directory that does not exist: a configuration error naming it, exit 2', async () => {
    const args = ['forward', '--proxy', 'none', '--listen', '127.0.0.1:0', '--target', 'data', '--direct', '127.0.0.1:9', '--log-file', '/nonexistent-mxproxy/f.log'];
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code] = await once(child, 'exit');
    assert.equal(code, 2);
    assert.match(stderr, /<command line>: the log file directory \/nonexistent-mxproxy does not exist: create it first \(in: --log-file \/nonexistent-mxproxy\/f\.log\)/);
  });
});
