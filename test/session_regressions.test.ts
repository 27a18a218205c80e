// Regressions: transaction-mode pooling and session-emulation bugs found in
// review, each reproduced against a real PostgreSQL and fixed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import pg from 'pg';
import postgres from 'postgres';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startSluice, type TestSluice } from './harness/sluice.js';
import { loggedInSession, frame, cstr, int16, int32, parseMsg as parse, bindMsg as bind, executeMsg as exec, syncMsg as sync, type MessageStream } from './harness/wire.js';
import { query } from '../src/protocol/messages.js';
import { waitFor } from './harness/wait.js';

let pgsrv: TestPostgres;
before(async () => {
  pgsrv = await startPostgres({ conf: { max_connections: 60 } });
  const c = new pg.Client({ connectionString: pgsrv.url() });
  await c.connect();
  await c.query("do $$ begin if not exists (select from pg_roles where rolname = 'lowly') then create role lowly; end if; end $$");
  await c.end();
});
after(async () => pgsrv?.stop());

async function sluice(settings: Record<string, string | number | boolean> = {}): Promise<TestSluice> {
  return startSluice({ pg: pgsrv, settings: { pool_mode: 'transaction', default_pool_size: 1, max_client_conn: 100, ...settings } });
}

async function client(s: TestSluice, extra: Partial<pg.ClientConfig> = {}): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: s.url(), ...extra });
  c.on('error', () => {});
  await c.connect();
  return c;
}

function raw(s: TestSluice): Promise<{ socket: net.Socket; msgs: MessageStream }> {
  return loggedInSession(s.port);
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, rej) => setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms).unref())]);
}

function types(msgs: MessageStream, from = 0): string {
  return msgs.all
    .slice(from)
    .map((m) => m.type)
    .join('');
}

async function zCount(msgs: MessageStream, n: number, ms = 5000): Promise<void> {
  await msgs.until(() => msgs.all.filter((x) => x.type === 'Z').length >= n, ms);
}

// Regression (found in review): a linked client's named Parse is sent as Pending.Parse and the statement is
// added to server.statements before the reply (client_conn.ts:529). When PostgreSQL
// rejects it (here: table missing), the tracker's ErrorResponse loop only calls
// notPrepared() for ParseOurs (session/tracker.ts:104), so the server is believed to
// hold sluice_1. Expected: after CREATE TABLE the same named query works. Actual:
// Sluice answers ParseComplete itself and every Bind fails with
// 'prepared statement "sluice_1" does not exist' (for every client using that text, on that server).
test('a named Parse that fails on the server inside a transaction is not remembered as prepared', async () => {
  const s = await sluice();
  try {
    const c = await client(s);
    await c.query('drop table if exists later_t');
    await c.query('begin');
    await assert.rejects(c.query({ name: 'q_later', text: 'select count(*)::int as n from later_t' }), /later_t/);
    await c.query('rollback');
    await c.query('create table later_t(x int)');
    const r = await c.query({ name: 'q_later', text: 'select count(*)::int as n from later_t' });
    assert.equal(r.rows[0].n, 0);
    await c.end();
  } finally {
    await s.stop();
  }
});

// Regression (found in review): SET ROLE is flagged and probed, but the probe (session/state.ts:8, PROBE_SQL)
// reads pg_settings, which hides GUC_NO_SHOW_ALL settings such as role and
// session_authorization. Nothing is pinned, nothing is reset, and the server goes back
// to the pool (client_conn.ts:676 unlink) still running as the other role.
// Expected: client B runs as postgres. Actual: current_user = 'lowly' (privilege leak).
test('SET ROLE does not leak to the next client on the same server', async () => {
  const s = await sluice();
  try {
    const a = await client(s);
    await a.query('set role lowly');
    const b = await client(s);
    const r = await b.query('select current_user as u');
    assert.equal(r.rows[0].u, 'postgres');
    await Promise.all([a.end(), b.end()]);
  } finally {
    await s.stop();
  }
});

