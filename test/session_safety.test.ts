// Issue 5: transaction pooling that never silently breaks a session.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import postgres from 'postgres';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startSluice, type TestSluice } from './harness/sluice.js';
import { run } from './harness/processes.js';
import { waitFor } from './harness/wait.js';

let server: TestPostgres;
before(async () => {
  server = await startPostgres({ conf: { max_connections: 80 } });
  const c = new pg.Client({ connectionString: server.url() });
  await c.connect();
  await c.query('create table items(id int primary key, name text); insert into items select g, $$item$$ || g from generate_series(1, 100) g');
  await c.end();
  const init = await run('pgbench', ['-i', '-q', '-s', '1', server.url()], { timeoutMs: 120_000 });
  assert.equal(init.code, 0, init.stderr);
});
after(async () => server?.stop());

async function sluice(settings: Record<string, string | number | boolean> = {}): Promise<TestSluice> {
  return startSluice({ pg: server, settings: { pool_mode: 'transaction', default_pool_size: 1, max_client_conn: 200, ...settings } });
}

async function client(s: TestSluice): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: s.url() });
  c.on('error', () => {});
  await c.connect();
  return c;
}

async function one<T = unknown>(c: pg.Client, sql: string): Promise<T> {
  const r = await c.query(sql);
  return Object.values(r.rows[0] as Record<string, unknown>)[0] as T;
}

test('a session SET follows its client and never reaches the next client on the same server', async () => {
  const s = await sluice();
  try {
    const a = await client(s);
    const b = await client(s);
    await a.query("set statement_timeout = '4321ms'");
    await a.query("select set_config('lock_timeout', '1111', false)");
    await a.query('set default_transaction_read_only = on');
    assert.equal(await one(b, 'select current_setting($$statement_timeout$$)'), '0');
    assert.equal(await one(b, 'select current_setting($$lock_timeout$$)'), '0');
    assert.equal(await one(b, 'select current_setting($$default_transaction_read_only$$)'), 'off');
    await b.query('create temp table if not exists writable(x int) on commit drop');
    assert.equal(await one(a, 'select current_setting($$statement_timeout$$)'), '4321ms');
    assert.equal(await one(a, 'select current_setting($$lock_timeout$$)'), '1111ms');
    await a.query('reset statement_timeout');
    assert.equal(await one(a, 'select current_setting($$statement_timeout$$)'), '0');
    // SET LOCAL stays inside its transaction.
    await b.query("begin; set local statement_timeout = '777ms'; commit");
    assert.equal(await one(b, 'select current_setting($$statement_timeout$$)'), '0');
    await Promise.all([a.end(), b.end()]);
  } finally {
    await s.stop();
  }
});

test('startup parameters (application_name, statement_timeout via options) are replayed per client', async () => {
  const s = await sluice();
  try {
    const a = new pg.Client({ connectionString: s.url(), application_name: 'app-a', statement_timeout: 2500 });
    const b = new pg.Client({ connectionString: s.url(), application_name: 'app-b' });
    await a.connect();
    await b.connect();
    for (let i = 0; i < 3; i++) {
      assert.equal(await one(a, 'select current_setting($$application_name$$)'), 'app-a');
      assert.equal(await one(a, 'select current_setting($$statement_timeout$$)'), '2500ms');
      assert.equal(await one(b, 'select current_setting($$application_name$$)'), 'app-b');
      assert.equal(await one(b, 'select current_setting($$statement_timeout$$)'), '0');
    }
    await Promise.all([a.end(), b.end()]);
  } finally {
    await s.stop();
  }
});

