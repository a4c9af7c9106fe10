/**
 * Replay: the recorded events go back through the same machines (the proxy's or a forwarder's, as the log's
 * header says) — with no-op effects, so no socket, timer or file is touched — and what they do is checked
 * against the log, per pair and in order:
 *
 *   state          every microstep (`x`): from, to, and the event that caused it
 *   effect         every effect the machine asks for (`f`): its name and parameters
 *   output         what the pair ended with (`o`): reason, code, message, identity, target, backend, bytes
 *   authorization  each request decided again under the config the log holds (the last CONFIG_LOADED before
 *                  it), against the AUTHORIZED or DECLINED recorded
 *
 * A version-1 log recorded state changes only (no re-entries, effects, outputs); it is checked for those.
 *
 * Machines never read a clock: timeouts are events in the log like any other, so the order of the events is
 * all replay needs. The records' timestamps drive `now`, for filters and output.
 */
import { createActor, type AnyActorRef } from 'xstate';
import { connectionMachine } from '../../machines/connection.js';
import { forwardMachine } from '../../machines/forward.js';
import { ForwardRegistry, superviseForwardsWith } from '../../machines/forwarder.js';
import { ConnectionRegistry, superviseWith } from '../../machines/registry.js';
import { Authorizer, CERTIFICATE_WHY, decideNames, decisionEvent, type DecisionEvent } from '../auth/rules.js';
import { CONNECTION_EFFECTS, FORWARD_EFFECTS, noopEffects, recordEffects, type EffectSink } from '../eventlog/effects.js';
import {
  rootIdOf,
  type EffectRecord,
  type EventRecord,
  type LogMachine,
  type LogRecord,
  type OutputRecord,
  type TransitionRecord,
} from '../eventlog/records.js';
import { MicrostepTracker, TransitionTracker, type Transition } from '../eventlog/transitions.js';
import { sameData } from '../shared/canonical.js';
import { ReplyCode } from '../shared/codes.js';
import type { ConfigSnapshot } from '../shared/events.js';

/** What replay made, with the sequence number of the event whose replay made it. */
export interface ReplayedTransition extends Transition {
  cause: number;
}
export interface ReplayedEffect {
  id: string;
  name: string;
  params?: unknown;
  cause: number;
}
export interface ReplayedOutput {
  id: string;
  o: Record<string, unknown>;
  cause: number;
}
/** A request decided again: what the AUTHORIZED or DECLINED should say. */
export interface ReplayedDecision {
  id: string;
  decision: DecisionEvent;
  /** The config it was decided under: its file and hash. */
  config: string;
  cause: number;
}

interface DivergenceBase {
  /** The connection, or the root (ROOT_ID, FORWARDER_ROOT_ID). */
  id: string;
  /** Sequence number of the record where it was found. */
  at: number;
  message: string;
}

/** Which of the checks failed: `expected` is the record the log has (null: none there), `actual` what replay made. */
export type Divergence = DivergenceBase &
  (
    | { kind: 'state'; expected: TransitionRecord | null; actual: ReplayedTransition | null }
    | { kind: 'effect'; expected: EffectRecord | null; actual: ReplayedEffect | null }
    | { kind: 'output'; expected: OutputRecord | null; actual: ReplayedOutput | null }
    | { kind: 'authorization'; expected: EventRecord; actual: ReplayedDecision }
  );
export type DivergenceKind = Divergence['kind'];

export interface ReplaySummary {
  /** The log's version (header): 1 checks states only. */
  version: number;
  events: number;
  transitions: number;
  effects: number;
  outputs: number;
  /** Requests decided again and compared with the recorded decision. */
  decisions: number;
  /** Requests that could not be decided again: no CONFIG_LOADED before them in the log. */
  undecided: number;
  /** Inputs the machines did not take (`n` records). */
  noted: number;
  chunks: number;
  /** Connections accepted within the log. */
  connections: number;
  /** Connections whose ACCEPTED is not in the log (it began in a file rotated away), or that were open
   * across a gap in the sequence numbers: not checked. */
  preexisting: number;
  /** Things replay made after the last record (a log cut off by power loss): not checked. */
  unchecked: number;
  /** Pairs that ended before TLS_OK and were left out of the log (its `d` records). */
  unrecorded: number;
  divergence: Divergence | undefined;
}

/** Decides requests: an Authorizer, or a stand-in (tests of the oracle). */
export type Decider = Pick<Authorizer, 'decide'>;

