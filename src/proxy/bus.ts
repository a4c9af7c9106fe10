/**
 * The one stream every event of the actor system flows through, in the order the actors receive it: direct
 * emissions (accepts, timers, decisions) merged with the per-socket lifecycle streams. The event log taps it.
 */
import { Subject, merge, mergeAll, type Observable } from 'rxjs';
import type { ProxyEvent } from '../../machines/proxy.js';

export class EventBus {
  private readonly direct = new Subject<ProxyEvent>();
  private readonly streams = new Subject<Observable<ProxyEvent>>();
  readonly events$: Observable<ProxyEvent> = merge(this.direct, this.streams.pipe(mergeAll()));

  emit(event: ProxyEvent): void {
    this.direct.next(event);
  }

  /** Adds a stream (a socket's lifecycle); it leaves the merge when it completes. */
  attach(stream$: Observable<ProxyEvent>): void {
    this.streams.next(stream$);
  }

  complete(): void {
    this.direct.complete();
    this.streams.complete();
  }
}
