// ClientParams: what a client wants its session to have, read from its
// startup packet, and shared between clients that sent the same packet until
// one of them changes a setting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClientParams, clientMaySet, NO_CLIENT_PARAMS, parseOptions } from '../src/session/params.js';
import type { ServerConn } from '../src/pool/server_conn.js';

function startup(...kv: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < kv.length; i += 2) m.set(kv[i], kv[i + 1]);
  return m;
}

/** One list, as a frozen config gives one: a reading is kept per ignore list (by identity). */
const NONE: readonly string[] = Object.freeze([]);

function read(params: ReadonlyMap<string, string>, ignore: readonly string[] = NONE, shared = false): ClientParams {
  const p = ClientParams.fromStartup(params, ignore, shared);
  assert.ok(p instanceof ClientParams, String(p));
  return p;
}

const entries = (p: ClientParams) => [...p.wanted].map(([k, w]) => [k, w.value, w.initial]);

/** Enough of a server for replaySql and adoptSessionSettings: what it has been set to, and what it reports. */
function server(settings: Array<[string, string]> = []): ServerConn {
  return { settings: new Map(settings), params: new Map() } as unknown as ServerConn;
}

test('startup parameters become wanted settings: options unpacked, protocol keys and ignored names dropped', () => {
  const p = read(startup('user', 'u', 'database', 'd', 'DateStyle', 'ISO', 'options', '-c search_path=app --work-mem=8MB', 'extra_float_digits', '3'), ['EXTRA_FLOAT_DIGITS']);
  assert.deepEqual(entries(p), [
    ['datestyle', 'ISO', 'ISO'],
    ['search_path', 'app', 'app'],
    ['work_mem', '8MB', '8MB'],
  ]);
  assert.equal(p.get('DATESTYLE'), 'ISO');
  assert.equal(ClientParams.fromStartup(startup('options', '-x'), []), 'unsupported startup option "-x": only -c name=value and --name=value are accepted');
  assert.deepEqual(parseOptions('-c a=b\\ c'), [['a', 'b c']]);
});

test('clients of one shared packet borrow one reading until a write copies it', () => {
  const packet = startup('user', 'u', 'TimeZone', 'UTC', 'application_name', 'web');
  const a = read(packet, NONE, true);
  const b = read(packet, NONE, true);
  assert.equal(a.wanted, b.wanted, 'one Map for both');
  const before = entries(b);

  a.set('timezone', 'Europe/Paris');
  assert.notEqual(a.wanted, b.wanted, 'the writer got its own copy');
  assert.equal(a.get('TimeZone'), 'Europe/Paris');
  assert.deepEqual(entries(b), before, 'the other borrower is untouched');
  assert.deepEqual(entries(read(packet, NONE, true)), before, 'and so is the template a third client borrows');
  assert.equal(a.wanted.get('timezone')!.initial, 'UTC', 'RESET still returns to the startup value');
  assert.equal(a.wanted.get('timezone')!.name, 'TimeZone', 'the spelling is kept for ParameterStatus');
});

test('adopting a probe’s settings copies a borrowed reading first', () => {
  const packet = startup('user', 'u', 'search_path', 'app', 'lock_timeout', '5s');
  const a = read(packet, NONE, true);
  const b = read(packet, NONE, true);
  const s = server();
  // The server reports only search_path as set in the session: lock_timeout was RESET, back to its startup value.
  a.adoptSessionSettings(new Map([['search_path', 'other']]), s);
  assert.equal(a.get('search_path'), 'other');
  assert.equal(a.get('lock_timeout'), '5s');
  assert.equal(b.get('search_path'), 'app', 'the other borrower keeps its value');
  assert.deepEqual([...s.settings], [['search_path', 'other']]);
});

test('a changed ignore list (RELOAD) reads the shared packet again', () => {
  const packet = startup('user', 'u', 'extra_float_digits', '2', 'DateStyle', 'ISO');
  const before = read(packet, NONE, true);
  assert.equal(before.get('extra_float_digits'), '2');
  const after = read(packet, ['extra_float_digits'], true);
  assert.equal(after.get('extra_float_digits'), undefined);
  assert.equal(after.get('datestyle'), 'ISO');
  assert.equal(ClientParams.fromStartup(startup('options', '-c x'), NONE, true), 'invalid startup option "x": expected name=value', 'a refusal is remembered as a refusal');
});

test('an unshared packet gets a reading of its own every time', () => {
  const packet = startup('user', 'u', 'DateStyle', 'ISO');
  assert.notEqual(read(packet).wanted, read(packet).wanted);
});

test('replay: set what differs (with set_config, which reads a list as current_setting writes it), RESET what an earlier client left, nothing when the server matches', () => {
  const p = read(startup('user', 'u', 'DateStyle', 'ISO', 'search_path', "it's, public"), NONE, true);
  assert.equal(p.replaySql(server([['work_mem', '8MB'], ['datestyle', 'ISO']])), `RESET "work_mem";SELECT pg_catalog.set_config(E'search_path', E'it''s, public', false);`);
  const s = server();
  p.markApplied(s);
  assert.equal(p.replaySql(s), '');
});

test('the shared empty set refuses writes', () => {
  assert.throws(() => NO_CLIENT_PARAMS.set('a', 'b'), /never written to/);
  assert.throws(() => NO_CLIENT_PARAMS.adoptSessionSettings(new Map(), server()), /never written to/);
});

test('tempOnPath: a search_path that names pg_temp, from startup, SET, or a probe, and not otherwise', () => {
  const ignore: readonly string[] = [];
  const fromStartup = (path: string): boolean => (ClientParams.fromStartup(startup('search_path', path), ignore) as ClientParams).tempOnPath;
  assert.equal(fromStartup('pg_temp, public'), true);
  assert.equal(fromStartup('public,"pg_temp"'), true);
  assert.equal(fromStartup('PG_TEMP'), true);
  assert.equal(fromStartup('pg_temp_3, public'), true);
  assert.equal(fromStartup('"$user", public'), false);
  assert.equal(fromStartup('pg_temporary, my_pg_temp'), false);
  const viaOptions = ClientParams.fromStartup(startup('options', '-c search_path=pg_temp,public'), ignore) as ClientParams;
  assert.equal(viaOptions.tempOnPath, true);
  const p = ClientParams.fromStartup(startup('application_name', 'x'), ignore, true) as ClientParams;
  assert.equal(p.tempOnPath, false);
  p.set('search_path', 'pg_temp, public');
  assert.equal(p.tempOnPath, true);
  // A probe that no longer reports search_path (RESET): back to what startup asked for, here nothing.
  p.adoptSessionSettings(new Map(), server());
  assert.equal(p.tempOnPath, false);
  p.adoptSessionSettings(new Map([['search_path', 'public, pg_temp']]), server());
  assert.equal(p.tempOnPath, true);
});

test('clientMaySet: reported parameters that are facts about the server are never carried as settings', () => {
  for (const name of ['in_hot_standby', 'server_version', 'Server_Encoding', 'integer_datetimes', 'is_superuser']) assert.equal(clientMaySet(name), false, name);
  for (const name of ['TimeZone', 'application_name', 'DateStyle', 'default_transaction_read_only']) assert.equal(clientMaySet(name), true, name);
});
