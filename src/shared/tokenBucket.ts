/**
 * Rates (`"20/s burst 40"`) and the token bucket that enforces them. The bucket keeps only its state (tokens
 * and when they were counted); the rate is passed to every call, so a table of thousands of buckets costs two
 * numbers each and a new configuration applies to all of them at once. Time comes from the caller (a Clock),
 * so tests drive it.
 */

export interface Rate {
  /** Tokens added per `per`. */
  count: number;
  per: 's' | 'min';
  /** Most tokens the bucket holds: how many may come at once after a quiet spell. */
  burst: number;
}

const PER_MS: Record<Rate['per'], number> = { s: 1000, min: 60_000 };

export const rateLabel = (r: Rate): string => `${r.count}/${r.per} burst ${r.burst}`;

/** `"20/s burst 40"`, `"600/min burst 20"`, `"20/s"` (burst = count), or `"off"` (null). */
export function parseRate(text: string): { ok: true; value: Rate | null } | { ok: false; message: string } {
  const s = text.trim();
  if (s === 'off') return { ok: true, value: null };
  const m = /^(\d+)\s*\/\s*(s|min)(?:\s+burst\s+(\d+))?$/.exec(s);
  if (!m) return { ok: false, message: `expected "<n>/s burst <m>", "<n>/min burst <m>" or "off", got "${text}"` };
  const count = Number(m[1]);
  const burst = m[3] === undefined ? count : Number(m[3]);
  if (!Number.isSafeInteger(count) || count < 1 || count > 1_000_000) {
    return { ok: false, message: `rate must be between 1 and 1000000 per ${m[2]}, got "${text}"` };
  }
  if (!Number.isSafeInteger(burst) || burst < 1 || burst > 1_000_000) {
    return { ok: false, message: `burst must be between 1 and 1000000, got "${text}"` };
  }
  return { ok: true, value: { count, per: m[2] as Rate['per'], burst } };
}

export class TokenBucket {
  private tokens: number;
  private at: number;

  /** Starts full: a source seen for the first time may use its whole burst. */
  constructor(rate: Rate, now: number) {
    this.tokens = rate.burst;
    this.at = now;
  }

  private refill(rate: Rate, now: number): void {
    // A clock that steps back (tests, a wall clock) must not drain the bucket.
    const elapsed = Math.max(0, now - this.at);
    this.tokens = Math.min(rate.burst, this.tokens + (elapsed * rate.count) / PER_MS[rate.per]);
    this.at = now;
  }

  /** Takes one token if there is one. */
  take(rate: Rate, now: number): boolean {
    this.refill(rate, now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Full again: forgetting this bucket loses nothing (a new one starts full). */
  isFull(rate: Rate, now: number): boolean {
    this.refill(rate, now);
    return this.tokens >= rate.burst;
  }
}
