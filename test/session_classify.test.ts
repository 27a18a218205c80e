import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bytesPrefilter, classifySql, classifySqlBytes, customResetNames, customSettingNames, splitSetTarget, SqlFlag } from '../src/session/classify.js';

const S = SqlFlag.SessionSet;
const L = SqlFlag.SetLocal;
const A = SqlFlag.Advisory;
const T = SqlFlag.TempObject;
const LI = SqlFlag.Listen;
const H = SqlFlag.HoldCursor;
const LO = SqlFlag.Load;
const P = SqlFlag.SqlPrepare;
const DA = SqlFlag.DiscardAll;
const DT = SqlFlag.DiscardTemp;
const DEA = SqlFlag.DeallocateAll;
const DO = SqlFlag.DiscardOther;
const U = SqlFlag.Unknown;
const TP = SqlFlag.TempPath;

const CASES: ReadonlyArray<readonly [string, number]> = [
  // --- ordinary traffic: nothing to see
  ['SELECT abalance FROM pgbench_accounts WHERE aid = 48213;', 0],
  ['SELECT 1', 0],
  ['', 0],
  ['   ;; ; ', 0],
  ['BEGIN; UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2; END;', 0],
  ['UPDATE t SET x = 1', 0],
  ['update t set x = 1 where y = 2 returning *', 0],
  ['INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = excluded.a', 0],
  ['INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING', 0],
  ["SELECT 'set x = 1'", 0],
  ["SELECT 'it''s; SET x = 1'", 0],
  ["SELECT E'\\'; SET x = 1; --'", 0],
  ["SELECT $$ SET x = 1; select pg_advisory_lock(1) $$", 0],
  ["SELECT $fn$ ; LISTEN x; $fn$, $$inner$$", 0],
  ['SELECT "set", "listen", "do" FROM t', 0],
  ['SELECT "set" FROM t; SELECT 1', 0],
  ['-- SET x = 1\nSELECT 1', 0],
  ['/* SET x = 1; /* nested */ LISTEN y; */ SELECT 1', 0],
  ['SELECT * FROM t ORDER BY id LIMIT 10 OFFSET 20', 0],
  ['SELECT settings, reset_token, closed_at, payload, template FROM users', 0],
  ['SELECT pg_advisory_xact_lock(1)', 0],
  ['SELECT pg_try_advisory_xact_lock_shared(1, 2)', 0],
  ['SELECT pg_advisory_unlock_xact(1)', 0],
  ["SELECT set_config('a.b', 'c', true)", 0],
  ["SELECT set_config('a.b', 'c', TRUE)", 0],
  // --- transaction-scoped search_path: pg_temp on it makes a plain CREATE temporary
  ["select pg_catalog.set_config('search_path', 'x', true)", TP],
  ["select set_config('Search_Path', 'pg_temp', true)", TP],
  ['select set_config($1, $2, true)', TP],
  ['SELECT * FROM temp_results', 0],
  ['INSERT INTO temp VALUES (1)', 0],
  ['INSERT INTO pg_temp.t VALUES (1)', 0],
  ['SELECT * FROM pg_temp.t', 0],
  ['ALTER TABLE t ALTER COLUMN c SET DEFAULT 1', 0],
  ['ALTER ROLE r SET search_path = x', 0],
  ['ALTER SYSTEM SET work_mem = 1', 0],
  ['CREATE FUNCTION f() RETURNS int LANGUAGE sql SET search_path = x AS $$ SELECT 1 $$', 0],
  ['CREATE TABLE t (id int)', 0],
  ['CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()', 0],
  ['DECLARE c CURSOR FOR SELECT 1', 0],
  ['DECLARE c NO SCROLL CURSOR WITHOUT HOLD FOR SELECT 1', 0],
  ["PREPARE TRANSACTION 'gid-1'", 0],
  ['SELECT dosomething(1), calls FROM t', 0],
  ['SELECT a$set FROM t', 0],

  // --- SET / RESET / set_config
  ['SET search_path TO app', S],
  ['set Search_Path = app', S],
  ['SeT SESSION statement_timeout = 0', S],
  ['SET TIME ZONE \'UTC\'', S],
  ["SET NAMES 'UTF8'", S],
  ["SET SCHEMA 'app'", S],
  ['SET ROLE admin', S],
  ['SET SESSION AUTHORIZATION bob', S],
  ['SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY', S],
  ['SET myapp.user_id = 42', S],
  ['RESET search_path', S],
  ['RESET ALL', S],
  ['reset all;', S],
  ['SET LOCAL search_path TO app', L | TP],
  ["set local schema 'pg_temp'", L | TP],
  ['set local statement_timeout = 5', L],
  ['SET TRANSACTION ISOLATION LEVEL SERIALIZABLE', L],
  ['SET CONSTRAINTS ALL DEFERRED', L],
  ["BEGIN; SET LOCAL a.b = 1; SET c.d = 2; COMMIT", S | L],
  ["SELECT set_config('a.b', 'c', false)", S],
  ["SELECT set_config('a.b', 'c', $1)", S],
  ["SELECT set_config('a.b', 'c', 'true')", S],
  ["SELECT set_config('a.b', 'c', true::bool)", S],
  ["SELECT set_config('a.b', 'c')", S],
  ["SELECT pg_catalog.set_config('a.b', (SELECT 'c'), true)", 0],
  ["SELECT pg_catalog . set_config /* x */ ('a.b', 'c', false)", S],
  ['SELECT "set_config"(\'a\', \'b\', false)', S],
  ["SELECT SET_CONFIG('a', 'b', false)", S],
  ['/* leading */ -- comment\n  SET x = 1', S],
  ["SELECT 1; SET x = 1", S],
  ["SET x = ';'; SELECT 1", S],

  // --- advisory locks
  ['SELECT pg_advisory_lock(1)', A],
  ['select PG_ADVISORY_LOCK_SHARED(1, 2)', A],
  ['SELECT pg_try_advisory_lock($1)', A],
  ['SELECT pg_try_advisory_lock_shared(hashtext($1))', A],
  ['SELECT pg_advisory_unlock(1)', A],
  ['SELECT pg_advisory_unlock_shared(1)', A],
  ['SELECT pg_advisory_unlock_all()', A],
  ['SELECT pg_catalog.pg_advisory_lock(1)', A],
  ['SELECT "pg_advisory_lock"(1)', A],
  ['SELECT CASE WHEN x THEN pg_try_advisory_lock (1) END FROM t', A],
  ['SELECT pg_advisory_xact_lock(1), pg_advisory_lock(2)', A],
  ["WITH l AS (SELECT pg_advisory_lock(1)) SELECT * FROM l", A],
  ["EXPLAIN ANALYZE SELECT pg_advisory_lock(1)", A],

  // --- temp objects
  ['CREATE TEMP TABLE t (id int)', T],
  ['create temporary table t as select 1', T],
  ['CREATE GLOBAL TEMPORARY TABLE t (id int)', T],
  ['CREATE LOCAL TEMP SEQUENCE s', T],
  ['CREATE OR REPLACE TEMP VIEW v AS SELECT 1', T],
  ['CREATE TEMP VIEW v AS SELECT 1', T],
  ['CREATE TABLE pg_temp.t (id int)', T],
  ['CREATE VIEW "pg_temp".v AS SELECT 1', T],
  ['CREATE FUNCTION pg_temp.f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql', T],
  ['SELECT 1 AS x INTO TEMP t', T],
  ['SELECT * INTO TEMPORARY TABLE t FROM s', T],
  ['select * into local temp t from s', T],
  ['SELECT * INTO pg_temp.t FROM s', T],
  ['WITH q AS (SELECT 1) SELECT * INTO TEMP t FROM q', T],
  ['EXPLAIN ANALYZE CREATE TEMP TABLE t AS SELECT 1', T],
  ['CREATE TEMP TABLE t AS EXECUTE p(1)', T | P],

  // --- LISTEN, cursors, LOAD
  ['LISTEN jobs', LI],
  ['listen "Jobs"', LI],
  ['UNLISTEN *', LI],
  ['unlisten jobs', LI],
  ["NOTIFY jobs, 'x'", 0],
  ['DECLARE c CURSOR WITH HOLD FOR SELECT 1', H],
  ['DECLARE c BINARY INSENSITIVE SCROLL CURSOR with hold FOR SELECT * FROM t', H],
  ['CLOSE c', H],
  ['CLOSE ALL', H],
  ["LOAD 'auto_explain'", LO],

  // --- SQL-level prepared statements
  ['PREPARE p (int) AS SELECT $1', P],
  ['PREPARE p AS SELECT 1', P],
  ['EXECUTE p(1)', P],
  ['execute p', P],
  ['DEALLOCATE p', P],
  ['DEALLOCATE PREPARE p', P],
  ['DEALLOCATE ALL', P | DEA],
  ['deallocate prepare all', P | DEA],
  ['EXPLAIN EXECUTE p(1)', P],
  ['EXPLAIN (ANALYZE, BUFFERS) EXECUTE p(1)', P],
  ['EXECUTE p(pg_advisory_lock(1))', P | A],

  // --- DISCARD
  ['DISCARD ALL', DA],
  ['discard all;', DA],
  ['DISCARD TEMP', DT],
  ['DISCARD TEMPORARY', DT],
  ['DISCARD PLANS', DO],
  ['DISCARD SEQUENCES', DO],

  // --- Unknown
  ["DO $$ BEGIN PERFORM pg_advisory_lock(1); END $$", U],
  ['DO LANGUAGE plpgsql $body$ BEGIN SET x = 1; END $body$', U],
  ['CALL do_things(1)', U],
  ['SELECT U&"\\0073et_config"(\'a\', \'b\', false)', U],

  // --- multi-statement and mixes
  ["SET x = 1; LISTEN y; SELECT pg_advisory_lock(1); CREATE TEMP TABLE t (); LOAD 'z'", S | LI | A | T | LO],
  ['DISCARD ALL; DEALLOCATE ALL; CLOSE ALL; UNLISTEN *; RESET ALL', DA | P | DEA | H | LI | S],
  ["SELECT 'x;'; SET LOCAL y = 1; /* ; */ SELECT $$;$$", L],
  ['SELECT 1;DO $$ $$;SELECT 2', U],
  ['SELECT 1 -- ; SET x = 1\n; select 2', 0],
  ['SELECT 1 /* unterminated ; SET x = 1', 0],
  ["SELECT 'unterminated ; SET x = 1", 0],
  ['SELECT "café"; SET x = 1', S],
  ["SELECT 'ünïcödé ✓'; LISTEN über", LI],
];

