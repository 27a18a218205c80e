import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  databaseToConnString,
  formatConnString,
  parseConnString,
  parseDatabaseEntry,
  parsePeerEntry,
  parseUserEntry,
} from '../src/config/connstring.js';
import { ConfigError, ValueError } from '../src/config/errors.js';

test('pairs, spaces around =, quoted values with doubled quotes', () => {
  assert.deepEqual(parseConnString("  host = db1  port=5432 connect_query='SELECT ''a b'', 1' user=u  "), [
    { key: 'host', value: 'db1' },
    { key: 'port', value: '5432' },
    { key: 'connect_query', value: "SELECT 'a b', 1" },
    { key: 'user', value: 'u' },
  ]);
  assert.deepEqual(parseConnString(''), []);
});

test('backslash is literal, as in PgBouncer', () => {
  assert.deepEqual(parseConnString("password='a\\b' x=c\\d"), [
    { key: 'password', value: 'a\\b' },
    { key: 'x', value: 'c\\d' },
  ]);
});

test('syntax errors', () => {
  assert.throws(() => parseConnString("x='open"), ValueError);
  assert.throws(() => parseConnString('x='), /empty value/);
  assert.throws(() => parseConnString("x=''"), /empty value/);
  assert.throws(() => parseConnString('host'), /expected "="/);
  assert.throws(() => parseConnString('=x'), /without a parameter name/);
  assert.throws(() => parseConnString("x='a'b"), /after the closing quote/);
});

test('format round-trips through parse', () => {
  const pairs = [
    { key: 'a', value: "it's a b" },
    { key: 'b', value: 'plain' },
  ];
  assert.equal(formatConnString(pairs), "a='it''s a b' b=plain");
  assert.deepEqual(parseConnString(formatConnString(pairs)), pairs);
});

test('database entry: all parameters and defaults', () => {
  const db = parseDatabaseEntry(
    'app',
    "host=h1 port=6000 dbname=real user=u password=p auth_user=au auth_dbname=authdb auth_query='SELECT 1' " +
      'pool_size=10 min_pool_size=2 reserve_pool_size=3 pool_mode=Transaction max_db_connections=50 max_db_client_connections=500 ' +
      "connect_query='SET x = 1' application_name=app client_encoding=UTF8 datestyle=ISO timezone=UTC " +
      'query_wait_timeout=2.5 server_lifetime=60 load_balance_hosts=disable target_session_attrs=read-write pin_policy=error',
    'p.ini',
    7,
  );
  assert.equal(db.host, 'h1');
  assert.equal(parseDatabaseEntry('app', 'host=h1,h2', 'p.ini', 3).host, 'h1,h2');
  assert.equal(db.port, 6000);
  assert.equal(db.dbname, 'real');
  assert.equal(db.pool_mode, 'transaction'); // case-insensitive like PgBouncer
  assert.equal(db.query_wait_timeout, 2500);
  assert.equal(db.server_lifetime, 60000);
  assert.equal(db.pin_policy, 'error');
  assert.equal(db.target_session_attrs, 'read-write');
  assert.equal(db.max_db_client_connections, 500);
  assert.equal(db.line, 7);
  assert.ok(Object.isFrozen(db));

  const bare = parseDatabaseEntry('foodb', '', 'p.ini', 1);
  assert.equal(bare.dbname, 'foodb');
  assert.equal(bare.host, '');
  assert.equal(bare.port, 5432);
  assert.equal(bare.pool_size, undefined);
  assert.equal(bare.load_balance_hosts, 'round-robin');
  assert.equal(parseDatabaseEntry('*', 'host=x', 'p.ini', 1).dbname, '');
  assert.equal(parseDatabaseEntry('d', 'reserve_pool=4', 'p.ini', 1).reserve_pool_size, 4);
});

test('database entry errors name file, line, entry, key and allowed values', () => {
  const check = (value: string, key: string, re: RegExp): void => {
    assert.throws(
      () => parseDatabaseEntry('app', value, 'pgbouncer.ini', 12),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.line, 12);
        assert.equal(err.key, key);
        assert.ok(err.message.startsWith('pgbouncer.ini:12: [databases] app: '), err.message);
        assert.match(err.message, re);
        return true;
      },
    );
  };
  check('pool_mode=sesion', 'pool_mode', /pool_mode = "sesion" is not one of session, transaction, statement/);
  check('port=0', 'port', /port = "0" is below the minimum 1/);
  check('port=abc', 'port', /is not an integer/);
  check('pool_size=-1', 'pool_size', /below the minimum 0/);
  check('server_lifetime=1h', 'server_lifetime', /not a duration in seconds/);
  check('pin_policy=maybe', 'pin_policy', /not one of pin, error, allow/);
  check('hots=x', 'hots', /unknown parameter "hots"/);
  check("connect_query='x", 'app', /unterminated/);
  assert.throws(() => parseDatabaseEntry('pgbouncer', '', 'f', 3), /reserved for the admin console/);
});

test('user entry', () => {
  const u = parseUserEntry('bob', 'pool_mode=session pool_size=3 max_user_connections=4 query_timeout=1.5 client_idle_timeout=10 pin_policy=allow query_wait_timeout=-1', 'f', 2);
  assert.equal(u.pool_mode, 'session');
  assert.equal(u.pool_size, 3);
  assert.equal(u.max_user_connections, 4);
  assert.equal(u.query_timeout, 1500);
  assert.equal(u.client_idle_timeout, 10000);
  assert.equal(u.query_wait_timeout, undefined);
  assert.equal(u.pin_policy, 'allow');
  assert.throws(() => parseUserEntry('bob', 'host=x', 'f', 2), /\[users\] bob: unknown parameter "host"/);
});

test('peer entry', () => {
  const p = parsePeerEntry('3', 'host=/tmp/x', 'f', 1);
  assert.deepEqual([p.peer_id, p.host, p.port], [3, '/tmp/x', 6432]);
  assert.throws(() => parsePeerEntry('0', 'host=x', 'f', 1), /below the minimum 1/);
  assert.throws(() => parsePeerEntry('2', 'port=1', 'f', 1), /host is required/);
});

test('databaseToConnString redacts the password unless asked', () => {
  const db = parseDatabaseEntry('app', "host=h user=u password=s3cret connect_query='SELECT 1'", 'f', 1);
  const text = databaseToConnString(db);
  assert.ok(!text.includes('s3cret'));
  assert.match(text, /password=\*\*\*/);
  assert.match(databaseToConnString(db, true), /password=s3cret/);
  assert.deepEqual(parseDatabaseEntry('app', databaseToConnString(db, true), 'f', 1), { ...db });
});
