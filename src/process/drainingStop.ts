/**
 * The stop() of a running proxy or forwarder: it runs once, whoever calls it and however often. A stop with
 * `drain` lets linked pairs finish; a later stop() without it (a second signal) hurries them — once, and only
 * while they are still draining, not after they have all closed. The proxy's runtime and the forwarder share it.
 */
export interface DrainingStopSteps {
  /** Stop: `drain` or not. Calls `drained()` once every pair has closed, then cleans up. */
  run(drain: boolean, drained: () => void): Promise<void>;
  /** Close what is still draining, now. */
  hurry(): void;
}

export function drainingStop(steps: DrainingStopSteps): (opts?: { drain?: boolean }) => Promise<void> {
  let stopping: Promise<void> | undefined;
  let draining = false;
  return (opts = {}) => {
    const drain = opts.drain === true;
    if (stopping) {
      if (draining && !drain) {
        draining = false;
        steps.hurry();
      }
      return stopping;
    }
    draining = drain;
    stopping = steps.run(drain, () => {
      draining = false;
    });
    return stopping;
  };
}
