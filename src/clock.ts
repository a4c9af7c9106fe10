/**
 * The one source of time. Machines never read a clock: src/ stamps events and arms timers through this, so
 * tests can drive time and replay can substitute the recorded timestamps.
 */
export type TimerHandle = { readonly __timer: unique symbol } | NodeJS.Timeout;

export interface Clock {
  /** Milliseconds since the epoch, with a fractional part (the event log shows µs between events). */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const systemClock: Clock = {
  // The wall clock at process start plus a monotonic clock: sub-millisecond, and never going back when NTP
  // steps the wall clock (event log order and durations stay right).
  now: () => performance.timeOrigin + performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};