test('the welcome reports each client its own startup values, also for clients whose parameters were seen before', async () => {
  const s = await sluice();
  try {
    const wants: Array<{ app?: string; dateStyle?: string }> = [
      { app: 'app-a' },
      { app: 'app-b', dateStyle: 'SQL, DMY' },
      {},
      { app: 'app-a' },
      { app: 'app-b', dateStyle: 'SQL, DMY' },
      { app: 'app-b' },
      {},
    ];
    for (const want of wants) {
      const c = new pg.Client({ connectionString: s.url(), application_name: want.app, options: want.dateStyle ? `-c DateStyle=${want.dateStyle.replace(/ /g, '\\ ')}` : undefined });
      const reported = new Map<string, string>();
      (c as unknown as { connection: import('node:events').EventEmitter }).connection.on('parameterStatus', (m: { parameterName: string; parameterValue: string }) =>
        reported.set(m.parameterName, m.parameterValue),
      );
      await c.connect();
      assert.equal(reported.get('application_name') ?? '', want.app ?? '', `application_name for ${JSON.stringify(want)}`);
      assert.equal(reported.get('DateStyle'), want.dateStyle ?? 'ISO, MDY', `DateStyle for ${JSON.stringify(want)}`);
      assert.equal(await one(c, 'show DateStyle'), want.dateStyle ?? 'ISO, MDY');
      await c.end();
    }
  } finally {
    await s.stop();
  }
});

test('clients with byte-identical startup packets share one reading of it until one of them sets something', async () => {
  const s = await sluice();
  try {
    // Same user, database, options and application name: the parser hands all three the same parse.
    const connect = async () => {
      const c = new pg.Client({ connectionString: s.url(), application_name: 'twin', options: '-c TimeZone=Asia/Tokyo' });
      c.on('error', () => {});
      await c.connect();
      return c;
    };
    const a = await connect();
    const b = await connect();
    await a.query("set timezone = 'UTC'");
    await a.query("set application_name = 'renamed'");
    assert.equal(await one(a, 'show timezone'), 'UTC');
    assert.equal(await one(b, 'show timezone'), 'Asia/Tokyo', 'the twin keeps the startup value');
    assert.equal(await one(b, 'select current_setting($$application_name$$)'), 'twin');
    const c = await connect();
    assert.equal(await one(c, 'show timezone'), 'Asia/Tokyo', 'and so does a client that arrives later');
    await a.query('reset timezone');
    assert.equal(await one(a, 'show timezone'), 'Asia/Tokyo', 'RESET returns to the startup value');
    await Promise.all([a.end(), b.end(), c.end()]);
  } finally {
    await s.stop();
  }
});

test('ignore_startup_parameters drops the listed parameters; others are replayed', async () => {
  const s = await sluice({ ignore_startup_parameters: 'extra_float_digits' });
  try {
    const c = new pg.Client({ connectionString: s.url(), options: '-c extra_float_digits=2 -c work_mem=7MB' });
    await c.connect();
    assert.equal(await one(c, 'select current_setting($$extra_float_digits$$)'), '1', 'the ignored parameter keeps the server default');
    assert.equal(await one(c, 'select current_setting($$work_mem$$)'), '7MB');
    await c.end();
  } finally {
    await s.stop();
  }
});

test('protocol-level named prepared statements work across servers; names do not collide between clients', async () => {
  const s = await sluice({ default_pool_size: 2, max_prepared_statements: 3 });
  try {
    const a = await client(s);
    const b = await client(s);
    for (let i = 1; i <= 10; i++) {
      const ra = await a.query({ name: 'q', text: 'select $1::int + 1 as v', values: [i] });
      const rb = await b.query({ name: 'q', text: 'select $1::int * 10 as v', values: [i] });
      assert.equal(ra.rows[0].v, i + 1);
      assert.equal(rb.rows[0].v, i * 10);
      // More distinct statements than max_prepared_statements: eviction and re-preparing.
      const rc = await a.query({ name: `s${i}`, text: `select ${i} as n, $1::text as t`, values: ['x'] });
      assert.equal(rc.rows[0].n, i);
    }
    for (const srv of [...s.app.pooler.pools.values()][0].servers) assert.ok(srv.statements.size <= 3);
    const console = new pg.Client({ connectionString: s.url('pgbouncer') });
    await console.connect();
    const [row] = (await console.query('SHOW PREPARED_STATEMENTS')).rows;
    assert.ok(Number(row.parses) >= 12 && Number(row.hits) > 0 && Number(row.evictions) > 0, JSON.stringify(row));
    await console.end();
    await Promise.all([a.end(), b.end()]);
  } finally {
    await s.stop();
  }
});

