/**
 * A running proxy does not carry what only other commands need: `mxproxy start` and `check-config` do not load
 * the X.509 library (about 20 MB resident), `certs` does. What a process loaded is read from its CommonJS
 * module cache at exit, by a preload script (every @peculiar package is CommonJS).
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
const PRELOAD = `
process.on('exit', () => {
  const names = new Set();
  for (const file of Object.keys(require.cache)) {
    const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(file);
    if (m) names.add(m[1]);
  }
  process.stderr.write('\\n${REPORT} ' + [...names].join(' ') + '\\n');
});
`;

interface Run {
  packages: Set<string>;
  output: string;
}

/** Runs the CLI with the preload; `until` (a pattern in its output) is when to send SIGTERM, for `start`. */
async function loadedBy(preload: string, args: string[], until?: RegExp): Promise<Run> {
  const child = spawn(process.execPath, ['-r', preload, MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
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
    assert.ok(!r.packages.has('@peculiar/x509'), [...r.packages].join(' '));
  });

  it('check-config runs without it', async () => {
    const r = await loadedBy(preload, ['check-config', '-c', config]);
    assert.match(r.output, /OK/);
    assert.ok(!r.packages.has('@peculiar/x509'), [...r.packages].join(' '));
  });
});
