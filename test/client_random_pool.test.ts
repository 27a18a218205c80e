// Cancel keys and process ids from the bulk CSPRNG pool: in range, and never
// the same bytes twice across a refill.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomKey, randomPid } from '../src/client/random_pool.js';

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
