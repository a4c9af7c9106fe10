/**
 * A one-line progress bar on a terminal: `replaying [#####-----] 52% 10.3/20.0 MB`, redrawn at most every
 * 100 ms. Disabled (every method a no-op) when the stream is not a TTY. Whoever writes to the terminal calls
 * `clear()` first; the next update draws the bar again below the new output.
 */
import { formatBytes } from './timeline.js';

const WIDTH = 20;
const INTERVAL_MS = 100;

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
}

export class ProgressBar {
  private drawn = false;
  private last = -Infinity;

  constructor(
    private readonly stream: ProgressStream,
    readonly enabled: boolean,
    private readonly now: () => number = Date.now,
  ) {}

  update(read: number, total: number): void {
    if (!this.enabled) return;
    const t = this.now();
    if (t - this.last < INTERVAL_MS) return;
    this.last = t;
    this.stream.write(`\r${ProgressBar.render(read, total)}\x1b[K`);
    this.drawn = true;
  }

  /** Removes the bar from the line (before other output, and at the end). */
  clear(): void {
    if (!this.drawn) return;
    this.stream.write('\r\x1b[K');
    this.drawn = false;
  }

  /** The bar's text for `read` of `total` bytes. */
  static render(read: number, total: number): string {
    const frac = total > 0 ? Math.min(1, Math.max(0, read / total)) : 1;
    const filled = Math.round(frac * WIDTH);
    const sizes = total >= 1e6 ? `${(read / 1e6).toFixed(1)}/${(total / 1e6).toFixed(1)} MB` : `${formatBytes(read)}/${formatBytes(total)}`;
    return `replaying [${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}] ${String(Math.floor(frac * 100)).padStart(3)}% ${sizes}`;
  }
}
