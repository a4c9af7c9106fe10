/**
 * The connection machine driven along paths from its graph: @xstate/graph explores every state reachable with
 * valid events (test/helpers/connectionEvents.ts makes them, for the event types the machine itself names), and
 * each path is replayed from the start through a fresh actor with recording effects. The actor must arrive
 * where the graph said, and the effects it ran on the way must make sense together: timers started once and
 * cancelled by the end, dial attempts in order, a decline sent only on entering teardown.declining, …
 *
 * Nothing here lists states or events: a state or event added to the machine is explored and checked as it
 * comes (an event type without a generator fails the first test, by name).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { getAdjacencyMap, getShortestPaths, type StatePath } from '@xstate/graph';
import { createActor, type AnyStateNode, type AnyTransitionDefinition, type InspectionEvent } from 'xstate';
import { connectionMachine, type ConnectionEvent } from '../../machines/connection.js';
import { walkMachine } from '../../src/diagram/walk.js';
import { ADDRESSES, eventsFor, INPUT, machineEventTypes, missingGenerators, noGeneratorMessage } from '../helpers/connectionEvents.js';
import { CONNECTION_EFFECTS } from '../helpers/machineEffects.js';

interface Effect {
  name: string;
  params?: unknown;
}
/** The effects one event caused, and where the actor was after it. */
interface Step {
  event: ConnectionEvent | { type: 'xstate.init' };
  value: unknown;
  status: string;
  effects: Effect[];
}

type Snapshot = ReturnType<typeof connectionMachine.transition>;
type Path = StatePath<Snapshot, ConnectionEvent>;

const model = walkMachine(connectionMachine);

function recordingActions(log: Effect[]) {
  const record =
    (name: string) =>
    (_: unknown, params: unknown): void => {
      log.push(params === undefined ? { name } : { name, params });
    };
  return Object.fromEntries(CONNECTION_EFFECTS.map((name) => [name, record(name)]));
}

/** The path's events through a fresh actor with recording effects: what each step did. */
function drive(path: Path): { steps: Step[]; actor: ReturnType<typeof createActor<typeof connectionMachine>> } {
  const log: Effect[] = [];
  const actor = createActor(connectionMachine.provide({ actions: recordingActions(log) }), {
    input: INPUT,
  });
  actor.start();
  const snap = () => actor.getSnapshot();
  const steps: Step[] = [{ event: { type: 'xstate.init' }, value: snap().value, status: snap().status, effects: log.splice(0) }];
  for (const { event } of path.steps) {
    if (event.type === ('xstate.init' as string)) continue; // the graph's first step is the start itself
    actor.send(event);
    steps.push({ event, value: snap().value, status: snap().status, effects: log.splice(0) });
  }
  return { steps, actor };
}

