/**
 * The project as a newcomer has it: a copy of the tree in a temporary folder (node_modules linked, not
 * installed), the default config moved to free loopback ports, and `npm start` run as a real process group.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
// What a clean clone has (docs aside): tsconfig compiles src, machines, scripts and test together.
const COPIED = ['package.json', 'package-lock.json', 'tsconfig.json', 'src', 'machines', 'scripts', 'test', 'config'];

/**
 * Copies the project into a new temporary folder and links node_modules. `withBuild` also copies dist/, all
 * with their modification times, so the copy is exactly as up to date as this checkout's build.
 */
export function copyProject(prefix: string, opts: { withBuild?: boolean } = {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const files = opts.withBuild ? [...COPIED, 'dist'] : COPIED;
  for (const f of files) {
    fs.cpSync(path.join(ROOT, f), path.join(dir, f), { recursive: true, preserveTimestamps: opts.withBuild === true });
  }
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  return dir;
}

/** Moves the copy's config/mxproxy.config from its default ports to the given (loopback) ones. */
export function useConfigPorts(dir: string, ports: { proxy: number; data: number; forward: number }): void {
  const cfg = path.join(dir, 'config/mxproxy.config');
  const edited = fs
    .readFileSync(cfg, 'utf8')
    .replace('listen = "0.0.0.0:5678"', `listen = "127.0.0.1:${ports.proxy}"`)
    .replace('server = "data 127.0.0.1:4897"', `server = "data 127.0.0.1:${ports.data}"`)
    .replace('mxProxy = "127.0.0.1:5678"', `mxProxy = "127.0.0.1:${ports.proxy}"`)
    .replace('forward = "127.0.0.1:14897 data"', `forward = "127.0.0.1:${ports.forward} data"`);
  assert.equal((edited.match(new RegExp(String(ports.proxy), 'g')) ?? []).length, 2, 'the default config has the expected entries');
  fs.writeFileSync(cfg, edited);
}

export type Started = ChildProcess & { output: () => string };

/** Starts `cmd` in its own process group, so whatever it starts can be found (and, failing all, stopped) as one. */
export function startInGroup(cmd: string, args: string[], cwd: string): Started {
  const child = spawn(cmd, args, { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return Object.assign(child, { output: () => out });
}

export async function waitForOutput(child: { output: () => string; exitCode: number | null }, re: RegExp, ms: number): Promise<void> {
  const t0 = Date.now();
  while (!re.test(child.output())) {
    if (child.exitCode !== null) throw new Error(`exited ${child.exitCode} before ${re}:\n${child.output()}`);
    if (Date.now() - t0 > ms) throw new Error(`no ${re} within ${ms} ms:\n${child.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Resolves with the exit code, or the signal's name if it was killed, once the output is complete: `close`, not
 * `exit`, since npm may exit before the node under it has written its last lines.
 */
export function exited(child: ChildProcess): Promise<number | string | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode ?? child.signalCode);
  return new Promise((r) => child.once('close', (code, signal) => r(code ?? signal)));
}

/** True while any process of the group `pgid` (a startInGroup child's pid) is alive. */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false; // ESRCH: every process of the group has exited
  }
}

/** SIGTERM to the process group, SIGKILL after 10 s; resolves with the exit code or signal of `child`. */
export async function stopGroup(child: ChildProcess | undefined): Promise<number | string | null> {
  if (!child?.pid) return null;
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? child.signalCode;
  const done = exited(child);
  process.kill(-child.pid, 'SIGTERM');
  const timer = setTimeout(() => child.pid && groupAlive(child.pid) && process.kill(-child.pid, 'SIGKILL'), 10_000);
  const code = await done;
  clearTimeout(timer);
  return code;
}
