/**
 * `mxproxy replay LOG --config NEW.config`: every request of a recorded log (the committed fixtures) decided
 * again under another config, by the built CLI in its own process. A config that removes one rule lists the
 * pairs it would decline; the logged config itself changes nothing.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readEventLogFile } from '../../src/eventlog/index.js';
import type { ConfigSnapshot } from '../../src/shared/events.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/eventlog');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function replay(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, 'replay', '--no-progress', ...args], { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}

const show = (r: Run) => `exit ${r.status}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
const lines = (s: string) => s.split('\n').filter((l) => l !== '');

/** The config a log was recorded under (its first CONFIG_LOADED). */
async function loggedConfig(file: string): Promise<ConfigSnapshot> {
  const c = await readEventLogFile(file);
  for (const r of c.records as { k: string; e?: { type: string; config?: ConfigSnapshot } }[]) {
    if (r.k === 'e' && r.e?.type === 'CONFIG_LOADED' && r.e.config) return r.e.config;
  }
  throw new Error(`${file} has no CONFIG_LOADED`);
}

/** A config file with the snapshot's servers (`servers` replaces some) and the given rules. */
function configText(c: ConfigSnapshot, allow: string[], servers: Record<string, string[]> = {}): string {
  return [
    '[proxy]',
    'listen = "127.0.0.1:5678"',
    ...c.servers.map((s) => `server = "${s.name} ${(servers[s.name] ?? s.addresses).join(' ')}"`),
    ...allow.map((a) => `allow = "${a}"`),
    '',
  ].join('\n');
}

const rulesOf = (c: ConfigSnapshot) => c.allow.map((r) => [r.identity, ...r.targets].join(' '));