export interface ReplayerOptions {
  /** The log's version (from its header); default the current one's checks (2). */
  version?: number;
  /**
   * The machines to replay with instead of machines/ (tests: a deliberately changed machine must be caught).
   * Their effects are replaced by recorded no-ops as usual.
   */
  machines?: { connection?: typeof connectionMachine; forward?: typeof forwardMachine };
  /** How a logged config becomes a decider (tests: a changed rule matcher); default Authorizer.fromSnapshot. */
  authorizer?: (config: ConfigSnapshot) => Decider;
  /** Sees each transition the machines make, as they make it (the inspector's replay view). */
  onTransition?: (t: ReplayedTransition) => void;
}

const sameTransition = (a: Transition, b: Transition): boolean => a.from === b.from && a.to === b.to && a.on === b.on;

export const describeTransition = (t: Transition): string => `${t.from ?? '(start)'} → ${t.to} on ${t.on}`;

/** `dialBackend {"address":"10.0.0.7:502","attempt":1}` (raw: the caller escapes it for printing). */
export const describeEffect = (e: { name: string; params?: unknown }): string =>
  e.params === undefined ? e.name : `${e.name} ${JSON.stringify(e.params)}`;

/** The fields of a decision event that differ from `want`, as `field: recorded ≠ decided`. */
function decisionDifference(recorded: Record<string, unknown>, want: DecisionEvent): string | undefined {
  if (recorded.type !== want.type) return `${String(recorded.type)} recorded, ${want.type} decided`;
  const diffs: string[] = [];
  for (const [key, value] of Object.entries(want)) {
    if (!sameData(recorded[key], value)) diffs.push(`${key}: ${JSON.stringify(recorded[key]) ?? 'absent'} recorded, ${JSON.stringify(value)} decided`);
  }
  return diffs.length > 0 ? diffs.join('; ') : undefined;
}

/** Per actor, things replay made and the log has not confirmed yet. */
class Pending<T> {
  private readonly map = new Map<string, T[]>();
  push(id: string, item: T): void {
    const list = this.map.get(id);
    if (list) list.push(item);
    else this.map.set(id, [item]);
  }
  shift(id: string): T | undefined {
    const list = this.map.get(id);
    const item = list?.shift();
    if (list && list.length === 0) this.map.delete(id);
    return item;
  }
  first(id: string): T | undefined {
    return this.map.get(id)?.[0];
  }
  delete(id: string): void {
    this.map.delete(id);
  }
  entries(): IterableIterator<[string, T[]]> {
    return this.map.entries();
  }
}

export class Replayer {
  private readonly root: AnyActorRef;
  /** Told of each event handed to the root (version 1: the cause of root transitions), and of root snapshots. */
  private readonly tracker: { entering(type: string): void; root(snapshot: { value: unknown; status: string }): void };
  /** The id the root's transitions are recorded under, and how messages name it. */
  private readonly rootId: string;
  private readonly rootName: string;
  /** Version 2 and later: microsteps, effects, outputs and decisions are checked. */
  private readonly full: boolean;
  private readonly states = new Pending<ReplayedTransition>();
  private readonly effects = new Pending<ReplayedEffect>();
  private readonly outputs = new Pending<ReplayedOutput>();
  /** Per pair: the decision its request should have had, until the log's AUTHORIZED or DECLINED. */
  private readonly decisions = new Map<string, ReplayedDecision>();
  private readonly decide: (config: ConfigSnapshot) => Decider;
  /** The config in force (the last CONFIG_LOADED replayed) and its decider. */
  private config: { snapshot: ConfigSnapshot; decider: Decider } | undefined;
  private readonly accepted = new Set<string>();
  /** Accepted and not yet seen reaching `closed` in the log. */
  private readonly open = new Set<string>();
  private readonly skipped = new Set<string>();
  private cause = 0;
  private first = true;
  /** False after a gap: the root waits for pairs whose end replay never saw, so it is not checked. */
  private rootChecked = true;
  private counts = { events: 0, transitions: 0, effects: 0, outputs: 0, decisions: 0, undecided: 0, noted: 0, chunks: 0, unrecorded: 0 };
  divergence: Divergence | undefined;
  /** The time of the record being replayed (ms since the epoch). */
  now = 0;
  readonly version: number;

