/**
 * A running proxy (or forwarder) does not carry what only other commands need: `mxproxy start`, `forward` and `check-config` do not load
 * the X.509 library (about 20 MB resident), `certs` does; nor Graphviz (WebAssembly), which `diagram` loads for
 * SVG alone; nor, without adminListen, the admin endpoint's prom-client. What a process loaded is read from its CommonJS module cache at exit, by a preload script (every
 * @peculiar package is CommonJS), plus the ES modules it resolved, written down by a module hook
 * (@viz-js/viz is an ES module, which the CommonJS cache never sees).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { deadPort } from '../helpers/harness.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const REPORT = 'loaded packages:';
const PACKAGE_RE = String.raw`/node_modules\/((?:@[^/]+\/)?[^/]+)/`;
const PRELOAD = `
process.on('exit', () => {
  const names = new Set();
  const files = Object.keys(require.cache);
  try {
    files.push(...require('node:fs').readFileSync(process.env.MXPROXY_ESM_REPORT, 'utf8').split('\\n'));
  } catch {}
  for (const file of files) {
    const m = ${PACKAGE_RE}.exec(file);
    if (m) names.add(m[1]);
  }
  process.stderr.write('\\n${REPORT} ' + [...names].join(' ') + '\\n');
});
`;

/** Resolution hooks run off the main thread (Node 20+): each resolved URL is appended to the report file. */
const ESM_HOOKS = `
import fs from 'node:fs';
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  if (result.url.includes('/node_modules/')) fs.appendFileSync(process.env.MXPROXY_ESM_REPORT, result.url + '\\n');
  return result;
}
`;
const ESM_REGISTER = `
import { register } from 'node:module';
register('./esm-hooks.mjs', import.meta.url);
`;

/** What only some commands need, never `start` or `forward` (without adminListen) or `check-config`. */
const HEAVY = ['@peculiar/x509', '@viz-js/viz', 'prom-client'];

interface Run {
  packages: Set<string>;
  output: string;
}

let runs = 0;

/** Runs the CLI with the preload; `until` (a pattern in its output) is when to send SIGTERM, for `start`. */
async function loadedBy(preload: string, args: string[], until?: RegExp): Promise<Run> {
  const dir = path.dirname(preload);
  const esmReport = path.join(dir, `esm-${++runs}.txt`);
  const child = spawn(process.execPath, ['--import', path.join(dir, 'esm-register.mjs'), '-r', preload, MAIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, MXPROXY_ESM_REPORT: esmReport },
  });
  let output = '';
  const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const onData = (b: Buffer) => {
    output += b.toString();
    if (until?.test(output) && child.exitCode === null && !child.killed) child.kill('SIGTERM');
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  await once(child, 'close');
  clearTimeout(killer);
  const line = output.split('\n').find((l) => l.startsWith(REPORT));
  assert.ok(line, `no module report from: mxproxy ${args.join(' ')}\n${output}`);
  return { packages: new Set(line.slice(REPORT.length).trim().split(/\s+/).filter(Boolean)), output };
}

describe('what each command loads', () => {
  let pki: TestPki;
  let preload: string;
  let config: string;

  before(async () => {
    pki = await createTestPki();
    preload = path.join(pki.dir, 'report-modules.cjs');
    fs.writeFileSync(preload, PRELOAD);
    fs.writeFileSync(path.join(pki.dir, 'esm-hooks.mjs'), ESM_HOOKS);
    fs.writeFileSync(path.join(pki.dir, 'esm-register.mjs'), ESM_REGISTER);
    config = path.join(pki.dir, 'proxy.config');
    fs.writeFileSync(
      config,
      [
        '[proxy]',
        `listen = "127.0.0.1:${await deadPort()}"`, // free: bound, then closed
        `sslCertificate = "${pki.server.cert} ${pki.server.key} ${pki.caFile}"`,
        'server = "data 127.0.0.1:9"',
        'allow = "test-client data"',
        '',
      ].join('\n'),
    );
  });
  after(() => pki?.cleanup());

  it('certs loads the X.509 library (so the checks below can see it)', async () => {
    const r = await loadedBy(preload, ['certs', 'show', pki.server.cert]);
    assert.ok(r.packages.has('@peculiar/x509'), r.output);
  });

  it('start runs the proxy without it', async () => {
    const r = await loadedBy(preload, ['start', '-c', config], /mxproxy listening on/);
    assert.match(r.output, /mxproxy stopped/);
    assert.ok(r.packages.has('xstate'), `the proxy's own libraries are seen: ${[...r.packages].join(' ')}`);
    for (const heavy of HEAVY) assert.ok(!r.packages.has(heavy), `start loaded ${heavy}: ${[...r.packages].join(' ')}`);
  });

  it('start with adminListen loads prom-client and Graphviz (so the check above can see them)', async () => {
    const withAdmin = path.join(pki.dir, 'admin.config');
    fs.writeFileSync(withAdmin, `${fs.readFileSync(config, 'utf8')}adminListen = "127.0.0.1:${await deadPort()}"\n`);
    const r = await loadedBy(preload, ['start', '-c', withAdmin], /admin endpoint on http/);
    assert.match(r.output, /mxproxy stopped/);
    assert.ok(r.packages.has('prom-client') && r.packages.has('@viz-js/viz'), [...r.packages].join(' '));
  });

  it('forward runs the forwarder without it; with [client] adminListen it loads prom-client and Graphviz', async () => {
    const client = path.join(pki.dir, 'client.config');
    fs.writeFileSync(client, ['[client]', 'mxProxy = "none"', 'forward = "127.0.0.1:0 data 127.0.0.1:9"', ''].join('\n'));
    const r = await loadedBy(preload, ['forward', '-c', client], /forwarding 127\.0\.0\.1:\d+ → data/);
    assert.ok(r.packages.has('xstate'), `the forwarder's own libraries are seen: ${[...r.packages].join(' ')}`);
    for (const heavy of HEAVY) assert.ok(!r.packages.has(heavy), `forward loaded ${heavy}: ${[...r.packages].join(' ')}`);
    fs.appendFileSync(client, `adminListen = "127.0.0.1:${await deadPort()}"\n`);
    const admin = await loadedBy(preload, ['forward', '-c', client], /forwarding 127\.0\.0\.1:\d+ → data/);
    assert.match(admin.output, /admin endpoint on http/);
    assert.ok(admin.packages.has('prom-client') && admin.packages.has('@viz-js/viz'), [...admin.packages].join(' '));
  });

  it('check-config runs without it', async () => {
    const r = await loadedBy(preload, ['check-config', '-c', config]);
    assert.match(r.output, /OK/);
    for (const heavy of HEAVY) assert.ok(!r.packages.has(heavy), `check-config loaded ${heavy}: ${[...r.packages].join(' ')}`);
  });

  it('diagram loads Graphviz for SVG (so the checks above can see it), and not for Mermaid', async () => {
    const svg = await loadedBy(preload, ['diagram', '--format', 'svg', '-o', path.join(pki.dir, 'c.svg')]);
    assert.ok(svg.packages.has('@viz-js/viz'), svg.output);
    const mermaid = await loadedBy(preload, ['diagram', '--format', 'mermaid', '-o', path.join(pki.dir, 'c.mmd')]);
    assert.ok(mermaid.packages.has('xstate'), [...mermaid.packages].join(' '));
    assert.ok(!mermaid.packages.has('@viz-js/viz'), [...mermaid.packages].join(' '));
  });
});
