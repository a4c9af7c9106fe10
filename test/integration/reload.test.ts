/**
 * Reload and drain on a real `mxproxy start` process (the CLI, loopback, JSON log lines): SIGHUP and
 * `mxproxy reload -c` with pairs open, onRuleChange close and keep, a broken config, a new CRL; SIGTERM with a
 * pending request and a linked pair, and a second SIGTERM. The event log of the reload run replays.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { readEventLogFile } from '../../src/eventlog/index.js';
import { asLogRecord, type LogRecord } from '../../src/eventlog/records.js';
import { encodeRequest } from '../../src/protocol/frame.js';
import { replayFiles } from '../../src/replay/run.js';
import { readProxyConfig } from '../../src/config/index.js';
import { FakeClock } from '../helpers/fakeClock.js';
import { closed, deadPort, echoHandler, readReply, request, startBackend, startHarness, tlsConnect, waitFor, type Backend } from '../helpers/harness.js';
import { createTestPki, type CertFiles, type TestPki } from '../helpers/pki.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

type Line = Record<string, unknown> & { message: string; level: string };

/** `mxproxy start` with JSON log lines, parsed as they come. */
class Running {
  readonly lines: Line[] = [];
  readonly raw: string[] = [];
  readonly exit: Promise<number | null>;
  private constructor(readonly child: ChildProcess) {
    let rest = '';
    const onData = (d: Buffer) => {
      rest += d.toString();
      const parts = rest.split('\n');
      rest = parts.pop() ?? '';
      for (const l of parts) {
        this.raw.push(l);
        try {
          this.lines.push(JSON.parse(l) as Line);
        } catch {
          /* stderr text */
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    this.exit = new Promise((r) => child.once('exit', (code) => r(code)));
  }

  static async start(config: string): Promise<Running> {
    const child = spawn(process.execPath, [MAIN, 'start', '-c', config, '--log-format', 'json', '--report', 'dispatch'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const r = new Running(child);
    await r.waitFor((l) => l.message.startsWith('mxproxy listening on'), 'listening');
    return r;
  }

  /** The first line (from `from` on) that `match` accepts. */
  async waitFor(match: (l: Line) => boolean, what: string, ms = 10_000, from = 0): Promise<Line> {
    const t0 = Date.now();
    for (;;) {
      const found = this.lines.slice(from).find(match);
      if (found) return found;
      if (this.child.exitCode !== null) throw new Error(`exited ${this.child.exitCode} before ${what}:\n${this.raw.join('\n')}`);
      if (Date.now() - t0 > ms) throw new Error(`no ${what} within ${ms} ms:\n${this.raw.join('\n')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** SIGHUP, then the outcome: the `reload: configuration … in force` line, or the rejection summary. */
  async reload(signal: () => void = () => this.child.kill('SIGHUP')): Promise<Line> {
    const from = this.lines.length;
    signal();
    return this.waitFor((l) => /^reload: configuration|^reload rejected: \d+ problem/.test(l.message), 'reload outcome', 10_000, from);
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

/** Bytes written come back (the backend echoes) within `ms`. */
async function echoes(s: tls.TLSSocket, text: string, ms = 3000): Promise<void> {
  const got = new Promise<string>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no echo of "${text}" within ${ms} ms (got "${buf}")`)), ms);
    const onData = (d: Buffer) => {
      buf += d.toString();
      if (buf.length < text.length) return;
      clearTimeout(timer);
      s.off('data', onData);
      resolve(buf);
    };
    s.on('data', onData);
  });
  s.resume();
  s.write(text);
  assert.equal(await got, text);
}

/** A linked pair of `cert`'s identity, its first bytes echoed. */
async function linked(port: number, pki: TestPki, cert: CertFiles): Promise<tls.TLSSocket> {
  const { socket, reply } = await request({ port, pki, cert, target: 'data' });
  socket.on('error', () => {});
  assert.equal(reply.ok, true, JSON.stringify(reply));
  await echoes(socket, 'hello');
  return socket;
}

async function declinedWith(port: number, pki: TestPki, cert: CertFiles): Promise<string> {
  const { socket, reply } = await request({ port, pki, cert, target: 'data' });
  socket.destroy();
  assert.equal(reply.ok, false);
  return reply.ok ? '' : reply.code;
}

interface Setup {
  pki: TestPki;
  echo: Backend;
  hmi2: CertFiles;
  port: number;
  file: string;
  write(opts?: { rules?: string[]; extra?: string[] }): void;
}

async function setup(name: string, fixed: string[]): Promise<Setup> {
  const pki = await createTestPki();
  const echo = await startBackend(echoHandler);
  const hmi2 = await pki.issueClient('hmi-2');
  const port = await deadPort();
  const file = path.join(pki.dir, `${name}.config`);
  const write = (opts: { rules?: string[]; extra?: string[] } = {}) => {
    const rules = opts.rules ?? ['test-client data', 'hmi-2 data'];
    fs.writeFileSync(
      file,
      [
        '[proxy]',
        `listen = "127.0.0.1:${port}"`,
        `sslCertificate = "${pki.server.cert} ${pki.server.key} ${pki.caFile}"`,
        `server = "data ${echo.address}"`,
        ...fixed,
        ...rules.map((r) => `allow = "${r}"`),
        ...(opts.extra ?? []),
        '',
      ].join('\n'),
    );
  };
  write();
  return { pki, echo, hmi2, port, file, write };
}

describe('reload: SIGHUP and `mxproxy reload` on a running proxy (onRuleChange = "close", the default)', () => {
  let s: Setup;
  let proxy: Running;
  let crl: string;
  let pidFile: string;
  let eventLog: string;
  let p1: tls.TLSSocket;
  const reloads: string[] = [];

  before(async () => {
    s = await setup('reload', []);
    crl = await s.pki.writeCrl('crl', []);
    pidFile = path.join(s.pki.dir, 'run', 'mxproxy.pid');
    eventLog = path.join(s.pki.dir, 'events.mxlog');
    const fixed = [`sslCrl = "${crl}"`, `pidFile = "${pidFile}"`, `eventLog = "${eventLog}"`, 'drainTimeout = 1500'];
    const base = s.write;
    s.write = (opts = {}) => base({ ...opts, extra: [...fixed, ...(opts.extra ?? [])] });
    s.write();
    proxy = await Running.start(s.file);
  });
  after(async () => {
    proxy?.kill();
    await s?.echo.close();
    s?.pki.cleanup();
  });

  it('writes the pid file at start', () => {
    assert.equal(fs.readFileSync(pidFile, 'utf8').trim(), String(proxy.child.pid));
  });

  it("a rule removed for another identity: that identity's new requests get ERR_NOT_ALLOWED, the open pair keeps forwarding", async () => {
    p1 = await linked(s.port, s.pki, s.pki.client);
    // hmi-2 may reach data before; its pair has ended when the reload comes.
    const from = proxy.lines.length;
    (await linked(s.port, s.pki, s.hmi2)).destroy();
    await proxy.waitFor((l) => l.message === 'unlink' && l.identity === 'hmi-2', "hmi-2's unlink", 5000, from);
    s.write({ rules: ['test-client data'] });
    const outcome = await proxy.reload();
    assert.match(outcome.message, /^reload: configuration [0-9a-f]{12} in force$/);
    reloads.push(outcome.message);
    assert.equal(await declinedWith(s.port, s.pki, s.hmi2), 'ERR_NOT_ALLOWED');
    await echoes(p1, 'still here');
    assert.equal(proxy.lines.filter((l) => l.message.startsWith('revoked:')).length, 0, 'no established pair was dropped');
  });

  it('a broken config is rejected, every problem logged as file:line; the proxy keeps serving the config in force', async () => {
    // Line 9: unknown key; line 10: an allow naming no server.
    s.write({ rules: ['test-client data'], extra: ['bogus = 1', 'allow = "hmi-2 nosuch"'] });
    const text = fs.readFileSync(s.file, 'utf8').split('\n');
    const bogus = text.indexOf('bogus = 1') + 1;
    const nosuch = text.indexOf('allow = "hmi-2 nosuch"') + 1;
    const from = proxy.lines.length;
    const outcome = await proxy.reload();
    assert.match(outcome.message, /^reload rejected: 2 problem\(s\); the configuration in force is unchanged$/);
    assert.equal(outcome.level, 'error');
    const problems = proxy.lines.slice(from).filter((l) => l.message.startsWith('reload rejected: /'));
    assert.deepEqual(
      problems.map((l) => /^reload rejected: (\S+:\d+): /.exec(l.message)?.[1]),
      [`${s.file}:${bogus}`, `${s.file}:${nosuch}`],
    );
    assert.match(problems[0]!.message, /unknown key "bogus"/);
    assert.match(problems[1]!.message, /unknown server "nosuch"/);
    await echoes(p1, 'after the rejected reload');
    const again = await linked(s.port, s.pki, s.pki.client);
    again.destroy();
    assert.equal(await declinedWith(s.port, s.pki, s.hmi2), 'ERR_NOT_ALLOWED', 'the config in force is the one before');
  });

  it('`mxproxy reload -c` signals it through the pid file; the open pair whose own rule went is closed: revoked:rule', async () => {
    s.write({ rules: ['hmi-2 data'] });
    const from = proxy.lines.length;
    const r = spawnSync(process.execPath, [MAIN, 'reload', '-c', s.file], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`SIGHUP sent to pid ${proxy.child.pid}`));
    const outcome = await proxy.waitFor((l) => l.message.startsWith('reload: configuration'), 'reload', 10_000, from);
    reloads.push(outcome.message);
    const revoked = await proxy.waitFor((l) => l.message.startsWith('revoked:rule'), 'revoked:rule', 5000, from);
    assert.equal(revoked.level, 'warn');
    assert.equal(revoked.reason, 'revoked:rule');
    assert.equal(revoked.identity, 'test-client');
    assert.match(revoked.message, /"test-client" may not reach "data"; closing the pair/);
    await closed(p1, 3000);
    const unlink = await proxy.waitFor((l) => l.message === 'unlink' && l.conn === revoked.conn, 'unlink', 5000, from);
    assert.equal(unlink.reason, 'revoked:rule');
    // hmi-2 is allowed again: the new rules are in force for new requests.
    (await linked(s.port, s.pki, s.hmi2)).destroy();
  });

  it('a new CRL revoking the open pair\'s certificate + reload: revoked:certificate, and new handshakes are refused', async () => {
    s.write();
    reloads.push((await proxy.reload()).message);
    const p2 = await linked(s.port, s.pki, s.pki.client);
    const p3 = await linked(s.port, s.pki, s.hmi2);
    await s.pki.writeCrl('crl', [s.pki.client]);
    const from = proxy.lines.length;
    const outcome = await proxy.reload();
    assert.match(outcome.message, /^reload: configuration/);
    reloads.push(outcome.message);
    const revoked = await proxy.waitFor((l) => l.message.startsWith('revoked:certificate'), 'revoked:certificate', 5000, from);
    assert.match(revoked.message, /the client certificate is revoked by the CRL/);
    await closed(p2, 3000);
    await echoes(p3, 'other certificate, still linked');
    p3.destroy();
    await assert.rejects(async () => {
      const { socket } = await request({ port: s.port, pki: s.pki, target: 'data' });
      socket.destroy();
    }, 'the revoked certificate gets no new pair');
    await proxy.waitFor((l) => l.message.startsWith('tls refused') && String(l.reason) === 'tls-failed:CERT_REVOKED', 'CERT_REVOKED', 5000, from);
  });

  it('stops on SIGTERM (exit 0), removes the pid file; its event log has each reload as CONFIG_LOADED between the pairs\' records, and replays', async () => {
    proxy.child.kill('SIGTERM');
    assert.equal(await proxy.exit, 0);
    assert.equal(fs.existsSync(pidFile), false, 'pid file removed at stop');
    const c = await readEventLogFile(eventLog);
    const list = c.records.map((r) => asLogRecord(r) as LogRecord);
    const events = list.flatMap((r) => (r.k === 'e' ? [{ s: r.s, e: r.e as { type: string; reason?: string; id?: string } }] : []));
    const loaded = events.filter((x) => x.e.type === 'CONFIG_LOADED');
    assert.deepEqual(
      loaded.map((x) => x.e.reason),
      ['start', ...reloads.map(() => 'reload')],
    );
    // The first reload came while p1 was linked: its records are before and after it.
    const firstReload = loaded[1]!.s;
    const pairRecords = list.filter((r) => (r.k === 'e' && r.e.type === 'ACCEPTED') || r.k === 'x').map((r) => r.s);
    assert.ok(pairRecords.some((n) => n < firstReload) && pairRecords.some((n) => n > firstReload), 'between pairs\' records');
    assert.deepEqual(
      events.filter((x) => x.e.type === 'REVOKED').map((x) => x.e.reason),
      ['rule', 'certificate'],
    );
    const r = await replayFiles([eventLog]);
    assert.equal(r.summary.divergence, undefined, r.summary.divergence?.message);
    assert.equal(r.error, undefined);
  });

  it('`mxproxy reload` without a running proxy, or at a pid that is not mxproxy: exit 1, nothing signalled', () => {
    const none = spawnSync(process.execPath, [MAIN, 'reload', '-c', s.file], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(none.status, 1);
    assert.match(none.stderr, /ERR_PID_FILE: no pid file .*is the proxy running/);
    fs.writeFileSync(pidFile, `${process.pid}\n`); // this test runner: alive, but not `mxproxy start`
    const other = spawnSync(process.execPath, [MAIN, 'reload', '-c', s.file], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(other.status, 1);
    assert.match(other.stderr, new RegExp(`pid ${process.pid} .*is not mxproxy start`));
    s.write({ extra: ['bogus = 1'] });
    const broken = spawnSync(process.execPath, [MAIN, 'reload', '-c', s.file], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(broken.status, 2, 'a broken config is reported, not sent');
    assert.match(broken.stderr, /reload\.config:\d+: unknown key "bogus"/);
  });
});

describe('drain: SIGTERM lets linked pairs finish within drainTimeout', () => {
  let s: Setup;
  let proxy: Running;
  before(async () => {
    s = await setup('drain', ['drainTimeout = 1500']);
    proxy = await Running.start(s.file);
  });
  after(async () => {
    proxy?.kill();
    await s?.echo.close();
    s?.pki.cleanup();
  });

  it('a pending request is declined ERR_SHUTTING_DOWN, the linked pair goes on, is closed (shutdown) at the deadline; exit 0', async () => {
    const pair = await linked(s.port, s.pki, s.pki.client);
    // Connected, its request not in yet; the client's TLS is done before the proxy's, so give it a moment.
    const pending = await tlsConnect({ port: s.port, pki: s.pki, cert: s.hmi2 });
    pending.on('error', () => {});
    pending.write(encodeRequest('data').subarray(0, 2));
    await new Promise((r) => setTimeout(r, 200));
    const replied = readReply(pending);
    const ended = new Promise<number>((r) => pair.once('end', () => r(Date.now())));
    const t0 = Date.now();
    proxy.child.kill('SIGTERM');
    await proxy.waitFor((l) => l.message.startsWith('draining:'), 'draining');
    const { reply } = await replied;
    assert.deepEqual(reply.ok ? 'ok' : reply.code, 'ERR_SHUTTING_DOWN');
    pending.destroy();
    // The linked pair: more bytes, echoed, after the SIGTERM.
    await echoes(pair, 'after SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    await echoes(pair, 'still draining');
    const endedAt = await ended;
    assert.ok(endedAt - t0 >= 1400, `closed at the deadline, not before (${endedAt - t0} ms)`);
    assert.equal(await proxy.exit, 0);
    const exitAfter = Date.now() - t0;
    assert.ok(exitAfter < 1500 + 2500, `exited within drainTimeout and a margin (${exitAfter} ms)`);
    const unlinks = proxy.lines.filter((l) => l.message === 'unlink').map((l) => l.reason);
    assert.deepEqual(unlinks.slice(-2).sort(), ['declined:ERR_SHUTTING_DOWN', 'shutdown']);
    assert.ok(proxy.lines.some((l) => l.message === 'mxproxy stopped'));
  });
});

describe('onRuleChange = "keep", then a second SIGTERM', () => {
  let s: Setup;
  let proxy: Running;
  before(async () => {
    s = await setup('keep', ['onRuleChange = "keep"', 'drainTimeout = 60000']);
    proxy = await Running.start(s.file);
  });
  after(async () => {
    proxy?.kill();
    await s?.echo.close();
    s?.pki.cleanup();
  });

  let pair: tls.TLSSocket;
  it('its own rule removed: the open pair stays, new requests of its identity get ERR_NOT_ALLOWED', async () => {
    pair = await linked(s.port, s.pki, s.pki.client);
    s.write({ rules: ['hmi-2 data'] });
    assert.match((await proxy.reload()).message, /^reload: configuration/);
    await echoes(pair, 'kept');
    assert.equal(await declinedWith(s.port, s.pki, s.pki.client), 'ERR_NOT_ALLOWED');
    assert.equal(proxy.lines.filter((l) => l.message.startsWith('revoked:')).length, 0);
  });

  it('SIGTERM drains (60 s here); a second SIGTERM closes the pair at once and the process exits 0', async () => {
    const from = proxy.lines.length;
    proxy.child.kill('SIGTERM');
    await proxy.waitFor((l) => l.message.startsWith('draining:'), 'draining', 5000, from);
    await echoes(pair, 'draining');
    const ended = new Promise<void>((r) => pair.once('end', () => r()));
    const t0 = Date.now();
    proxy.child.kill('SIGTERM');
    await ended;
    assert.equal(await proxy.exit, 0);
    assert.ok(Date.now() - t0 < 3000, `closed at once (${Date.now() - t0} ms)`);
    await proxy.waitFor((l) => l.message === 'unlink' && l.reason === 'shutdown' && l.identity === 'test-client', 'unlink shutdown', 1000, from);
    assert.ok(proxy.lines.slice(from).some((l) => /SIGTERM again: closing linked pairs now/.test(l.message)));
  });
});

describe('reload through the library (ProxyHandle.reload with a config), in process', () => {
  let pki: TestPki;
  let echo: Backend;
  before(async () => {
    pki = await createTestPki();
    echo = await startBackend(echoHandler);
  });
  after(async () => {
    await echo?.close();
    pki?.cleanup();
  });

  const configText = (crl: string, rules: string[]) =>
    [
      '[proxy]',
      'listen = "127.0.0.1:5678"',
      `sslCertificate = "${pki.server.cert} ${pki.server.key} ${pki.caFile}"`,
      `sslCrl = "${crl}"`,
      `server = "data ${echo.address}"`,
      ...rules.map((r) => `allow = "${r}"`),
    ].join('\n');

  it('a handshake from before the reload and a request after it: held to the new CRL (ERR_NOT_ALLOWED)', async () => {
    const crl = await pki.writeCrl('lib-crl', []);
    const h = await startHarness(pki, { servers: { data: [echo.address] }, allow: ['test-client data'], extra: `sslCrl = "${crl}"` });
    try {
      const s = await tlsConnect({ port: h.port, pki });
      s.on('error', () => {});
      await waitFor(() => h.events.some((e) => e.type === 'TLS_OK'), 2000, 'TLS_OK');
      await pki.writeCrl('lib-crl', [pki.client]);
      const result = h.proxy.reload({ config: { ...readProxyConfig(configText(crl, ['test-client data']), h.config.file), listen: h.config.listen } });
      assert.deepEqual(result, { ok: true, revoked: 0, restartNeeded: [] });
      s.write(encodeRequest('data'));
      const { reply } = await readReply(s);
      assert.deepEqual(reply.ok ? 'ok' : [reply.code, reply.message], ['ERR_NOT_ALLOWED', 'the client certificate is revoked by the CRL']);
      s.destroy();
      const types = h.events.map((e) => (e.type === 'CONFIG_LOADED' ? `CONFIG_LOADED:${e.reason}` : e.type));
      assert.deepEqual(types.filter((t) => t.startsWith('CONFIG_LOADED')), ['CONFIG_LOADED:start', 'CONFIG_LOADED:reload']);
    } finally {
      await h.stop();
    }
  });

  it('a linked pair whose certificate has expired since (the injected clock) is cut at the reload: revoked:certificate', async () => {
    const crl = await pki.writeCrl('lib-crl2', []);
    const clock = new FakeClock();
    clock.t = Date.now();
    const h = await startHarness(pki, { servers: { data: [echo.address] }, allow: ['test-client data'], extra: `sslCrl = "${crl}"`, clock });
    try {
      const pair = await linked(h.port, pki, pki.client);
      clock.t = Date.now() + 100 * 365 * 86_400_000; // past any test certificate's notAfter
      const result = h.proxy.reload({ config: { ...readProxyConfig(configText(crl, ['test-client data']), h.config.file), listen: h.config.listen } });
      assert.deepEqual(result, { ok: true, revoked: 1, restartNeeded: [] });
      await closed(pair, 3000);
      assert.deepEqual(
        h.events.filter((e) => e.type === 'REVOKED').map((e) => (e.type === 'REVOKED' ? e.reason : '')),
        ['certificate'],
      );
      assert.ok(h.logs.some((l) => String(l.message).startsWith('revoked:certificate: the client certificate has expired')));
    } finally {
      await h.stop();
    }
  });

  it('a reload with a problem in the given TLS material is rejected, and nothing changes', async () => {
    const h = await startHarness(pki, { servers: { data: [echo.address] }, allow: ['test-client data'] });
    try {
      const bad = { ...readProxyConfig(configText(path.join(pki.dir, 'missing-crl.pem'), []), h.config.file, { checkFiles: false }), listen: h.config.listen };
      const result = h.proxy.reload({ config: bad });
      assert.equal(result.ok, false);
      assert.match(!result.ok ? result.problems.join('\n') : '', /ERR_TLS_SETUP: cannot read CRL/);
      assert.equal(h.proxy.config().allow.length, 1, 'the rules in force stay');
      (await linked(h.port, pki, pki.client)).destroy();
    } finally {
      await h.stop();
    }
  });
});
