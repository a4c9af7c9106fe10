/**
 * What the proxy, or a forwarder, writes into the event log (the storage format is ./format.ts). Every record
 * carries a sequence number `s` (monotonic, across rotated files) and a timestamp `t` (ms since the epoch, from
 * the injected clock). Short keys: at `lifecycle` level a busy proxy writes several records per connection.
 *
 *   e  an event as it entered the root actor (ACCEPTED, TLS_OK, …, SHUTDOWN): what replay feeds back in
 *   x  a microstep of an actor that entered a state (`id` is the pair's id, or "#proxy"/"#forwarder" for the
 *      root), re-entries included: what replay checks (version 1: only changes of the state path)
 *   f  an effect a pair's machine asked for (dialBackend, sendDecline, …) with its parameters: checked (v2)
 *   o  a pair's output when it ended (reason, code, message, identity, target, backend, bytes): checked (v2)
 *   n  an input the machines did not take (a socket error before TLS): shown, never fed back (v2)
 *   c  a chunk forwarded (`traffic` level: its size; `payload` level: its bytes): shown, never fed back
 *   d  how many pairs that ended before TLS_OK were not recorded (over the budget; see recorder.ts): shown,
 *      never fed back
 */
import type { ForwarderEvent } from '../../machines/forwarder.js';
import type { ProxyEvent } from '../../machines/proxy.js';
import type { EventLogLevel } from '../shared/eventLogLevel.js';

export const LOG_FORMAT = 'mxproxy-eventlog';
/** 2: every microstep (re-entries too), effects (`f`), outputs (`o`), noted inputs (`n`). 1: state changes only. */
export const LOG_VERSION = 2;
/** The actor id transitions of the root supervisor are recorded under. */
export const ROOT_ID = '#proxy'; // never a connection id (those are base-36 numbers)
/** The same for the forwarder's root, in a forwarder's log. */
export const FORWARDER_ROOT_ID = '#forwarder';

/** Which machines wrote a log: the proxy's (connection pairs) or `mxproxy forward`'s (forward pairs). */
export type LogMachine = 'proxy' | 'forwarder';

export const rootIdOf = (machine: LogMachine): string => (machine === 'forwarder' ? FORWARDER_ROOT_ID : ROOT_ID);

/** Whether an actor id is a root's rather than a pair's. */
export const isRootId = (id: string): boolean => id === ROOT_ID || id === FORWARDER_ROOT_ID;

/** The machines of a log: from its header; logs written before forwarders had logs are the proxy's. */
export const machineOf = (header: HeaderRecord | undefined): LogMachine => (header?.machine === 'forwarder' ? 'forwarder' : 'proxy');

/** An event as it entered a root: the proxy's, or a forwarder's. */
export type LoggedEvent = ProxyEvent | ForwarderEvent;


export interface HeaderRecord {
  kind: 'header';
  format: typeof LOG_FORMAT;
  version: number;
  level: EventLogLevel;
  /** ms since the epoch when the proxy started logging. */
  started: number;
  host: string;
  pid: number;
  /** mxproxy's package version. */
  mxproxy: string;
  /** Whose log it is; absent (logs from before forwarders recorded) means the proxy's. */
  machine?: LogMachine;
  /** The worker (1..N) that wrote it, with `[proxy] workers` > 1; absent for a single process. */
  worker?: number;
}

export interface EventRecord {
  k: 'e';
  s: number;
  t: number;
  e: LoggedEvent;
}

export interface TransitionRecord {
  k: 'x';
  s: number;
  t: number;
  /** Connection (pair) id, or the root's: ROOT_ID, FORWARDER_ROOT_ID. */
  id: string;
  /** State path before ("handshake.tls"), null for the actor's first state. */
  from: string | null;
  to: string;
  /** Type of the event that caused it ("xstate.init" for the first state). */
  on: string;
}

export interface ChunkRecord {
  k: 'c';
  s: number;
  t: number;
  id: string;
  /** up: client → server; down: server → client. */
  d: 'up' | 'down';
  n: number;
  /** The bytes, at `payload` level only. */
  b?: Uint8Array;
}

