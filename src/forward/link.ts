/**
 * Linking a local connection with its upstream: bytes piped both ways with backpressure, half-close passed
 * on, and paired teardown — when one side fails the other is destroyed; when one side closes cleanly the
 * other is ended and, if it does not close by itself within `graceMs`, destroyed.
 */
import type net from 'node:net';

export interface LinkResult {
  /** Bytes from the local client to upstream, and back. */
  up: number;
  down: number;
  /** 'local-closed', 'upstream-closed', 'local-error:<code>', 'upstream-error:<code>'. */
  reason: string;
}

export function link(local: net.Socket, upstream: net.Socket, graceMs: number, onDone: (r: LinkResult) => void): void {
  local.setNoDelay(true);
  upstream.setNoDelay(true);
  // Both sockets may be half-closed: a client that sends its request and then shuts down its writing side
  // still gets the answer.
  local.allowHalfOpen = true;
  upstream.allowHalfOpen = true;
  let reason: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = 0;
  const first = (r: string) => (reason ??= r);

  const onError = (side: 'local' | 'upstream', other: net.Socket) => (err: NodeJS.ErrnoException) => {
    first(`${side}-error:${err.code ?? 'EUNKNOWN'}`);
    other.destroy();
  };
  const onClose = (side: 'local' | 'upstream', other: net.Socket) => () => {
    first(`${side}-closed`);
    if (++closed === 2) {
      clearTimeout(timer);
      onDone({ up: local.bytesRead, down: local.bytesWritten, reason: reason ?? `${side}-closed` });
      return;
    }
    if (other.destroyed) return;
    other.end();
    timer = setTimeout(() => other.destroy(), graceMs);
    timer.unref();
  };
  local.on('error', onError('local', upstream));
  upstream.on('error', onError('upstream', local));
  local.once('close', onClose('local', upstream));
  upstream.once('close', onClose('upstream', local));
  local.pipe(upstream);
  upstream.pipe(local);
}