test(`classifySql: ${CASES.length} table cases`, () => {
  assert.ok(CASES.length >= 80);
  for (const [sql, want] of CASES) {
    assert.equal(classifySql(sql), want, `classifySql(${JSON.stringify(sql)})`);
  }
});

test('classifySqlBytes equals classifySql on every case (NUL-terminated, bounded, offset)', () => {
  for (const [sql, want] of CASES) {
    const body = Buffer.from(sql, 'utf8');
    // NUL-terminated inside a larger buffer, with junk around it.
    const framed = Buffer.concat([Buffer.from('Qxxxx'), body, Buffer.from([0]), Buffer.from('SET y = 1;')]);
    assert.equal(classifySqlBytes(framed, 5, framed.length), want, `NUL-terminated ${JSON.stringify(sql)}`);
    // Bounded by `end`, no NUL.
    const bounded = Buffer.concat([body, Buffer.from(' ; SET z = 1')]);
    assert.equal(classifySqlBytes(bounded, 0, body.length), want, `bounded ${JSON.stringify(sql)}`);
    // Long variant (regex path of the bytes prefilter): pad with a comment.
    const long = Buffer.from(`/*${'p'.repeat(400)}*/ ${sql}`);
    assert.equal(classifySqlBytes(long, 0, long.length), classifySql(long.toString()), `long ${JSON.stringify(sql)}`);
  }
});