// Regression (found in review): startup parameters are replayed with SET (source 'session'); RESET / RESET ALL then
// go to the server connection's defaults, and the next probe's adoptSessionSettings
// (session/params.ts:80) deletes them from the client's wanted set. In PostgreSQL a
// startup option is the RESET value. Expected 2500ms after RESET (PostgreSQL direct
// does so, checked in the test). Actual: '0'.
test('RESET of a startup parameter goes back to the startup value, as in PostgreSQL', async () => {
  const s = await sluice();
  try {
    // What PostgreSQL itself does with the same startup options.
    const direct = new pg.Client({ connectionString: pgsrv.url(), options: '-c statement_timeout=2500' });
    await direct.connect();
    await direct.query('reset statement_timeout');
    assert.equal((await direct.query('show statement_timeout')).rows[0].statement_timeout, '2500ms');
    await direct.end();
    const c = await client(s, { options: '-c statement_timeout=2500' });
    assert.equal((await c.query('show statement_timeout')).rows[0].statement_timeout, '2500ms');
    await c.query('reset statement_timeout');
    assert.equal((await c.query('show statement_timeout')).rows[0].statement_timeout, '2500ms');
    await c.query('reset all');
    assert.equal((await c.query('show statement_timeout')).rows[0].statement_timeout, '2500ms');
    await c.end();
  } finally {
    await s.stop();
  }
});

// Regression (found in review): after an ErrorResponse has emptied the tracker (no Sync yet), a named Parse is
// sent and recorded in server.statements (client_conn.ts:529) although PostgreSQL skips
// it until Sync; the ReadyForQuery branch (session/tracker.ts:109) pops it without
// notPrepared(). Expected: the next Parse/Bind of s_after gives 12DCZ. Actual: Sluice
// answers ParseComplete itself and the Bind fails: 1EZ ('sluice_N does not exist').
test('error in a flushed pipeline, then a named Parse/Bind before Sync: statement not thought prepared', async () => {
  const s = await sluice();
  try {
    const { socket, msgs } = await raw(s);
    // Prime: s1 prepared on the server is NOT the case; first get an error with Flush.
    socket.write(Buffer.concat([frame('P', Buffer.concat([cstr(''), cstr('select 1/0'), int16(0)])), bind('', ''), exec(), frame('H', Buffer.alloc(0))]));
    await msgs.until((m) => m.type === 'E');
    const mark = msgs.all.length;
    // After the error the server skips to Sync; Sluice must not answer the Parse either.
    socket.write(Buffer.concat([parse('s_after', 'select 42 as v'), bind('', 's_after'), exec(), sync()]));
    await zCount(msgs, 2);
    assert.equal(types(msgs, mark), 'Z', 'PostgreSQL skips everything up to Sync after an error');
    // A new transaction: s_after is a fresh name to PostgreSQL, must prepare and run.
    const mark2 = msgs.all.length;
    socket.write(Buffer.concat([parse('s_after', 'select 42 as v'), bind('', 's_after'), exec(), sync()]));
    await zCount(msgs, 3);
    assert.equal(types(msgs, mark2), '12DCZ');
    socket.end();
  } finally {
    await s.stop();
  }
});

// Regression (found in review): with max_prepared_statements, the eviction Close of a victim is removed from the
// LRU when sent (session/prepared.ts:72 evictFor / client_conn.ts:521). When an earlier
// error makes PostgreSQL skip that Close, the ErrorResponse loop (session/tracker.ts:100-106)
// drops the CloseOurs without putting the victim back, so Sluice later re-Parses it.
// Expected: Bind of 'a' works (2DCZ). Actual: 'prepared statement "sluice_1" already
// exists', and it fails the same way on every retry on that server.
test('eviction skipped after an error does not make a statement impossible to prepare again', async () => {
  const s = await sluice({ max_prepared_statements: 1 });
  try {
    const { socket, msgs } = await raw(s);
    socket.write(Buffer.concat([parse('a', 'select 1 as a'), bind('', 'a'), exec(), sync()]));
    await zCount(msgs, 2);
    // One pipeline: an error, then a Bind of b (which evicts a). The server skips both.
    socket.write(
      Buffer.concat([
        frame('P', Buffer.concat([cstr(''), cstr('select 1/0'), int16(0)])),
        bind('', ''),
        exec(),
        parse('b', 'select 2 as b'),
        bind('', 'b'),
        exec(),
        sync(),
      ]),
    );
    await zCount(msgs, 3);
    const mark = msgs.all.length;
    socket.write(Buffer.concat([bind('', 'a'), exec(), sync()]));
    await zCount(msgs, 4);
    const errs = msgs.all.slice(mark).filter((m) => m.type === 'E');
    assert.deepEqual(
      errs.map((e) => e.fields?.get('M')),
      [],
    );
    assert.equal(types(msgs, mark), '2DCZ');
    socket.end();
  } finally {
    await s.stop();
  }
});