describe('mxproxy replay --config: what if another config had been in force', () => {
  let dir: string;
  const runs: Record<string, Promise<Run>> = {};
  const file = (name: string) => path.join(dir, name);
  const failover = path.join(FIXTURES, 'teardown-failover.mxlog');
  const declines = path.join(FIXTURES, 'declines.mxlog');

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mxproxy-whatif-'));
    const c = await loggedConfig(failover);
    const rules = rulesOf(c);
    assert.deepEqual(rules, ['test-client echo bye reset', 'cn:test-client down redundant'], 'the fixture\'s rules');
    fs.writeFileSync(file('same.config'), configText(c, rules));
    fs.writeFileSync(file('one-rule-less.config'), configText(c, rules.slice(0, 1)));
    fs.writeFileSync(file('echo-moved.config'), configText(c, rules, { echo: ['10.9.9.9:7'] }));
    const d = await loggedConfig(declines);
    fs.writeFileSync(file('secret-allowed.config'), configText(d, [...rulesOf(d), 'test-client secret']));
    fs.writeFileSync(file('broken.config'), '[proxy]\nallow = "nds:x echo"\n');
    Object.assign(runs, {
      same: replay(failover, '--config', file('same.config')),
      lessTable: replay(failover, '--config', file('one-rule-less.config')),
      lessJson: replay(failover, '--config', file('one-rule-less.config'), '--format', 'json'),
      moved: replay(failover, '--config', file('echo-moved.config')),
      allowed: replay(declines, '--config', file('secret-allowed.config')),
      v1: replay(path.join(FIXTURES, 'v1/declines.mxlog'), '--config', file('secret-allowed.config')),
      broken: replay(failover, '--config', file('broken.config')),
      mermaid: replay(failover, '--config', file('same.config'), '--format', 'mermaid', '--connection', '1'),
    });
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the config the log was recorded under: nothing would change, exit 0', async () => {
    const r = await runs.same!;
    assert.equal(r.status, 0, show(r));
    assert.match(r.stdout, /^what if .*same\.config \([0-9a-f]{12}\): no of 5 requests would be decided otherwise$/m);
    assert.equal(lines(r.stdout).length, 1, 'no table');
  });

  it('a config without one rule: the pairs that rule let through, allowed → declined with the code, as a table; exit 1', async () => {
    const r = await runs.lessTable!;
    assert.equal(r.status, 1, show(r));
    const out = lines(r.stdout);
    assert.match(out[0]!, /^connection +request +identity +target +recorded +would be +change$/);
    const rows = out.slice(1, -1);
    assert.equal(rows.length, 2, show(r));
    assert.match(rows[0]!, /^1 +#\d+ [\d:.]+ +test-client +redundant +allowed 127\.0\.0\.1:\d+ 127\.0\.0\.1:\d+ +declined ERR_NOT_ALLOWED +allowed → declined$/);
    assert.match(rows[1]!, /^5 +#\d+ [\d:.]+ +test-client +down +allowed 127\.0\.0\.1:\d+ +declined ERR_NOT_ALLOWED +allowed → declined$/);
    assert.match(out.at(-1)!, /^what if .*one-rule-less\.config \([0-9a-f]{12}\): 2 of 5 requests would be decided otherwise$/);
  });

  it('--format json: a line per change with both outcomes, the summary last', async () => {
    const r = await runs.lessJson!;
    assert.equal(r.status, 1, show(r));
    const objects = lines(r.stdout).map((l) => JSON.parse(l) as Record<string, unknown>);
    const changes = objects.filter((o) => 'change' in o).map((o) => o.change as Record<string, unknown>);
    assert.deepEqual(changes.map((c) => [c.id, c.target, c.change]), [['1', 'redundant', 'allowed → declined'], ['5', 'down', 'allowed → declined']]);
    assert.deepEqual(changes[0]!.would, { allowed: false, code: 'ERR_NOT_ALLOWED', message: '"test-client" may not reach "redundant"' });
    assert.equal((changes[0]!.recorded as { allowed: boolean }).allowed, true);
    const summary = (objects.at(-1) as { whatIf: Record<string, unknown> }).whatIf;
    assert.deepEqual([summary.requests, summary.changed, summary.error], [5, 2, null]);
    assert.match(String(summary.hash), /^[0-9a-f]{64}$/);
    assert.match(r.stderr, /2 of 5 requests would be decided otherwise/);
  });

  it('a server moved: the pairs that reached it would go to other addresses', async () => {
    const r = await runs.moved!;
    assert.equal(r.status, 1, show(r));
    const rows = lines(r.stdout).slice(1, -1);
    assert.ok(rows.length >= 1, show(r));
    for (const row of rows) assert.match(row, / echo +allowed 127\.0\.0\.1:\d+ +allowed 10\.9\.9\.9:7 +other addresses$/);
  });

  it('a rule added: a decline that would now be allowed', async () => {
    const r = await runs.allowed!;
    assert.equal(r.status, 1, show(r));
    const rows = lines(r.stdout).slice(1, -1);
    assert.equal(rows.length, 1, show(r));
    assert.match(rows[0]!, / secret +declined ERR_NOT_ALLOWED +allowed 127\.0\.0\.1:\d+ +declined → allowed$/);
    assert.match(lines(r.stdout).at(-1)!, /: 1 of 3 requests would be decided otherwise$/);
  });

  it('a version-1 log (names without their field): decided too, and said so', async () => {
    const r = await runs.v1!;
    assert.equal(r.status, 1, show(r));
    assert.match(lines(r.stdout).at(-1)!, /: 2 of 3 requests would be decided otherwise; \d+ names recorded without their certificate field, matched as any field$/);
  });

  it('a config that does not load, or a diagram asked for: exit 2 and why', async () => {
    const broken = await runs.broken!;
    assert.equal(broken.status, 2, show(broken));
    assert.match(broken.stderr, /^mxproxy replay: --config .*broken\.config:2: unknown identity field "nds:"/m);
    const mermaid = await runs.mermaid!;
    assert.equal(mermaid.status, 2, show(mermaid));
    assert.match(mermaid.stderr, /--config decides the requests again: its output is a table/);
  });
});
