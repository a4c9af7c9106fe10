/**
 * The root supervisor driven by events alone: ACCEPTED spawns a child connection actor, events route by id,
 * finished children are forgotten and reported, SHUTDOWN drains. Children run the connection machine with
 * recording effects, so the tests see what each pair did; no sockets, no timers, no sleeps.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createActor } from 'xstate';
import { connectionMachine, type ConnectionEvent, type ConnectionOutput } from '../../machines/connection.js';
import type { ProxyEvent } from '../../machines/proxy.js';
import { ConnectionRegistry, superviseWith } from '../../machines/registry.js';
import { ReplyCode } from '../../src/shared/codes.js';
import { CONNECTION_EFFECTS } from '../helpers/machineEffects.js';

interface Effect {
  id: string;
  name: string;
  params?: unknown;
}

const EFFECTS = CONNECTION_EFFECTS;

type ActionArgs = { context: { id: string } };

interface StartOptions {
  /** Throw from this child action when the connection id matches. */
  throwIn?: { id: string; action: (typeof EFFECTS)[number]; message: string };
}

function start(opts: StartOptions = {}) {
  const effects: Effect[] = [];
  const finished: ConnectionOutput[] = [];
  const record =
    (name: (typeof EFFECTS)[number]) =>
    ({ context }: ActionArgs, params: unknown): void => {
      if (opts.throwIn && opts.throwIn.id === context.id && opts.throwIn.action === name) throw new Error(opts.throwIn.message);
      effects.push(params === undefined ? { id: context.id, name } : { id: context.id, name, params });
    };
  const actions = Object.fromEntries(EFFECTS.map((name) => [name, record(name)])) as Record<(typeof EFFECTS)[number], ReturnType<typeof record>>;
  const connection = connectionMachine.provide({ actions });
  const registry = new ConnectionRegistry(connection, { finished: (output) => finished.push(output) });
  const root = createActor(superviseWith(registry));
  root.start();
  let peers = 0;
  const h = {
    root,
    effects,
    finished,
    send: (event: ProxyEvent) => root.send(event),
    accept(id: string): void {
      root.send({ type: 'ACCEPTED', id, peer: `127.0.0.1:${1000 + peers++}`, local: '127.0.0.1:5678' });
    },
    value: () => root.getSnapshot().value,
    status: () => root.getSnapshot().status,
    registry: () => registry,
    counts: () => ({ accepted: root.getSnapshot().context.accepted, finished: root.getSnapshot().context.finished }),
    /** The child's state value, or undefined once it is forgotten. */
    child: (id: string) => registry.get(id)?.getSnapshot().value,
    effectsOf: (id: string) => effects.filter((e) => e.id === id).map(({ id: _id, ...rest }) => rest),
  };
  return h;
}
type Harness = ReturnType<typeof start>;

const TLS_OK = { identity: 'CN=c', identities: ['CN=c'], protocol: 'TLSv1.3', alpn: null, resumed: false };
const ev = (id: string, e: Omit<ConnectionEvent, 'id'> & Record<string, unknown>): ConnectionEvent => ({ ...e, id }) as ConnectionEvent;

function toForwarding(h: Harness, id: string): void {
  h.send(ev(id, { type: 'TLS_OK', ...TLS_OK }));
  h.send(ev(id, { type: 'REQUEST', target: 't', earlyBytes: 0 }));
  h.send(ev(id, { type: 'AUTHORIZED', addresses: ['10.0.0.1:1'] }));
  h.send(ev(id, { type: 'BACKEND_CONNECTED', attempt: 0, address: '10.0.0.1:1' }));
  assert.equal(h.child(id), 'forwarding');
}
function closeBoth(h: Harness, id: string): void {
  h.send(ev(id, { type: 'CLIENT_CLOSED', read: 1, written: 2 }));
  h.send(ev(id, { type: 'SERVER_CLOSED', read: 3, written: 4 }));
}

