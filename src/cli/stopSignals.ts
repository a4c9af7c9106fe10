/**
 * SIGTERM/SIGINT for a long-running command, taken before the service starts: a signal that arrives while it
 * is starting (a supervisor that saw the "listening" line) stops it once it is up, instead of killing the
 * process by the default action without a graceful stop.
 */
import type { Logger } from '../log.js';

/** Installs the handlers now; call the returned function with the service once it has started. `stop` runs
 * once, when both have happened. A cluster worker takes SIGTERM only (src/cluster/worker.ts). */
export function stopOnSignal<T>(
  logger: Logger,
  stop: (service: T) => void,
  signals: readonly ('SIGTERM' | 'SIGINT')[] = ['SIGTERM', 'SIGINT'],
): (service: T) => void {
  let service: T | undefined;
  let signalled = false;
  const onSignal = (signal: string) => {
    if (signalled) return;
    signalled = true;
    logger.info(`${signal}: stopping`);
    if (service !== undefined) stop(service);
  };
  for (const signal of signals) process.once(signal, () => onSignal(signal));
  return (started) => {
    service = started;
    if (signalled) stop(started);
  };
}