// Regression (found in review): refuseByPolicy writes its ErrorResponse+ReadyForQuery straight to the client
// socket (client_conn.ts:630, and :632 for extended messages) while replies to earlier
// pipelined messages are still owed by the server. Expected order TDCZ then EZ.
// Actual: EZTDCZ — the client pairs the refusal with its first query.
test('pin_policy=error: a refused query does not overtake the replies of an earlier pipelined query', async () => {
  const s = await sluice({ pin_policy: 'error' });
  try {
    const { socket, msgs } = await raw(s);
    const mark = msgs.all.length;
    socket.write(Buffer.concat([query('select pg_sleep(0.3), 1 as first'), query('select pg_advisory_lock(77)')]));
    await zCount(msgs, 3);
    assert.equal(types(msgs, mark), 'TDCZEZ', 'replies in the order the queries were sent');
    socket.end();
  } finally {
    await s.stop();
  }
});

// Regression (found in review): when an error has already emptied the tracker before Sync, a Parse of a statement
// already on the server and a Close of a named statement are answered at once
// (SyntheticParse client_conn.ts:509, SyntheticClose :598, drained by tracker.ts:59),
// although PostgreSQL skips every message until Sync. Expected 'Z'. Actual '13Z'.
// (The Close also drops the client's statement, which PostgreSQL would keep.)
test('synthetic ParseComplete/CloseComplete are not sent while the server skips to Sync after an error', async () => {
  const s = await sluice();
  try {
    const { socket, msgs } = await raw(s);
    socket.write(Buffer.concat([parse('known', 'select 5 as v'), bind('', 'known'), exec(), sync()]));
    await zCount(msgs, 2);
    socket.write(Buffer.concat([frame('P', Buffer.concat([cstr(''), cstr('select 1/0'), int16(0)])), bind('', ''), exec(), frame('H', Buffer.alloc(0))]));
    await msgs.until((m) => m.type === 'E');
    const mark = msgs.all.length;
    socket.write(Buffer.concat([parse('known', 'select 5 as v'), frame('C', Buffer.concat([Buffer.from('S'), cstr('other')])), sync()]));
    await zCount(msgs, 3);
    assert.equal(types(msgs, mark), 'Z', 'PostgreSQL answers nothing but ReadyForQuery here');
    socket.end();
  } finally {
    await s.stop();
  }
});

// Regression (found in review): PostgreSQL ignores Sync during COPY IN, so libpq sends P/B/E/S, data, CopyDone, S
// and gets ONE ReadyForQuery. Sluice counts both Syncs (client_conn.ts:424
// pendingReplies++, tracker Pending.Sync) and never reaches pendingReplies === 0: the
// server is never released (other clients wait forever) and the leftover Sync in the
// tracker puts later synthetic replies out of step. Expected: second client runs.
// Actual: it times out.
test('COPY FROM STDIN over the extended protocol (libpq style: Sync, data, CopyDone, Sync) releases the server', async () => {
  const s = await sluice();
  try {
    const setup = new pg.Client({ connectionString: pgsrv.url() });
    await setup.connect();
    await setup.query('create table if not exists copy_ext(a int)');
    await setup.end();
    const { socket, msgs } = await raw(s);
    const mark = msgs.all.length;
    socket.write(Buffer.concat([frame('P', Buffer.concat([cstr(''), cstr('copy copy_ext from stdin'), int16(0)])), bind('', ''), exec(), sync()]));
    await msgs.until((m) => m.type === 'G');
    socket.write(Buffer.concat([frame('d', Buffer.from('1\n2\n')), frame('c', Buffer.alloc(0)), sync()]));
    await zCount(msgs, 2);
    assert.equal(types(msgs, mark), '12GCZ');
    // The transaction is over: another client must get the only server.
    const b = await client(s);
    const r = await withTimeout(b.query('select 1 as one'), 5000, 'second client gets the server after COPY');
    assert.equal(r.rows[0].one, 1);
    // And the first client's next batch is answered in order.
    const mark2 = msgs.all.length;
    socket.write(Buffer.concat([parse('k', 'select 9 as v'), bind('', 'k'), exec(), sync()]));
    socket.write(Buffer.concat([parse('k2', 'select 9 as v'), bind('', 'k2'), exec(), sync()]));
    await zCount(msgs, 4);
    assert.equal(types(msgs, mark2), '12DCZ12DCZ');
    await b.end();
    socket.end();
  } finally {
    await s.stop();
  }
});

