/**
 * The one stream every event of an actor system flows through, in the order the actors receive it: direct
 * emissions (accepts, timers, decisions) merged with the per-socket lifecycle streams. The event log taps it.
 * The proxy's bus carries ProxyEvents; the forwarder's (src/forward/forwarder.ts) its own root's events.
 */
import { Subject, merge, mergeAll, type Observable } from 'rxjs';
import type { ProxyEvent } from '../../machines/proxy.js';

export class EventBus<E = ProxyEvent> {
  private readonly direct = new Subject<E>();
  private readonly streams = new Subject<Observable<E>>();
  readonly events$: Observable<E> = merge(this.direct, this.streams.pipe(mergeAll()));

  emit(event: E): void {
    this.direct.next(event);
  }

  /** Adds a stream (a socket's lifecycle); it leaves the merge when it completes. */
  attach(stream$: Observable<E>): void {
    this.streams.next(stream$);
  }

  complete(): void {
    this.direct.complete();
    this.streams.complete();
  }
}