/** An effect a pair's machine asked for, as the provided action was called (src/eventlog/effects.ts). */
export interface EffectRecord {
  k: 'f';
  s: number;
  t: number;
  id: string;
  /** The action's name: `dialBackend`, `sendDecline`, `closeSockets`, … */
  name: string;
  /** Its parameters as the machine resolved them; absent for an action without any. */
  params?: unknown;
}

/** What a pair's machine ended with: ConnectionOutput, or ForwardOutput in a forwarder's log. */
export interface OutputRecord {
  k: 'o';
  s: number;
  t: number;
  id: string;
  o: Record<string, unknown>;
}

/** An input of a pair that did not go to the machines (`why`), kept so the log is a complete account. */
export interface NotedRecord {
  k: 'n';
  s: number;
  t: number;
  id: string;
  /** Event-shaped: `{ type: 'CLIENT_ERROR', id, code, message }`. */
  e: { type: string } & Record<string, unknown>;
  /** `before-tls`: an error of the accepted socket while TLS was not done (the TLS outcome reports it). */
  why: string;
}

/** Pairs that ended before TLS_OK and were not written (none of their records), since `since`. */
export interface DroppedRecord {
  k: 'd';
  s: number;
  t: number;
  /** Pairs left out. */
  pairs: number;
  /** Their records (events and transitions) left out, and late events of such pairs. */
  records: number;
  /** ms since the epoch of the first record left out. */
  since: number;
}

export type LogRecord = EventRecord | TransitionRecord | EffectRecord | OutputRecord | NotedRecord | ChunkRecord | DroppedRecord;

/** The record kinds a version-1 log may hold; the others came with version 2. */
export const V1_KINDS: ReadonlySet<string> = new Set(['e', 'x', 'c', 'd']);

/** "handshake.tls" from XState's state value ({ handshake: 'tls' }). */
export function statePath(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object') {
    const parts = Object.entries(value as Record<string, unknown>).map(([k, v]) => {
      const sub = statePath(v);
      return sub ? `${k}.${sub}` : k;
    });
    return parts.length === 1 ? (parts[0] ?? '') : `{${parts.join(',')}}`;
  }
  return '';
}

export function isHeader(v: unknown): v is HeaderRecord {
  return typeof v === 'object' && v !== null && (v as HeaderRecord).kind === 'header' && (v as HeaderRecord).format === LOG_FORMAT;
}

/** Checks the shape of a decoded record; a log from elsewhere or a damaged one gets a message, not a crash. */
export function asLogRecord(v: unknown): LogRecord | string {
  if (typeof v !== 'object' || v === null) return 'not a record (expected a map)';
  const r = v as Partial<Record<string, unknown>>;
  if (typeof r.s !== 'number' || typeof r.t !== 'number') return 'record without sequence number or timestamp';
  switch (r.k) {
    case 'e': {
      const e = r.e as { type?: unknown } | undefined;
      if (typeof e !== 'object' || e === null || typeof e.type !== 'string') return 'event record without an event type';
      return v as EventRecord;
    }
    case 'x':
      if (typeof r.id !== 'string' || typeof r.to !== 'string' || typeof r.on !== 'string') return 'transition record without id, to or on';
      if (r.from !== null && typeof r.from !== 'string') return 'transition record with a bad from';
      return v as TransitionRecord;
    case 'f':
      if (typeof r.id !== 'string' || typeof r.name !== 'string') return 'effect record without id or name';
      return v as EffectRecord;
    case 'o':
      if (typeof r.id !== 'string' || typeof r.o !== 'object' || r.o === null) return 'output record without id or output';
      return v as OutputRecord;
    case 'n': {
      const e = r.e as { type?: unknown } | undefined;
      if (typeof r.id !== 'string' || typeof e !== 'object' || e === null || typeof e.type !== 'string' || typeof r.why !== 'string') {
        return 'noted record without id, event or why';
      }
      return v as NotedRecord;
    }
    case 'c':
      if (typeof r.id !== 'string' || (r.d !== 'up' && r.d !== 'down') || typeof r.n !== 'number') return 'chunk record without id, d or n';
      return v as ChunkRecord;
    case 'd':
      if (typeof r.pairs !== 'number' || typeof r.records !== 'number' || typeof r.since !== 'number') return 'dropped record without pairs, records or since';
      return v as DroppedRecord;
    default:
      return `unknown record kind ${JSON.stringify(r.k)}`;
  }
}
