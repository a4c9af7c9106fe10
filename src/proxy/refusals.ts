/**
 * Refusals, counted by reason and logged without becoming a flood themselves: the first refusal of a source
 * for a reason is logged at once, later ones as one summary line per source and reason per interval
 * (`refused 1234 connections from 127.0.0.2 (max-pending-per-source) in the last 10 s`), at warn level.
 */
import type { Clock, TimerHandle } from '../clock.js';
import type { Logger } from '../log.js';
import { REFUSAL_REASONS, type RefusalReason } from './limits.js';

export const REFUSAL_LOG_INTERVAL_MS = 10_000;
/** Sources tracked for summaries; beyond this, refusals are summed into one "other sources" line per reason. */
export const REFUSAL_LOG_SOURCES = 1_000;

interface Recent {
  source: string;
  reason: RefusalReason;
  /** Refusals since the last line about this source and reason. */
  count: number;
}

export type RefusalCounts = Record<RefusalReason, number>;

export class RefusalLog {
  private readonly counts: RefusalCounts = Object.fromEntries(REFUSAL_REASONS.map((r) => [r, 0])) as RefusalCounts;
  private readonly recent = new Map<string, Recent>();
  private readonly others = new Map<RefusalReason, number>();
  private timer: TimerHandle | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly clock: Clock,
    private readonly intervalMs = REFUSAL_LOG_INTERVAL_MS,
    private readonly maxSources = REFUSAL_LOG_SOURCES,
  ) {}

  /** `source` is a sourceAddress(): the peer's IP, never text the client chose. */
  refused(source: string, reason: RefusalReason): void {
    this.counts[reason]++;
    const key = `${reason} ${source}`;
    const seen = this.recent.get(key);
    if (seen) {
      seen.count++;
      return;
    }
    this.arm();
    if (this.recent.size >= this.maxSources) {
      this.others.set(reason, (this.others.get(reason) ?? 0) + 1);
      return;
    }
    this.recent.set(key, { source, reason, count: 0 });
    this.logger.warn(`refused a connection from ${source} (${reason})`, { source, reason });
  }

  /** Totals since start, by reason. */
  totals(): RefusalCounts {
    return { ...this.counts };
  }

  /** Writes the summaries still due and stops the timer (the proxy is stopping). */
  close(): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.summarize();
  }

  private arm(): void {
    if (this.timer) return;
    const t = this.clock.setTimeout(this.tick, this.intervalMs);
    // A pending summary must not keep a process alive that has nothing else to do.
    if (typeof t === 'object' && 'unref' in t && typeof t.unref === 'function') t.unref();
    this.timer = t;
  }

  private readonly tick = (): void => {
    this.timer = undefined;
    this.summarize();
    if (this.recent.size > 0) this.arm();
  };

  private summarize(): void {
    const window = `in the last ${Math.round(this.intervalMs / 100) / 10} s`;
    for (const [key, r] of this.recent) {
      // Quiet for a whole interval: forgotten, so its next refusal is logged at once again.
      if (r.count === 0) {
        this.recent.delete(key);
        continue;
      }
      this.logger.warn(`refused ${r.count} connection${r.count === 1 ? '' : 's'} from ${r.source} (${r.reason}) ${window}`, {
        source: r.source,
        reason: r.reason,
        count: r.count,
      });
      r.count = 0;
    }
    for (const [reason, count] of this.others) {
      this.logger.warn(`refused ${count} connection${count === 1 ? '' : 's'} from other sources (${reason}) ${window}`, { reason, count });
    }
    this.others.clear();
  }
}