describe('proxy machine: running', () => {
  test('starts running with an empty registry', () => {
    const h = start();
    assert.equal(h.value(), 'running');
    assert.equal(h.status(), 'active');
    assert.equal(h.registry().size, 0);
    assert.deepEqual(h.counts(), { accepted: 0, finished: 0 });
  });

  test('ACCEPTED spawns one started child per id, with its input', () => {
    const h = start();
    h.accept('a');
    h.accept('b');
    assert.equal(h.registry().size, 2);
    assert.deepEqual([...h.registry().ids()].sort(), ['a', 'b']);
    assert.deepEqual(h.counts(), { accepted: 2, finished: 0 });
    assert.deepEqual(h.child('a'), { handshake: 'tls' });
    const ctx = h.registry().get('b')!.getSnapshot().context;
    assert.equal(ctx.id, 'b');
    assert.equal(ctx.local, '127.0.0.1:5678');
    // Each child ran its entry effect once.
    assert.deepEqual(h.effectsOf('a'), [{ name: 'startTimer', params: { timer: 'handshake' } }]);
    assert.deepEqual(h.effectsOf('b'), [{ name: 'startTimer', params: { timer: 'handshake' } }]);
  });

  test("the root's persisted snapshot is plain data, and each pair is in its system under its id", () => {
    const h = start();
    h.accept('a');
    h.accept('b');
    toForwarding(h, 'b');
    const persisted = h.root.getPersistedSnapshot();
    // Plain data: survives a JSON round trip unchanged (no actor refs, no cycles back to the root); JSON only
    // drops the keys whose value is undefined.
    const defined = Object.fromEntries(Object.entries(persisted).filter(([, v]) => v !== undefined));
    assert.deepEqual(JSON.parse(JSON.stringify(persisted)), defined);
    assert.deepEqual((persisted as unknown as { context: unknown }).context, { accepted: 2, finished: 0 });
    const pair = h.root.system.get('b');
    if (!pair) throw new assert.AssertionError({ message: 'system.get finds the pair' });
    assert.ok(pair === h.registry().get('b'), 'the system holds the same actor as the registry');
    assert.equal(pair.getSnapshot().value, 'forwarding');
    pair.send(ev('b', { type: 'CLIENT_CLOSED', read: 0, written: 0 }));
    pair.send(ev('b', { type: 'SERVER_CLOSED', read: 0, written: 0 }));
    assert.equal(h.root.system.get('b'), undefined, 'a finished pair leaves the system');
    assert.equal(h.registry().get('b'), undefined);
    assert.ok(h.root.system.get('a'));
  });

  test('events route by id to the right child only', () => {
    const h = start();
    h.accept('a');
    h.accept('b');
    h.send(ev('b', { type: 'TLS_OK', ...TLS_OK }));
    assert.deepEqual(h.child('a'), { handshake: 'tls' });
    assert.deepEqual(h.child('b'), { handshake: 'awaitingRequest' });
    assert.ok(h.effectsOf('b').some((e) => e.name === 'readRequest'));
    assert.ok(!h.effectsOf('a').some((e) => e.name === 'readRequest'));
    h.send(ev('a', { type: 'HANDSHAKE_TIMEOUT' }));
    assert.deepEqual(h.child('a'), { teardown: 'closing' });
    assert.deepEqual(h.child('b'), { handshake: 'awaitingRequest' });
  });

  test('events for unknown ids are dropped without error', () => {
    const h = start();
    h.accept('a');
    const before = h.effects.length;
    assert.doesNotThrow(() => {
      h.send(ev('nope', { type: 'CLIENT_CLOSED', read: 1, written: 1 }));
      h.send(ev('nope', { type: 'TLS_OK', ...TLS_OK }));
      h.send(ev('', { type: 'TEARDOWN_TIMEOUT' }));
    });
    assert.equal(h.value(), 'running');
    assert.equal(h.status(), 'active');
    assert.equal(h.registry().size, 1);
    assert.deepEqual(h.child('a'), { handshake: 'tls' });
    assert.equal(h.effects.length, before, 'no child ran any effect');
    assert.deepEqual(h.finished, []);
  });

  test('a finished child is forgotten and reported: connectionFinished gets exactly its output', () => {
    const h = start();
    h.accept('a');
    h.accept('b');
    toForwarding(h, 'a');
    const child = h.registry().get('a')!;
    closeBoth(h, 'a');
    assert.equal(child.getSnapshot().status, 'done');
    assert.equal(h.registry().size, 1);
    assert.equal(h.registry().get('a'), undefined);
    assert.equal(h.finished.length, 1);
    assert.deepEqual(h.finished[0], child.getSnapshot().output);
    assert.deepEqual(h.finished[0], {
      id: 'a',
      peer: '127.0.0.1:1000',
      identity: 'CN=c',
      target: 't',
      backend: '10.0.0.1:1',
      reason: 'client-closed',
      code: null,
      message: null,
      client: { read: 1, written: 2 },
      server: { read: 3, written: 4 },
    });
    assert.deepEqual(h.counts(), { accepted: 2, finished: 1 });
    assert.equal(h.value(), 'running');
    // Late events for the finished pair are dropped.
    h.send(ev('a', { type: 'SERVER_CLOSED', read: 9, written: 9 }));
    assert.equal(h.finished.length, 1);
  });

  test('a re-used id after the first pair finished gets a fresh child', () => {
    const h = start();
    h.accept('a');
    h.send(ev('a', { type: 'CLIENT_CLOSED', read: 0, written: 0 }));
    assert.equal(h.registry().size, 0);
    h.accept('a');
    assert.equal(h.registry().size, 1);
    assert.deepEqual(h.child('a'), { handshake: 'tls' });
  });

  test('1,000 connections opened and closed leave no actor behind', () => {
    const h = start();
    const n = 1000;
    for (let i = 0; i < n; i++) h.accept(`c${i}`);
    assert.equal(h.registry().size, n);
    const children = Array.from({ length: n }, (_, i) => h.registry().get(`c${i}`)!);
    for (let i = 0; i < n; i++) {
      const id = `c${i}`;
      // A mix of endings: forwarded then closed, declined, failed TLS.
      if (i % 3 === 0) {
        toForwarding(h, id);
        closeBoth(h, id);
      } else if (i % 3 === 1) {
        h.send(ev(id, { type: 'TLS_OK', ...TLS_OK }));
        h.send(ev(id, { type: 'REQUEST', target: 't', earlyBytes: 0 }));
        h.send(ev(id, { type: 'DECLINED', code: ReplyCode.NOT_ALLOWED, message: 'no' }));
        h.send(ev(id, { type: 'CLIENT_CLOSED', read: 0, written: 0 }));
      } else {
        h.send(ev(id, { type: 'TLS_FAILED', code: 'E', message: 'bad cert' }));
      }
    }
    assert.equal(h.registry().size, 0);
    assert.ok(children.every((c) => c.getSnapshot().status === 'done'));
    assert.equal(h.finished.length, n);
    assert.equal(new Set(h.finished.map((o) => o.id)).size, n);
    assert.deepEqual(h.counts(), { accepted: n, finished: n });
    assert.equal(h.value(), 'running');
  });

  test('a child whose action throws ends only that child, reported as internal-error; the root keeps running', () => {
    const h = start({ throwIn: { id: 'bad', action: 'readRequest', message: 'boom' } });
    h.accept('good');
    h.accept('bad');
    h.send(ev('bad', { type: 'TLS_OK', ...TLS_OK }));
    assert.equal(h.status(), 'active');
    assert.equal(h.value(), 'running');
    assert.equal(h.registry().get('bad'), undefined);
    assert.equal(h.registry().size, 1);
    assert.equal(h.finished.length, 1);
    assert.equal(h.finished[0]!.id, 'bad');
    assert.equal(h.finished[0]!.reason, 'internal-error:boom');
    assert.equal(h.finished[0]!.code, null);
    // The other pair is untouched and still works.
    assert.deepEqual(h.child('good'), { handshake: 'tls' });
    toForwarding(h, 'good');
    closeBoth(h, 'good');
    assert.equal(h.finished.length, 2);
    assert.equal(h.finished[1]!.reason, 'client-closed');
    assert.deepEqual(h.counts(), { accepted: 2, finished: 2 });
  });

  test('children that end in one step (a SHUTDOWN, one of them throwing) are each reported once, as themselves', () => {
    const h = start({ throwIn: { id: 'b', action: 'closeSockets', message: 'boom' } });
    for (const id of ['a', 'b', 'c']) h.accept(id);
    h.send({ type: 'SHUTDOWN' });
    assert.deepEqual(h.finished.map((o) => [o.id, o.reason]), [['b', 'internal-error:boom']]);
    // The others end as their sockets close, in another order than they were accepted.
    h.send(ev('c', { type: 'CLIENT_CLOSED', read: 0, written: 0 }));
    h.send(ev('a', { type: 'CLIENT_CLOSED', read: 0, written: 0 }));
    assert.deepEqual(
      h.finished.map((o) => [o.id, o.reason]),
      [
        ['b', 'internal-error:boom'],
        ['c', 'shutdown'],
        ['a', 'shutdown'],
      ],
    );
    assert.equal(h.status(), 'done');
  });

  test('the event types the root takes do not grow with the pairs it has seen (XState memoizes per type)', () => {
    const types = new Set<string>();
    const registry = new ConnectionRegistry(connectionMachine);
    const root = createActor(superviseWith(registry), {
      inspect: (e) => {
        if (e.type === '@xstate.event' && e.actorRef === root) types.add(e.event.type);
      },
    });
    root.start();
    const pairs = (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const id = `p${i}`;
        root.send({ type: 'ACCEPTED', id, peer: '127.0.0.1:1000', local: '127.0.0.1:5678' });
        root.send(ev(id, { type: 'TLS_FAILED', code: 'ECONNRESET', message: 'reset' }));
      }
    };
    pairs(0, 10);
    const after10 = [...types].sort();
    pairs(10, 200);
    assert.deepEqual([...types].sort(), after10);
    assert.ok(after10.includes('xstate.done.actor.pair'), after10.join(' '));
    assert.equal(root.getSnapshot().context.finished, 200);
    assert.equal(root.system.get('p5'), undefined);
  });

  test('a child whose entry action throws at spawn is reported and forgotten at once', () => {
    const h = start({ throwIn: { id: 'bad', action: 'startTimer', message: 'no timers' } });
    h.accept('bad');
    assert.equal(h.status(), 'active');
    assert.equal(h.registry().size, 0);
    assert.deepEqual(
      h.finished.map((o) => [o.id, o.reason]),
      [['bad', 'internal-error:no timers']],
    );
    h.accept('ok');
    assert.equal(h.registry().size, 1);
  });
});

