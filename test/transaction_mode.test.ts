// Issue 3: transaction and statement pooling with real clients.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import postgres from 'postgres';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startSluice, type TestSluice } from './harness/sluice.js';
import { run } from './harness/processes.js';
import { loggedInSession, frame, cstr, int16, int32 } from './harness/wire.js';
import { waitFor } from './harness/wait.js';
import { query } from '../src/protocol/messages.js';

let pgsrv: TestPostgres;
let tx: TestSluice;

before(async () => {
  pgsrv = await startPostgres({ conf: { max_connections: 60 } });
  tx = await startSluice({ pg: pgsrv, settings: { pool_mode: 'transaction', default_pool_size: 10, max_client_conn: 400 } });
  const init = await run('pgbench', ['-i', '-q', '-s', '1', pgsrv.url()], { timeoutMs: 120_000 });
  assert.equal(init.code, 0, init.stderr);
});
after(async () => {
  await tx?.stop();
  await pgsrv?.stop();
});

function failedTransactions(stdout: string): number {
  const m = /number of failed transactions: (\d+)/.exec(stdout);
  return m ? Number(m[1]) : 0;
}

for (const protocol of ['simple', 'extended'] as const) {
  for (const script of ['tpcb', 'select-only'] as const) {
    test(`pgbench -c 200 -j 2 over default_pool_size=10, -M ${protocol}, ${script}: zero failed transactions`, async () => {
      const args = ['-n', '-c', '200', '-j', '2', '-T', '3', '-M', protocol, ...(script === 'select-only' ? ['-S'] : []), tx.url()];
      const r = await run('pgbench', args, { timeoutMs: 120_000 });
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.match(r.stdout, /number of transactions actually processed: [1-9]/);
      assert.equal(failedTransactions(r.stdout), 0, r.stdout);
      const servers = [...tx.app.pooler.pools.values()].reduce((n, p) => n + p.servers.size, 0);
      assert.ok(servers <= 10, `at most 10 server connections expected, got ${servers}`);
    });
  }
}

test('postgres.js (prepare: false): 100 clients each pipelining 100 parameterised queries over a pool of 5', async () => {
  const five = await startSluice({ pg: pgsrv, settings: { pool_mode: 'transaction', default_pool_size: 5, max_client_conn: 200 } });
  try {
    const sql = postgres(five.url(), { max: 100, prepare: false, idle_timeout: 1, onnotice: () => {} });
    const results = await Promise.all(
      Array.from({ length: 100 }, async (_, client) => {
        const rows = await Promise.all(Array.from({ length: 100 }, (_, i) => sql`select ${client}::int * 1000 + ${i}::int as v`));
        return rows.map((r, i) => r[0].v === client * 1000 + i);
      }),
    );
    await sql.end();
    assert.ok(results.flat().every(Boolean), 'every pipelined result must match its query');
    assert.ok([...five.app.pooler.pools.values()].every((p) => p.servers.size <= 5));
  } finally {
    await five.stop();
  }
});

test('an error in the middle of a pipeline: the server skips to Sync and the next batch works', async () => {
  const sql = postgres(tx.url(), { max: 1, prepare: false, onnotice: () => {} });
  try {
    const outcomes = await Promise.allSettled([sql`select 1 as a`, sql`select 1/0 as boom`, sql`select 3 as c`]);
    assert.equal(outcomes[0].status, 'fulfilled');
    assert.equal(outcomes[1].status, 'rejected');
    assert.equal(outcomes[2].status, 'fulfilled');
    const again = await sql`select 4 as d`;
    assert.equal(again[0].d, 4);
  } finally {
    await sql.end();
  }
});

test('Flush is not a boundary: Parse/Describe/Flush keeps the server until Sync', async () => {
  const one = await startSluice({ pg: pgsrv, settings: { pool_mode: 'transaction', default_pool_size: 1 } });
  try {
    const { socket, msgs } = await loggedInSession(one.port);
    const parse = frame('P', Buffer.concat([cstr('s1'), cstr('select pg_backend_pid()'), int16(0)]));
    const describe = frame('D', Buffer.concat([Buffer.from('S'), cstr('s1')]));
    socket.write(Buffer.concat([parse, describe, frame('H', Buffer.alloc(0))]));
    await msgs.until((m) => m.type === 'T');
    // Another client must not get the server while we hold unsynced work on it.
    const other = new pg.Client({ connectionString: one.url() });
    await other.connect();
    const otherQuery = other.query('select 1 as x');
    // The other client must queue: the only server is held by unsynced extended-protocol work.
    const pool = [...one.app.pooler.pools.values()][0];
    await waitFor(() => pool.waiters.length === 1, 'the second client to queue for the server');
    assert.equal(pool.idle.length, 0);
    const bind = frame('B', Buffer.concat([cstr(''), cstr('s1'), int16(0), int16(0), int16(0)]));
    const exec = frame('E', Buffer.concat([cstr(''), int32(0)]));
    socket.write(Buffer.concat([bind, exec, frame('S', Buffer.alloc(0))]));
    await msgs.until((m) => m.type === 'Z' && msgs.all.filter((x) => x.type === 'Z').length >= 2);
    assert.equal((await otherQuery).rows[0].x, 1);
    socket.end();
    await other.end();
  } finally {
    await one.stop();
  }
});

