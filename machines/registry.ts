/**
 * The root supervisor's children, by connection id.
 *
 * XState keeps spawned children in the immutable snapshot and copies that map on every spawn and stop, which
 * makes each accept O(open pairs): 2 ms per connection at 2,000 idle pairs, measured. A proxy holds thousands
 * of long-lived pairs, so the root keeps its children here instead: O(1) spawn, route and forget, and the
 * same actors, started and stopped by the root's actions only.
 */
import { createActor, type AnyActorRef } from 'xstate';
import type { connectionMachine, ConnectionEvent, ConnectionInput, ConnectionOutput } from './connection.js';

type ConnectionLogic = typeof connectionMachine;
type ConnectionActor = ReturnType<typeof createActor<ConnectionLogic>>;

/**
 * Told after a child has taken each event (and once at its start, `on` = "xstate.init"): how the event log
 * and replay see state transitions. Much cheaper than XState's inspection stream, which builds several
 * objects per event and per action for every actor.
 */
export type ChildStepObserver = (id: string, snapshot: { value: unknown; status: string }, on: string) => void;

export class ConnectionRegistry {
  private readonly children = new Map<string, ConnectionActor>();
  /** Kept so a child that failed can still be reported with its peer. */
  private readonly inputs = new Map<string, ConnectionInput>();

  constructor(
    private readonly logic: ConnectionLogic,
    /** The supervisor: parent of every child, told when each ends. */
    private readonly supervisor: AnyActorRef,
    private readonly observe?: ChildStepObserver,
  ) {}

  get size(): number {
    return this.children.size;
  }

  ids(): IterableIterator<string> {
    return this.children.keys();
  }

  get(id: string): ConnectionActor | undefined {
    return this.children.get(id);
  }

  spawn(input: ConnectionInput): void {
    if (this.children.has(input.id)) return;
    // With the supervisor as parent the child joins its actor system (one system, not one per pair) and
    // reports its end as xstate.done.actor.<id> or, if its machine throws, xstate.error.actor.<id>.
    const child = createActor(this.logic, { id: input.id, input, parent: this.supervisor });
    this.children.set(input.id, child);
    this.inputs.set(input.id, input);
    child.start();
    this.observe?.(input.id, child.getSnapshot(), 'xstate.init');
  }

  /** The child ended (final state or error): forget it and say what to report. */
  forget(id: string, output: ConnectionOutput | undefined, error?: unknown): ConnectionOutput | undefined {
    const input = this.inputs.get(id);
    if (!this.children.delete(id) || !input) return undefined;
    this.inputs.delete(id);
    if (error !== undefined) return failedOutput(input, `internal-error:${(error as Error)?.message ?? String(error)}`);
    return output ?? failedOutput(input, 'no-output');
  }

  send(event: ConnectionEvent): boolean {
    const child = this.children.get(event.id);
    if (!child) return false;
    // Synchronous: an idle child has finished with the event when send returns (events its effects emit
    // meanwhile wait in the supervisor's mailbox), so the snapshot read here is the event's outcome.
    child.send(event);
    this.observe?.(event.id, child.getSnapshot(), event.type);
    return true;
  }

  broadcast(event: ConnectionEvent): void {
    for (const [id, child] of [...this.children]) {
      child.send({ ...event, id });
      this.observe?.(id, child.getSnapshot(), event.type);
    }
  }

}

function failedOutput(input: ConnectionInput, reason: string): ConnectionOutput {
  return {
    id: input.id,
    peer: input.peer,
    identity: null,
    target: null,
    backend: null,
    reason,
    code: null,
    message: null,
    client: { read: 0, written: 0 },
    server: { read: 0, written: 0 },
  };
}
