// The client registry: a Set's behaviour (add, delete, size, iteration) on
// slots that are cleared when a client leaves, plus lookup by slot for cancel
// requests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClientSlots } from '../src/pool/client_slots.js';

class Item {
  slot = -1;
  constructor(readonly name: string) {}
}

test('add, delete and size behave like a Set, and a second add or delete changes nothing', () => {
  const reg = new ClientSlots<Item>();
  const a = new Item('a');
  const b = new Item('b');
  reg.add(a);
  reg.add(b);
  reg.add(a);
  assert.equal(reg.size, 2);
  assert.deepEqual([...reg].map((i) => i.name), ['a', 'b']);
  assert.equal(reg.delete(a), true);
  assert.equal(reg.delete(a), false, 'a second delete finds nothing');
  assert.equal(a.slot, -1);
  assert.equal(reg.size, 1);
  assert.deepEqual([...reg].map((i) => i.name), ['b']);
  assert.equal(reg.delete(new Item('never added')), false);
  assert.equal(reg.size, 1);
});

test('a slot is cleared when its item leaves and reused by the next one; at() finds only the current item', () => {
  const reg = new ClientSlots<Item>();
  const a = new Item('a');
  const b = new Item('b');
  reg.add(a);
  reg.add(b);
  const slotOfA = a.slot;
  assert.equal(reg.at(slotOfA), a);
  reg.delete(a);
  assert.equal(reg.at(slotOfA), undefined, 'the slot no longer holds the item that left');
  const c = new Item('c');
  reg.add(c);
  assert.equal(c.slot, slotOfA, 'the freed slot is reused, so the array does not grow under churn');
  assert.equal(reg.at(slotOfA), c);
  assert.deepEqual([...reg].map((i) => i.name).sort(), ['b', 'c']);
});

test('churn of many items through few slots keeps the slot count at the high-water mark', () => {
  const reg = new ClientSlots<Item>();
  const live: Item[] = [];
  let highest = -1;
  for (let i = 0; i < 10_000; i++) {
    const item = new Item(String(i));
    reg.add(item);
    highest = Math.max(highest, item.slot);
    live.push(item);
    if (live.length > 50) reg.delete(live.shift()!);
  }
  assert.equal(reg.size, 50);
  assert.ok(highest < 51, `slots used: ${highest + 1}`);
});

test('deleting during iteration is safe, as with a Set', () => {
  const reg = new ClientSlots<Item>();
  const items = ['a', 'b', 'c', 'd'].map((n) => new Item(n));
  for (const i of items) reg.add(i);
  const seen: string[] = [];
  for (const i of reg) {
    seen.push(i.name);
    reg.delete(i);
  }
  assert.deepEqual(seen, ['a', 'b', 'c', 'd']);
  assert.equal(reg.size, 0);
});