test('a temp table pins its client until DISCARD; the next client never sees it', async () => {
  const s = await sluice({ default_pool_size: 1, query_wait_timeout: 10 });
  try {
    const a = await client(s);
    await a.query('create temp table scratch(x int)');
    await a.query('insert into scratch values (1)');
    assert.equal(await one(a, 'select count(*)::int from scratch'), 1);
    await waitFor(() => [...s.app.clients].some((c) => c.pinReasons.join() === 'temp_object'), 'a temp-object pin');
    // The operator sees who is pinned and why.
    const console = new pg.Client({ connectionString: s.url('pgbouncer') });
    await console.connect();
    const pinned = (await console.query('SHOW PINNED_CLIENTS')).rows;
    assert.equal(pinned.length, 1);
    assert.equal(pinned[0].reasons, 'temp_object');
    assert.ok(Number(pinned[0].server_pid) > 0);
    await console.end();
    const b = await client(s);
    const bq = one<number>(b, "select count(*)::int from pg_class where relname = 'scratch' and relpersistence = 't'");
    await a.query('discard temp');
    assert.equal(await bq, 0);
    await Promise.all([a.end(), b.end()]);
  } finally {
    await s.stop();
  }
});

test('a session advisory lock is held until unlocked; a second client cannot take it meanwhile; then the client is released', async () => {
  const s = await sluice({ default_pool_size: 2 });
  try {
    const a = await client(s);
    const b = await client(s);
    assert.equal(await one(a, 'select pg_advisory_lock(777)::text'), '');
    assert.equal(await one(b, 'select pg_try_advisory_lock(777)'), false);
    assert.equal(await one(a, 'select count(*)::int from pg_locks where locktype = $$advisory$$ and pid = pg_backend_pid()'), 1);
    await waitFor(() => [...s.app.clients].some((c) => c.pinReasons.includes('advisory_lock')), 'an advisory-lock pin');
    await a.query('select pg_advisory_unlock(777)');
    await waitFor(() => ![...s.app.clients].some((c) => c.pinned), 'the client to be unpinned');
    assert.equal(await one(b, 'select pg_try_advisory_lock(777)'), true);
    await b.query('select pg_advisory_unlock_all()');
    await Promise.all([a.end(), b.end()]);
  } finally {
    await s.stop();
  }
});

test('LISTEN pins until UNLISTEN *; a WITH HOLD cursor pins until CLOSE; a disconnect wipes the state', async () => {
  const s = await sluice({ default_pool_size: 1, query_wait_timeout: 10 });
  try {
    const a = await client(s);
    await a.query('listen jobs');
    // The probe runs right after the transaction's ReadyForQuery reached the client.
    await waitFor(() => [...s.app.clients].some((c) => c.pinReasons.includes('listen')), 'a LISTEN pin');
    await a.query('unlisten *');
    await waitFor(() => ![...s.app.clients].some((c) => c.pinned), 'unpinned after UNLISTEN');
    await a.query('begin; declare held cursor with hold for select 1; commit');
    await waitFor(() => [...s.app.clients].some((c) => c.pinReasons.includes('with_hold_cursor')), 'a WITH HOLD pin');
    await a.query('close held');
    await waitFor(() => ![...s.app.clients].some((c) => c.pinned), 'unpinned after CLOSE');
    await a.query('listen other');
    await a.end();
    const b = await client(s);
    assert.equal(await one(b, 'select count(*)::int from pg_listening_channels()'), 0);
    assert.equal(await one(b, 'select count(*)::int from pg_cursors'), 0);
    await b.end();
  } finally {
    await s.stop();
  }
});

test('SQL-level PREPARE/EXECUTE pins until DEALLOCATE', async () => {
  const s = await sluice({ default_pool_size: 2 });
  try {
    const a = await client(s);
    await a.query('prepare twice(int) as select $1 * 2 as v');
    assert.equal(await one(a, 'execute twice(21)'), 42);
    await waitFor(() => [...s.app.clients].some((c) => c.pinReasons.includes('sql_prepare')), 'a PREPARE pin');
    await a.query('deallocate twice');
    await waitFor(() => ![...s.app.clients].some((c) => c.pinned), 'unpinned after DEALLOCATE');
    await a.end();
  } finally {
    await s.stop();
  }
});

