/**
 * The forward machine (one `mxproxy forward` pair) driven by events alone: no sockets, no timers, no sleeps.
 * Recording fakes stand in for every side effect; the tests assert which effects ran, in what order, with
 * which params, the state after each event and the final output.
 *
 * As for the connection machine, every transition a test takes is recorded, and the last test checks that
 * each transition of the machine (each guarded branch, the `always` transition) was taken by one of them.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createActor, type AnyStateNode, type AnyTransitionDefinition, type InspectionEvent } from 'xstate';
import {
  forwardMachine,
  type ForwardContext,
  type ForwardEvent,
  type ForwardEventType,
  type ForwardInput,
  type ForwardOutput,
} from '../../machines/forward.js';
import { ReplyCode } from '../../src/shared/codes.js';
import { FORWARD_EFFECTS } from '../helpers/machineEffects.js';

// ---------------------------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------------------------

type EventOf<T extends ForwardEventType> = Extract<ForwardEvent, { type: T }>;
type FieldsOf<T extends ForwardEventType> = Omit<EventOf<T>, 'type' | 'id'>;
type FieldsArg<T extends ForwardEventType> = {} extends FieldsOf<T> ? [fields?: FieldsOf<T>] : [fields: FieldsOf<T>];

interface Effect {
  name: string;
  params?: unknown;
}

const PROXY = '127.0.0.1:5678';
const DIRECT = ['10.0.0.1:502', '10.0.0.2:502', '10.0.0.3:502'];
const VIA_PROXY: ForwardInput = { id: 'f1', peer: '127.0.0.1:40000', local: '127.0.0.1:14897', target: 'data', proxy: PROXY, addresses: [PROXY] };
const DIRECT_INPUT: ForwardInput = { ...VIA_PROXY, proxy: null, addresses: DIRECT };

const taken = new Set<string>();

function transitionKey(t: AnyTransitionDefinition): string {
  const source = t.source as AnyStateNode;
  const always = source.always ?? [];
  if (always.includes(t)) return `${source.id}|always|${always.indexOf(t)}`;
  const candidates = source.transitions.get(t.eventType) ?? [];
  return `${source.id}|${t.eventType}|${candidates.indexOf(t)}`;
}

function recordingActions(log: Effect[]) {
  const record =
    (name: string) =>
    (_: unknown, params: unknown): void => {
      log.push(params === undefined ? { name } : { name, params });
    };
  return Object.fromEntries(FORWARD_EFFECTS.map((name) => [name, record(name)])) as Record<(typeof FORWARD_EFFECTS)[number], ReturnType<typeof record>>;
}

function start(input: ForwardInput = VIA_PROXY) {
  const log: Effect[] = [];
  const actor = createActor(forwardMachine.provide({ actions: recordingActions(log) }), {
    input,
    inspect: (ev: InspectionEvent) => {
      if (ev.type === '@xstate.microstep') for (const t of ev._transitions) taken.add(transitionKey(t));
    },
  });
  actor.start();
  return {
    actor,
    send<T extends ForwardEventType>(type: T, ...[fields]: FieldsArg<T>): void {
      actor.send({ ...(fields ?? {}), type, id: input.id } as ForwardEvent);
    },
    value: () => actor.getSnapshot().value,
    context: (): ForwardContext => actor.getSnapshot().context,
    status: () => actor.getSnapshot().status,
    output: (): ForwardOutput | undefined => actor.getSnapshot().output,
    /** The effects recorded since the last call, then forgets them. */
    effects(): Effect[] {
      return log.splice(0, log.length);
    },
  };
}
type Harness = ReturnType<typeof start>;

const startTimer = (timer: string): Effect => ({ name: 'startTimer', params: { timer } });
const cancelTimer = (timer: string): Effect => ({ name: 'cancelTimer', params: { timer } });
/** Leaving forwarding: its drain timer is cancelled (a no-op when it never started). */
const LEAVE_FORWARDING: Effect[] = [cancelTimer('drain')];
const dial = (attempt: number, address: string, viaProxy: boolean): Effect => ({ name: 'dialUpstream', params: { attempt, address, viaProxy } });
const close = (mode: 'graceful' | 'abort'): Effect => ({ name: 'closeSockets', params: { mode } });
const REQUEST: Effect = { name: 'sendRequest', params: { target: 'data' } };
const ABORT_DIAL: Effect = { name: 'abortDial' };
const LINK: Effect = { name: 'link' };
/** Leaving `linking` for teardown: its deadline goes, teardown's starts. */
const INTO_TEARDOWN = (mode: 'graceful' | 'abort'): Effect[] => [startTimer('teardown'), close(mode)];

const connecting = { linking: 'connecting' };
const requesting = { linking: 'requesting' };