// ---------------------------------------------------------------- found in the review of 2026-11-29

const pinsOf = (s: TestSluice): string[] => [...s.app.clients].flatMap((c) => c.pinReasons);
const ADVISORY_LOCKS_HERE = "select count(*)::int as n from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()";
const rows = (got: Array<{ type: string; body: Buffer }>): string[] => got.filter((m) => m.type === 'D').map((m) => m.body.subarray(6).toString());
const sqlstates = (got: Array<{ type: string; fields?: Map<string, string> }>): string[] => got.filter((m) => m.type === 'E').map((m) => m.fields?.get('C') ?? '?');

/** Writes `bytes` and returns what came back up to the next ReadyForQuery (or the `zs`-th one). */
async function exchange(x: { socket: net.Socket; msgs: MessageStream }, bytes: Buffer, zs = 1) {
  const from = x.msgs.all.length;
  const want = x.msgs.all.filter((m) => m.type === 'Z').length + zs;
  x.socket.write(bytes);
  await zCount(x.msgs, want);
  return x.msgs.all.slice(from);
}


// A named statement parsed while the client held no server was classified only
// for pin_policy = error; its flags never reached the link, so nothing looked
// at the server afterwards and the session lock went to the next client.
test('a named statement parsed while idle that takes a session advisory lock pins its client', async () => {
  const s = await sluice();
  try {
    const a = await client(s);
    await a.query({ name: 'lock', text: 'select pg_advisory_lock($1)', values: [4242] });
    await waitFor(() => pinsOf(s).includes('advisory_lock'), 'the client to be pinned for its lock');
    await a.query('select pg_advisory_unlock_all()');
    await waitFor(() => pinsOf(s).length === 0, 'the pin to go with the lock');
    const b = await client(s);
    assert.equal((await b.query(ADVISORY_LOCKS_HERE)).rows[0].n, 0, 'the next client on the only server holds no lock');
    await Promise.all([a.end(), b.end()]);
  } finally {
    await s.stop();
  }
});

// Flags were gathered at Parse only: node-postgres sends a known named statement as Bind/Execute alone.
test('a named statement run again later (Bind only) is looked at again: its second lock pins', async () => {
  const s = await sluice();
  try {
    const a = await client(s);
    await a.query('begin');
    await a.query({ name: 'lock', text: 'select pg_advisory_lock($1)', values: [1] });
    await a.query('select pg_advisory_unlock_all()');
    await a.query('commit');
    await waitFor(() => s.app.clients.size === 1 && pinsOf(s).length === 0, 'no pin after the unlock');
    await a.query({ name: 'lock', text: 'select pg_advisory_lock($1)', values: [2] });
    await waitFor(() => pinsOf(s).includes('advisory_lock'), 'the pin for the second lock');
    await a.end();
  } finally {
    await s.stop();
  }
});

test("set_config(name, $1, false) in named statements (pg's {name}, postgres.js by default) follows its client and reaches no other", async () => {
  const s = await sluice();
  try {
    const a = await client(s);
    await a.query({ name: 'tenant', text: "select set_config('app.tenant', $1, false)", values: ['tenant-A'] });
    const js = postgres(s.url(), { max: 1, onnotice: () => {} });
    await js`select set_config('app.region', ${'region-J'}, false)`;
    const b = await client(s);
    const seen = (await b.query("select current_setting('app.tenant', true) as t, current_setting('app.region', true) as r")).rows[0];
    assert.deepEqual([seen.t ?? '', seen.r ?? ''], ['', ''], 'the next client on the only server sees neither setting');
    assert.equal((await a.query("select current_setting('app.tenant') as t")).rows[0].t, 'tenant-A');
    const [mine] = await js`select current_setting('app.region') as r`;
    assert.equal(mine.r, 'region-J');
    await js.end();
    await Promise.all([a.end(), b.end()]);
  } finally {
    await s.stop();
  }
});

