/**
 * The forwarder's root supervisor driven by events alone: ACCEPTED spawns a forward pair, events route by id,
 * finished pairs are forgotten and reported, SHUTDOWN stops every pair and the root. The registry is the same
 * class the proxy's children live in (machines/registry.ts), here over forward machines.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createActor } from 'xstate';
import { forwardMachine, type ForwardOutput } from '../../machines/forward.js';
import { ForwardRegistry, superviseForwardsWith, type ForwarderEvent } from '../../machines/forwarder.js';
import { FORWARD_EFFECTS } from '../helpers/machineEffects.js';

function start(throwIn?: { id: string; action: (typeof FORWARD_EFFECTS)[number] }) {
  const effects: { id: string; name: string }[] = [];
  const finished: ForwardOutput[] = [];
  const record =
    (name: (typeof FORWARD_EFFECTS)[number]) =>
    ({ context }: { context: { id: string } }): void => {
      if (throwIn?.id === context.id && throwIn.action === name) throw new Error(`${name} failed`);
      effects.push({ id: context.id, name });
    };
  const actions = Object.fromEntries(FORWARD_EFFECTS.map((n) => [n, record(n)])) as Record<(typeof FORWARD_EFFECTS)[number], ReturnType<typeof record>>;
  const registry = new ForwardRegistry(forwardMachine.provide({ actions }), { finished: (o) => finished.push(o) });
  const root = createActor(superviseForwardsWith(registry)).start();
  return {
    root,
    registry,
    effects,
    finished,
    send: (e: ForwarderEvent) => root.send(e),
    accept: (id: string) =>
      root.send({ type: 'ACCEPTED', id, peer: '127.0.0.1:40000', local: '127.0.0.1:14897', target: 'data', proxy: null, addresses: ['10.0.0.1:1'] }),
    child: (id: string) => registry.get(id)?.getSnapshot().value,
    counts: () => root.getSnapshot().context,
  };
}

describe('forwarder machine (root)', () => {
  test('ACCEPTED spawns one pair per id, under the root, with its input; a repeated id is ignored', () => {
    const h = start();
    h.accept('1');
    h.accept('2');
    h.accept('2');
    assert.deepEqual([...h.registry.ids()], ['1', '2']);
    assert.deepEqual(h.counts(), { accepted: 2, finished: 0 });
    assert.deepEqual(h.child('1'), { linking: 'connecting' });
    assert.equal(h.registry.get('2')?.getSnapshot().context.target, 'data');
    assert.ok(h.root.system.get('1') === h.registry.get('1'), 'each pair is in the root\'s system under its id');
  });

  test('events route by id; a finished pair is forgotten and reported with its output; late events dropped', () => {
    const h = start();
    h.accept('1');
    h.accept('2');
    h.send({ type: 'BACKEND_CONNECTED', id: '2', attempt: 0, address: '10.0.0.1:1' });
    assert.equal(h.child('2'), 'forwarding');
    assert.deepEqual(h.child('1'), { linking: 'connecting' });
    h.send({ type: 'CLIENT_CLOSED', id: '2', read: 4, written: 5 });
    h.send({ type: 'SERVER_CLOSED', id: '2', read: 5, written: 4 });
    assert.equal(h.registry.has('2'), false);
    assert.deepEqual(h.finished.map((o) => [o.id, o.reason, o.up, o.down]), [['2', 'client-closed', 4, 5]]);
    h.send({ type: 'SERVER_CLOSED', id: '2', read: 0, written: 0 });
    h.send({ type: 'PROXY_REPLY_OK', id: 'nope' });
    assert.deepEqual(h.counts(), { accepted: 2, finished: 1 });
  });

  test('SHUTDOWN: every pair aborts, the root stops once all have closed; a late accept is spawned and stopped', () => {
    const h = start();
    h.accept('1');
    h.send({ type: 'SHUTDOWN' });
    assert.equal(h.root.getSnapshot().value, 'stopping');
    assert.deepEqual(h.child('1'), { teardown: 'aborting' });
    h.accept('2');
    assert.deepEqual(h.child('2'), { teardown: 'aborting' });
    h.send({ type: 'CLIENT_CLOSED', id: '1', read: 0, written: 0 });
    assert.equal(h.root.getSnapshot().value, 'stopping');
    h.send({ type: 'CLIENT_CLOSED', id: '2', read: 0, written: 0 });
    assert.equal(h.root.getSnapshot().status, 'done');
    assert.deepEqual(h.finished.map((o) => o.reason), ['shutdown', 'shutdown']);
  });

  test('a pair whose machine throws ends alone, reported as internal-error; the root goes on', () => {
    const h = start({ id: '1', action: 'link' });
    h.accept('1');
    h.accept('2');
    h.send({ type: 'BACKEND_CONNECTED', id: '1', attempt: 0, address: '10.0.0.1:1' });
    assert.equal(h.registry.has('1'), false);
    assert.deepEqual(h.finished.map((o) => [o.id, o.reason, o.via, o.target]), [['1', 'internal-error:link failed', 'direct', 'data']]);
    assert.equal(h.root.getSnapshot().status, 'active');
    assert.deepEqual(h.child('2'), { linking: 'connecting' });
  });
});