function cleared(h: Harness): Harness {
  h.effects();
  return h;
}
function toRequesting(h: Harness = start()): Harness {
  h.send('BACKEND_CONNECTED', { attempt: 0, address: PROXY });
  assert.deepEqual(h.value(), requesting);
  return cleared(h);
}
function toForwarding(h: Harness = start()): Harness {
  toRequesting(h).send('PROXY_REPLY_OK');
  assert.equal(h.value(), 'forwarding');
  return cleared(h);
}
function toClosing(h: Harness = start()): Harness {
  toForwarding(h).send('SERVER_CLOSED', { read: 1, written: 1 });
  assert.deepEqual(h.value(), { teardown: 'closing' });
  return cleared(h);
}
function toAborting(h: Harness = start()): Harness {
  toForwarding(h).send('SHUTDOWN', { now: true });
  assert.deepEqual(h.value(), { teardown: 'aborting' });
  return cleared(h);
}

function assertFinal(h: Harness, expected: Partial<ForwardOutput>): ForwardOutput {
  assert.equal(h.value(), 'closed');
  assert.equal(h.status(), 'done');
  const out = h.output();
  assert.ok(out, 'a finished pair has an output');
  for (const [k, v] of Object.entries(expected)) assert.deepEqual(out[k as keyof ForwardOutput], v, `output.${k}`);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Through the proxy
// ---------------------------------------------------------------------------------------------------------------

describe('forward machine: through the proxy', () => {
  test('starts in linking.connecting: the connect deadline, then one dial of the proxy', () => {
    const h = start();
    assert.deepEqual(h.value(), connecting);
    assert.deepEqual(h.effects(), [startTimer('connect'), dial(0, PROXY, true)]);
    const c = h.context();
    assert.deepEqual(
      { attempt: c.attempt, upstream: c.upstream, clientOpen: c.clientOpen, serverOpen: c.serverOpen, reason: c.reason, code: c.code, message: c.message },
      { attempt: 0, upstream: null, clientOpen: true, serverOpen: false, reason: null, code: null, message: null },
    );
    assert.deepEqual([c.client, c.server], [{ read: 0, written: 0 }, { read: 0, written: 0 }]);
  });

  test('the bare machine (no-op effects, as replay runs it) takes the same path', () => {
    const actor = createActor(forwardMachine, { input: VIA_PROXY }).start();
    actor.send({ type: 'BACKEND_CONNECTED', id: 'f1', attempt: 0, address: PROXY });
    actor.send({ type: 'PROXY_REPLY_OK', id: 'f1' });
    assert.equal(actor.getSnapshot().value, 'forwarding');
  });

  test('whole story, effects in order: dial, request, reply ok, link, local client closes first', () => {
    const h = start();
    h.send('BACKEND_CONNECTED', { attempt: 0, address: PROXY });
    assert.deepEqual(h.value(), requesting);
    assert.equal(h.context().upstream, PROXY);
    assert.equal(h.context().serverOpen, true);
    h.send('PROXY_REPLY_OK');
    assert.equal(h.value(), 'forwarding');
    h.send('CLIENT_END');
    h.send('SERVER_END');
    h.send('CLIENT_CLOSED', { read: 100, written: 2000 });
    assert.deepEqual(h.value(), { teardown: 'closing' });
    h.send('SERVER_CLOSED', { read: 2100, written: 150 });
    assert.deepEqual(h.effects(), [
      startTimer('connect'),
      dial(0, PROXY, true),
      REQUEST, // still within the connect deadline: it covers the reply
      cancelTimer('connect'),
      LINK,
      ...LEAVE_FORWARDING,
      ...INTO_TEARDOWN('graceful'),
      cancelTimer('teardown'),
    ]);
    assert.deepEqual(
      assertFinal(h, {}),
      { id: 'f1', peer: VIA_PROXY.peer, target: 'data', via: PROXY, upstream: PROXY, reason: 'client-closed', code: null, message: null, up: 100, down: 2000 },
      'the output has exactly these fields',
    );
  });

  test('PROXY_DECLINED: the local client is reset (aborting), reason declined:<code>, the code and message kept', () => {
    const h = toRequesting();
    h.send('PROXY_DECLINED', { code: ReplyCode.NOT_ALLOWED, message: 'no allow rule' });
    assert.deepEqual(h.value(), { teardown: 'aborting' });
    assert.deepEqual(h.effects(), [cancelTimer('connect'), ...INTO_TEARDOWN('abort')]);
    h.send('SERVER_CLOSED', { read: 40, written: 30 });
    assert.deepEqual(h.value(), { teardown: 'aborting' });
    h.send('CLIENT_CLOSED', { read: 0, written: 0 });
    assert.deepEqual(h.effects(), [cancelTimer('teardown')]);
    assertFinal(h, { reason: 'declined:ERR_NOT_ALLOWED', code: ReplyCode.NOT_ALLOWED, message: 'no allow rule', upstream: PROXY, up: 0, down: 0 });
  });

  test('requesting: no reply within the deadline → aborting, unreachable ETIMEDOUT (nothing left to abort)', () => {
    const h = toRequesting();
    h.send('CONNECT_TIMEOUT', { attempt: 0 });
    assert.deepEqual(h.value(), { teardown: 'aborting' });
    assert.deepEqual(h.effects(), [cancelTimer('connect'), ...INTO_TEARDOWN('abort')]);
    assert.deepEqual([h.context().reason, h.context().code, h.context().message], ['unreachable', 'ETIMEDOUT', 'no reply from the proxy within connectTimeout']);
  });

  test('requesting: the proxy closes before replying → aborting, reason server-closed', () => {
    const h = toRequesting();
    h.send('SERVER_CLOSED', { read: 0, written: 50 });
    assert.deepEqual(h.value(), { teardown: 'aborting' });
    assert.equal(h.context().serverOpen, false);
    assert.deepEqual(h.effects(), [cancelTimer('connect'), ...INTO_TEARDOWN('abort')]);
    h.send('CLIENT_CLOSED', { read: 0, written: 0 });
    assertFinal(h, { reason: 'server-closed' });
  });

  test('requesting: a bad reply (SERVER_ERROR ERR_BAD_REPLY) → aborting, reason server-error:ERR_BAD_REPLY', () => {
    const h = toRequesting();
    h.send('SERVER_ERROR', { code: 'ERR_BAD_REPLY', message: 'bad reply frame' });
    assert.deepEqual(h.value(), { teardown: 'aborting' });
    assert.equal(h.context().reason, 'server-error:ERR_BAD_REPLY');
    assert.deepEqual(h.effects(), [cancelTimer('connect'), ...INTO_TEARDOWN('abort')]);
  });

  test('requesting: the local client closes → closing (graceful), no dial to abort', () => {
    const h = toRequesting();
    h.send('CLIENT_CLOSED', { read: 3, written: 0 });
    assert.deepEqual(h.value(), { teardown: 'closing' });
    assert.deepEqual(h.effects(), [cancelTimer('connect'), ...INTO_TEARDOWN('graceful')]);
    h.send('SERVER_CLOSED', { read: 0, written: 0 });
    assertFinal(h, { reason: 'client-closed', up: 3 });
  });

  test('requesting: the local client fails → aborting, reason client-error:<code>', () => {
    const h = toRequesting();
    h.send('CLIENT_ERROR', { code: 'ECONNRESET', message: 'reset' });
    assert.deepEqual(h.value(), { teardown: 'aborting' });
    assert.equal(h.context().reason, 'client-error:ECONNRESET');
    assert.deepEqual(h.effects(), [cancelTimer('connect'), ...INTO_TEARDOWN('abort')]);
  });

  test('requesting: SHUTDOWN → aborting, reason shutdown', () => {
    const h = toRequesting();
    h.send('SHUTDOWN');
    assert.deepEqual(h.value(), { teardown: 'aborting' });
    assert.equal(h.context().reason, 'shutdown');
    assert.deepEqual(h.effects(), [cancelTimer('connect'), ...INTO_TEARDOWN('abort')]);
  });

  test('the proxy refuses the connection: unreachable with its code; no failover with a single proxy', () => {
    const h = cleared(start());
    h.send('BACKEND_FAILED', { attempt: 0, address: PROXY, code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:5678' });
    assert.deepEqual(h.value(), { teardown: 'aborting' });
    assert.deepEqual(h.effects(), [cancelTimer('connect'), ...INTO_TEARDOWN('abort')]);
    h.send('CLIENT_CLOSED', { read: 0, written: 0 });
    assertFinal(h, { reason: 'unreachable', code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:5678', upstream: null, via: PROXY });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Direct (mxProxy = "none"): failover
// ---------------------------------------------------------------------------------------------------------------

describe('forward machine: direct, with failover', () => {
  test('starts by dialling the first address, not through the proxy', () => {
    const h = start(DIRECT_INPUT);
    assert.deepEqual(h.effects(), [startTimer('connect'), dial(0, DIRECT[0]!, false)]);
  });

  test('BACKEND_CONNECTED → forwarding at once: no request, deadline cancelled, linked', () => {
    const h = cleared(start(DIRECT_INPUT));
    h.send('BACKEND_CONNECTED', { attempt: 0, address: DIRECT[0]! });
    assert.equal(h.value(), 'forwarding');
    assert.deepEqual(h.effects(), [cancelTimer('connect'), LINK]);
    h.send('SERVER_CLOSED', { read: 5, written: 5 });
    h.send('CLIENT_CLOSED', { read: 5, written: 5 });
    assertFinal(h, { via: 'direct', upstream: DIRECT[0], reason: 'server-closed' });
  });

  test('BACKEND_FAILED → the next address, in a fresh linking (deadline restarted)', () => {
    const h = cleared(start(DIRECT_INPUT));
    h.send('BACKEND_FAILED', { attempt: 0, address: DIRECT[0]!, code: 'ECONNREFUSED', message: 'refused' });
    assert.deepEqual(h.value(), connecting);
    assert.equal(h.context().attempt, 1);
    assert.equal(h.context().reason, null, 'a failed attempt is not the pair\'s reason');
    assert.deepEqual(h.effects(), [cancelTimer('connect'), startTimer('connect'), dial(1, DIRECT[1]!, false)]);
  });

  test('CONNECT_TIMEOUT → the dial is abandoned, then the next address', () => {
    const h = cleared(start(DIRECT_INPUT));
    h.send('CONNECT_TIMEOUT', { attempt: 0 });
    assert.deepEqual(h.value(), connecting);
    assert.deepEqual(h.effects(), [cancelTimer('connect'), ABORT_DIAL, startTimer('connect'), dial(1, DIRECT[1]!, false)]);
  });

  test('stale events of an earlier attempt are ignored: state, context and effects unchanged', () => {
    const h = cleared(start(DIRECT_INPUT));
    h.send('CONNECT_TIMEOUT', { attempt: 0 });
    h.send('BACKEND_FAILED', { attempt: 1, address: DIRECT[1]!, code: 'EHOSTUNREACH', message: 'no route' });
    assert.equal(h.context().attempt, 2);
    h.effects();
    const before = h.context();
    h.send('BACKEND_CONNECTED', { attempt: 0, address: DIRECT[0]! });
    h.send('BACKEND_FAILED', { attempt: 1, address: DIRECT[1]!, code: 'ECONNREFUSED', message: 'late' });
    h.send('CONNECT_TIMEOUT', { attempt: 1 });
    assert.deepEqual(h.value(), connecting);
    assert.deepEqual(h.context(), before);
    assert.deepEqual(h.effects(), []);
    h.send('BACKEND_CONNECTED', { attempt: 2, address: DIRECT[2]! });
    assert.equal(h.value(), 'forwarding');
    assert.equal(h.context().upstream, DIRECT[2]);
  });

  test('the last address fails → aborting, unreachable with that failure\'s code', () => {
    const h = start(DIRECT_INPUT);
    h.send('BACKEND_FAILED', { attempt: 0, address: DIRECT[0]!, code: 'ECONNREFUSED', message: 'a' });
    h.send('BACKEND_FAILED', { attempt: 1, address: DIRECT[1]!, code: 'ECONNREFUSED', message: 'b' });
    h.effects();
    h.send('BACKEND_FAILED', { attempt: 2, address: DIRECT[2]!, code: 'EHOSTUNREACH', message: 'no route to host' });
    assert.deepEqual(h.value(), { teardown: 'aborting' });
    assert.deepEqual(h.effects(), [cancelTimer('connect'), ...INTO_TEARDOWN('abort')]);
    h.send('CLIENT_CLOSED', { read: 0, written: 0 });
    assertFinal(h, { reason: 'unreachable', code: 'EHOSTUNREACH', message: 'no route to host', upstream: null, via: 'direct' });
  });

  test('the last address times out → dial abandoned, aborting, unreachable ETIMEDOUT', () => {
    const h = start({ ...DIRECT_INPUT, addresses: [DIRECT[0]!] });
    h.effects();
    h.send('CONNECT_TIMEOUT', { attempt: 0 });
    assert.deepEqual(h.value(), { teardown: 'aborting' });
    assert.deepEqual(h.effects(), [cancelTimer('connect'), ABORT_DIAL, ...INTO_TEARDOWN('abort')]);
    assert.deepEqual([h.context().reason, h.context().code, h.context().message], ['unreachable', 'ETIMEDOUT', 'no answer within connectTimeout']);
  });

  test('through the proxy a stale CONNECT_TIMEOUT in requesting is ignored too (two proxies, the first failed)', () => {
    const h = start({ ...VIA_PROXY, addresses: [PROXY, '127.0.0.2:5678'] });
    h.send('BACKEND_FAILED', { attempt: 0, address: PROXY, code: 'ECONNREFUSED', message: 'refused' });
    h.send('BACKEND_CONNECTED', { attempt: 1, address: '127.0.0.2:5678' });
    assert.deepEqual(h.value(), requesting);
    h.effects();
    h.send('CONNECT_TIMEOUT', { attempt: 0 });
    assert.deepEqual(h.value(), requesting);
    assert.deepEqual(h.effects(), []);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The local client goes away, or the forwarder stops, while connecting
// ---------------------------------------------------------------------------------------------------------------

describe('forward machine: connecting, interrupted', () => {
  test('CLIENT_CLOSED → the dial is abandoned, closed at once (nothing upstream yet)', () => {
    const h = cleared(start());
    h.send('CLIENT_CLOSED', { read: 0, written: 0 });
    assert.deepEqual(h.effects(), [cancelTimer('connect'), ABORT_DIAL, ...INTO_TEARDOWN('graceful'), cancelTimer('teardown')]);
    assertFinal(h, { reason: 'client-closed', upstream: null });
  });

  test('CLIENT_ERROR → dial abandoned, aborting; its close finishes the pair', () => {
    const h = cleared(start());
    h.send('CLIENT_ERROR', { code: 'ECONNRESET', message: 'reset' });
    assert.deepEqual(h.value(), { teardown: 'aborting' });
    assert.deepEqual(h.effects(), [cancelTimer('connect'), ABORT_DIAL, ...INTO_TEARDOWN('abort')]);
    h.send('CLIENT_CLOSED', { read: 0, written: 0 });
    assertFinal(h, { reason: 'client-error:ECONNRESET' });
  });

  test('SHUTDOWN → dial abandoned, aborting, reason shutdown', () => {
    const h = cleared(start());
    h.send('SHUTDOWN');
    assert.deepEqual(h.value(), { teardown: 'aborting' });
    assert.deepEqual(h.effects(), [cancelTimer('connect'), ABORT_DIAL, ...INTO_TEARDOWN('abort')]);
    h.send('CLIENT_CLOSED', { read: 0, written: 0 });
    assertFinal(h, { reason: 'shutdown' });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Forwarding and teardown
// ---------------------------------------------------------------------------------------------------------------

describe('forward machine: forwarding and teardown', () => {
  test('CLIENT_END and SERVER_END (half-close) change nothing: the pipe passes the FIN on', () => {
    const h = toForwarding();
    const before = h.context();
    h.send('CLIENT_END');
    h.send('SERVER_END');
    assert.equal(h.value(), 'forwarding');
    assert.deepEqual(h.context(), before);
    assert.deepEqual(h.effects(), []);
  });

  test('SERVER_CLOSED → closing (graceful), then the local client\'s close → closed, reason server-closed', () => {
    const h = toForwarding();
    h.send('SERVER_CLOSED', { read: 7, written: 8 });
    assert.deepEqual(h.value(), { teardown: 'closing' });
    assert.deepEqual(h.effects(), [...LEAVE_FORWARDING, ...INTO_TEARDOWN('graceful')]);
    h.send('CLIENT_CLOSED', { read: 5, written: 6 });
    assert.deepEqual(h.effects(), [cancelTimer('teardown')]);
    assertFinal(h, { reason: 'server-closed', up: 5, down: 6 });
  });

  test('CLIENT_ERROR → aborting, reason client-error:<code>', () => {
    const h = toForwarding();
    h.send('CLIENT_ERROR', { code: 'ECONNRESET', message: 'read ECONNRESET' });
    assert.deepEqual(h.value(), { teardown: 'aborting' });
    assert.deepEqual(h.effects(), [...LEAVE_FORWARDING, ...INTO_TEARDOWN('abort')]);
    h.send('SERVER_CLOSED', { read: 1, written: 2 });
    h.send('CLIENT_CLOSED', { read: 3, written: 4 });
    assertFinal(h, { reason: 'client-error:ECONNRESET', up: 3, down: 4 });
  });

  test('SERVER_ERROR → aborting, reason server-error:<code>', () => {
    const h = toForwarding();
    h.send('SERVER_ERROR', { code: 'EPIPE', message: 'write EPIPE' });
    assert.deepEqual(h.value(), { teardown: 'aborting' });
    assert.deepEqual(h.effects(), [...LEAVE_FORWARDING, ...INTO_TEARDOWN('abort')]);
    h.send('CLIENT_CLOSED', { read: 0, written: 0 });
    h.send('SERVER_CLOSED', { read: 0, written: 0 });
    assertFinal(h, { reason: 'server-error:EPIPE' });
  });

  test('SHUTDOWN now → aborting: the forwarder resets linked connections at once', () => {
    const h = toForwarding();
    h.send('SHUTDOWN', { now: true });
    assert.deepEqual(h.value(), { teardown: 'aborting' });
    assert.deepEqual(h.effects(), [...LEAVE_FORWARDING, ...INTO_TEARDOWN('abort')]);
    h.send('CLIENT_CLOSED', { read: 1, written: 1 });
    h.send('SERVER_CLOSED', { read: 1, written: 1 });
    assertFinal(h, { reason: 'shutdown' });
  });

  test('SHUTDOWN drains: the drain timer starts, forwarding goes on; a second drain SHUTDOWN does not restart it', () => {
    const h = toForwarding();
    h.send('SHUTDOWN');
    assert.equal(h.value(), 'forwarding');
    assert.equal(h.context().draining, true);
    assert.deepEqual(h.effects(), [startTimer('drain')]);
    h.send('SHUTDOWN');
    assert.deepEqual(h.effects(), []);
    h.send('CLIENT_CLOSED', { read: 4, written: 4 });
    assert.deepEqual(h.effects(), [...LEAVE_FORWARDING, ...INTO_TEARDOWN('graceful')]);
    h.send('SERVER_CLOSED', { read: 4, written: 4 });
    assertFinal(h, { reason: 'client-closed' });
  });

  test('DRAIN_TIMEOUT while draining → aborting, reason shutdown; SHUTDOWN now while draining too', () => {
    const a = toForwarding();
    a.send('SHUTDOWN');
    a.effects();
    a.send('DRAIN_TIMEOUT');
    assert.deepEqual(a.value(), { teardown: 'aborting' });
    assert.deepEqual(a.effects(), [...LEAVE_FORWARDING, ...INTO_TEARDOWN('abort')]);
    assert.equal(a.context().reason, 'shutdown');
    const b = toForwarding();
    b.send('SHUTDOWN');
    b.send('SHUTDOWN', { now: true });
    assert.deepEqual(b.value(), { teardown: 'aborting' });
    assert.equal(b.context().reason, 'shutdown');
  });

  test('a stray DRAIN_TIMEOUT (no drain started) changes nothing', () => {
    const h = toForwarding();
    h.send('DRAIN_TIMEOUT');
    assert.equal(h.value(), 'forwarding');
    assert.deepEqual(h.effects(), []);
  });

  test('closing: an error on either side → aborting, the first reason kept', () => {
    const a = toClosing();
    a.send('CLIENT_ERROR', { code: 'ECONNRESET', message: 'reset' });
    assert.deepEqual(a.value(), { teardown: 'aborting' });
    assert.deepEqual(a.effects(), [close('abort')], 'still within teardown: its deadline runs on');
    assert.equal(a.context().reason, 'server-closed');
    const b = toForwarding();
    b.send('CLIENT_CLOSED', { read: 1, written: 1 });
    b.effects();
    b.send('SERVER_ERROR', { code: 'ECONNRESET', message: 'reset' });
    assert.deepEqual(b.value(), { teardown: 'aborting' });
    assert.deepEqual(b.effects(), [close('abort')]);
    b.send('SERVER_CLOSED', { read: 2, written: 2 });
    assertFinal(b, { reason: 'client-closed' });
  });

  test('TEARDOWN_TIMEOUT → whatever is left is destroyed, closed, the first reason kept', () => {
    const h = toAborting();
    h.send('TEARDOWN_TIMEOUT');
    assert.deepEqual(h.effects(), [cancelTimer('teardown'), close('abort')]);
    assertFinal(h, { reason: 'shutdown' });
  });

  test('events after the final state change nothing and run no effects', () => {
    const h = toClosing();
    h.send('CLIENT_CLOSED', { read: 1, written: 1 });
    const out = assertFinal(h, { reason: 'server-closed' });
    h.effects();
    h.send('CLIENT_CLOSED', { read: 9, written: 9 });
    h.send('SERVER_ERROR', { code: 'X', message: 'x' });
    h.send('PROXY_REPLY_OK');
    h.send('SHUTDOWN');
    assert.deepEqual(h.output(), out);
    assert.deepEqual(h.effects(), []);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Table-driven: the event union against the machine's state nodes
// ---------------------------------------------------------------------------------------------------------------

const EVENT_TYPES_RECORD: Record<ForwardEventType, true> = {
  PROXY_REPLY_OK: true,
  PROXY_DECLINED: true,
  BACKEND_CONNECTED: true,
  BACKEND_FAILED: true,
  CONNECT_TIMEOUT: true,
  TEARDOWN_TIMEOUT: true,
  CLIENT_END: true,
  SERVER_END: true,
  CLIENT_ERROR: true,
  SERVER_ERROR: true,
  CLIENT_CLOSED: true,
  SERVER_CLOSED: true,
  SHUTDOWN: true,
  DRAIN_TIMEOUT: true,
};
const EVENT_TYPES = Object.keys(EVENT_TYPES_RECORD) as ForwardEventType[];

function sampleEvent(type: ForwardEventType): ForwardEvent {
  const fields: { [T in ForwardEventType]: FieldsOf<T> } = {
    PROXY_REPLY_OK: {},
    PROXY_DECLINED: { code: ReplyCode.NOT_ALLOWED, message: 'no' },
    BACKEND_CONNECTED: { attempt: 0, address: PROXY },
    BACKEND_FAILED: { attempt: 0, address: PROXY, code: 'ECONNREFUSED', message: 'refused' },
    CONNECT_TIMEOUT: { attempt: 0 },
    TEARDOWN_TIMEOUT: {},
    CLIENT_END: {},
    SERVER_END: {},
    CLIENT_ERROR: { code: 'ECONNRESET', message: 'reset' },
    SERVER_ERROR: { code: 'ECONNRESET', message: 'reset' },
    CLIENT_CLOSED: { read: 1, written: 1 },
    SERVER_CLOSED: { read: 1, written: 1 },
    SHUTDOWN: {},
    DRAIN_TIMEOUT: {},
  };
  return { ...fields[type], type, id: VIA_PROXY.id } as ForwardEvent;
}

function allNodes(node: AnyStateNode = forwardMachine.root): AnyStateNode[] {
  return [node, ...Object.values(node.states).flatMap((child) => allNodes(child as AnyStateNode))];
}
const ownHandled = (node: AnyStateNode): string[] => [...node.transitions.keys()];
function handledIn(node: AnyStateNode): Set<string> {
  const out = new Set<string>();
  for (let n: AnyStateNode | undefined = node; n; n = n.parent) for (const t of ownHandled(n)) out.add(t);
  return out;
}
function nodeById(id: string): AnyStateNode {
  const node = allNodes().find((n) => n.id === id);
  assert.ok(node, `state node ${id}`);
  return node;
}

describe('forward machine: events against states (table-driven)', () => {
  test('every event type of the ForwardEvent union is handled somewhere, and nothing outside it', () => {
    const handled = new Set(allNodes().flatMap(ownHandled));
    assert.deepEqual(EVENT_TYPES.filter((t) => !handled.has(t)), []);
    const known = new Set<string>(EVENT_TYPES);
    assert.deepEqual([...handled].filter((t) => !known.has(t)), []);
  });

  test('the state tree is what the tests expect', () => {
    assert.deepEqual(
      allNodes().map((n) => `${n.id}:${n.type}`),
      [
        'forward:compound',
        'forward.linking:compound',
        'forward.linking.connecting:atomic',
        'forward.linking.requesting:atomic',
        'forward.forwarding:atomic',
        'forward.teardown:compound',
        'forward.teardown.closing:atomic',
        'forward.teardown.aborting:atomic',
        'forward.closed:final',
      ],
    );
    assert.equal(allNodes().filter((n) => n.always?.length).length, 1, 'teardown has the only always transition');
  });

  const STATES: Array<{ node: string; value: unknown; drive: () => Harness }> = [
    { node: 'forward.linking.connecting', value: connecting, drive: () => cleared(start()) },
    { node: 'forward.linking.requesting', value: requesting, drive: () => toRequesting() },
    { node: 'forward.forwarding', value: 'forwarding', drive: () => toForwarding() },
    { node: 'forward.teardown.closing', value: { teardown: 'closing' }, drive: () => toClosing() },
    { node: 'forward.teardown.aborting', value: { teardown: 'aborting' }, drive: () => toAborting() },
  ];

  test('the table covers every non-final atomic state', () => {
    const atomic = allNodes().filter((n) => n.type === 'atomic').map((n) => n.id).sort();
    assert.deepEqual(STATES.map((s) => s.node).sort(), atomic);
  });

  for (const s of STATES) {
    const ignored = EVENT_TYPES.filter((t) => !handledIn(nodeById(s.node)).has(t));
    test(`${s.node}: events it does not handle (${ignored.length}) leave state, context and effects unchanged`, () => {
      for (const type of ignored) {
        const h = s.drive();
        const before = h.context();
        h.actor.send(sampleEvent(type));
        assert.deepEqual(h.value(), s.value, `${type}: state`);
        assert.deepEqual(h.context(), before, `${type}: context`);
        assert.deepEqual(h.effects(), [], `${type}: effects`);
      }
    });
  }

  test('which events each state handles (a change here must come with tests)', () => {
    const table = Object.fromEntries(STATES.map((s) => [s.node.replace('forward.', ''), [...handledIn(nodeById(s.node))].sort()]));
    assert.deepEqual(table, {
      'linking.connecting': ['BACKEND_CONNECTED', 'BACKEND_FAILED', 'CLIENT_CLOSED', 'CLIENT_ERROR', 'CONNECT_TIMEOUT', 'SHUTDOWN'],
      'linking.requesting': ['CLIENT_CLOSED', 'CLIENT_ERROR', 'CONNECT_TIMEOUT', 'PROXY_DECLINED', 'PROXY_REPLY_OK', 'SERVER_CLOSED', 'SERVER_ERROR', 'SHUTDOWN'],
      forwarding: ['CLIENT_CLOSED', 'CLIENT_END', 'CLIENT_ERROR', 'DRAIN_TIMEOUT', 'SERVER_CLOSED', 'SERVER_END', 'SERVER_ERROR', 'SHUTDOWN'],
      'teardown.closing': ['CLIENT_CLOSED', 'CLIENT_ERROR', 'SERVER_CLOSED', 'SERVER_ERROR', 'TEARDOWN_TIMEOUT'],
      'teardown.aborting': ['CLIENT_CLOSED', 'CLIENT_ERROR', 'SERVER_CLOSED', 'SERVER_ERROR', 'TEARDOWN_TIMEOUT'],
    });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Determinism (replay)
// ---------------------------------------------------------------------------------------------------------------

function run(input: ForwardInput, events: ForwardEvent[], provideEffects = true) {
  const values: unknown[] = [];
  const log: Effect[] = [];
  const actor = createActor(provideEffects ? forwardMachine.provide({ actions: recordingActions(log) }) : forwardMachine, { input });
  actor.subscribe((s) => values.push(s.value));
  actor.start();
  for (const e of events) actor.send(e);
  return { values, effects: log, output: actor.getSnapshot().output };
}

describe('forward machine: determinism for replay', () => {
  const ev = (type: ForwardEventType, fields: object = {}): ForwardEvent => ({ ...fields, type, id: 'f1' }) as ForwardEvent;
  const sequence = [
    ev('BACKEND_FAILED', { attempt: 0, address: DIRECT[0], code: 'ECONNREFUSED', message: 'refused' }),
    ev('BACKEND_FAILED', { attempt: 0, address: DIRECT[0], code: 'ECONNREFUSED', message: 'stale' }),
    ev('CONNECT_TIMEOUT', { attempt: 1 }),
    ev('BACKEND_CONNECTED', { attempt: 2, address: DIRECT[2] }),
    ev('CLIENT_END'),
    ev('SERVER_ERROR', { code: 'ECONNRESET', message: 'reset' }),
    ev('CLIENT_CLOSED', { read: 10, written: 20 }),
    ev('SERVER_CLOSED', { read: 30, written: 40 }),
  ];

  test('the same events give the same states, effects and output; the bare machine the same states', () => {
    const a = run(DIRECT_INPUT, sequence);
    assert.deepEqual(run(DIRECT_INPUT, sequence), a);
    const bare = run(DIRECT_INPUT, sequence, false);
    assert.deepEqual(bare.values, a.values);
    assert.deepEqual(bare.output, a.output);
    assert.deepEqual(bare.effects, []);
    assert.deepEqual(a.output, { id: 'f1', peer: VIA_PROXY.peer, target: 'data', via: 'direct', upstream: DIRECT[2], reason: 'server-error:ECONNRESET', code: null, message: null, up: 10, down: 20 });
  });

  test('a different order gives a different run (the check can fail)', () => {
    const swapped = [...sequence];
    [swapped[5], swapped[6]] = [swapped[6]!, swapped[5]!];
    assert.equal(run(DIRECT_INPUT, swapped).output?.reason, 'client-closed');
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Coverage of the machine's transitions by the tests above
// ---------------------------------------------------------------------------------------------------------------

const filtered = [...process.execArgv, ...process.argv].some((a) => a.startsWith('--test-name-pattern') || a.startsWith('--test-only'));

test('every transition of the forward machine (each guarded branch, the always transition) was taken above', { skip: filtered && 'filtered run' }, () => {
  const all: string[] = [];
  for (const node of allNodes()) {
    for (const list of node.transitions.values()) for (const t of list) all.push(transitionKey(t));
    for (const t of node.always ?? []) all.push(transitionKey(t));
  }
  assert.equal(all.length, new Set(all).size, 'transition keys are unique');
  assert.equal(all.length, 32, 'transitions in the machine (a new one needs a test above)');
  assert.deepEqual(all.filter((k) => !taken.has(k)), []);
});

test("the recorded effect list is exactly the machine's side-effect actions", () => {
  const impl = forwardMachine.implementations.actions as Record<string, unknown>;
  const sideEffects = Object.keys(impl).filter((k) => typeof impl[k] === 'function' && !(impl[k] as { type?: string }).type);
  assert.deepEqual([...sideEffects].sort(), [...FORWARD_EFFECTS].sort());
});
