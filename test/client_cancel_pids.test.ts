// The cancel pid table: random pids mapped to registry slots with open
// addressing, checked against a Map over random adds and deletes in small
// tables (long probe runs, wrap-around at the end, growth).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CancelPids } from '../src/client/cancel_pids.js';

/** A small seeded generator (mulberry32), so a failure can be replayed. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('pids are positive, unique among those held, and name their slot until deleted', () => {
  const table = new CancelPids(2);
  const held = new Map<number, number>();
  for (let slot = 0; slot < 3000; slot++) {
    const pid = table.add(slot);
    assert.ok(Number.isInteger(pid) && pid >= 1 && pid <= 0x7fffffff);
    assert.ok(!held.has(pid), 'unique');
    held.set(pid, slot);
  }
  assert.equal(table.size, 3000);
  for (const [pid, slot] of held) assert.equal(table.slotOf(pid), slot);
  for (const bad of [0, -1, -0x80000000]) assert.equal(table.slotOf(bad), -1);
  // Slots are not encoded in the pids: consecutive slots get unrelated pids.
  const lowBits = new Set([...held.keys()].map((pid) => pid & 0xfff));
  assert.ok(lowBits.size > 1500, `pids spread (${lowBits.size} distinct low 12-bit patterns of 3000)`);
});

test('random adds and deletes agree with a Map, with collisions, wrap-around and growth', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const random = rng(seed);
    const table = new CancelPids(4);
    const model = new Map<number, number>();
    let nextSlot = 0;
    for (let step = 0; step < 20_000; step++) {
      const pids = [...model.keys()];
      if (pids.length === 0 || random() < 0.55) {
        const slot = nextSlot++;
        model.set(table.add(slot), slot);
      } else {
        const pid = pids[Math.floor(random() * pids.length)]!;
        assert.equal(table.delete(pid), true);
        model.delete(pid);
        assert.equal(table.delete(pid), false, 'a second delete finds nothing');
        assert.equal(table.slotOf(pid), -1);
      }
      if (step % 97 === 0) for (const [pid, slot] of model) assert.equal(table.slotOf(pid), slot, `seed ${seed}, step ${step}`);
    }
    assert.equal(table.size, model.size);
    for (const [pid, slot] of model) assert.equal(table.slotOf(pid), slot);
  }
});

test('a capacity that is not a power of two is refused', () => {
  assert.throws(() => new CancelPids(1000), RangeError);
  assert.throws(() => new CancelPids(1), RangeError);
});