const describeValue = (value: unknown): string => (typeof value === 'string' ? value : JSON.stringify(value).replace(/[{}"]/g, '').replace(/:/g, '.'));
const describePath = (steps: Step[]) => steps.map((s) => s.event.type).join(' → ');

/** The consistency rules; each failure names the path. */
function checkEffects(steps: Step[]): void {
  const where = describePath(steps);
  const running = new Set<string>();
  let dialed = -1;
  let addresses: string[] | null = null;
  let declines = 0;
  let linked = false;
  let aborted = false;
  for (const step of steps) {
    if (step.event.type === 'AUTHORIZED') addresses = (step.event as Extract<ConnectionEvent, { type: 'AUTHORIZED' }>).addresses;
    for (const e of step.effects) {
      const params = (e.params ?? {}) as Record<string, unknown>;
      switch (e.name) {
        case 'startTimer':
          // Starting a running timer restarts it (src/proxy/effects.ts): allowed, a re-arm.
          running.add(String(params.timer));
          break;
        case 'cancelTimer':
          // Cancelling a timer that is not running is a no-op (src/proxy/effects.ts, like clearTimeout): the
          // forwarding state cancels the half-close deadline on exit whether or not a FIN started it.
          running.delete(String(params.timer));
          break;
        case 'dialBackend':
          assert.equal(params.attempt, dialed + 1, `${where}: dial attempts go 0, 1, … in order`);
          dialed = params.attempt as number;
          assert.ok(addresses, `${where}: a dial before AUTHORIZED`);
          assert.equal(params.address, addresses[dialed], `${where}: attempt ${dialed} dials its own address`);
          break;
        case 'abortDial':
          assert.ok(dialed >= 0, `${where}: abortDial without a dial`);
          break;
        case 'sendDecline':
          declines++;
          assert.deepEqual(step.value, { teardown: 'declining' }, `${where}: sendDecline outside teardown.declining`);
          break;
        case 'link':
          assert.ok(!linked, `${where}: linked twice`);
          assert.ok(dialed >= 0, `${where}: link without a dial`);
          linked = true;
          break;
        case 'closeSockets':
          // Teardown only escalates: once aborted, never graceful again.
          if (params.mode === 'abort') aborted = true;
          else assert.ok(!aborted, `${where}: graceful close after an abort`);
          break;
      }
    }
  }
  assert.ok(declines <= 1, `${where}: ${declines} declines sent`);
  assert.ok(dialed < ADDRESSES.length, `${where}: more dials than addresses`);
  const last = steps.at(-1)!;
  if (last.status === 'done') {
    assert.equal(last.value, 'closed', `${where}: done elsewhere than closed`);
    assert.deepEqual([...running], [], `${where}: timers left running at closed`);
  }
}

describe('connection machine: paths from its graph', () => {
  test('every event type the machine names has a generator of valid events', () => {
    const missing = missingGenerators(model);
    if (missing.length) assert.fail(noGeneratorMessage(missing));
    assert.ok(machineEventTypes(model).length >= 10, 'the event types came from the machine');
  });

  // The traversal needs every generator; without one the test above says which, and these are not run.
  const paths: Path[] = missingGenerators(model).length ? [] : getShortestPaths(connectionMachine, { input: INPUT, events: eventsFor(connectionMachine) });

  /** The shortest path to each state value (the graph's states also differ by context: many paths per value). */
  const shortestByValue = new Map<string, Path>();
  for (const p of paths) {
    const key = describeValue(p.state.value);
    const best = shortestByValue.get(key);
    if (!best || p.steps.length < best.steps.length) shortestByValue.set(key, p);
  }

  test('every state of the machine is reached (an unreachable one needs events it cannot get here)', () => {
    const reached = new Set([...shortestByValue.keys()]);
    const leaves = model.states.filter((s) => model.states.every((c) => c.parent !== s.path)).map((s) => s.path);
    assert.deepEqual(leaves.filter((p) => !reached.has(p)), []);
  });

  test('every transition of the machine is taken somewhere in the graph (the generators make what its guards want)', () => {
    const taken = new Set<string>();
    const adjacency = getAdjacencyMap(connectionMachine, { input: INPUT, events: eventsFor(connectionMachine) });
    for (const { state, transitions } of Object.values(adjacency)) {
      for (const { event } of Object.values(transitions) as Array<{ event: ConnectionEvent }>) {
        const actor = createActor(connectionMachine, {
          snapshot: state,
          input: INPUT,
          inspect: (ev: InspectionEvent) => {
            if (ev.type === '@xstate.microstep') for (const t of ev._transitions) taken.add(transitionKey(t));
          },
        }).start();
        actor.send(event);
      }
    }
    const all = allDefinitions().map(transitionKey);
    assert.equal(all.length, model.transitions.length, 'one definition per transition of the model');
    assert.deepEqual(all.filter((k) => !taken.has(k)), []);
  });

  for (const [value, path] of shortestByValue) {
    test(`${value}: its shortest path (${path.steps.length - 1} events) reaches it, effects consistent`, () => {
      const { steps, actor } = drive(path);
      assert.deepEqual(actor.getSnapshot().value, path.state.value, describePath(steps));
      assert.deepEqual(actor.getSnapshot().context, path.state.context, describePath(steps));
      checkEffects(steps);
    });
  }

  test(`all ${paths.length} reachable snapshots (state and context), each by its shortest path: effects consistent`, () => {
    assert.ok(paths.length > shortestByValue.size, 'the graph tells contexts apart');
    for (const path of paths) {
      const { steps, actor } = drive(path);
      assert.deepEqual(actor.getSnapshot().value, path.state.value, describePath(steps));
      checkEffects(steps);
    }
  });

  test('the rules can fail: a decline sent outside teardown.declining, a timer left running', () => {
    const init: Step = { event: { type: 'xstate.init' }, value: { handshake: 'tls' }, status: 'active', effects: [{ name: 'startTimer', params: { timer: 'handshake' } }] };
    const decline: Step = { event: { type: 'SHUTDOWN', id: 'c1' }, value: 'forwarding', status: 'active', effects: [{ name: 'sendDecline', params: {} }] };
    assert.throws(() => checkEffects([init, decline]), /sendDecline outside teardown.declining/);
    const done: Step = { event: { type: 'TEARDOWN_TIMEOUT', id: 'c1' }, value: 'closed', status: 'done', effects: [] };
    assert.throws(() => checkEffects([init, done]), /timers left running/);
  });
});

function allDefinitions(node: AnyStateNode = connectionMachine.root): AnyTransitionDefinition[] {
  return [
    ...[...node.transitions.values()].flat(),
    ...(node.always ?? []),
    ...Object.values(node.states).flatMap((child) => allDefinitions(child as AnyStateNode)),
  ];
}

/** A transition definition by source state, event (or `always`) and its index among that event's branches. */
function transitionKey(t: AnyTransitionDefinition): string {
  const source = t.source as AnyStateNode;
  const branches = t.eventType === '' ? (source.always ?? []) : (source.transitions.get(t.eventType) ?? []);
  return `${source.id} ${t.eventType || 'always'} #${branches.indexOf(t)}`;
}