// The unnamed statement outlives a Sync (pgx's describe_exec mode, libpq's
// PQprepare(conn, "", …) then PQexecPrepared): its Bind may come on another
// server, or after another client's Parse on the same one.
test("the unnamed statement is the client's own across a Sync, even after another client parsed one on the same server", async () => {
  const s = await sluice();
  const describe = frame('D', Buffer.concat([Buffer.from('S'), cstr('')]));
  const a = await raw(s);
  const b = await raw(s);
  try {
    await exchange(a, Buffer.concat([parse('', "select 'A-query'::text"), describe, sync()]));
    await exchange(b, Buffer.concat([parse('', "select 'B-query'::text"), describe, sync()]));
    assert.deepEqual(rows(await exchange(a, Buffer.concat([bind('', ''), exec(), sync()]))), ['A-query']);
    assert.deepEqual(rows(await exchange(b, Buffer.concat([bind('', ''), exec(), sync()]))), ['B-query']);
    // A simple Query drops the client's unnamed statement: binding it is an error, never B's statement.
    await exchange(a, query('select 1'));
    await exchange(b, Buffer.concat([parse('', "select 'B-again'::text"), describe, sync()]));
    const got = await exchange(a, Buffer.concat([bind('', ''), exec(), sync()]));
    assert.deepEqual(rows(got), []);
    const err = got.find((m) => m.type === 'E') as { fields?: Map<string, string> } | undefined;
    assert.equal(err?.fields?.get('C'), '26000', 'PostgreSQL says there is no unnamed statement');
  } finally {
    a.socket.destroy();
    b.socket.destroy();
    await s.stop();
  }
});

// The cache of prepared statements was cleared from the SQL text, so a DISCARD
// ALL that PostgreSQL refused (inside a transaction block) made Sluice forget
// statements the server still had: "prepared statement sluice_1 already exists".
test('a DISCARD ALL refused inside a transaction block leaves the prepared statements usable', async () => {
  const s = await sluice();
  try {
    const a = await client(s);
    const b = await client(s);
    assert.equal((await b.query({ name: 'q', text: 'select 1 as v' })).rows[0].v, 1);
    await a.query('begin');
    await assert.rejects(a.query('discard all'), /cannot run inside a transaction block/);
    await a.query('rollback');
    for (let i = 0; i < 2; i++) assert.equal((await b.query({ name: 'q', text: 'select 1 as v' })).rows[0].v, 1);
    await Promise.all([a.end(), b.end()]);
  } finally {
    await s.stop();
  }
});

test('pin_policy = allow: after a DEALLOCATE ALL the prepared statements are prepared again', async () => {
  const s = await sluice({ pin_policy: 'allow' });
  try {
    const a = await client(s);
    const b = await client(s);
    assert.equal((await b.query({ name: 'q', text: 'select 2 as v' })).rows[0].v, 2);
    await a.query('deallocate all');
    assert.equal((await b.query({ name: 'q', text: 'select 2 as v' })).rows[0].v, 2);
    await Promise.all([a.end(), b.end()]);
  } finally {
    await s.stop();
  }
});

// With pg_temp on search_path, a plain CREATE TABLE makes a temporary table: no SQL text says so.
test('search_path naming pg_temp: a later plain CREATE TABLE makes a temp table, and its client is pinned', async () => {
  const s = await sluice();
  try {
    const a = await client(s);
    await a.query('set search_path = pg_temp, public');
    await a.query('create table shadow_items(id int)');
    await waitFor(() => pinsOf(s).includes('temp_object'), 'the pin for the temp table');
    await a.end();
    // The transaction-scoped form: SET LOCAL in the same transaction as the CREATE.
    const c = await client(s);
    await c.query('begin');
    await c.query('set local search_path = pg_temp');
    await c.query('create table shadow_local(id int)');
    await c.query('commit');
    await waitFor(() => pinsOf(s).includes('temp_object'), 'the pin after SET LOCAL search_path');
    await c.end();
  } finally {
    await s.stop();
  }
});

