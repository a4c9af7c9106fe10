/**
 * Replay as an oracle: the committed fixtures (test/fixtures/eventlog, recorded from real loopback runs) are
 * replayed through deliberately changed machines and rule matchers, and each change must be reported as a
 * divergence of the right kind at the right record — not as "all … match". The changes are made without
 * touching machines/: a machine with other implementations provided, one built from an edited config, a
 * decider from an edited config snapshot.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { assertEvent, assign, StateMachine } from 'xstate';
import { connectionMachine } from '../../machines/connection.js';
import { forwardMachine } from '../../machines/forward.js';
import { Authorizer } from '../../src/auth/rules.js';
import { readEventLogFile } from '../../src/eventlog/index.js';
import { asLogRecord, type LogRecord } from '../../src/eventlog/records.js';
import type { Divergence, ReplayerOptions } from '../../src/replay/engine.js';
import { divergenceReport } from '../../src/replay/report.js';
import { replayFiles } from '../../src/replay/run.js';
import { ReplyCode } from '../../src/shared/codes.js';

const DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/eventlog');
const fixture = (name: string) => path.join(DIR, name);

async function records(name: string): Promise<LogRecord[]> {
  const c = await readEventLogFile(fixture(name));
  return c.records.map((r) => asLogRecord(r) as LogRecord);
}

async function divergenceOf(name: string, replayer: Omit<ReplayerOptions, 'version'>): Promise<Divergence> {
  const r = await replayFiles([fixture(name)], { replayer });
  assert.equal(r.error, undefined);
  const d = r.summary.divergence;
  assert.ok(d, `${name}: the change must be caught, not replayed as matching`);
  return d;
}

/** The pair whose output says `reason`. */
function pairEndingWith(list: LogRecord[], reason: string): string {
  const o = list.find((r) => r.k === 'o' && r.o.reason === reason);
  assert.ok(o && o.k === 'o', `a pair ending ${reason}`);
  return o.id;
}

/** The first record of pair `id` after record `after` that matches `pick`. */
function firstOf(list: LogRecord[], id: string, after: number, pick: (r: LogRecord) => boolean): LogRecord {
  const r = list.find((x) => x.s > after && x.k !== 'd' && (x.k === 'e' ? (x.e as { id?: unknown }).id === id : x.id === id) && pick(x));
  assert.ok(r, `a record of pair ${id} after #${after}`);
  return r;
}

const eventOf = (list: LogRecord[], id: string, type: string): LogRecord =>
  firstOf(list, id, 0, (r) => r.k === 'e' && r.e.type === type);

