/**
 * A bounded ring: the last `capacity` items, oldest first, and how many older ones were dropped. It grows as
 * items come (most pairs make fewer than ten transitions), so a short-lived pair costs a few entries, not the
 * whole capacity.
 */
export class Ring<T> {
  private items: T[] = [];
  /** Index of the oldest item once the ring is full. */
  private head = 0;
  dropped = 0;

  constructor(readonly capacity: number) {
    if (!(Number.isSafeInteger(capacity) && capacity >= 1)) throw new RangeError(`ring capacity must be >= 1, got ${capacity}`);
  }

  push(item: T): void {
    if (this.items.length < this.capacity) {
      this.items.push(item);
      return;
    }
    this.items[this.head] = item;
    this.head = (this.head + 1) % this.capacity;
    this.dropped++;
  }

  get size(): number {
    return this.items.length;
  }

  toArray(): T[] {
    return this.head === 0 ? [...this.items] : [...this.items.slice(this.head), ...this.items.slice(0, this.head)];
  }
}
