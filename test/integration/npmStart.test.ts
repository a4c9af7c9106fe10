/**
 * `npm start` as an operator uses it, in a copy of the project: npm's child is the proxy itself (not a shell
 * with a node under it), so SIGTERM to npm stops the proxy cleanly and frees the port; and it compiles only
 * when a source changed. The copy starts from this checkout's build (timestamps kept), so only the "touched
 * source" case pays for a tsc run; the fresh-clone build is the Quick start test's.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { deadPort, waitFor } from '../helpers/harness.js';
import { copyProject, exited, groupAlive, startInGroup, stopGroup, useConfigPorts, waitForOutput, type Started } from '../helpers/project.js';

const LISTENING = /mxproxy listening on 127\.0\.0\.1:\d+/;
const BUILDING = /sources changed since the last build, building/;

/** The processes whose parent is `pid`, from /proc (Linux): the command name and pid of each. */
function childrenOf(pid: number): { pid: number; comm: string }[] {
  const found: { pid: number; comm: string }[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid …": comm may contain spaces and parentheses, so split after the last ')'.
    const close = stat.lastIndexOf(')');
    const ppid = Number(stat.slice(close + 2).split(' ')[1]);
    if (ppid === pid) found.push({ pid: Number(name), comm: stat.slice(stat.indexOf('(') + 1, close) });
  }
  return found;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

describe('npm start', () => {
  let dir: string;
  let port: number;
  let running: Started | undefined;
  const mainJs = () => path.join(dir, 'dist/src/cli/main.js');

  before(async () => {
    dir = copyProject('mxproxy-npmstart-', { withBuild: true });
    port = await deadPort();
    useConfigPorts(dir, { proxy: port, data: await deadPort(), forward: await deadPort() });
  });

  after(async () => {
    await stopGroup(running); // only if a test failed half-way
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** `npm start` until it prints the listening line; how long that took from the spawn. */
  async function npmStart(): Promise<number> {
    const t0 = performance.now();
    running = startInGroup('npm', ['start'], dir);
    await waitForOutput(running, LISTENING, 100_000);
    return performance.now() - t0;
  }

  /** SIGTERM to npm's PID only, as a supervisor sends it; then the whole process group must be gone. */
  async function sigtermNpm(): Promise<{ code: number | string | null; output: string }> {
    const child = running!;
    const pid = child.pid!;
    const done = exited(child);
    process.kill(pid, 'SIGTERM');
    const killer = setTimeout(() => groupAlive(pid) && process.kill(-pid, 'SIGKILL'), 15_000);
    try {
      const code = await done;
      await waitFor(() => !groupAlive(pid), 5000, 'no process of the npm start left');
      running = undefined;
      return { code, output: child.output() };
    } finally {
      clearTimeout(killer);
    }
  }

  it('runs the proxy as npm’s own child; SIGTERM to npm stops it cleanly and frees the port', async () => {
    await npmStart();
    assert.deepEqual(
      childrenOf(running!.pid!).map((c) => c.comm),
      ['node'],
      'npm → node: no shell in between that SIGTERM would stop instead of the proxy',
    );
    const { code, output } = await sigtermNpm();
    assert.match(output, /SIGTERM: stopping[\s\S]*mxproxy stopped/);
    assert.equal(code, 0, 'npm exits with the proxy’s exit code 0');
    assert.equal(await portFree(port), true, 'the port is free again');
  });

  it('a second npm start, no source changed, does not rebuild and listens at once', async (t) => {
    const stamp = fs.statSync(mainJs()).mtimeMs;
    const ms = await npmStart();
    const { output } = await sigtermNpm();
    assert.doesNotMatch(output, BUILDING);
    assert.equal(fs.statSync(mainJs()).mtimeMs, stamp, 'dist/ untouched');
    t.diagnostic(`second npm start listened ${Math.round(ms)} ms after the spawn`);
    assert.ok(ms < 10_000, `${Math.round(ms)} ms: a sanity bound, not a benchmark`);
  });

  it('a touched source file makes npm start build first', async () => {
    const stamp = fs.statSync(mainJs()).mtimeMs;
    const now = new Date();
    fs.utimesSync(path.join(dir, 'src/cli/start.ts'), now, now);
    await npmStart();
    const { output } = await sigtermNpm();
    assert.match(output, BUILDING);
    assert.ok(fs.statSync(mainJs()).mtimeMs > stamp, 'dist/ rebuilt');
    assert.match(output, /mxproxy stopped/);
  });
});