test('bytes variant handles empty and degenerate ranges', () => {
  assert.equal(classifySqlBytes(Buffer.alloc(0), 0, 0), 0);
  assert.equal(classifySqlBytes(Buffer.from([0]), 0, 1), 0);
  assert.equal(classifySqlBytes(Buffer.from('SET x=1'), 3, 2), 0);
  assert.equal(classifySqlBytes(Buffer.from('SET x=1'), 0, 1000), S);
});

test('case variations of every keyword flag the same', () => {
  const variants = (s: string): string[] => [s, s.toLowerCase(), s.toUpperCase(), s.replace(/[a-z]/gi, (c, i: number) => (i % 2 ? c.toUpperCase() : c.toLowerCase()))];
  const base: Array<[string, number]> = [
    ['SET x = 1', S], ['SET LOCAL x = 1', L], ['RESET ALL', S], ['LISTEN x', LI], ['UNLISTEN x', LI],
    ['DISCARD ALL', DA], ['DISCARD TEMP', DT], ['CLOSE ALL', H], ['LOAD \'x\'', LO], ['PREPARE p AS SELECT 1', P],
    ['DEALLOCATE ALL', P | DEA], ['EXECUTE p', P], ['DO $$ $$', U], ['CALL p()', U],
    ['CREATE TEMPORARY TABLE t()', T], ['SELECT PG_ADVISORY_LOCK(1)', A], ['SELECT SET_CONFIG(\'a\',\'b\',FALSE)', S],
    ['DECLARE c CURSOR WITH HOLD FOR SELECT 1', H],
  ];
  for (const [sql, want] of base) {
    for (const v of variants(sql)) {
      // Dollar-quote tags are case-sensitive but `$$` has none; names only differ in case.
      assert.equal(classifySql(v), want, v);
      assert.equal(classifySqlBytes(Buffer.from(v), 0, Buffer.byteLength(v)), want, v);
    }
  }
});