  /** `machine`: whose log it is (its header says; machineOf in records.ts). */
  constructor(
    readonly machine: LogMachine = 'proxy',
    opts: ReplayerOptions = {},
  ) {
    this.version = opts.version ?? 2;
    this.full = this.version >= 2;
    this.rootId = rootIdOf(machine);
    this.rootName = machine === 'forwarder' ? 'the forwarder' : 'the proxy';
    this.decide = opts.authorizer ?? ((c) => Authorizer.fromSnapshot(c));
    const onTransition = (t: Transition): void => {
      const replayed = { ...t, cause: this.cause };
      opts.onTransition?.(replayed);
      // A pair given up at a gap still runs in replay (SHUTDOWN reaches it), but it is no longer checked.
      if (!this.skipped.has(t.id)) this.states.push(t.id, replayed);
    };
    const onEffect: EffectSink = (id, name, params) => {
      if (this.skipped.has(id)) return;
      this.effects.push(id, params === undefined ? { id, name, cause: this.cause } : { id, name, params, cause: this.cause });
      if (name === 'authorize') this.decideAgain(id, params);
    };
    const onOutput = (o: { id: string }): void => {
      if (!this.skipped.has(o.id)) this.outputs.push(o.id, { id: o.id, o: o as unknown as Record<string, unknown>, cause: this.cause });
    };

    if (this.full) {
      const tracker = new MicrostepTracker(onTransition, this.rootId);
      this.root = this.makeRoot(opts, tracker.child, onEffect, onOutput, tracker.inspect);
      this.tracker = { entering: () => undefined, root: tracker.root };
    } else {
      const tracker = new TransitionTracker(onTransition, this.rootId);
      this.root = this.makeRoot(opts, tracker.child, undefined, undefined, undefined);
      this.tracker = tracker;
    }
    this.root.subscribe({ next: this.tracker.root, error: () => undefined });
    this.root.start();
    this.tracker.root(this.root.getSnapshot());
  }

  /**
   * A fresh root of the log's machines, wired as the live runtime wires it (src/proxy/runtime.ts,
   * src/forward/forwarder.ts), with recorded no-op effects. Held as an AnyActorRef: the events it is sent come
   * from a file, checked only for a `type`, and a machine drops an event it does not handle — as the live one
   * would. A version-1 log is replayed as it was recorded: bare machines, state changes only.
   */
  private makeRoot(
    opts: ReplayerOptions,
    observe: (id: string, snapshot: { value: unknown; status: string }, on: string) => void,
    onEffect: EffectSink | undefined,
    onOutput: ((o: { id: string }) => void) | undefined,
    inspect: MicrostepTracker['inspect'] | undefined,
  ): AnyActorRef {
    const actorOpts = inspect ? { inspect } : {};
    if (this.machine === 'forwarder') {
      const base = opts.machines?.forward ?? forwardMachine;
      const logic = onEffect ? base.provide({ actions: recordEffects(noopEffects(FORWARD_EFFECTS), onEffect) }) : base;
      return createActor(superviseForwardsWith(new ForwardRegistry(logic, { observe, finished: onOutput })), actorOpts);
    }
    const base = opts.machines?.connection ?? connectionMachine;
    const logic = onEffect ? base.provide({ actions: recordEffects(noopEffects(CONNECTION_EFFECTS), onEffect) }) : base;
    return createActor(superviseWith(new ConnectionRegistry(logic, { observe, finished: onOutput })), actorOpts);
  }

  /** The decider of a logged config; undefined (requests not decided again) if the log's config is malformed. */
  private configOf(snapshot: unknown): { snapshot: ConfigSnapshot; decider: Decider } | undefined {
    const c = snapshot as Partial<ConfigSnapshot> | null;
    if (!c || !Array.isArray(c.allow) || !Array.isArray(c.servers)) return undefined;
    try {
      return { snapshot: c as ConfigSnapshot, decider: this.decide(c as ConfigSnapshot) };
    } catch {
      return undefined;
    }
  }

  /** The request of pair `id` decided again under the config in force, for the recorded decision to match. */
  private decideAgain(id: string, params: unknown): void {
    const config = this.config;
    const p = params as { identities?: unknown; target?: unknown } | undefined;
    if (!config || !Array.isArray(p?.identities) || typeof p.target !== 'string') {
      this.counts.undecided++;
      return;
    }
    const names = p.identities.filter((n): n is string => typeof n === 'string');
    const decision = decisionEvent(decideNames(config.decider, names, p.target));
    const hash = typeof config.snapshot.hash === 'string' ? ` (${config.snapshot.hash.slice(0, 12)})` : '';
    this.decisions.set(id, { id, decision, config: `${String(config.snapshot.file)}${hash}`, cause: this.cause });
  }

