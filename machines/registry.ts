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

export class ConnectionRegistry {
  private readonly children = new Map<string, ConnectionActor>();

  constructor(
    private readonly logic: ConnectionLogic,
    /** The supervisor; told CONNECTION_DONE when a child finishes. */
    private readonly supervisor: AnyActorRef,
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
    const child = createActor(this.logic, { id: input.id, input });
    this.children.set(input.id, child);
    child.subscribe({
      complete: () => this.finish(input.id, child.getSnapshot().output ?? failedOutput(input, 'no-output')),
      // A fault inside one pair's machine ends that pair only, never the supervisor.
      error: (err) => this.finish(input.id, failedOutput(input, `internal-error:${(err as Error)?.message ?? String(err)}`)),
    });
    child.start();
  }

  send(event: ConnectionEvent): boolean {
    const child = this.children.get(event.id);
    if (!child) return false;
    child.send(event);
    return true;
  }

  broadcast(event: ConnectionEvent): void {
    for (const [id, child] of this.children) child.send({ ...event, id });
  }

  private finish(id: string, output: ConnectionOutput): void {
    if (!this.children.delete(id)) return;
    this.supervisor.send({ type: 'CONNECTION_DONE', output });
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
