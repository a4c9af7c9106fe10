import type { Clock, TimerHandle } from '../../src/clock.js';

/** A clock that moves only when told; timers fire in `advance`. */
export class FakeClock implements Clock {
  t = 1_000_000;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private next = 0;
  now = (): number => this.t;
  setTimeout = (fn: () => void, ms: number): TimerHandle => {
    const id = ++this.next;
    this.timers.push({ at: this.t + ms, fn, id });
    return { id } as unknown as TimerHandle;
  };
  clearTimeout = (h: TimerHandle): void => {
    const id = (h as unknown as { id: number }).id;
    this.timers = this.timers.filter((x) => x.id !== id);
  };
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => x.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers = this.timers.filter((x) => x !== due);
      this.t = due.at;
      due.fn();
    }
    this.t = end;
  }
}