  /** Feeds one record; returns false once a divergence was found (later records are not replayed). */
  feed(r: LogRecord): boolean {
    if (this.divergence) return false;
    this.now = r.t;
    if (this.first) {
      this.first = false;
      // The run's first file was rotated away: the root's start is not in the log.
      if (r.s !== 1) this.states.delete(this.rootId);
    }
    switch (r.k) {
      case 'e':
        return this.event(r);
      case 'x':
        this.counts.transitions++;
        if (r.id !== this.rootId && !this.accepted.has(r.id)) {
          this.skipped.add(r.id);
          return true;
        }
        if (r.id === this.rootId && !this.rootChecked) return true;
        if (r.to === 'closed') this.open.delete(r.id);
        return this.checkState(r);
      case 'f':
        this.counts.effects++;
        if (!this.full) return true;
        if (!this.accepted.has(r.id)) {
          this.skipped.add(r.id);
          return true;
        }
        return this.checkEffect(r);
      case 'o':
        this.counts.outputs++;
        if (!this.full) return true;
        if (!this.accepted.has(r.id)) {
          this.skipped.add(r.id);
          return true;
        }
        return this.checkOutput(r);
      case 'n':
        this.counts.noted++;
        return true;
      case 'c':
        this.counts.chunks++;
        if (!this.accepted.has(r.id)) this.skipped.add(r.id);
        return true;
      case 'd':
        // Those pairs are wholly absent (never accepted here), so nothing else is affected.
        this.counts.unrecorded += r.pairs;
        return true;
      default:
        return true; // a kind this version does not know (the reader refuses those; here for the compiler)
    }
  }

  private event(r: EventRecord): boolean {
    this.counts.events++;
    const e = r.e;
    if (e.type === 'CONFIG_LOADED' && 'config' in e) this.config = this.configOf(e.config);
    const id = 'id' in e && typeof e.id === 'string' && e.type !== 'SHUTDOWN' ? e.id : undefined;
    if (e.type === 'ACCEPTED' && id !== undefined) {
      this.accepted.add(id);
      this.open.add(id);
    } else if (id !== undefined && !this.accepted.has(id)) {
      this.skipped.add(id);
      return true;
    }
    if (this.full && id !== undefined && (e.type === 'AUTHORIZED' || e.type === 'DECLINED') && !this.checkDecision(r, id)) return false;
    this.cause = r.s;
    this.tracker.entering(e.type);
    this.root.send(e);
    return true;
  }

  /**
   * Records are missing here (a sequence gap: a file deleted from the middle of a series). Pairs open across
   * the gap missed events, so they are no longer checked; pairs accepted after it are.
   */
  gap(): void {
    for (const id of this.open) {
      this.accepted.delete(id);
      this.skipped.add(id);
      this.states.delete(id);
      this.effects.delete(id);
      this.outputs.delete(id);
      this.decisions.delete(id);
    }
    this.open.clear();
    this.states.delete(this.rootId);
    this.rootChecked = false;
  }

  private who(id: string): string {
    return id === this.rootId ? this.rootName : `connection ${id}`;
  }

  private checkState(expected: TransitionRecord): boolean {
    const actual = this.states.shift(expected.id);
    if (actual && sameTransition(actual, expected)) return true;
    const made = actual ? `replay made ${describeTransition(actual)} (caused by event #${actual.cause})` : 'replay made no transition there';
    this.divergence = {
      kind: 'state',
      id: expected.id,
      expected,
      actual: actual ?? null,
      at: expected.s,
      message: `${this.who(expected.id)}: state: recorded ${describeTransition(expected)}, ${made}`,
    };
    return false;
  }

  private checkEffect(expected: EffectRecord): boolean {
    const actual = this.effects.shift(expected.id);
    if (actual && actual.name === expected.name && sameData(actual.params, expected.params)) return true;
    const made = actual ? `replay made ${describeEffect(actual)} (caused by event #${actual.cause})` : 'replay made no effect there';
    this.divergence = {
      kind: 'effect',
      id: expected.id,
      expected,
      actual: actual ?? null,
      at: expected.s,
      message: `${this.who(expected.id)}: effect: recorded ${describeEffect(expected)}, ${made}`,
    };
    return false;
  }