describe('proxy machine: shutdown', () => {
  test('SHUTDOWN with no children → stopped (final) at once', () => {
    const h = start();
    h.send({ type: 'SHUTDOWN' });
    assert.equal(h.value(), 'stopped');
    assert.equal(h.status(), 'done');
  });

  test('SHUTDOWN → stopping: every child is told SHUTDOWN and reacts by its state', () => {
    const h = start();
    for (const id of ['tls', 'awaiting', 'authz', 'connecting', 'fwd']) h.accept(id);
    h.send(ev('awaiting', { type: 'TLS_OK', ...TLS_OK }));
    h.send(ev('authz', { type: 'TLS_OK', ...TLS_OK }));
    h.send(ev('authz', { type: 'REQUEST', target: 't', earlyBytes: 0 }));
    h.send(ev('connecting', { type: 'TLS_OK', ...TLS_OK }));
    h.send(ev('connecting', { type: 'REQUEST', target: 't', earlyBytes: 0 }));
    h.send(ev('connecting', { type: 'AUTHORIZED', addresses: ['10.0.0.1:1'] }));
    toForwarding(h, 'fwd');
    h.effects.length = 0;

    h.send({ type: 'SHUTDOWN' });
    assert.equal(h.value(), 'stopping');
    assert.equal(h.status(), 'active');
    assert.equal(h.registry().size, 5, 'children drain; none is dropped');

    const declineShutdown = { name: 'sendDecline', params: { code: ReplyCode.SHUTTING_DOWN, message: 'the proxy is shutting down' } };
    // Before TLS: no channel for a reply, just close.
    assert.deepEqual(h.child('tls'), { teardown: 'closing' });
    assert.deepEqual(h.effectsOf('tls').at(-1), { name: 'closeSockets', params: { mode: 'graceful' } });
    // Awaiting the request, authorizing, connecting: decline with ERR_SHUTTING_DOWN.
    for (const id of ['awaiting', 'authz', 'connecting']) {
      assert.deepEqual(h.child(id), { teardown: 'declining' }, id);
      assert.deepEqual(h.effectsOf(id).at(-1), declineShutdown, id);
      assert.equal(h.registry().get(id)!.getSnapshot().context.code, ReplyCode.SHUTTING_DOWN);
    }
    assert.ok(h.effectsOf('connecting').some((e) => e.name === 'abortDial'));
    // Forwarding: drains, its drain timer started.
    assert.equal(h.child('fwd'), 'forwarding');
    assert.deepEqual(h.effectsOf('fwd').at(-1), { name: 'startTimer', params: { timer: 'drain' } });

    // The second SHUTDOWN, `now`, reaches the draining pair: graceful close.
    h.send({ type: 'SHUTDOWN', now: true });
    assert.equal(h.value(), 'stopping');
    assert.deepEqual(h.child('fwd'), { teardown: 'closing' });
    assert.deepEqual(h.effectsOf('fwd').at(-1), { name: 'closeSockets', params: { mode: 'graceful' } });
    assert.equal(h.registry().get('fwd')!.getSnapshot().context.reason, 'shutdown');
  });

  test('SHUTDOWN now at once (a library stop()): linked pairs close without draining', () => {
    const h = start();
    h.accept('fwd');
    toForwarding(h, 'fwd');
    h.effects.length = 0;
    h.send({ type: 'SHUTDOWN', now: true });
    assert.equal(h.value(), 'stopping');
    assert.deepEqual(h.child('fwd'), { teardown: 'closing' });
    assert.equal(h.registry().get('fwd')!.getSnapshot().context.reason, 'shutdown');
  });

  test('a draining pair that closes by itself lets the root stop', () => {
    const h = start();
    h.accept('fwd');
    toForwarding(h, 'fwd');
    h.send({ type: 'SHUTDOWN' });
    assert.equal(h.child('fwd'), 'forwarding');
    h.send(ev('fwd', { type: 'SERVER_CLOSED', read: 1, written: 1 }));
    h.send(ev('fwd', { type: 'CLIENT_CLOSED', read: 1, written: 1 }));
    assert.equal(h.value(), 'stopped');
    assert.deepEqual(
      h.finished.map((o) => [o.id, o.reason]),
      [['fwd', 'server-closed']],
    );
  });

  test('ACCEPTED while stopping spawns the child and shuts it down at once', () => {
    const h = start();
    h.accept('old');
    h.send({ type: 'SHUTDOWN' });
    h.accept('late');
    assert.equal(h.value(), 'stopping');
    assert.equal(h.registry().size, 2);
    assert.deepEqual(h.counts(), { accepted: 2, finished: 0 });
    assert.deepEqual(h.child('late'), { teardown: 'closing' });
    assert.equal(h.registry().get('late')!.getSnapshot().context.reason, 'shutdown');
    assert.deepEqual(h.effectsOf('late'), [
      { name: 'startTimer', params: { timer: 'handshake' } },
      { name: 'cancelTimer', params: { timer: 'handshake' } },
      { name: 'startTimer', params: { timer: 'teardown' } },
      { name: 'closeSockets', params: { mode: 'graceful' } },
    ]);
  });

  test('stopping → stopped (final) once the last child finished; not before', () => {
    const h = start();
    h.accept('a');
    h.accept('b');
    h.send(ev('b', { type: 'TLS_OK', ...TLS_OK }));
    h.send({ type: 'SHUTDOWN' });
    h.send(ev('a', { type: 'CLIENT_CLOSED', read: 0, written: 0 }));
    assert.equal(h.value(), 'stopping');
    assert.equal(h.registry().size, 1);
    h.send(ev('b', { type: 'CLIENT_CLOSED', read: 5, written: 6 }));
    assert.equal(h.registry().size, 0);
    assert.equal(h.value(), 'stopped');
    assert.equal(h.status(), 'done');
    // After the final state nothing is processed any more.
    h.accept('z');
    assert.equal(h.registry().size, 0);
  });

  test('every pair finishing during shutdown is reported, including the last one', () => {
    const h = start();
    h.accept('a');
    h.accept('b');
    h.send(ev('b', { type: 'TLS_OK', ...TLS_OK }));
    h.send({ type: 'SHUTDOWN' });
    h.send(ev('a', { type: 'CLIENT_CLOSED', read: 0, written: 0 }));
    assert.deepEqual(
      h.finished.map((o) => o.id),
      ['a'],
    );
    h.send(ev('b', { type: 'CLIENT_CLOSED', read: 5, written: 6 }));
    assert.equal(h.status(), 'done');
    assert.deepEqual(
      h.finished.map((o) => [o.id, o.reason]),
      [
        ['a', 'shutdown'],
        ['b', `declined:${ReplyCode.SHUTTING_DOWN}`],
      ],
    );
    assert.deepEqual(h.root.getSnapshot().context.finished, 2);
  });

  test('the last child ending by an internal error during shutdown also stops the root', () => {
    const h = start({ throwIn: { id: 'a', action: 'cancelTimer', message: 'boom' } });
    h.accept('a');
    h.send({ type: 'SHUTDOWN' });
    // SHUTDOWN in tls exits handshake, whose exit action cancelTimer throws: the child fails.
    assert.equal(h.registry().size, 0);
    assert.equal(h.value(), 'stopped');
    assert.equal(h.status(), 'done');
  });
});
