// A client's unnamed statement: a place in the chunk it arrived in until it
// must outlive it, a sequence number that tells servers whose statement they
// hold, and the flags each run brings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UnnamedStatement } from '../src/session/unnamed.js';

test('the body is copied out of its chunk when settled, so a later change to the chunk does not reach it', () => {
  const chunk = Buffer.from('xxselect 1\0\0\0yy');
  const u = new UnnamedStatement();
  u.parsed(chunk, 2, 13, 4);
  u.settle();
  chunk.fill(0x7a);
  assert.deepEqual(u.body(), Buffer.from('select 1\0\0\0'));
  assert.equal(u.flags, 4);
});

test('every Parse and drop moves seq on; a dropped statement has no body and no flags', () => {
  const u = new UnnamedStatement();
  const chunk = Buffer.from('select 2\0\0\0');
  u.parsed(chunk, 0, chunk.length, 1);
  const first = u.seq;
  u.parsed(chunk, 0, chunk.length, 1);
  assert.equal(u.seq, first + 1, 'the same text parsed again is a new statement for servers');
  u.dropped();
  assert.equal(u.seq, first + 2);
  assert.equal(u.body(), null);
  assert.equal(u.flags, 0);
  assert.equal(new UnnamedStatement().body(), null, 'never parsed: none');
});
