// The read-callback clock: one reading inside a read callback, the live clock
// everywhere else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { now, readBegins, readEnds } from '../src/net/clock.js';

/** Spins until Date.now() passes `t` (bounded: the clock moves within milliseconds). */
function waitPast(t: number): void {
  const deadline = performance.now() + 1000;
  while (Date.now() <= t) if (performance.now() > deadline) throw new Error('the clock did not move within 1 s');
}

test('outside a read callback now() is the live clock', () => {
  const a = now();
  waitPast(a);
  assert.ok(now() > a, 'a later call sees a later time');
});

test('inside a read callback now() keeps its first reading, and a new callback reads again', () => {
  readBegins();
  try {
    const first = now();
    assert.ok(Math.abs(first - Date.now()) <= 1);
    waitPast(first);
    assert.equal(now(), first, 'same callback: the same reading');
  } finally {
    readEnds();
  }
  const outside = now();
  readBegins();
  try {
    assert.ok(now() >= outside, 'a new callback does not reuse the old reading');
    waitPast(now());
    const later = Date.now();
    readEnds();
    assert.ok(now() >= later, 'after the callback ends the live clock is back');
  } finally {
    readEnds();
  }
});
