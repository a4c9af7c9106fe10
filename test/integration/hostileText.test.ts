/**
 * Logs a client cannot forge: a real client over mutual TLS sends a target with a line break, ESC and NUL,
 * or presents a certificate whose CN holds them; the text log has exactly one line per record with the values
 * escaped, and `mxproxy replay` of the event log prints them escaped too.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { closed, request, startBackend, echoHandler, waitFor, type Backend, type Harness, startHarness } from '../helpers/harness.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

/** A target that tries to start a log line of its own, clear the screen, cut a C string and turn the text around. */
const EVIL_TARGET = 'nosuch\n2099-01-01T00:00:00.000Z info  FORGED-TARGET\x1b[2J\x00\u202eend';
const EVIL_TARGET_PRINTED = 'nosuch\\x0a2099-01-01T00:00:00.000Z info  FORGED-TARGET\\x1b[2J\\x00\\u{202e}end';
const EVIL_CN = 'hmi\x1b[2J\x00\nFORGED-CN';
const EVIL_CN_PRINTED = 'hmi\\x1b[2J\\x00\\x0aFORGED-CN';

/** What must never reach a terminal raw. */
const RAW = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

function replay(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, 'replay', '--no-progress', ...args], { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}

describe('hostile text in logs and replay', () => {
  let pki: TestPki;
  let echo: Backend;
  let h: Harness;
  let eventLog: string;
  let stopped = false;

  before(async () => {
    pki = await createTestPki();
    echo = await startBackend(echoHandler);
    eventLog = path.join(pki.dir, 'events.mxlog');
    h = await startHarness(pki, {
      servers: { echo: [echo.address] },
      allow: ['test-client echo'],
      logFormat: 'text',
      extra: `eventLog = "${eventLog}"`,
    });
  });
  after(async () => {
    if (!stopped) await h?.stop();
    await echo?.close();
    pki?.cleanup();
  });

  const lines = () => h.output.join('').split('\n').filter((l) => l !== '');

  it('a target with a line break, ESC and NUL is one escaped log line', async () => {
    const { socket, reply } = await request({ port: h.port, pki, target: EVIL_TARGET });
    assert.equal(reply.ok === false && reply.code, 'ERR_UNKNOWN_TARGET');
    socket.resume();
    await closed(socket);
    await waitFor(() => lines().some((l) => l.includes('FORGED-TARGET')), 3000, 'the decline logged');
    const all = h.output.join('');
    assert.doesNotMatch(all, RAW, 'no control character in the text log');
    const mentioning = lines().filter((l) => l.includes('FORGED-TARGET'));
    // the decline line, and the unlink line of the same pair (debug), each holding the target once or twice
    assert.ok(mentioning.length >= 1);
    for (const l of mentioning) assert.match(l, /^\d{4}-\d\d-\d\dT[\d:.]+Z (warn |debug|info ) /, `a whole record: ${l}`);
    const decline = mentioning.filter((l) => l.includes('decline ERR_UNKNOWN_TARGET'));
    assert.equal(decline.length, 1, mentioning.join('\n'));
    assert.ok(decline[0]!.includes(EVIL_TARGET_PRINTED), decline[0]);
    assert.ok(decline[0]!.includes(`target="${EVIL_TARGET_PRINTED}"`), 'the target field, quoted (it holds spaces)');
    assert.ok(!lines().some((l) => l.startsWith('2099-')), 'no forged line');
  });

  it('a CN with ESC, NUL and a line break is logged escaped', async () => {
    const evil = await pki.issueClient(EVIL_CN);
    const { socket, reply } = await request({ port: h.port, pki, cert: evil, target: 'echo' });
    assert.equal(reply.ok === false && reply.code, 'ERR_NOT_ALLOWED');
    socket.resume();
    await closed(socket);
    await waitFor(() => lines().some((l) => l.includes('FORGED-CN') && l.includes('ERR_NOT_ALLOWED')), 3000, 'the decline logged');
    assert.doesNotMatch(h.output.join(''), RAW);
    const decline = lines().filter((l) => l.includes('decline ERR_NOT_ALLOWED'));
    assert.equal(decline.length, 1);
    assert.ok(decline[0]!.includes(`identity=${EVIL_CN_PRINTED}`), decline[0]);
    assert.ok(!lines().some((l) => l.startsWith('FORGED')), 'no line of its own');
  });

  it('mxproxy replay prints the target and the CN escaped, in every format', async () => {
    await waitFor(() => h.proxy.stats().active === 0, 3000, 'every pair forgotten');
    await h.stop();
    stopped = true;
    assert.ok(fs.existsSync(eventLog));
    const [timeline, json] = await Promise.all([replay(eventLog), replay(eventLog, '--format', 'json')]);
    assert.equal(timeline.status, 0, timeline.stderr);
    assert.doesNotMatch(timeline.stdout, RAW, 'no control character in the timeline');
    const out = timeline.stdout.split('\n');
    assert.ok(!out.some((l) => /^(2099-|FORGED)/.test(l)), 'nothing starts a line of its own');
    assert.ok(out.some((l) => l.includes(`REQUEST target=${EVIL_TARGET_PRINTED}`)), timeline.stdout);
    assert.ok(out.some((l) => l.startsWith('connection ') && l.includes(`target ${EVIL_TARGET_PRINTED}`)), 'the block header');
    assert.ok(out.some((l) => l.includes(`TLS_OK identity=${EVIL_CN_PRINTED}`)), timeline.stdout);
    assert.ok(out.some((l) => l.startsWith('connection ') && l.includes(`identity ${EVIL_CN_PRINTED}`)));

    const id = /^connection (\S+) .*FORGED-TARGET/m.exec(timeline.stdout)?.[1];
    assert.ok(id, 'the connection id');
    const mermaid = await replay(eventLog, '--format', 'mermaid', '--connection', id);
    assert.equal(mermaid.status, 0, mermaid.stderr);
    assert.doesNotMatch(mermaid.stdout, RAW);
    assert.ok(mermaid.stdout.includes(EVIL_TARGET_PRINTED), mermaid.stdout);

    assert.equal(json.status, 0, json.stderr);
    assert.doesNotMatch(json.stdout, RAW, 'JSON lines escape what JSON would leave raw');
    const request = json.stdout
      .split('\n')
      .filter((l) => l.includes('FORGED-TARGET'))
      .map((l) => JSON.parse(l) as { e?: { type?: string; target?: string } })
      .find((r) => r.e?.type === 'REQUEST');
    assert.equal(request?.e?.target, EVIL_TARGET, 'the JSON value is the target as sent');

    // What if any name could reach echo: the hostile CN's pair is listed, escaped.
    const config = path.join(pki.dir, 'what-if.config');
    fs.writeFileSync(config, ['[proxy]', 'listen = "127.0.0.1:5678"', `server = "echo ${echo.address}"`, 'allow = "test-client echo"', 'allow = "* echo"', ''].join('\n'));
    const whatIf = await replay(eventLog, '--config', config);
    assert.equal(whatIf.status, 1, whatIf.stderr);
    assert.doesNotMatch(whatIf.stdout, RAW, 'no control character in the what-if table');
    const row = whatIf.stdout.split('\n').find((l) => l.includes('declined → allowed'));
    assert.ok(row?.includes(EVIL_CN_PRINTED), whatIf.stdout);
    assert.ok(!whatIf.stdout.split('\n').some((l) => /^(2099-|FORGED)/.test(l)), 'nothing starts a line of its own');
  });
});
