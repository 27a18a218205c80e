// The registry of connected clients: an array of slots with a free list, not
// a Set. V8 rebuilds a Set's or Map's table as entries come and go, and the
// table it replaces keeps its entries and a link to its successor. A replaced
// table in the old generation is garbage the young-generation collector cannot
// recognise, so every client that passed through it survived and was promoted;
// under connection churn that was every client, and a full collection every
// 1.5 s (BENCHMARKS.md). A slot is cleared when its client leaves, and the
// array only ever grows to the high-water mark.

export interface Slotted {
  /** Index in the registry while registered, -1 otherwise. Written only by ClientSlots. */
  slot: number;
}

export class ClientSlots<T extends Slotted> implements Iterable<T> {
  private readonly slots: (T | undefined)[] = [];
  private readonly free: number[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(item: T): void {
    if (item.slot >= 0) return;
    const i = this.free.length > 0 ? this.free.pop()! : this.slots.length;
    this.slots[i] = item;
    item.slot = i;
    this.count++;
  }

  /** True when the item was registered (and now is not). */
  delete(item: T): boolean {
    const i = item.slot;
    if (i < 0 || this.slots[i] !== item) return false;
    this.slots[i] = undefined;
    item.slot = -1;
    this.free.push(i);
    this.count--;
    return true;
  }

  /** The item in slot `i`, if any (a slot is reused after its item leaves). */
  at(i: number): T | undefined {
    return this.slots[i];
  }

  *[Symbol.iterator](): Iterator<T> {
    // Removing during the walk is safe, as with a Set. Unlike a Set, an item added during the
    // walk is visited only if it lands in a later slot; no caller adds while walking.
    for (let i = 0; i < this.slots.length; i++) {
      const item = this.slots[i];
      if (item !== undefined) yield item;
    }
  }
}