test('every trigger word inside a string, comment, dollar quote or quoted identifier is ignored', () => {
  const words = ['SET x = 1', 'RESET ALL', 'LISTEN x', 'UNLISTEN *', 'DISCARD ALL', 'DECLARE c CURSOR WITH HOLD FOR SELECT 1',
    'CLOSE ALL', "LOAD 'x'", 'PREPARE p AS SELECT 1', 'DEALLOCATE ALL', 'EXECUTE p', 'DO $x$ $x$', 'CALL p()',
    'CREATE TEMP TABLE t()', 'SELECT pg_advisory_lock(1)', "SELECT set_config('a','b',false)", 'SELECT 1 INTO TEMP t'];
  for (const w of words) {
    const esc = w.replace(/'/g, "''");
    for (const sql of [`SELECT '${esc}'`, `SELECT E'${esc.replace(/\\/g, '\\\\')}'`, `SELECT 1 -- ${w}`, `SELECT 1 /* ${w} */`,
      `SELECT $q$${w}$q$`, `SELECT $$${w.replace(/\$x\$/g, '')}$$`, `SELECT "${w.replace(/"/g, '""')}" FROM t`]) {
      assert.equal(classifySql(sql), 0, sql);
      assert.equal(classifySqlBytes(Buffer.from(sql), 0, Buffer.byteLength(sql)), 0, sql);
    }
  }
});

test('the byte prefilter lets ordinary statements through without the lexer, and still sees a statement start after comments', () => {
  const hits = (sql: string): boolean => bytesPrefilter(Buffer.from(sql), 0, Buffer.byteLength(sql));
  // Statement-start keywords elsewhere in a statement: no lexer.
  for (const sql of ['UPDATE pgbench_accounts SET abalance = abalance + -4380 WHERE aid = 81237;',
    'INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = excluded.a', 'SELECT load, close, call, "do" FROM t',
    'ALTER TABLE t ALTER COLUMN c SET DEFAULT 1', 'SELECT 1 FROM t WHERE reset = 1']) {
    assert.equal(hits(sql), false, sql);
    assert.equal(classifySql(sql), 0, sql);
  }
  // As a statement's first word, after comments, after EXPLAIN, or after a `;` (even one inside a string): still seen.
  const flagged: Array<[string, number]> = [
    ['/* leading */ SET x = 1', S], ['-- leading\nSET x = 1', S], ['-- leading\rSET x = 1', S], ['SELECT 1;SET x = 1', S],
    ["SELECT '/*'; SET x = 1; SELECT '*/'", S], ["SELECT '--'; LISTEN x", LI], ['/**/LOAD \'x\'', LO],
    ['EXPLAIN (ANALYZE) DECLARE c CURSOR WITH HOLD FOR SELECT 1', H], ['BEGIN; DO $$ BEGIN END $$', U],
    ['UPDATE t SET x = 1; SET y = 2', S], ['SELECT 1 /* c */; RESET ALL', S],
  ];
  for (const [sql, want] of flagged) {
    assert.equal(hits(sql), true, sql);
    assert.equal(classifySql(sql), want, sql);
    assert.equal(classifySqlBytes(Buffer.from(sql), 0, Buffer.byteLength(sql)), want, sql);
  }
});

test('random statements: whatever the lexer flags, the byte prefilter lets through (short and long texts)', () => {
  let seed = 20261129;
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const parts = ['SET', 'set', 'RESET', 'ALL', 'LISTEN', 'CLOSE', 'LOAD', 'DO', 'CALL', 'DECLARE', 'CURSOR', 'WITH', 'HOLD', 'FOR',
    'PREPARE', 'EXECUTE', 'DEALLOCATE', 'DISCARD', 'TEMP', 'CREATE', 'TABLE', 'INTO', 'AS', 'EXPLAIN', 'ANALYZE', 'SELECT',
    'UPDATE', 't', 'x', '=', '1', ';', ';', '(', ')', ',', "'a;b'", "'/*'", "'*/'", "'--'", '/* c */', '/*', '*/', '-- c\n',
    '\n', '$$ ; SET $$', '"q"', 'pg_advisory_lock(1)', "set_config('a','b',false)", 'pg_temp.t', 'U&"x"', 'é', 'E\'\\\';\'',
    '$', '\f', '\v', '\r', '/* /* x */ SET */', 'éSET', 'SETé', '$a$', 'x$set'];
  let flaggedSeen = 0;
  for (let k = 0; k < 20_000; k++) {
    const words: string[] = [];
    for (let n = 1 + rnd(8); n > 0; n--) words.push(parts[rnd(parts.length)]!);
    const sql = words.join(rnd(4) === 0 ? '' : ' ');
    const want = classifySql(sql);
    if (want !== 0) flaggedSeen++;
    const buf = Buffer.from(sql);
    if (want !== 0) assert.ok(bytesPrefilter(buf, 0, buf.length), `prefilter missed ${JSON.stringify(sql)}`);
    assert.equal(classifySqlBytes(buf, 0, buf.length), want, sql);
    const long = Buffer.from(`${sql} ${'x'.repeat(200)}`);
    assert.equal(classifySqlBytes(long, 0, long.length), classifySql(long.toString()), `long ${JSON.stringify(sql)}`);
  }
  assert.ok(flaggedSeen > 2000, `the generator makes flagged statements too (${flaggedSeen})`);
});

test('splitSetTarget', () => {
  assert.deepEqual(splitSetTarget('SET search_path TO app'), ['search_path']);
  assert.deepEqual(splitSetTarget('SET Statement_Timeout = 0; RESET ALL'), ['statement_timeout', '*']);
  assert.deepEqual(splitSetTarget("SET TIME ZONE 'UTC'"), ['timezone']);
  assert.deepEqual(splitSetTarget("SET NAMES 'UTF8'"), ['client_encoding']);
  assert.deepEqual(splitSetTarget("set schema 'app'"), ['search_path']);
  assert.deepEqual(splitSetTarget('SET SESSION myapp.User_Id = 1'), ['myapp.user_id']);
  assert.deepEqual(splitSetTarget('SET LOCAL "MyApp".x = 1'), ['MyApp.x']);
  assert.deepEqual(splitSetTarget('SET ROLE admin; SET SESSION AUTHORIZATION bob; RESET ROLE'), ['role', 'session_authorization']);
  assert.deepEqual(splitSetTarget('SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY'),
    ['default_transaction_isolation', 'default_transaction_read_only']);
  assert.deepEqual(splitSetTarget('SET TRANSACTION READ WRITE'), ['transaction_read_only']);
  assert.deepEqual(splitSetTarget('RESET TIME ZONE; RESET search_path'), ['timezone', 'search_path']);
  assert.deepEqual(splitSetTarget("SELECT set_config('Search_Path', 'x', false), set_config('a.b', 'c', true)"), ['search_path']);
  assert.deepEqual(splitSetTarget('SELECT set_config($1, $2, false)'), ['?']);
  assert.deepEqual(splitSetTarget("UPDATE t SET x = 1; SELECT 'SET y = 2'"), []);
  assert.deepEqual(splitSetTarget('SET CONSTRAINTS ALL DEFERRED'), []);
  assert.deepEqual(splitSetTarget(''), []);
});

test('customSettingNames: the dotted settings a statement sets or resets, lower-cased; ? for a name that is not a literal', () => {
  assert.deepEqual(customSettingNames("SET app.Tenant = 'x'; SET work_mem = '8MB'; RESET \"My\".Key"), ['app.tenant', 'my.key']);
  assert.deepEqual(customSettingNames("select set_config('app.a', $1, false), set_config('app.b', $2, true)"), ['app.a']);
  assert.deepEqual(customSettingNames('select set_config($1, $2, false)'), ['?']);
  assert.deepEqual(customSettingNames('RESET ALL'), [], 'RESET ALL names nothing: the probe reads what the client had');
  assert.deepEqual(customSettingNames("SELECT 'set app.x = 1'"), []);
});

test('customResetNames: the dotted settings RESET, and * for RESET ALL or DISCARD ALL; SET and set_config are not resets', () => {
  assert.deepEqual(customResetNames("RESET App.Tenant; SET app.x = '1'; RESET work_mem"), ['app.tenant']);
  assert.deepEqual(customResetNames("select set_config('app.a', '', false)"), []);
  assert.deepEqual(customResetNames('RESET ALL'), ['*']);
  assert.deepEqual(customResetNames('discard all'), ['*']);
  assert.deepEqual(customResetNames('DISCARD TEMP'), []);
});

test('micro-benchmark (printed, not asserted)', () => {
  const pgbench = 'SELECT abalance FROM pgbench_accounts WHERE aid = 48213;';
  const cols: string[] = [];
  for (let i = 0; cols.join(', ').length < 1700; i++) cols.push(`"t0"."column_name_${i}"`);
  const orm = (`SELECT ${cols.join(', ')} FROM "public"."users" AS "t0" LEFT JOIN "public"."profiles" AS "t1" ` +
    `ON "t1"."user_id" = "t0"."id" WHERE ("t0"."email" = $1 AND "t0"."deleted_at" IS NULL) ` +
    `ORDER BY "t0"."created_at" DESC LIMIT $2 OFFSET $3`).slice(0, 2048);
  const ormUpdate = `UPDATE "public"."users" SET ${cols.slice(0, 60).map((c, i) => `${c.slice(5)} = $${i + 1}`).join(', ')} WHERE "id" = $61`;
  const nsPerCall = (fn: () => number, n: number): string => {
    let sink = 0;
    for (let i = 0; i < n / 10; i++) sink += fn();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) sink += fn();
    const ns = Number(process.hrtime.bigint() - t0) / n;
    return `${ns.toFixed(0)} ns/call${sink < 0 ? '!' : ''}`;
  };
  for (const [name, sql, n] of [
    ['pgbench select-only', pgbench, 500_000],
    [`ORM select ${orm.length} B`, orm, 20_000],
    [`ORM update ${ormUpdate.length} B (regex hit; the byte scan then spares the lexer)`, ormUpdate, 20_000],
  ] as const) {
    const buf = Buffer.from(`${sql}\0`);
    console.log(`classify ${name}: string ${nsPerCall(() => classifySql(sql), n)}, bytes ${nsPerCall(() => classifySqlBytes(buf, 0, buf.length), n)}`);
  }
});