// A FunctionCall names its function by OID only; pg_advisory_lock(bigint) is OID 2880.
test('a fast-path FunctionCall is looked at like DO: a session advisory lock taken through it pins', async () => {
  const s = await sluice();
  const a = await raw(s);
  try {
    const arg = Buffer.from('4711');
    a.socket.write(frame('F', Buffer.concat([int32(2880), int16(1), int16(0), int16(1), int32(arg.length), arg, int16(0)])));
    await zCount(a.msgs, 2);
    assert.ok(a.msgs.all.some((m) => m.type === 'V'), 'a FunctionCallResponse');
    await waitFor(() => pinsOf(s).includes('advisory_lock'), 'the pin for the lock');
  } finally {
    a.socket.destroy();
    await s.stop();
  }
});

// pg_settings does not list placeholders such as app.tenant, so the probe saw
// no setting: the next client on the server read the first one's tenant.
test('SET of a custom setting (app.tenant) follows its client, is RESET for the next, and RESET by the client too', async () => {
  const s = await sluice();
  try {
    const a = await client(s);
    const tenant = async (c: pg.Client): Promise<string> => (await c.query("select coalesce(current_setting('app.tenant', true), '') as t")).rows[0].t;
    await a.query("set app.tenant = 'tenant-A'");
    const b = await client(s);
    assert.equal(await tenant(b), '', 'the next client on the only server does not see it');
    assert.equal(await tenant(a), 'tenant-A', 'set again for its own client after the other used the server');
    await a.query('reset app.tenant');
    await b.query("set app.tenant = 'tenant-B'");
    assert.equal(await tenant(a), '', "A's RESET stays, and B's value does not reach it");
    assert.equal(await tenant(b), 'tenant-B');
    await Promise.all([a.end(), b.end()]);
  } finally {
    await s.stop();
  }
});

test('set_config with a setting name that is not a literal pins its client: what it set cannot be asked for', async () => {
  const s = await sluice();
  try {
    const a = await client(s);
    await a.query('select set_config($1, $2, false)', ['app.tenant', 'tenant-A']);
    await waitFor(() => pinsOf(s).includes('unknown_setting'), 'the pin');
    await a.end();
  } finally {
    await s.stop();
  }
});

// ---------------------------------------------------------------- second review of 2026-11-29

// After an error PostgreSQL skips everything up to Sync, so what was sent
// after it did not change the server's unnamed statement; Sluice assumed it did.
test("messages the server skipped after an error never make a client run another's unnamed statement", async () => {
  const s = await sluice();
  const a = await raw(s);
  const b = await raw(s);
  const noPortal = exec('no_such_portal');
  const closeUnnamed = frame('C', Buffer.concat([Buffer.from('S'), cstr('')]));
  try {
    for (const [label, skipped] of [
      ['a Parse', parse('', "select 'A2'::text")],
      ['a Close', closeUnnamed],
      ['a Bind', Buffer.concat([bind('', ''), exec()])],
    ] as const) {
      await exchange(a, Buffer.concat([parse('', "select 'A1'::text"), bind('', ''), exec(), sync()]));
      await exchange(b, Buffer.concat([parse('', "select 'B secret'::text"), bind('', ''), exec(), sync()]));
      const failed = await exchange(a, Buffer.concat([noPortal, skipped, sync()]));
      assert.deepEqual(sqlstates(failed), ['34000'], `${label}: the failing Execute`);
      const got = await exchange(a, Buffer.concat([bind('', ''), exec(), sync()]));
      assert.ok(!rows(got).includes('B secret'), `${label}: A ran B's statement`);
      assert.ok(rows(got).length === 1 || sqlstates(got).includes('26000'), `${label}: A's own statement, or none: ${JSON.stringify(rows(got))} ${sqlstates(got)}`);
    }
  } finally {
    a.socket.destroy();
    b.socket.destroy();
    await s.stop();
  }
});

// pgx's describe-exec: Parse and Describe in one round trip, Bind and Execute in the next.
test('an unnamed statement that sets a custom setting, bound in a later round trip, keeps it from the next client', async () => {
  const s = await sluice();
  const a = await raw(s);
  const describe = frame('D', Buffer.concat([Buffer.from('S'), cstr('')]));
  const bindText = (value: string): Buffer =>
    frame('B', Buffer.concat([cstr(''), cstr(''), int16(0), int16(1), int32(Buffer.byteLength(value)), Buffer.from(value), int16(0)]));
  try {
    await exchange(a, Buffer.concat([parse('', "select set_config('app.tenant', $1, false)"), describe, sync()]));
    await exchange(a, Buffer.concat([bindText('tenant_A'), exec(), sync()]));
    const b = await client(s);
    assert.equal((await b.query("select coalesce(current_setting('app.tenant', true), '') as t")).rows[0].t, '');
    await b.end();
  } finally {
    a.socket.destroy();
    await s.stop();
  }
});