test('pin_policy = error refuses session state with a clear error; allow behaves like PgBouncer', async () => {
  const s = await sluice({ default_pool_size: 2, pin_policy: 'error' });
  try {
    const a = await client(s);
    await assert.rejects(a.query('create temp table nope(x int)'), (e: Error & { code?: string }) => e.code === '0A000' && /pin_policy/.test(e.message));
    await assert.rejects(a.query({ name: 'lk', text: 'select pg_advisory_lock($1)', values: [1] }), (e: Error & { code?: string }) => e.code === '0A000');
    // Refused while holding no server: the rest of the batch is dropped, one error only.
    const fresh = await client(s);
    await assert.rejects(fresh.query({ name: 'lk2', text: 'select pg_advisory_lock($1)', values: [2] }), (e: Error & { code?: string }) => e.code === '0A000');
    assert.equal(await one(fresh, 'select 2'), 2);
    await fresh.end();
    assert.equal(await one(a, 'select 1'), 1, 'the connection keeps working');
    assert.equal(await one(a, 'select pg_advisory_xact_lock(5)::text'), '', 'transaction-scoped locks are fine');
    await a.end();
  } finally {
    await s.stop();
  }
  const allow = await sluice({ default_pool_size: 2, pin_policy: 'allow' });
  try {
    const a = await client(allow);
    await a.query('select pg_advisory_lock(9)');
    assert.ok(![...allow.app.clients].some((c) => c.pinned));
    await a.query('select pg_advisory_unlock_all()');
    await a.end();
  } finally {
    await allow.stop();
  }
});

test('node-postgres with named statements: 50 concurrent clients over a pool of 2, zero errors', async () => {
  const s = await sluice({ default_pool_size: 2 });
  try {
    const pool = new pg.Pool({ connectionString: s.url(), max: 50 });
    const results = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        let ok = 0;
        for (let j = 0; j < 10; j++) {
          const r = await pool.query({ name: `get-${j % 3}`, text: `select id, name, $2::int as k from items where id = $1 /* ${j % 3} */`, values: [((i + j) % 100) + 1, j] });
          if (r.rows[0].id === ((i + j) % 100) + 1 && r.rows[0].k === j) ok++;
        }
        return ok;
      }),
    );
    await pool.end();
    assert.deepEqual(results, Array(50).fill(10));
  } finally {
    await s.stop();
  }
});

test('postgres.js with its defaults (prepare: true, pipelining): 50 concurrent clients over a pool of 2, zero errors', async () => {
  const s = await sluice({ default_pool_size: 2 });
  try {
    const sql = postgres(s.url(), { max: 50, onnotice: () => {} });
    const results = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const rows = await Promise.all(Array.from({ length: 20 }, (_, j) => sql`select id, ${j}::int as k from items where id = ${((i + j) % 100) + 1}`));
        return rows.every((r, j) => r[0].id === ((i + j) % 100) + 1 && r[0].k === j);
      }),
    );
    await sql.end();
    assert.ok(results.every(Boolean));
  } finally {
    await s.stop();
  }
});

test('pgbench -M prepared -c 50 over default_pool_size=5: zero failed transactions', async () => {
  const s = await sluice({ default_pool_size: 5 });
  try {
    const r = await run('pgbench', ['-n', '-M', 'prepared', '-c', '50', '-j', '2', '-T', '3', s.url()], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /number of transactions actually processed: [1-9]/);
    const failed = /number of failed transactions: (\d+)/.exec(r.stdout);
    assert.equal(failed ? Number(failed[1]) : 0, 0, r.stdout);
  } finally {
    await s.stop();
  }
});

test('ALTER TABLE between two executions of the same prepared statement does not surface an error to an autocommit client', async () => {
  const s = await sluice({ default_pool_size: 1 });
  try {
    const admin = new pg.Client({ connectionString: server.url() });
    await admin.connect();
    await admin.query('create table if not exists evolving(id int); truncate evolving; insert into evolving values (1)');
    const a = await client(s);
    const q = { name: 'all-evolving', text: 'select * from evolving' };
    assert.deepEqual((await a.query(q)).rows, [{ id: 1 }]);
    await admin.query('alter table evolving add column extra text default $$x$$');
    const r = await a.query(q);
    assert.deepEqual(r.rows, [{ id: 1, extra: 'x' }]);
    await admin.query('alter table evolving drop column extra');
    await a.end();
    await admin.end();
  } finally {
    await s.stop();
  }
});
