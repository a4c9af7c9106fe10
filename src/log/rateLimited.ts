/**
 * Rate limiting for warnings a client can cause (TLS refusals, declines): a flood from one source must not
 * fill the log. Per (source, kind) the first line is let through at once; what follows within the interval
 * is only counted, and reported as one summary per interval while it goes on. A quiet interval forgets the
 * pair, so the next one is again logged at once.
 */
import type { Clock, TimerHandle } from '../clock.js';

export interface Suppressed {
  source: string;
  kind: string;
  /** Lines held back since the last one let through or summarized. */
  count: number;
  /** The last of them, as it would have been logged. */
  last: string;
  intervalMs: number;
}

export interface RateLimiterOptions {
  clock: Clock;
  intervalMs: number;
  /** Told once per interval and pair that had lines held back. */
  summary: (s: Suppressed) => void;
  /** Pairs tracked at most; beyond, new sources share one entry per kind (source "*"). */
  maxKeys?: number;
}

interface Entry {
  source: string;
  kind: string;
  count: number;
  last: string;
  timer: TimerHandle;
}

export const OTHER_SOURCES = '*';

export class RateLimiter {
  private readonly entries = new Map<string, Entry>();
  private readonly maxKeys: number;

  constructor(private readonly opts: RateLimiterOptions) {
    this.maxKeys = opts.maxKeys ?? 10_000;
  }

  /** True: log this line now. False: it is counted into the next summary. */
  admit(source: string, kind: string, line: string): boolean {
    let key = `${source}\n${kind}`;
    let e = this.entries.get(key);
    if (!e && this.entries.size >= this.maxKeys) {
      source = OTHER_SOURCES;
      key = `${source}\n${kind}`;
      e = this.entries.get(key);
    }
    if (e) {
      e.count++;
      e.last = line;
      return false;
    }
    this.entries.set(key, { source, kind, count: 0, last: line, timer: this.arm(key) });
    return true;
  }

  private arm(key: string): TimerHandle {
    const timer = this.opts.clock.setTimeout(() => this.tick(key), this.opts.intervalMs);
    // A pending summary must not keep a stopping process alive; close() reports it.
    (timer as { unref?: () => void }).unref?.();
    return timer;
  }

  private tick(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    if (e.count === 0) {
      this.entries.delete(key);
      return;
    }
    this.report(e);
    e.timer = this.arm(key);
  }

  private report(e: Entry): void {
    const { source, kind, count, last } = e;
    e.count = 0;
    this.opts.summary({ source, kind, count, last, intervalMs: this.opts.intervalMs });
  }

  /** Reports what is still held back and stops the timers (the proxy is stopping). */
  close(): void {
    for (const e of this.entries.values()) {
      this.opts.clock.clearTimeout(e.timer);
      if (e.count > 0) this.report(e);
    }
    this.entries.clear();
  }
}
