/**
 * The signals of a long-running command, taken before the service starts: a signal that arrives while it is
 * starting (a supervisor that saw the "listening" line) acts once it is up, instead of the default action
 * killing the process (SIGHUP's default too: without a handler a reload would end the proxy).
 *
 *   SIGTERM, SIGINT   stop; linked pairs drain (drainTimeout)
 *   the second one    close what is left at once
 *   SIGHUP            reload the configuration (ignored while starting and while stopping)
 */
import type { Logger } from '../log.js';

export interface ServiceControl<T> {
  /** `drain`: the first stop signal; false: a second one. */
  stop(service: T, drain: boolean): void;
  /** Absent: SIGHUP is logged and ignored. */
  reload?: (service: T) => void;
}

/** Installs the handlers now; call the returned function with the service once it has started. A cluster
 * worker takes SIGTERM only (src/cluster/worker.ts): its primary relays the operator's stops. */
export function handleSignals<T>(
  logger: Logger,
  control: ServiceControl<T>,
  signals: readonly ('SIGTERM' | 'SIGINT')[] = ['SIGTERM', 'SIGINT'],
): (service: T) => void {
  let service: T | undefined;
  let stops = 0;
  const onStop = (signal: string) => {
    stops++;
    if (stops > 2) return;
    logger.info(stops === 1 ? `${signal}: stopping (send it again to close linked pairs at once)` : `${signal} again: closing linked pairs now`);
    if (service !== undefined) control.stop(service, stops === 1);
  };
  const onHangup = () => {
    if (service === undefined) logger.warn('SIGHUP while starting: ignored, the configuration just read is the newest');
    else if (stops > 0) logger.warn('SIGHUP while stopping: ignored');
    else if (control.reload) control.reload(service);
    else logger.warn('SIGHUP: this command has nothing to reload; ignored');
  };
  for (const signal of signals) process.on(signal, () => onStop(signal));
  process.on('SIGHUP', onHangup);
  return (started) => {
    service = started;
    if (stops >= 1) control.stop(started, true);
    if (stops >= 2) control.stop(started, false);
  };
}
