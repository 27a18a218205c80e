// Issue 3: PgBouncer's timeouts; each error names the timeout that fired, and Sluice keeps serving.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import pg from 'pg';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startSluice } from './harness/sluice.js';
import { waitFor } from './harness/wait.js';
import { readMessages } from './harness/wire.js';

let pgsrv: TestPostgres;
before(async () => {
  pgsrv = await startPostgres();
});
after(async () => pgsrv?.stop());

type PgErr = Error & { code?: string };

async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {});
  await c.connect();
  return c;
}

/** Resolves with the error pg reports on the connection (async 'error' event or a failed query). */
function nextError(c: pg.Client): Promise<PgErr> {
  return new Promise((resolve) => c.once('error', (e) => resolve(e as PgErr)));
}

async function stillServes(url: string): Promise<void> {
  const c = await connect(url);
  assert.equal((await c.query('select 7 as n')).rows[0].n, 7);
  await c.end();
}

test('query_wait_timeout: a client waiting for a server gets an error naming it', async () => {
  const s = await startSluice({ pg: pgsrv, settings: { pool_mode: 'transaction', default_pool_size: 1, query_wait_timeout: 0.3 } });
  try {
    const holder = await connect(s.url());
    await holder.query('begin');
    const waiter = await connect(s.url());
    await assert.rejects(waiter.query('select 1'), (e: PgErr) => /query_wait_timeout/.test(e.message));
    await holder.query('commit');
    await holder.end();
    await stillServes(s.url());
  } finally {
    await s.stop();
  }
});

test('server_connect_timeout: a server that never answers fails the client with an error naming it', async () => {
  const blackhole = net.createServer(() => {}); // accepts, never speaks
  await new Promise<void>((r) => blackhole.listen(0, '127.0.0.1', r));
  const port = (blackhole.address() as net.AddressInfo).port;
  const s = await startSluice({ pg: pgsrv, settings: { server_connect_timeout: 0.3, server_login_retry: 0.1 }, databases: { hole: `host=127.0.0.1 port=${port}`, '*': `host=127.0.0.1 port=${pgsrv.port}` } });
  try {
    const c = new pg.Client({ connectionString: s.url('hole') });
    c.on('error', () => {});
    await assert.rejects(c.connect(), (e: PgErr) => /server_connect_timeout/.test(e.message));
    await stillServes(s.url());
  } finally {
    await s.stop();
    blackhole.close();
  }
});

test('server_login_retry: while the server refuses logins, clients fail fast with its error', async () => {
  let attempts = 0;
  const s = await startSluice({ pg: pgsrv, settings: { server_login_retry: 30 }, databases: { '*': `host=127.0.0.1 port=${pgsrv.port}` } });
  try {
    const pool = [...s.app.pooler.pools.values()];
    void pool;
    const first = new pg.Client({ connectionString: s.url('postgres', 'nosuchrole') });
    first.on('error', () => {});
    await assert.rejects(first.connect(), (e: PgErr) => e.code === '28000' && /nosuchrole/.test(e.message));
    const p = [...s.app.pooler.pools.values()].find((x) => x.user === 'nosuchrole')!;
    attempts = p.stats.loginErrors;
    const t0 = Date.now();
    const second = new pg.Client({ connectionString: s.url('postgres', 'nosuchrole') });
    second.on('error', () => {});
    await assert.rejects(second.connect(), (e: PgErr) => e.code === '28000');
    assert.equal(p.stats.loginErrors, attempts, 'no new login attempt inside server_login_retry');
    assert.ok(Date.now() - t0 < 5000, 'fails fast: far inside the 30 s server_login_retry window');
    await stillServes(s.url());
  } finally {
    await s.stop();
  }
});

test('server_lifetime and server_idle_timeout close idle servers', async () => {
  for (const key of ['server_lifetime', 'server_idle_timeout']) {
    const s = await startSluice({ pg: pgsrv, settings: { pool_mode: 'transaction', [key]: 0.3 } });
    try {
      const c = await connect(s.url());
      const pid1 = (await c.query('select pg_backend_pid() as p')).rows[0].p;
      const pool = [...s.app.pooler.pools.values()][0];
      await waitFor(() => pool.servers.size === 0, `${key} to close the idle server`);
      const pid2 = (await c.query('select pg_backend_pid() as p')).rows[0].p;
      assert.notEqual(pid1, pid2);
      await c.end();
    } finally {
      await s.stop();
    }
  }
});

test('server_check_delay + server_check_query: a reused server is checked first', async () => {
  const s = await startSluice({
    pg: pgsrv,
    settings: { pool_mode: 'transaction', server_check_delay: 0, server_check_query: "select set_config('application_name', 'checked', false)" },
  });
  try {
    const c = await connect(s.url());
    await c.query('select 1');
    const pool = [...s.app.pooler.pools.values()][0];
    await waitFor(() => pool.idle.length === 1, 'the server to be idle');
    await waitFor(() => Date.now() - pool.idle[0].lastUsed > 2, 'a moment of idleness');
    const r = await c.query("select current_setting('application_name') as app");
    assert.equal(r.rows[0].app, 'checked');
    await c.end();
  } finally {
    await s.stop();
  }
});

