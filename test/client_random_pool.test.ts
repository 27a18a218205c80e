// Cancel keys and process ids from the bulk CSPRNG pool: in range, and never
// the same bytes twice across a refill.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CANCEL_SLOT_BITS, randomKey, randomPid, slotCodedPid, slotOfPid, uncodedPid } from '../src/client/random_pool.js';

test('process ids are positive 31-bit integers and spread out', () => {
  const seen = new Set<number>();
  for (let i = 0; i < 5000; i++) {
    const pid = randomPid();
    assert.ok(Number.isInteger(pid) && pid >= 1 && pid <= 0x7fffffff, `pid ${pid} in range`);
    seen.add(pid);
  }
  assert.ok(seen.size > 4990, 'practically no repeats among 5000 draws');
});

test('keys have the asked length and do not share bytes, across several refills of the pool', () => {
  const keys: Buffer[] = [];
  for (let i = 0; i < 3000; i++) keys.push(randomKey(i % 2 ? 4 : 32)); // well past one 8 KiB pool
  for (const [i, k] of keys.entries()) assert.equal(k.length, i % 2 ? 4 : 32);
  const distinct = new Set(keys.filter((k) => k.length === 32).map((k) => k.toString('hex')));
  assert.equal(distinct.size, 1500, 'every 32-byte key is new');
  // Views of one pool never overlap: each begins where the previous one ended, or in a new pool.
  for (let i = 1; i < keys.length; i++) {
    const a = keys[i - 1];
    const b = keys[i];
    if (a.buffer === b.buffer) assert.ok(b.byteOffset >= a.byteOffset + a.length, 'no byte handed out twice');
  }
});

test('slot-coded process ids name their slot, stay positive and vary above it; uncoded ones name none', () => {
  const max = (1 << CANCEL_SLOT_BITS) - 1;
  for (const slot of [0, 1, 77, 65_535, max]) {
    const highs = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const pid = slotCodedPid(slot);
      assert.ok(pid >= 1 && pid <= 0x3fffffff, `pid ${pid} positive, bit 30 clear`);
      assert.equal(slotOfPid(pid), slot);
      highs.add(pid >>> CANCEL_SLOT_BITS);
    }
    assert.ok(highs.size > 100 && !highs.has(0), 'random, never-zero bits above the slot');
  }
  assert.throws(() => slotCodedPid(max + 1), RangeError);
  assert.throws(() => slotCodedPid(-1), RangeError);
  for (let i = 0; i < 1000; i++) {
    const pid = uncodedPid();
    assert.ok(pid >= 0x40000000 && pid <= 0x7fffffff);
    assert.equal(slotOfPid(pid), -1, 'never mistaken for a slot-coded id');
  }
  for (const bad of [0, -5, -0x80000000]) assert.equal(slotOfPid(bad), -1);
});
