/**
 * The shipped event logs (test/fixtures/eventlog, see its README), the proxy's and a forwarder's, replay with
 * everything matching: the current version's with states, effects, outputs and decisions, the version-1 logs
 * under v1/ (kept as an earlier build wrote them) with their states.
 */
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

/** Each pair's output reason, in the order they ended. */
const reasons = (list: LogRecord[]): unknown[] => list.flatMap((r) => (r.k === 'o' ? [r.o.reason] : []));

/** Every record was replayed, each by its kind. */
function allCounted(s: Awaited<ReturnType<typeof replayFiles>>['summary'], list: LogRecord[]): void {
  assert.equal(s.events + s.transitions + s.effects + s.outputs + s.noted + s.chunks, list.length);
}

describe('recorded fixtures, version 2', () => {
  it('declines.mxlog: one linked pair, three declines, a TLS refusal, a handshake timeout, a reset before TLS', async () => {
    const { file, header, list } = await load('declines.mxlog');
    assert.deepEqual([header.level, header.version], ['lifecycle', 2]);
    assert.deepEqual(endings(list), [
      'teardown.closing on CLIENT_CLOSED',
      'teardown.declining on DECLINED',
      'teardown.declining on DECLINED',
      'teardown.declining on REQUEST_INVALID',
      'teardown.closing on TLS_FAILED',
      'teardown.closing on HANDSHAKE_TIMEOUT',
      'teardown.closing on TLS_FAILED',
    ]);
    assert.deepEqual(reasons(list), [
      'client-closed',
      'declined:ERR_NOT_ALLOWED',
      'declined:ERR_UNKNOWN_TARGET',
      'declined:ERR_BAD_REQUEST',
      'tls-failed:ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE',
      'timeout:handshake',
      'tls-failed:ECONNRESET',
    ]);
    const first = list.find((r) => r.k === 'e');
    assert.ok(first?.k === 'e' && first.e.type === 'CONFIG_LOADED', 'the config comes before any pair');
    const r = await replayFiles([file]);
    assert.equal(r.summary.divergence, undefined, r.summary.divergence?.message);
    assert.deepEqual([r.summary.connections, r.summary.decisions, r.error, r.truncated], [7, 3, undefined, undefined]);
    allCounted(r.summary, list);
  });

  it('teardown-failover.mxlog: failover (a re-entry), teardown from either side by close and by reset, unreachable', async () => {
    const { file, header, list } = await load('teardown-failover.mxlog');
    assert.deepEqual([header.level, header.version], ['traffic', 2]);
    assert.deepEqual(reasons(list), ['client-closed', 'server-closed', 'client-error:ECONNRESET', 'server-error:ECONNRESET', 'declined:ERR_TARGET_UNREACHABLE']);
    assert.ok(list.some((r) => r.k === 'x' && r.from === 'connecting' && r.to === 'connecting' && r.on === 'BACKEND_FAILED'), 'the failover re-entry');
    assert.ok(list.some((r) => r.k === 'c'), 'chunk sizes at traffic level');
    const r = await replayFiles([file]);
    assert.equal(r.summary.divergence, undefined, r.summary.divergence?.message);
    assert.deepEqual([r.summary.connections, r.summary.decisions], [5, 5]);
    allCounted(r.summary, list);
  });

  it("forward-proxy.mxlog and forward-direct.mxlog, a forwarder's: effects and outputs replay too", async () => {
    const proxied = await load('forward-proxy.mxlog');
    assert.deepEqual([proxied.header.machine, proxied.header.version], ['forwarder', 2]);
    assert.deepEqual(reasons(proxied.list), ['client-closed', 'declined:ERR_NOT_ALLOWED', 'declined:ERR_TARGET_UNREACHABLE']);
    const direct = await load('forward-direct.mxlog');
    assert.deepEqual(reasons(direct.list), ['client-closed', 'unreachable']);
    for (const { file, list } of [proxied, direct]) {
      const r = await replayFiles([file]);
      assert.equal(r.summary.divergence, undefined, r.summary.divergence?.message);
      assert.ok(r.summary.effects > 0 && r.summary.outputs > 0);
      allCounted(r.summary, list);
    }
  });
});

describe('recorded fixtures, version 1 (v1/): still read, checked for their states', () => {
  it('v1/declines.mxlog: one linked pair, three declines, a TLS refusal, a handshake timeout', async () => {
    const { file, header, list } = await load('v1/declines.mxlog');
    assert.equal(header.level, 'lifecycle');
    assert.equal(header.version, 1);
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
    assert.deepEqual([r.summary.version, r.summary.decisions], [1, 0], 'states only');
  });

  it('v1/teardown-failover.mxlog: failover, teardown from either side by close and by reset, unreachable', async () => {
    const { file, header, list } = await load('v1/teardown-failover.mxlog');
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

  it("v1/forward-proxy.mxlog, a forwarder's: a linked pair, declines ERR_NOT_ALLOWED and ERR_TARGET_UNREACHABLE", async () => {
    const { file, header, list } = await load('v1/forward-proxy.mxlog');
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

  it("v1/forward-direct.mxlog, a forwarder's with the proxy off: failover to the second address, an unreachable target", async () => {
    const { file, header, list } = await load('v1/forward-direct.mxlog');
    assert.equal(header.machine, 'forwarder');
    assert.deepEqual(endings(list), ['teardown.closing on CLIENT_CLOSED', 'teardown.aborting on BACKEND_FAILED']);
    const r = await replayFiles([file]);
    assert.equal(r.summary.divergence, undefined, r.summary.divergence?.message);
    assert.equal(r.summary.connections, 2);
  });
});