  /** The pair ended in the log: everything replay made for it must have been recorded by now, then its output. */
  private checkOutput(expected: OutputRecord): boolean {
    const id = expected.id;
    if (!this.leftovers(id, expected.s, ` before the pair's output (record #${expected.s})`)) return false;
    const actual = this.outputs.shift(id);
    if (actual && sameData(actual.o, expected.o)) return true;
    const made = actual ? `replay ended with ${JSON.stringify(actual.o)} (caused by event #${actual.cause})` : 'replay has not ended the pair there';
    this.divergence = {
      kind: 'output',
      id,
      expected,
      actual: actual ?? null,
      at: expected.s,
      message: `${this.who(id)}: output: recorded ${JSON.stringify(expected.o)}, ${made}${actual ? outputDifference(expected.o, actual.o) : ''}`,
    };
    return false;
  }

  private checkDecision(r: EventRecord, id: string): boolean {
    const want = this.decisions.get(id);
    if (!want) return true;
    this.decisions.delete(id);
    const recorded = r.e as unknown as Record<string, unknown>;
    // The pair limits (maxConnectionsPerIdentity, …) decline after the rules allowed: not decided again here.
    if (want.decision.type === 'AUTHORIZED' && recorded.type === 'DECLINED' && recorded.code === ReplyCode.OVERLOADED) return true;
    // Nor a certificate revoked or expired since its handshake (a reload's CRL): the rules allowed it.
    if (want.decision.type === 'AUTHORIZED' && recorded.type === 'DECLINED' && typeof recorded.why === 'string' && recorded.why.startsWith(CERTIFICATE_WHY)) {
      return true;
    }
    this.counts.decisions++;
    const diff = decisionDifference(recorded, want.decision);
    if (diff === undefined) return true;
    this.divergence = {
      kind: 'authorization',
      id,
      expected: r,
      actual: want,
      at: r.s,
      message: `${this.who(id)}: authorization: the request (event #${want.cause}) decided again under ${want.config}: ${diff}`,
    };
    return false;
  }

  /** A divergence if replay made states or effects for `id` that the log has not had by record `at`. */
  private leftovers(id: string, at: number, where: string): boolean {
    const state = this.states.first(id);
    if (state) {
      this.divergence = {
        kind: 'state',
        id,
        expected: null,
        actual: state,
        at,
        message: `${this.who(id)}: state: replay made ${describeTransition(state)} (caused by event #${state.cause}), which the log does not record${where}`,
      };
      return false;
    }
    const effect = this.effects.first(id);
    if (effect) {
      this.divergence = {
        kind: 'effect',
        id,
        expected: null,
        actual: effect,
        at,
        message: `${this.who(id)}: effect: replay made ${describeEffect(effect)} (caused by event #${effect.cause}), which the log does not record${where}`,
      };
      return false;
    }
    return true;
  }

  /**
   * Ends the replay. What replay made that the log never confirmed is a divergence — unless the log was cut
   * off (`truncated`), where the records after the cut are simply missing.
   */
  finish(truncated: boolean): ReplaySummary {
    let unchecked = 0;
    if (!this.divergence) {
      const ids = new Set<string>();
      for (const pending of [this.states, this.effects, this.outputs]) {
        for (const [id, list] of pending.entries()) {
          if (id === this.rootId && !this.rootChecked) continue;
          if (truncated) unchecked += list.length;
          else ids.add(id);
        }
      }
      for (const id of ids) {
        // States and effects first (they came before the output), each at the event that caused it.
        const first = this.states.first(id) ?? this.effects.first(id);
        if (first && !this.leftovers(id, first.cause, '')) break;
        const output = this.outputs.first(id);
        if (output) {
          this.divergence = {
            kind: 'output',
            id,
            expected: null,
            actual: output,
            at: output.cause,
            message: `${this.who(id)}: output: replay ended the pair with ${JSON.stringify(output.o)} (caused by event #${output.cause}), which the log does not record`,
          };
          break;
        }
      }
    }
    this.root.stop();
    return {
      version: this.version,
      ...this.counts,
      connections: this.accepted.size,
      preexisting: this.skipped.size,
      unchecked,
      divergence: this.divergence,
    };
  }
}

/** ` (differs in reason: "client-closed" recorded, "server-closed" replayed)`. */
function outputDifference(recorded: Record<string, unknown>, replayed: Record<string, unknown>): string {
  const keys = new Set([...Object.keys(recorded), ...Object.keys(replayed)]);
  const diffs = [...keys]
    .filter((k) => !sameData(recorded[k], replayed[k]))
    .map((k) => `${k}: ${JSON.stringify(recorded[k]) ?? 'absent'} recorded, ${JSON.stringify(replayed[k]) ?? 'absent'} replayed`);
  return diffs.length > 0 ? `; differs in ${diffs.join('; ')}` : '';
}