describe('replay as an oracle: deliberate changes are caught at the right record', () => {
  it('unchanged machines and rules, given explicitly: every fixture replays matching', async () => {
    for (const name of ['declines.mxlog', 'teardown-failover.mxlog']) {
      const r = await replayFiles([fixture(name)], {
        replayer: { machines: { connection: connectionMachine }, authorizer: (c) => Authorizer.fromSnapshot(c) },
      });
      assert.equal(r.summary.divergence, undefined, r.summary.divergence?.message);
      assert.ok(r.summary.decisions > 0 && r.summary.effects > 0 && r.summary.outputs > 0);
    }
    for (const name of ['forward-proxy.mxlog', 'forward-direct.mxlog']) {
      const r = await replayFiles([fixture(name)], { replayer: { machines: { forward: forwardMachine } } });
      assert.equal(r.summary.divergence, undefined, r.summary.divergence?.message);
    }
  });

  it('another decline code for an unreachable target: an effect divergence at its sendDecline', async () => {
    const changed = connectionMachine.provide({
      actions: {
        decline: assign((_, params: { code: ReplyCode; message: string }) => {
          const code = params.code === ReplyCode.TARGET_UNREACHABLE ? ReplyCode.NOT_ALLOWED : params.code;
          return { code, message: params.message, reason: `declined:${code}` };
        }),
      },
    });
    const list = await records('teardown-failover.mxlog');
    const id = pairEndingWith(list, 'declined:ERR_TARGET_UNREACHABLE');
    const decline = firstOf(list, id, 0, (r) => r.k === 'f' && r.name === 'sendDecline');
    const d = await divergenceOf('teardown-failover.mxlog', { machines: { connection: changed } });
    assert.equal(d.kind, 'effect', d.message);
    assert.equal(d.id, id);
    assert.equal(d.at, decline.s);
    assert.ok(d.kind === 'effect' && d.actual);
    assert.deepEqual([d.expected?.name, (d.expected?.params as { code: string }).code], ['sendDecline', 'ERR_TARGET_UNREACHABLE']);
    assert.deepEqual([d.actual.name, (d.actual.params as { code: string }).code], ['sendDecline', 'ERR_NOT_ALLOWED']);
    assert.equal(d.actual.cause, eventOf(list, id, 'BACKEND_FAILED').s, 'traced to the event that caused it');
  });

  it('another reason for a client close: an output divergence at the pair\'s output (states and effects are the same)', async () => {
    const changed = connectionMachine.provide({
      actions: {
        clientClosed: assign(({ context, event }) => {
          assertEvent(event, 'CLIENT_CLOSED');
          return { clientOpen: false, client: { read: event.read, written: event.written }, reason: context.reason ?? 'server-closed' };
        }),
      },
    });
    const list = await records('declines.mxlog');
    const id = pairEndingWith(list, 'client-closed');
    const output = firstOf(list, id, 0, (r) => r.k === 'o');
    const d = await divergenceOf('declines.mxlog', { machines: { connection: changed } });
    assert.equal(d.kind, 'output', d.message);
    assert.equal(d.id, id);
    assert.equal(d.at, output.s);
    assert.match(d.message, /differs in reason: "client-closed" recorded, "server-closed" replayed$/);
    // A version-1 log holds no outputs: the same change goes unseen there, which is why version 2 records them.
    const v1 = await replayFiles([fixture('v1/declines.mxlog')], { replayer: { machines: { connection: changed } } });
    assert.equal(v1.summary.divergence, undefined);
  });

  it('the failover re-entry switched off: an effect divergence where the log has the re-entry\'s exit', async () => {
    // The same machine, built from its config with `reenter` taken off the failover transition.
    const config = connectionMachine.config as { states: Record<string, { on?: Record<string, unknown> }> };
    const connecting = config.states.connecting!;
    const [next, last] = connecting.on!.BACKEND_FAILED as [Record<string, unknown>, Record<string, unknown>];
    const edited = {
      ...config,
      states: { ...config.states, connecting: { ...connecting, on: { ...connecting.on, BACKEND_FAILED: [{ ...next, reenter: false }, last] } } },
    };
    const changed = new StateMachine(edited as never, connectionMachine.implementations as never) as unknown as typeof connectionMachine;
    const list = await records('teardown-failover.mxlog');
    const failed = list.find((r) => r.k === 'e' && r.e.type === 'BACKEND_FAILED' && list.some((x) => x.k === 'x' && x.s > r.s && x.from === 'connecting' && x.to === 'connecting'));
    assert.ok(failed && failed.k === 'e');
    const id = (failed.e as { id: string }).id;
    const exit = firstOf(list, id, failed.s, (r) => r.k === 'f');
    assert.ok(exit.k === 'f' && exit.name === 'cancelTimer', 'the log has the exit of connecting first');
    const d = await divergenceOf('teardown-failover.mxlog', { machines: { connection: changed } });
    assert.equal(d.kind, 'effect', d.message);
    assert.equal(d.id, id);
    assert.equal(d.at, exit.s);
    assert.equal(d.actual, null, 'replay neither left connecting nor dialled again');
  });

  it('a guard inverted (isCurrentAttempt): an effect divergence at the first thing the connect did', async () => {
    const changed = connectionMachine.provide({
      guards: {
        isCurrentAttempt: ({ context, event }) => {
          assertEvent(event, ['BACKEND_CONNECTED', 'BACKEND_FAILED', 'CONNECT_TIMEOUT']);
          return event.attempt !== context.attempt;
        },
      },
    });
    const list = await records('declines.mxlog');
    const connected = list.find((r) => r.k === 'e' && r.e.type === 'BACKEND_CONNECTED');
    assert.ok(connected && connected.k === 'e');
    const id = (connected.e as { id: string }).id;
    const first = firstOf(list, id, connected.s, (r) => r.k === 'f' || r.k === 'x');
    const d = await divergenceOf('declines.mxlog', { machines: { connection: changed } });
    assert.equal(d.id, id);
    assert.equal(d.at, first.s);
    assert.equal(d.kind, first.k === 'f' ? 'effect' : 'state', d.message);
    assert.equal(d.actual, null, 'replay ignored the connect');
  });

  it('a rule matcher changed (an identity glob that no longer matches): an authorization divergence at the first AUTHORIZED', async () => {
    const list = await records('declines.mxlog');
    const authorized = list.find((r) => r.k === 'e' && r.e.type === 'AUTHORIZED');
    assert.ok(authorized && authorized.k === 'e');
    const d = await divergenceOf('declines.mxlog', {
      authorizer: (c) => Authorizer.fromSnapshot({ ...c, allow: c.allow.map((rule) => ({ ...rule, identity: `${rule.identity}?` })) }),
    });
    assert.equal(d.kind, 'authorization', d.message);
    assert.equal(d.at, authorized.s);
    assert.ok(d.kind === 'authorization');
    assert.equal(d.actual.decision.type, 'DECLINED');
    assert.equal(d.actual.decision.type === 'DECLINED' && d.actual.decision.code, ReplyCode.NOT_ALLOWED);
    assert.match(d.message, /AUTHORIZED recorded, DECLINED decided/);
  });

  it('a rule matcher changed the other way (a decline that would now be allowed): caught at the DECLINED', async () => {
    const list = await records('declines.mxlog');
    const declined = list.find((r) => r.k === 'e' && r.e.type === 'DECLINED' && r.e.code === ReplyCode.NOT_ALLOWED);
    assert.ok(declined);
    const d = await divergenceOf('declines.mxlog', {
      // One rule more, after the others: every decline by the rules becomes an allow, no earlier match changes.
      authorizer: (c) => Authorizer.fromSnapshot({ ...c, allow: [...c.allow, { identity: '*', targets: ['*'], where: 'what-if:1' }] }),
    });
    assert.equal(d.kind, 'authorization', d.message);
    assert.equal(d.at, declined.s);
    assert.match(d.message, /DECLINED recorded, AUTHORIZED decided/);
  });

  it('a forwarder: a failover that no longer re-enters linking (the connect deadline not restarted) is caught', async () => {
    // Its failover targets the parent state, which XState re-enters with or without `reenter`; the change that
    // matters is to stay in linking.connecting: then neither the deadline nor the dial is restarted.
    const config = forwardMachine.config as { states: Record<string, { states?: Record<string, { on?: Record<string, unknown> }> }> };
    const linking = config.states.linking!;
    const connecting = linking.states!.connecting!;
    const [next, last] = connecting.on!.BACKEND_FAILED as [Record<string, unknown>, Record<string, unknown>];
    const edited = {
      ...config,
      states: {
        ...config.states,
        linking: { ...linking, states: { ...linking.states, connecting: { ...connecting, on: { ...connecting.on, BACKEND_FAILED: [{ ...next, target: undefined }, last] } } } },
      },
    };
    const changed = new StateMachine(edited as never, forwardMachine.implementations as never) as unknown as typeof forwardMachine;
    const list = await records('forward-direct.mxlog');
    const failed = list.find((r) => r.k === 'e' && r.e.type === 'BACKEND_FAILED');
    assert.ok(failed && failed.k === 'e');
    const exit = firstOf(list, (failed.e as { id: string }).id, failed.s, (r) => r.k === 'f');
    const d = await divergenceOf('forward-direct.mxlog', { machines: { forward: changed } });
    assert.equal(d.kind, 'effect', d.message);
    assert.equal(d.at, exit.s);
    assert.equal(d.actual, null);
  });

  it('the report names the check, the record, expected against got, with the records before it', async () => {
    const changed = connectionMachine.provide({
      actions: {
        decline: assign((_, params: { code: ReplyCode; message: string }) => ({ code: ReplyCode.NOT_ALLOWED, message: params.message, reason: 'declined:ERR_NOT_ALLOWED' })),
      },
    });
    const d = await divergenceOf('teardown-failover.mxlog', { machines: { connection: changed } });
    const list = await records('teardown-failover.mxlog');
    const context = list.filter((r) => r.s <= d.at && r.k !== 'c' && r.k !== 'd' && (r.k === 'e' ? (r.e as { id?: unknown }).id === d.id : r.id === d.id)).slice(-6);
    const lines = divergenceReport(d, context);
    assert.match(lines[0]!, new RegExp(`^DIVERGENCE at record #${d.at} \\(effect\\): connection ${d.id}: effect: recorded sendDecline \\{"code":"ERR_TARGET_UNREACHABLE",`));
    assert.ok(lines.some((l) => l.endsWith('<- does not match') && l.includes(`#${d.at}`) && l.includes('do sendDecline code=ERR_TARGET_UNREACHABLE')));
    assert.match(lines.at(-2)!, /^ {2}replay made: {2}sendDecline \{"code":"ERR_NOT_ALLOWED",.*, caused by event #\d+$/);
    assert.match(lines.at(-1)!, new RegExp(`^ {2}the log has: {2}sendDecline \\{"code":"ERR_TARGET_UNREACHABLE",.* \\(record #${d.at}\\)$`));
  });
});
