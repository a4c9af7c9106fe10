/** The inspector's bookkeeping: counts by state, bounded history and listing, ended pairs kept for a while. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConnectionOutput } from '../../src/shared/events.js';
import { Ring } from '../../src/inspect/history.js';
import { GONE_KEEP_MS, HISTORY_LENGTH, LiveState, MAX_GONE } from '../../src/inspect/live.js';

const output = (id: string, reason = 'client-closed'): ConnectionOutput => ({
  id,
  peer: '127.0.0.1:1',
  identity: 'x',
  target: 'echo',
  backend: null,
  reason,
  code: null,
  message: null,
  client: { read: 10, written: 20 },
  server: { read: 7, written: 9 },
});

const active = (value: unknown) => ({ value, status: 'active' });

describe('Ring', () => {
  it('keeps the last items, oldest first, and counts the dropped', () => {
    const r = new Ring<number>(3);
    for (let i = 1; i <= 7; i++) r.push(i);
    assert.deepEqual(r.toArray(), [5, 6, 7]);
    assert.equal(r.dropped, 4);
    assert.throws(() => new Ring(0), RangeError);
  });
});

describe('LiveState', () => {
  it('counts pairs by state, listed or not, and forgets them when they end', () => {
    let now = 1000;
    const live = new LiveState(() => now, 2);
    for (const id of ['1', '2', '3']) {
      live.event({ type: 'ACCEPTED', id, peer: '127.0.0.1:1', local: '127.0.0.1:2' });
      live.step(id, active({ handshake: 'tls' }), 'xstate.init');
    }
    assert.deepEqual(Object.fromEntries(live.stateCounts()), { 'handshake.tls': 3 });
    assert.deepEqual(live.totals(), { live: 3, untracked: 1, gone: 0 });
    live.step('3', active('forwarding'), 'BACKEND_CONNECTED');
    live.step('1', active('forwarding'), 'BACKEND_CONNECTED');
    assert.deepEqual(Object.fromEntries(live.stateCounts()), { 'handshake.tls': 1, forwarding: 2 });
    live.step('1', { value: 'closed', status: 'done' }, 'CLIENT_CLOSED');
    live.finished(output('1'));
    // A pair whose machine failed reports no final snapshot; its last state is uncounted at its end.
    live.finished(output('3', 'internal-error:boom'));
    assert.deepEqual(Object.fromEntries(live.stateCounts()), { 'handshake.tls': 1 });
    assert.deepEqual(live.totals(), { live: 1, untracked: 0, gone: 1 });
    now += 5;
    const rows = live.rows(() => ({ up: 1, down: 2 }), 10, 10);
    assert.deepEqual(rows.map((r) => [r.id, r.state, r.up, r.down]), [['2', 'handshake.tls', 1, 2], ['1', 'closed', 9, 7]]);
  });

  it('keeps the last HISTORY_LENGTH transitions of a pair and escapes what the client sent', () => {
    const live = new LiveState(() => 0);
    live.event({ type: 'ACCEPTED', id: 'a', peer: 'p', local: 'l' });
    live.event({ type: 'REQUEST', id: 'a', target: 'x\n<y>', earlyBytes: 0 });
    for (let i = 0; i < HISTORY_LENGTH + 10; i++) live.step('a', active(i % 2 ? 'connecting' : 'authorization'), `E${i}`);
    const d = live.connection('a', () => undefined);
    assert.ok(d);
    assert.equal(d.history.length, HISTORY_LENGTH);
    assert.equal(d.dropped, 10);
    assert.equal(d.history.at(-1)?.on, `E${HISTORY_LENGTH + 9}`);
    assert.equal(d.target, 'x\\x0a<y>', 'printable(): HTML escaping is the page’s');
  });

  it('ended pairs stay listed for GONE_KEEP_MS, at most MAX_GONE of them', () => {
    let now = 0;
    const live = new LiveState(() => now);
    for (let i = 0; i < MAX_GONE + 5; i++) {
      const id = i.toString(36);
      live.event({ type: 'ACCEPTED', id, peer: 'p', local: 'l' });
      live.finished(output(id));
    }
    assert.equal(live.totals().gone, MAX_GONE);
    assert.equal(live.connection('0', () => undefined), undefined, 'the oldest went first');
    now += GONE_KEEP_MS + 1;
    assert.equal(live.rows(() => undefined, 10, 10).length, 0);
    assert.equal(live.totals().gone, 0);
  });
});
