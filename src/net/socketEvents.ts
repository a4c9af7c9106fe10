/**
 * Raw socket lifecycle as RxJS streams of connection events. Only lifecycle reaches the actors: end, error,
 * close (with byte counts). Data never does; once linked, bytes flow through `pipe`.
 */
import type { Socket } from 'node:net';
import { Observable } from 'rxjs';
import type { ConnectionEvent, Side } from '../shared/events.js';

const TYPES = {
  client: { end: 'CLIENT_END', error: 'CLIENT_ERROR', close: 'CLIENT_CLOSED' },
  server: { end: 'SERVER_END', error: 'SERVER_ERROR', close: 'SERVER_CLOSED' },
} as const;

/** The events a socket's lifecycle produces: words both the proxy's pairs and the forwarder's take. */
export type LifecycleEvent = Extract<ConnectionEvent, { type: (typeof TYPES)[Side][keyof (typeof TYPES)[Side]] }>;

export function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code ? code : 'EUNKNOWN';
}

/** Emits END, ERROR and finally CLOSED, then completes. Holds an 'error' listener for the socket's life so an
 * error can never crash the process. */
export function lifecycle$(socket: Socket, side: Side, id: string): Observable<LifecycleEvent> {
  const t = TYPES[side];
  return new Observable<LifecycleEvent>((sub) => {
    const onEnd = () => sub.next({ type: t.end, id });
    const onError = (err: Error) => sub.next({ type: t.error, id, code: errorCode(err), message: err.message });
    const onClose = () => {
      sub.next({ type: t.close, id, read: socket.bytesRead, written: socket.bytesWritten });
      sub.complete();
    };
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.once('close', onClose);
    if (socket.closed) onClose();
    return () => {
      socket.off('end', onEnd);
      socket.off('close', onClose);
      // keep swallowing errors after unsubscribe: a late error must not become an uncaught exception
      if (!socket.closed) socket.once('error', () => {});
      socket.off('error', onError);
    };
  });
}
