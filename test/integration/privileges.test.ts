/**
 * `[proxy] user` as the CLI runs it: started as root, the proxy binds, reads its (root-only) key, then runs as
 * nobody — seen from outside in /proc/<pid>/status — and still serves. Needs root; skipped otherwise.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { lookupAccount } from '../../src/process/accounts.js';
import { deadPort, digestUntilEnd, echoHandler, request, startBackend, waitFor, type Backend } from '../helpers/harness.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const nobody = lookupAccount('passwd', 'nobody');
const SKIP = process.getuid?.() !== 0 ? { skip: 'needs root' } : !nobody ? { skip: 'no user nobody' } : {};

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts `mxproxy start -c <config>` and resolves once `until` shows in its output (or it exits). */
/** Every proxy a test started: a test that fails half-way must not leave its proxy running. */
const children = new Set<ChildProcess>();

async function start(config: string, until: RegExp, args: string[] = []): Promise<Started> {
  const child = spawn(process.execPath, [MAIN, 'start', '-c', config, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${until} within 15 s:\n${out}`)), 15_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (until.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
  return { child, output: () => out, exited };
}

/** "Uid:" / "Gid:" / "Groups:" of a process: the real, effective, saved and filesystem ids. */
function status(pid: number, field: 'Uid' | 'Gid' | 'Groups'): string[] {
  const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`)) ?? '';
  return line.slice(field.length + 1).trim().split(/\s+/).filter(Boolean);
}

describe('privilege drop ([proxy] user)', SKIP, () => {
  let pki: TestPki;
  let echo: Backend;
  let running: Started | undefined;

  before(async () => {
    pki = await createTestPki();
    echo = await startBackend(echoHandler);
    // Traversable, so the account can reach the event log directory below; the files stay root's.
    fs.chmodSync(pki.dir, 0o711);
  });
  after(async () => {
    if (running && running.child.exitCode === null) running.child.kill('SIGKILL');
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await echo?.close();
    pki?.cleanup();
  });

  async function config(name: string, extra: string[]): Promise<{ file: string; port: number }> {
    const port = await deadPort();
    const file = path.join(pki.dir, name);
    fs.writeFileSync(
      file,
      [
        '[proxy]',
        `listen = "127.0.0.1:${port}"`,
        `sslCertificate = "${pki.server.cert} ${pki.server.key} ${pki.caFile}"`,
        `server = "echo ${echo.address}"`,
        'allow = "test-client echo"',
        ...extra,
      ].join('\n'),
    );
    return { file, port };
  }

  it('runs as nobody after start, with a root-only key, and serves a client', async () => {
    const key = fs.statSync(pki.server.key);
    assert.equal(key.uid, 0);
    assert.equal(key.mode & 0o777, 0o600, 'the key stays root-only: it is read before the drop');
    const { file, port } = await config('drop.config', ['user = "nobody"', 'eventLog = "logs/events.mxlog"']);
    running = await start(file, /listening on/);
    const pid = running.child.pid!;
    assert.match(running.output(), /running as user nobody \(65534\), group \S+ \(65534\)/);
    assert.deepEqual(status(pid, 'Uid'), ['65534', '65534', '65534', '65534'], 'real, effective, saved, fs uid');
    assert.deepEqual(status(pid, 'Gid'), ['65534', '65534', '65534', '65534']);
    assert.deepEqual(status(pid, 'Groups'), ['65534'], 'no supplementary group of root is kept');

    const { socket, reply, rest } = await request({ port, pki, target: 'echo' });
    assert.equal(reply.ok, true);
    const got = digestUntilEnd(socket, rest);
    socket.end('as nobody');
    assert.equal((await got).bytes, 9);

    const logs = path.join(pki.dir, 'logs');
    assert.match(running.output(), /created the event log directory .*logs for user nobody/);
    assert.equal(fs.statSync(logs).uid, 65534, 'the event log directory belongs to the account');
    assert.equal(fs.statSync(path.join(logs, 'events.mxlog')).uid, 65534);

    running.child.kill('SIGTERM');
    assert.equal(await running.exited, 0);
  });

  it('fails clearly when the account could not write the event log directory', async () => {
    const closedDir = path.join(pki.dir, 'root-only');
    fs.mkdirSync(path.join(closedDir, 'logs'), { recursive: true, mode: 0o700 });
    fs.chmodSync(closedDir, 0o700);
    const { file } = await config('nolog.config', ['user = "nobody"', 'eventLog = "root-only/logs/events.mxlog"']);
    const r = await start(file, /cannot start/);
    assert.equal(await r.exited, 1);
    assert.match(r.output(), /cannot start: ERR_PRIVILEGES: cannot run as user nobody .*event log directory .*root-only\/logs is not writable for it \(EACCES\)/);
  });

  it('logFile: opened as root before the drop and handed to the account, which rotates it afterwards', async () => {
    const logs = path.join(pki.dir, 'plogs');
    fs.mkdirSync(logs, { mode: 0o750 });
    fs.chownSync(logs, 65534, 65534);
    const { file, port } = await config('logfile.config', ['user = "nobody"', 'logFile = "plogs/mxproxy.log"', 'logFileMaxBytes = 65536', 'connectRate = "off"']);
    running = await start(file, /listening on/, ['--report', 'dispatch']);
    const log = path.join(logs, 'mxproxy.log');
    assert.equal(fs.statSync(log).uid, 65534, 'the file belongs to the account');
    assert.equal(fs.statSync(log).mode & 0o777, 0o640);
    // Enough dispatch lines (accept, authorized, link, unlink per pair) to rotate past 64 KiB, as nobody (one
    // source: the per-source connect rate is off).
    for (let i = 0; i < 120; i++) {
      const { socket, reply } = await request({ port, pki, target: 'echo' });
      assert.equal(reply.ok, true);
      socket.end();
      socket.resume();
    }
    await waitFor(() => fs.existsSync(path.join(logs, 'mxproxy1.log')), 10_000, 'a rotation');
    running.child.kill('SIGTERM');
    assert.equal(await running.exited, 0);
    assert.equal(fs.statSync(path.join(logs, 'mxproxy1.log')).uid, 65534);
    assert.equal(fs.statSync(log).uid, 65534, 'the new current file, created after the drop');
    const first = fs.readFileSync(path.join(logs, 'mxproxy1.log'), 'utf8');
    assert.match(first, /mxproxy listening on/, 'the lines from before the drop are in the file');
    assert.match(first, /running as user nobody/);
    assert.match(fs.readFileSync(log, 'utf8'), /mxproxy stopped\n$/);
  });

  it('fails clearly when the account could not rotate the log file', async () => {
    const closedDir = path.join(pki.dir, 'root-only-log');
    fs.mkdirSync(closedDir, { mode: 0o700 });
    const { file } = await config('nologfile.config', ['user = "nobody"', 'logFile = "root-only-log/mxproxy.log"']);
    const r = await start(file, /cannot start/);
    assert.equal(await r.exited, 1);
    assert.match(r.output(), /cannot start: ERR_PRIVILEGES: cannot run as user nobody .*the log file directory .*root-only-log is not writable for it \(EACCES\)/);
  });

  it('warns when started as root without user', async () => {
    const { file } = await config('root.config', []);
    running = await start(file, /listening on/);
    assert.match(running.output(), /warn .*running as root: set user/);
    running.child.kill('SIGTERM');
    assert.equal(await running.exited, 0);
  });
});
