// Protocol-level prepared statements: the global registry and the messages
// Sluice builds for statements it prepares, closes or parses again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLOSE_UNNAMED, parseUnnamedMessage, ServerStatements, StatementRegistry } from '../src/session/prepared.js';
import { SqlFlag } from '../src/session/classify.js';

/** A Parse body after the name: query text, NUL, no parameter types. */
const tail = (sql: string): Buffer => Buffer.concat([Buffer.from(sql + '\0'), Buffer.from([0, 0])]);

test('a statement is interned once per text, with its classification read once', () => {
  const reg = new StatementRegistry();
  const lock = reg.intern(tail('select pg_advisory_lock($1)'));
  assert.equal(reg.intern(tail('select pg_advisory_lock($1)')), lock, 'the same text is the same statement');
  assert.equal(lock.flags, SqlFlag.Advisory);
  assert.deepEqual(lock.settingNames, []);
  const tenant = reg.intern(tail("select set_config('App.Tenant', $1, false), set_config('work_mem', $2, false)"));
  assert.equal(tenant.flags, SqlFlag.SessionSet);
  assert.deepEqual(tenant.settingNames, ['app.tenant'], 'only custom settings: pg_settings lists the others');
  assert.deepEqual(reg.intern(tail('select set_config($1, $2, false)')).settingNames, ['?']);
  assert.deepEqual(reg.intern(tail('reset App.Tenant')).resetNames, ['app.tenant'], 'a named RESET brings back a startup value too');
  assert.equal(reg.intern(tail('select 1')).flags, 0);
  assert.ok(Object.isFrozen(tenant) && Object.isFrozen(tenant.settingNames));
});

test('the unnamed statement is parsed again from the body the client sent, and closed with an empty name', () => {
  const body = tail('select $1::int');
  const msg = parseUnnamedMessage(body);
  assert.equal(msg[0], 0x50);
  assert.equal(msg.readInt32BE(1), msg.length - 1);
  assert.equal(msg[5], 0, 'empty statement name');
  assert.deepEqual(msg.subarray(6), body);
  assert.deepEqual([...CLOSE_UNNAMED], [0x43, 0, 0, 0, 6, 0x53, 0]);
});

test('after forgetAll every known statement is unsure: not prepared, and closed once before it is prepared again', () => {
  const reg = new StatementRegistry();
  const server = new ServerStatements();
  const a = reg.intern(tail('select 1'));
  const b = reg.intern(tail('select 2'));
  server.add(a);
  server.forgetAll();
  server.add(b); // prepared after the DISCARD ALL was sent
  assert.equal(server.has(a), false);
  assert.equal(server.has(b), true);
  assert.equal(server.takeUnsure(a), true, 'close it first');
  assert.equal(server.takeUnsure(a), false, 'only once');
  assert.equal(server.takeUnsure(b), false);
  server.markUnsure(b); // its Close or Parse was skipped after an error
  assert.equal(server.has(b), false);
  assert.equal(server.takeUnsure(b), true);
});