// The cache was cleared when DISCARD ALL's reply came, so a statement pipelined after it was forgotten.
test('a DISCARD ALL pipelined before a named Parse leaves that statement usable, for its client and others', async () => {
  const s = await sluice();
  const a = await raw(s);
  try {
    const first = await exchange(a, Buffer.concat([query('discard all'), parse('n2', 'select 42'), bind('', 'n2'), exec(), sync()]), 2);
    assert.deepEqual(rows(first), ['42']);
    const again = await exchange(a, Buffer.concat([bind('', 'n2'), exec(), sync()]));
    assert.deepEqual([rows(again), sqlstates(again)], [['42'], []], 'A binds its statement again');
    const b = await client(s);
    assert.equal((await b.query({ name: 'other', text: 'select 42' })).rows[0]['?column?'], 42, 'another client prepares the same text');
    await b.end();
  } finally {
    a.socket.destroy();
    await s.stop();
  }
});

// PostgreSQL skips a simple Query that follows an error before the Sync: no
// ReadyForQuery of its own. Sluice counted one, and kept the server for good.
test('a simple Query skipped after an error does not keep the server from the next client', async () => {
  const s = await sluice({ query_wait_timeout: 5 });
  const a = await raw(s);
  try {
    const got = await exchange(a, Buffer.concat([exec('no_such_portal'), query('select 1'), sync()]));
    assert.deepEqual(got.map((m) => m.type).join(''), 'EZ');
    const b = await client(s);
    assert.equal((await withTimeout(b.query('select 2 as v'), 5000, 'B gets the only server')).rows[0].v, 2);
    await b.end();
  } finally {
    a.socket.destroy();
    await s.stop();
  }
});

test("a custom setting set to '' stays '', even when its client's startup options gave it a value", async () => {
  const s = await sluice();
  try {
    const a = await client(s, { options: '-c app.tenant=acme' } as Partial<pg.ClientConfig>);
    const tenant = async (c: pg.Client): Promise<string> => (await c.query("select current_setting('app.tenant', true) as t")).rows[0].t;
    assert.equal(await tenant(a), 'acme');
    await a.query("set app.tenant = ''");
    const b = await client(s);
    await b.query('select 1');
    assert.equal(await tenant(a), '', 'set again as the client left it after another client used the server');
    await Promise.all([a.end(), b.end()]);
  } finally {
    await s.stop();
  }
});


// ---------------------------------------------------------------- third review of 2026-11-29

// An error for an earlier unnamed Parse dropped the client's later one.
test("an earlier unnamed Parse's error does not drop the client's later unnamed statement", async () => {
  const s = await sluice();
  const a = await raw(s);
  try {
    const first = await exchange(a, Buffer.concat([parse('', 'select * from no_such_table'), sync(), parse('', "select 'mine42'::text"), sync()]), 2);
    assert.deepEqual(sqlstates(first), ['42P01']);
    const got = await exchange(a, Buffer.concat([bind('', ''), exec(), sync()]));
    assert.deepEqual([rows(got), sqlstates(got)], [['mine42'], []]);
  } finally {
    a.socket.destroy();
    await s.stop();
  }
});

test('a name parsed again after a pipelined DISCARD ALL, with the same text, is still the client’s', async () => {
  const s = await sluice();
  const a = await raw(s);
  try {
    await exchange(a, Buffer.concat([parse('q', "select 'q1'::text"), sync()]));
    await exchange(a, Buffer.concat([query('discard all'), parse('q', "select 'q1'::text"), sync()]), 2);
    const got = await exchange(a, Buffer.concat([bind('', 'q'), exec(), sync()]));
    assert.deepEqual([rows(got), sqlstates(got)], [['q1'], []]);
  } finally {
    a.socket.destroy();
    await s.stop();
  }
});

