/**
 * `npm start`: compile only when the sources are newer than the build, then run the CLI in this very process.
 *
 * npm runs a script as `sh -c "<script>"`, and dash execs a lone command, so this node process is the one npm
 * started and forwards SIGTERM/SIGINT to: the proxy itself, not a shell with a second node under it that
 * outlives npm and keeps the port. Plain JavaScript because it has to run before anything is compiled.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The entry point, and the build stamp: every tsc run rewrites it (`npm run build`, `prepare`, `npm test`). */
const MAIN = path.join(ROOT, 'dist/src/cli/main.js');
/** What the proxy is compiled from. Tests and benchmarks are rebuilt by `npm test` and `npm run bench`. */
const SOURCES = ['src', 'machines', 'tsconfig.json', 'package.json'];

/** Newest mtime (ms) of the .ts files under `p`, or of `p` itself when it is a file; 0 when it is missing.
 * Directory mtimes are left out: an editor's swap file would trigger a 15-40 s build for nothing. */
function newestSource(p) {
  let st;
  try {
    st = fs.statSync(p);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = 0;
  for (const entry of fs.readdirSync(p, { withFileTypes: true })) {
    const child = path.join(p, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(child));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(child).mtimeMs);
  }
  return newest;
}

function builtAt() {
  try {
    return fs.statSync(MAIN).mtimeMs;
  } catch {
    return -1; // never built
  }
}

async function build() {
  let tsc;
  try {
    tsc = createRequire(path.join(ROOT, 'package.json')).resolve('typescript/bin/tsc');
  } catch {
    process.stderr.write('mxproxy: the sources are newer than dist/, but TypeScript is not installed (npm install)\n');
    process.exit(1);
  }
  process.stderr.write('mxproxy: sources changed since the last build, building (tsc -p tsconfig.json)\n');
  const startedAt = new Date();
  const child = spawn(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'inherit' });
  // Not spawnSync: a SIGTERM during the build must reach tsc too, not leave it running without us.
  const forward = (signal) => child.kill(signal);
  process.on('SIGTERM', forward).on('SIGINT', forward);
  const [code, signal] = await new Promise((resolve) => {
    child.once('exit', (c, s) => resolve([c, s]));
    child.once('error', (err) => resolve([1, err.message]));
  });
  process.off('SIGTERM', forward).off('SIGINT', forward);
  if (code !== 0) {
    process.stderr.write(`mxproxy: build ${signal ? `stopped by ${signal}` : `failed (exit ${code})`}, not starting\n`);
    process.exit(code ?? 1);
  }
  // Stamped with the time tsc started: a source saved while it ran is newer, so the next start builds again.
  fs.utimesSync(MAIN, startedAt, startedAt);
}

if (Math.max(...SOURCES.map((s) => newestSource(path.join(ROOT, s)))) > builtAt()) await build();

// commander reads process.argv: make it look as if main.js had been run directly.
process.argv = [process.argv[0], MAIN, ...process.argv.slice(2)];
await import(pathToFileURL(MAIN).href);