test('client_login_timeout closes a client that never finishes logging in', async () => {
  const s = await startSluice({ pg: pgsrv, settings: { client_login_timeout: 0.3 } });
  try {
    const socket = net.connect({ host: '127.0.0.1', port: s.port });
    const msgs = readMessages(socket);
    socket.write(Buffer.from([0, 0, 0])); // a partial startup packet, then silence
    const err = await msgs.until((m) => m.type === 'E');
    assert.match(err.fields?.get('M') ?? '', /client_login_timeout/);
    await msgs.closed;
    await stillServes(s.url());
  } finally {
    await s.stop();
  }
});

test('client_idle_timeout closes an idle client with 57P05', async () => {
  const s = await startSluice({ pg: pgsrv, settings: { client_idle_timeout: 0.3 } });
  try {
    const c = await connect(s.url());
    const e = await nextError(c);
    assert.equal(e.code, '57P05');
    assert.match(e.message, /client_idle_timeout/);
    await stillServes(s.url());
  } finally {
    await s.stop();
  }
});

test('idle_transaction_timeout closes a client idle inside a transaction, and the server is not reused dirty', async () => {
  const s = await startSluice({ pg: pgsrv, settings: { pool_mode: 'transaction', default_pool_size: 1, idle_transaction_timeout: 0.3 } });
  try {
    const c = await connect(s.url());
    await c.query("begin; create temp table itt(x int); select set_config('application_name', 'itt', true)");
    const e = await nextError(c);
    assert.equal(e.code, '25P03');
    assert.match(e.message, /idle_transaction_timeout/);
    const d = await connect(s.url());
    const r = await d.query("select now() = statement_timestamp() as fresh, current_setting('application_name') as app");
    assert.equal(r.rows[0].fresh, true);
    assert.notEqual(r.rows[0].app, 'itt');
    await d.end();
  } finally {
    await s.stop();
  }
});

test('transaction_timeout ends a transaction that runs too long', async () => {
  const s = await startSluice({ pg: pgsrv, settings: { pool_mode: 'transaction', transaction_timeout: 0.4 } });
  try {
    const c = await connect(s.url());
    // The FATAL may share a read with the previous query's ReadyForQuery: pg then
    // reports it on the connection, and the next query fails without a code.
    const onConnection = nextError(c);
    await c.query('begin');
    let e: PgErr | null = null;
    for (let i = 0; i < 40 && !e; i++) {
      try {
        await c.query('select pg_sleep(0.05)');
      } catch (err) {
        e = err as PgErr;
      }
    }
    assert.ok(e, 'the transaction should have been ended');
    if (e.code === undefined) {
      e = await Promise.race([onConnection, new Promise<PgErr>((_, reject) => setTimeout(() => reject(new Error(`no error on the connection; the query failed with: ${e!.message}`)), 5000).unref())]);
    }
    assert.equal(e.code, '25P04');
    assert.match(e.message, /transaction_timeout/);
    await stillServes(s.url());
  } finally {
    await s.stop();
  }
});

test('query_timeout cancels a long query with an error naming it; the client goes on', async () => {
  const s = await startSluice({ pg: pgsrv, settings: { pool_mode: 'transaction', query_timeout: 0.3 } });
  try {
    const c = await connect(s.url());
    const t0 = Date.now();
    await assert.rejects(c.query('select pg_sleep(10)'), (e: PgErr) => e.code === '57014' && /query_timeout/.test(e.message));
    assert.ok(Date.now() - t0 < 5000);
    assert.equal((await c.query('select 1 as x')).rows[0].x, 1);
    await c.end();
  } finally {
    await s.stop();
  }
});

// Found in review: [users] and [databases] timeouts were read but never applied.
test('per-user idle_transaction_timeout and per-database query_wait_timeout and server_lifetime apply', async () => {
  const s = await startSluice({
    pg: pgsrv,
    settings: { pool_mode: 'transaction', query_wait_timeout: 120 },
    users: { idler: 'idle_transaction_timeout=0.3' },
    databases: {
      postgres: `host=127.0.0.1 port=${pgsrv.port} pool_size=1 query_wait_timeout=0.3`,
      life: `host=127.0.0.1 port=${pgsrv.port} dbname=postgres server_lifetime=0.3`,
    },
  });
  try {
    const admin = await connect(pgsrv.url());
    await admin.query("do $$ begin if not exists (select from pg_roles where rolname = 'idler') then create role idler login; end if; end $$");
    await admin.end();
    const idle = await connect(s.url('postgres', 'idler'));
    const failed = nextError(idle);
    await idle.query('begin');
    const timedOut = new Promise<PgErr>((resolve) => setTimeout(() => resolve(Object.assign(new Error('no error within 5 s'), { code: 'none' })), 5000).unref());
    assert.equal((await Promise.race([failed, timedOut])).code, '25P03', 'per-user idle_transaction_timeout');
    const holder = await connect(s.url());
    await holder.query('begin');
    const waiter = await connect(s.url());
    await assert.rejects(waiter.query('select 1'), /query_wait_timeout \(0\.3 s\)/);
    await holder.query('rollback');
    await Promise.all([holder.end(), waiter.end().catch(() => {})]);
    const life = await connect(s.url('life'));
    await life.query('select 1');
    const pool = [...s.app.pooler.pools.values()].find((p) => p.db.name === 'life')!;
    await waitFor(() => pool.servers.size === 0, 'the server to reach its per-database server_lifetime');
    await life.end();
  } finally {
    await s.stop();
  }
});