// A refused DISCARD ALL makes the statements unsure; an error then made the
// server skip the Close and Parse that settle one, and Sluice took it as absent.
test('statements stay usable after a refused DISCARD ALL and an error that skips their re-preparation', async () => {
  const s = await sluice();
  const a = await raw(s);
  try {
    assert.deepEqual(rows(await exchange(a, Buffer.concat([parse('x', "select 'x'::text"), bind('', 'x'), exec(), sync()]))), ['x']);
    await exchange(a, Buffer.concat([query('begin'), query('discard all'), query('rollback')]), 3);
    const skipped = await exchange(a, Buffer.concat([parse('', 'select 1/0'), bind('', ''), exec(), bind('', 'x'), exec(), sync()]));
    assert.deepEqual(sqlstates(skipped), ['22012']);
    for (let i = 0; i < 2; i++) {
      const got = await exchange(a, Buffer.concat([bind('', 'x'), exec(), sync()]));
      assert.deepEqual([rows(got), sqlstates(got)], [['x'], []], `bind ${i}`);
    }
    const b = await client(s);
    assert.equal((await b.query({ name: 'other', text: "select 'x'::text" })).rows[0].text, 'x', 'another client prepares the same text');
    await b.end();
  } finally {
    a.socket.destroy();
    await s.stop();
  }
});

test('RESET of a custom setting the startup options gave brings back the startup value, as in PostgreSQL', async () => {
  const s = await sluice();
  try {
    const a = await client(s, { options: '-c app.tenant=X' } as Partial<pg.ClientConfig>);
    const tenant = async (): Promise<string> => (await a.query("select current_setting('app.tenant', true) as t")).rows[0].t;
    assert.equal(await tenant(), 'X');
    await a.query("set app.tenant = 'Y'");
    assert.equal(await tenant(), 'Y');
    await a.query({ name: 'reset_tenant', text: 'reset app.tenant' }); // a named statement, as postgres.js sends it
    assert.equal(await tenant(), 'X');
    await a.query("set app.tenant = 'Z'");
    await a.query('reset all');
    assert.equal(await tenant(), 'X');
    await a.end();
  } finally {
    await s.stop();
  }
});

// Found by the differential fuzz: the replay sent SET "search_path" TO 'fz, public',
// which PostgreSQL reads as one schema named "fz, public".
test('a search_path of several schemas, set by SQL or at startup, follows its client to a server another client used', async () => {
  const setup = new pg.Client({ connectionString: pgsrv.url() });
  await setup.connect();
  await setup.query("create schema if not exists fz; create table if not exists fz.fz_only(v text); truncate fz.fz_only; insert into fz.fz_only values ('fz')");
  await setup.end();
  const s = await sluice();
  try {
    const a = await client(s);
    await a.query('set search_path = fz, public');
    const started = await client(s, { options: '-c search_path=fz,public' } as Partial<pg.ClientConfig>);
    const b = await client(s);
    await b.query('select 1');
    for (const c of [a, started]) {
      const r = (await c.query("select current_setting('search_path') as p, (select v from fz_only) as v")).rows[0];
      assert.equal(r.v, 'fz', `search_path ${r.p}`);
      await b.query('select 1');
    }
    await Promise.all([a.end(), b.end(), started.end()]);
  } finally {
    await s.stop();
  }
});

test('a Parse of a name the client already has is refused with 42P05, as PostgreSQL does, idle or in a transaction', async () => {
  const s = await sluice();
  const a = await raw(s);
  try {
    await exchange(a, Buffer.concat([parse('dup', 'select 1'), sync()]));
    const idle = await exchange(a, Buffer.concat([parse('dup', 'select 2'), bind('', 'dup'), exec(), sync()]));
    assert.deepEqual([sqlstates(idle), rows(idle)], [['42P05'], []], 'the rest of the batch is skipped, as a server would');
    const inTx = await exchange(a, Buffer.concat([query('begin'), parse('dup', 'select 3'), sync(), query('rollback')]), 3);
    assert.deepEqual(sqlstates(inTx), ['42P05']);
    const still = await exchange(a, Buffer.concat([bind('', 'dup'), exec(), sync()]));
    assert.deepEqual(rows(still), ['1'], 'the first statement stands');
  } finally {
    a.socket.destroy();
    await s.stop();
  }
});
