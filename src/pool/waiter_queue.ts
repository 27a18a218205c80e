// A FIFO ring buffer with O(1) removal by tombstone: waiters that give up are
// marked and skipped, so cancelling a wait never shifts the array.

export class RingQueue<T extends object> {
  private items: (T | undefined)[];
  private head = 0;
  private tail = 0;
  private count = 0; // live + tombstoned slots in use
  private live = 0;
  private readonly removed = new WeakSet<T>();

  constructor(capacity = 16) {
    this.items = new Array(capacity);
  }

  get length(): number {
    return this.live;
  }

  push(item: T): void {
    if (this.count === this.items.length) this.grow();
    this.items[this.tail] = item;
    this.tail = (this.tail + 1) % this.items.length;
    this.count++;
    this.live++;
  }

  /** Oldest live item, or undefined. */
  shift(): T | undefined {
    while (this.count > 0) {
      const item = this.items[this.head] as T;
      this.items[this.head] = undefined;
      this.head = (this.head + 1) % this.items.length;
      this.count--;
      if (this.removed.has(item)) {
        this.removed.delete(item);
        continue;
      }
      this.live--;
      return item;
    }
    return undefined;
  }

  peek(): T | undefined {
    for (let i = 0, idx = this.head; i < this.count; i++, idx = (idx + 1) % this.items.length) {
      const item = this.items[idx] as T;
      if (!this.removed.has(item)) return item;
    }
    return undefined;
  }

  /** Marks an item as gone; the caller must know it is queued. */
  remove(item: T): void {
    if (this.removed.has(item)) return;
    this.removed.add(item);
    this.live--;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = 0, idx = this.head; i < this.count; i++, idx = (idx + 1) % this.items.length) {
      const item = this.items[idx] as T;
      if (!this.removed.has(item)) yield item;
    }
  }

  private grow(): void {
    const next = new Array<T | undefined>(this.items.length * 2);
    for (let i = 0; i < this.count; i++) next[i] = this.items[(this.head + i) % this.items.length];
    this.items = next;
    this.head = 0;
    this.tail = this.count;
  }
}