test('COPY IN and COPY OUT hold the server until they complete', async () => {
  const c = new pg.Client({ connectionString: tx.url() });
  await c.connect();
  await c.query('create table if not exists copy_t(a int, b text)');
  await c.query('truncate copy_t');
  const copyIn = await run('psql', [tx.url(), '-Xqc', '\\copy copy_t from stdin'], { input: '1\tone\n2\ttwo\n3\tthree\n\\.\n' });
  assert.equal(copyIn.code, 0, copyIn.stderr);
  const copyOut = await run('psql', [tx.url(), '-XAtc', 'copy (select a, b from copy_t order by a) to stdout']);
  assert.equal(copyOut.stdout, '1\tone\n2\ttwo\n3\tthree\n');
  await c.end();
});

test('statement mode: autocommit statements work, a transaction block gets a clear error', async () => {
  const st = await startSluice({ pg: pgsrv, settings: { pool_mode: 'statement', default_pool_size: 2 } });
  try {
    const c = new pg.Client({ connectionString: st.url() });
    await c.connect();
    assert.equal((await c.query('select 1 as one')).rows[0].one, 1);
    await assert.rejects(c.query('begin'), (err: Error & { code?: string }) => {
      assert.equal(err.code, '25001');
      assert.match(err.message, /statement pooling/);
      return true;
    });
    // The connection is still usable and not inside a transaction.
    const r = await c.query("select current_setting('transaction_isolation') as iso, now() = statement_timestamp() as autocommit");
    assert.equal(r.rows[0].autocommit, true);
    await c.end();
  } finally {
    await st.stop();
  }
});

test('pool_mode per database and per user', async () => {
  const mixed = await startSluice({
    pg: pgsrv,
    settings: { pool_mode: 'session', default_pool_size: 2 },
    databases: { txdb: `host=127.0.0.1 port=${pgsrv.port} dbname=postgres pool_mode=transaction`, '*': `host=127.0.0.1 port=${pgsrv.port}` },
    users: { stmtuser: 'pool_mode=statement' },
  });
  try {
    const txc = new pg.Client({ connectionString: mixed.url('txdb') });
    await txc.connect();
    await txc.query('select 1');
    const sess = new pg.Client({ connectionString: mixed.url('postgres') });
    await sess.connect();
    await sess.query('select 1');
    const modes = new Map([...mixed.app.pooler.pools.values()].map((p) => [p.db.name, p.settings.mode]));
    assert.equal(modes.get('txdb'), 'transaction');
    assert.equal(modes.get('postgres'), 'session');
    await txc.end();
    await sess.end();
    const pool = mixed.app.pooler.poolSettingsFor(mixed.app.pooler.findDatabase('postgres')!, 'stmtuser');
    assert.equal(pool.mode, 'statement');
  } finally {
    await mixed.stop();
  }
});

test('a client that disconnects inside a transaction: the next client sees no open transaction and no locks', async () => {
  const one = await startSluice({ pg: pgsrv, settings: { pool_mode: 'transaction', default_pool_size: 1 } });
  try {
    const { socket, msgs } = await loggedInSession(one.port);
    socket.write(query('begin; select pg_advisory_xact_lock(4242); create temp table gone(x int)'));
    // The ReadyForQuery of this transaction ('T'), not the one from login.
    await msgs.until((m) => m.type === 'Z' && m.body[0] === 0x54);
    socket.destroy();
    const c = new pg.Client({ connectionString: one.url() });
    await c.connect();
    const r = await c.query("select now() = statement_timestamp() as fresh, (select count(*)::int from pg_locks where locktype = 'advisory') as locks");
    assert.equal(r.rows[0].fresh, true, 'the next client must not be inside the dead client transaction');
    assert.equal(r.rows[0].locks, 0);
    await c.end();
  } finally {
    await one.stop();
  }
});


test('a client that sends a query and Terminate and closes while it waits for a server: the query still runs, as it would on PostgreSQL', async () => {
  const one = await startSluice({ pg: pgsrv, settings: { pool_mode: 'transaction', default_pool_size: 1 } });
  const holder = new pg.Client({ connectionString: one.url() });
  try {
    await holder.connect();
    await holder.query('create table if not exists fire_and_forget(x int)');
    await holder.query('truncate fire_and_forget');
    await holder.query('begin'); // holds the only server
    const { socket } = await loggedInSession(one.port);
    socket.end(Buffer.concat([query('insert into fire_and_forget values (1)'), frame('X', Buffer.alloc(0))]));
    const waiting = () => [...one.app.clients].find((c) => c.state === 'waiting');
    await waitFor(() => waiting()?.wire.endIsPending === true, 'the closed client, waiting for the server with its end of stream held');
    await holder.query('commit');
    await waitFor(async () => Number((await holder.query('select count(*) from fire_and_forget')).rows[0].count) === 1, 'the insert of the departed client');
    await waitFor(() => one.app.clients.size === 1, 'the departed client to be gone');
  } finally {
    await holder.end();
    await one.stop();
  }
});
