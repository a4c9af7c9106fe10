/** The shipped event logs (test/fixtures/eventlog, see its README), the proxy's and a forwarder's, replay with every transition matching. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readEventLogFile } from '../../src/eventlog/index.js';
import { asLogRecord, isHeader, isRootId, type LogRecord } from '../../src/eventlog/records.js';
import { replayFiles } from '../../src/replay/run.js';

const DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/eventlog');

async function load(name: string) {
  const file = path.join(DIR, name);
  const c = await readEventLogFile(file);
  assert.equal(c.stop.reason, 'end');
  assert.ok(isHeader(c.header));
  return { file, header: c.header, list: c.records.map((r) => asLogRecord(r) as LogRecord) };
}

/** How each connection ended: its teardown state and the event that led there, or `closed` straight away. */
function endings(list: LogRecord[]): string[] {
  const out = new Map<string, string>();
  for (const r of list) {
    if (r.k !== 'x' || isRootId(r.id)) continue;
    if (r.to.startsWith('teardown.')) out.set(r.id, `${r.to} on ${r.on}`);
    else if (r.to === 'closed' && !out.has(r.id)) out.set(r.id, `closed on ${r.on}`);
  }
  return [...out.values()];
}

describe('recorded fixtures', () => {
  it('declines.mxlog: one linked pair, three declines, a TLS refusal, a handshake timeout', async () => {
    const { file, header, list } = await load('declines.mxlog');
    assert.equal(header.level, 'lifecycle');
    assert.deepEqual(endings(list), [
      'teardown.closing on CLIENT_CLOSED',
      'teardown.declining on DECLINED',
      'teardown.declining on DECLINED',
      'teardown.declining on REQUEST_INVALID',
      'closed on TLS_FAILED',
      'teardown.closing on HANDSHAKE_TIMEOUT',
    ]);
    const r = await replayFiles([file]);
    assert.equal(r.summary.divergence, undefined, r.summary.divergence?.message);
    assert.deepEqual([r.summary.connections, r.error, r.truncated], [6, undefined, undefined]);
    assert.equal(r.summary.events + r.summary.transitions, list.length);
  });

  it('teardown-failover.mxlog: failover, teardown from either side by close and by reset, unreachable', async () => {
    const { file, header, list } = await load('teardown-failover.mxlog');
    assert.equal(header.level, 'traffic');
    assert.deepEqual(endings(list), [
      'teardown.closing on CLIENT_CLOSED',
      'teardown.closing on SERVER_CLOSED',
      'teardown.aborting on CLIENT_ERROR',
      'teardown.aborting on SERVER_ERROR',
      'teardown.declining on BACKEND_FAILED',
    ]);
    assert.ok(list.some((r) => r.k === 'c'), 'chunk sizes at traffic level');
    const r = await replayFiles([file]);
    assert.equal(r.summary.divergence, undefined, r.summary.divergence?.message);
    assert.equal(r.summary.connections, 5);
    assert.equal(r.summary.events + r.summary.transitions + r.summary.chunks, list.length);
  });

  it("forward-proxy.mxlog, a forwarder's: a linked pair, declines ERR_NOT_ALLOWED and ERR_TARGET_UNREACHABLE", async () => {
    const { file, header, list } = await load('forward-proxy.mxlog');
    assert.equal(header.machine, 'forwarder');
    assert.deepEqual(endings(list), [
      'teardown.closing on CLIENT_CLOSED',
      'teardown.aborting on PROXY_DECLINED',
      'teardown.aborting on PROXY_DECLINED',
    ]);
    const r = await replayFiles([file]);
    assert.equal(r.summary.divergence, undefined, r.summary.divergence?.message);
    assert.deepEqual([r.summary.connections, r.error, r.truncated], [3, undefined, undefined]);
    assert.equal(r.summary.events + r.summary.transitions, list.length);
  });

  it("forward-direct.mxlog, a forwarder's with the proxy off: failover to the second address, an unreachable target", async () => {
    const { file, header, list } = await load('forward-direct.mxlog');
    assert.equal(header.machine, 'forwarder');
    assert.deepEqual(endings(list), ['teardown.closing on CLIENT_CLOSED', 'teardown.aborting on BACKEND_FAILED']);
    const r = await replayFiles([file]);
    assert.equal(r.summary.divergence, undefined, r.summary.divergence?.message);
    assert.equal(r.summary.connections, 2);
  });
});
