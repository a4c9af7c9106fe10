/**
 * Valid events for the connection machine, generated from the state it is in: what graph traversal
 * (@xstate/graph) sends to explore every reachable state. The event types come from the machine itself (its
 * walked model), the payloads from the table below; a type the machine handles that has no entry here makes
 * `eventsFor` throw, so whoever adds an event to the machine adds its generator too.
 */
import type { AnyStateMachine } from 'xstate';
import type { ConnectionContext, ConnectionEvent, ConnectionEventType, ConnectionInput } from '../../machines/connection.js';
import { ReplyCode } from '../../src/shared/codes.js';
import { walkMachine, type DiagramModel } from '../../src/diagram/walk.js';

type FieldsOf<T extends ConnectionEventType> = Omit<Extract<ConnectionEvent, { type: T }>, 'type' | 'id'>;
/** The payloads worth sending of one event type, given the pair's context. */
type Generator<T extends ConnectionEventType> = (context: ConnectionContext) => Array<FieldsOf<T>>;

export const INPUT: ConnectionInput = { id: 'c1', peer: '127.0.0.1:1000', local: '127.0.0.1:5678' };
/** Two addresses: one failover, then out of addresses. */
export const ADDRESSES = ['10.0.0.1:502', '10.0.0.2:502'];

/** The current attempt, and the one before it once there is one (a late answer the guard must ignore). */
const attempts = (c: ConnectionContext): number[] => (c.attempt > 0 ? [c.attempt, c.attempt - 1] : [c.attempt]);

/**
 * Partial on purpose: a new event type in the union compiles, and the traversal then fails by name (see
 * `missingGenerators`), which says what to add here.
 */
export const EVENT_GENERATORS: Partial<{ [T in ConnectionEventType]: Generator<T> }> = {
  TLS_OK: () => [{ identity: 'CN=plc-client-1', identities: ['CN=plc-client-1'], protocol: 'TLSv1.3', alpn: null, resumed: false }],
  TLS_FAILED: () => [{ code: 'ERR_SSL_NO_CERT', message: 'peer did not return a certificate' }],
  REQUEST: () => [{ target: 'scada-a', earlyBytes: 0 }],
  REQUEST_INVALID: () => [{ code: ReplyCode.BAD_REQUEST, message: 'bad frame' }],
  AUTHORIZED: () => [{ addresses: ADDRESSES }],
  DECLINED: () => [{ code: ReplyCode.NOT_ALLOWED, message: 'no rule allows it' }],
  BACKEND_CONNECTED: (c) => attempts(c).map((attempt) => ({ attempt, address: c.addresses[attempt] ?? '' })),
  BACKEND_FAILED: (c) => attempts(c).map((attempt) => ({ attempt, address: c.addresses[attempt] ?? '', code: 'ECONNREFUSED', message: 'refused' })),
  HANDSHAKE_TIMEOUT: () => [{}],
  CONNECT_TIMEOUT: (c) => attempts(c).map((attempt) => ({ attempt })),
  TEARDOWN_TIMEOUT: () => [{}],
  HALF_CLOSE_TIMEOUT: () => [{}],
  IDLE_TIMEOUT: () => [{}],
  CLIENT_END: () => [{}],
  SERVER_END: () => [{}],
  CLIENT_ERROR: () => [{ code: 'ECONNRESET', message: 'reset by peer' }],
  SERVER_ERROR: () => [{ code: 'ECONNRESET', message: 'reset by peer' }],
  CLIENT_CLOSED: () => [{ read: 10, written: 20 }],
  SERVER_CLOSED: () => [{ read: 30, written: 40 }],
  // A drain SHUTDOWN, and the one that closes at once.
  SHUTDOWN: () => [{}, { now: true }],
  DRAIN_TIMEOUT: () => [{}],
  REVOKED: () => [{ reason: 'rule' }, { reason: 'certificate' }],
};

/** The event types the machine's transitions name (wildcards and XState's own events left out). */
export function machineEventTypes(model: DiagramModel): string[] {
  const types = model.transitions.map((t) => t.event).filter((e): e is string => e !== null && !e.includes('*') && !e.startsWith('xstate.'));
  return [...new Set(types)];
}

export function missingGenerators(model: DiagramModel): string[] {
  return machineEventTypes(model).filter((t) => !Object.hasOwn(EVENT_GENERATORS, t));
}

/** State paths active in a state value, ancestors included: { teardown: 'declining' } → teardown, teardown.declining. */
export function activePaths(value: unknown, prefix = ''): string[] {
  if (typeof value === 'string') return [`${prefix}${value}`];
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => [`${prefix}${k}`, ...activePaths(v, `${prefix}${k}.`)]);
}

/**
 * For @xstate/graph's `events` option: every valid event the active states (and the root) handle, one per
 * payload the table makes for the current context. A delayed transition's (`after`) event is sent as XState
 * would fire it, with no payload.
 */
export function eventsFor(machine: AnyStateMachine): (snapshot: { value: unknown; context: ConnectionContext }) => ConnectionEvent[] {
  const model = walkMachine(machine);
  const missing = missingGenerators(model);
  if (missing.length) throw new Error(noGeneratorMessage(missing));
  const handledBy = new Map<string, string[]>();
  for (const t of model.transitions) {
    const delayed = t.event?.startsWith('xstate.after.') === true;
    if (t.event === null || !(delayed || machineEventTypes(model).includes(t.event))) continue;
    const list = handledBy.get(t.source) ?? [];
    if (!list.includes(t.event)) list.push(t.event);
    handledBy.set(t.source, list);
  }
  return (snapshot) => {
    const types = new Set(['', ...activePaths(snapshot.value)].flatMap((p) => handledBy.get(p) ?? []));
    return [...types].flatMap((type) => {
      if (type.startsWith('xstate.after.')) return [{ type } as unknown as ConnectionEvent]; // not in the union: XState's own
      const generate = EVENT_GENERATORS[type as ConnectionEventType] as Generator<ConnectionEventType>;
      return generate(snapshot.context).map((fields) => ({ ...fields, type, id: INPUT.id }) as ConnectionEvent);
    });
  };
}

export function noGeneratorMessage(types: string[]): string {
  return `no event generator for ${types.join(', ')}: add one to EVENT_GENERATORS in test/helpers/connectionEvents.ts that makes valid events of that type (see test/unit/connection.machine.test.ts for the payloads)`;
}
