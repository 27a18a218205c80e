// Issue 3: PgBouncer's connection limits, each asserting the client's error and that Sluice keeps serving.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startSluice } from './harness/sluice.js';
import { waitFor } from './harness/wait.js';

let pgsrv: TestPostgres;
before(async () => {
  pgsrv = await startPostgres({ conf: { max_connections: 50 } });
  const c = new pg.Client({ connectionString: pgsrv.url() });
  await c.connect();
  await c.query('create role alice login; create role bob login; grant all on schema public to alice, bob');
  await c.end();
});
after(async () => pgsrv?.stop());

async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {});
  await c.connect();
  return c;
}

async function refusal(url: string): Promise<Error & { code?: string }> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {});
  try {
    await c.connect();
    await c.query('select 1');
  } catch (err) {
    return err as Error & { code?: string };
  } finally {
    await c.end().catch(() => {});
  }
  throw new Error('expected the connection to be refused');
}

function servers(app: { pooler: { pools: Map<string, { servers: Set<unknown> }> } }): number {
  return [...app.pooler.pools.values()].reduce((n, p) => n + p.servers.size, 0);
}

test('max_client_conn refuses the next client with 53300 and serves again once one leaves', async () => {
  const s = await startSluice({ pg: pgsrv, settings: { max_client_conn: 2 } });
  try {
    const a = await connect(s.url());
    const b = await connect(s.url());
    const err = await refusal(s.url());
    assert.equal(err.code, '53300');
    assert.match(err.message, /max_client_conn/);
    await a.end();
    await waitFor(() => s.app.clients.size < 2, 'the client to leave');
    const c = await connect(s.url());
    assert.equal((await c.query('select 1 as x')).rows[0].x, 1);
    await Promise.all([b.end(), c.end()]);
  } finally {
    await s.stop();
  }
});

test('max_db_client_connections and max_user_client_connections refuse with 53300 naming the limit', async () => {
  const s = await startSluice({ pg: pgsrv, settings: { max_db_client_connections: 1, max_user_client_connections: 5 }, users: { bob: 'max_user_client_connections=1' } });
  try {
    const a = await connect(s.url('postgres'));
    const err = await refusal(s.url('postgres'));
    assert.equal(err.code, '53300');
    assert.match(err.message, /max_db_client_connections/);
    const b = await connect(s.url('template1', 'bob'));
    const errUser = await refusal(s.url('alice_db_does_not_matter', 'bob'));
    assert.equal(errUser.code, '53300');
    assert.match(errUser.message, /max_user_client_connections/);
    await Promise.all([a.end(), b.end()]);
  } finally {
    await s.stop();
  }
});

test('default_pool_size, per-database pool_size and per-user pool_size cap server connections; extra clients wait', async () => {
  const s = await startSluice({
    pg: pgsrv,
    settings: { pool_mode: 'transaction', default_pool_size: 3 },
    databases: { small: `host=127.0.0.1 port=${pgsrv.port} dbname=postgres pool_size=2`, '*': `host=127.0.0.1 port=${pgsrv.port}` },
    users: { alice: 'pool_size=1' },
  });
  try {
    const run = async (url: string, n: number) => {
      const pool = new pg.Pool({ connectionString: url, max: n });
      await Promise.all(Array.from({ length: n }, () => pool.query('select pg_sleep(0.05)')));
      await pool.end();
    };
    await run(s.url('postgres'), 10);
    await run(s.url('small'), 10);
    await run(s.url('postgres', 'alice'), 6);
    const sizes = new Map([...s.app.pooler.pools.values()].map((p) => [p.name, p.servers.size]));
    assert.ok((sizes.get('postgres/postgres') ?? 0) <= 3, JSON.stringify([...sizes]));
    assert.ok((sizes.get('small/postgres') ?? 0) <= 2, JSON.stringify([...sizes]));
    assert.ok((sizes.get('postgres/alice') ?? 0) <= 1, JSON.stringify([...sizes]));
  } finally {
    await s.stop();
  }
});

test('max_db_connections and max_user_connections cap servers across pools; everyone still finishes', async () => {
  const s = await startSluice({ pg: pgsrv, settings: { pool_mode: 'transaction', default_pool_size: 5, max_db_connections: 2 } });
  try {
    const pools = ['postgres', 'alice', 'bob'].map((u) => new pg.Pool({ connectionString: s.url('postgres', u), max: 4 }));
    let peak = 0;
    const timer = setInterval(() => (peak = Math.max(peak, servers(s.app))), 1);
    await Promise.all(pools.flatMap((p) => Array.from({ length: 8 }, () => p.query('select pg_sleep(0.02)'))));
    clearInterval(timer);
    await Promise.all(pools.map((p) => p.end()));
    assert.ok(peak <= 2, `max_db_connections=2 but saw ${peak} servers`);
  } finally {
    await s.stop();
  }
  const u = await startSluice({ pg: pgsrv, settings: { pool_mode: 'transaction', default_pool_size: 5, max_user_connections: 1 } });
  try {
    const pools = ['postgres', 'template1'].map((d) => new pg.Pool({ connectionString: u.url(d, 'alice'), max: 3 }));
    await Promise.all(pools.flatMap((p) => Array.from({ length: 6 }, () => p.query('select 1'))));
    await Promise.all(pools.map((p) => p.end()));
    const aliceServers = [...u.app.pooler.pools.values()].filter((p) => p.user === 'alice').reduce((n, p) => n + p.servers.size, 0);
    assert.ok(aliceServers <= 1, `max_user_connections=1 but alice has ${aliceServers}`);
  } finally {
    await u.stop();
  }
});

test('min_pool_size opens servers ahead of demand', async () => {
  const s = await startSluice({ pg: pgsrv, settings: { pool_mode: 'transaction', default_pool_size: 5, min_pool_size: 3 } });
  try {
    const c = await connect(s.url());
    await c.query('select 1');
    const pool = [...s.app.pooler.pools.values()][0];
    await waitFor(() => pool.servers.size >= 3 && pool.connecting === 0, 'min_pool_size servers');
    await c.end();
  } finally {
    await s.stop();
  }
});

test('reserve_pool_size adds servers once a client has waited reserve_pool_timeout', async () => {
  const s = await startSluice({ pg: pgsrv, settings: { pool_mode: 'transaction', default_pool_size: 1, reserve_pool_size: 1, reserve_pool_timeout: 0.2 } });
  try {
    const pool = new pg.Pool({ connectionString: s.url(), max: 2 });
    await Promise.all([pool.query('select pg_sleep(1)'), pool.query('select pg_sleep(1)')]);
    await pool.end();
    const p = [...s.app.pooler.pools.values()][0];
    assert.equal(p.servers.size, 2, 'the reserve server should have been opened');
  } finally {
    await s.stop();
  }
});

test('server_round_robin spreads work; LIFO (default) reuses the warmest server', async () => {
  for (const rr of [false, true]) {
    const s = await startSluice({ pg: pgsrv, settings: { pool_mode: 'transaction', default_pool_size: 3, server_round_robin: rr } });
    try {
      const pool = new pg.Pool({ connectionString: s.url(), max: 3 });
      await Promise.all([1, 2, 3].map(() => pool.query('select pg_sleep(0.05)')));
      const c = await pool.connect();
      const pids = new Set<number>();
      for (let i = 0; i < 6; i++) pids.add((await c.query('select pg_backend_pid() as p')).rows[0].p);
      c.release();
      await pool.end();
      if (rr) assert.ok(pids.size > 1, 'round robin should rotate servers');
      else assert.equal(pids.size, 1, 'LIFO should reuse one server');
    } finally {
      await s.stop();
    }
  }
});

// Found in review: a pool kept the database entry it was made with, so a RELOAD's new max_db_connections never applied.
test('RELOAD raising max_db_connections applies to the existing pool', async () => {
  const dbs = (limit: number) => ({ postgres: `host=127.0.0.1 port=${pgsrv.port} max_db_connections=${limit}` });
  const settings = { listen_addr: '127.0.0.1', listen_port: 0, unix_socket_dir: '', auth_type: 'trust', pool_mode: 'transaction', query_wait_timeout: 5 };
  const s = await startSluice({ pg: pgsrv, settings, databases: dbs(1) });
  try {
    const a = new pg.Client({ connectionString: s.url() });
    const b = new pg.Client({ connectionString: s.url() });
    await Promise.all([a.connect(), b.connect()]);
    await a.query('begin');
    const { buildConfig } = await import('../src/config/index.js');
    s.app.reload(buildConfig({ settings: { ...settings, listen_port: s.port }, databases: dbs(3) }));
    await b.query('begin');
    assert.equal((await b.query('select 1 as one')).rows[0].one, 1, 'the second client got a second server without waiting for the first');
    await Promise.all([a.query('commit'), b.query('commit')]);
    await Promise.all([a.end(), b.end()]);
  } finally {
    await s.stop();
  }
});

// Found in review: connect_query was read from [databases] and never run.
test('connect_query runs once on each new server connection; one that fails fails the login with its error', async () => {
  const admin = new pg.Client({ connectionString: pgsrv.url() });
  await admin.connect();
  await admin.query('create table if not exists cq_log(id serial); truncate cq_log');
  const s = await startSluice({
    pg: pgsrv,
    settings: { pool_mode: 'transaction', server_login_retry: 0 },
    databases: {
      postgres: `host=127.0.0.1 port=${pgsrv.port} pool_size=1 connect_query='insert into cq_log default values'`,
      broken: `host=127.0.0.1 port=${pgsrv.port} dbname=postgres connect_query='select * from no_such_table'`,
    },
  });
  try {
    const c = new pg.Client({ connectionString: s.url() });
    await c.connect();
    for (let i = 0; i < 3; i++) await c.query('select 1');
    await c.end();
    assert.equal((await admin.query('select count(*)::int as n from cq_log')).rows[0].n, 1);
    const b = new pg.Client({ connectionString: s.url('broken') });
    b.on('error', () => {});
    await assert.rejects(
      (async () => {
        await b.connect();
        await b.query('select 1');
      })(),
      /connect_query failed|no_such_table/,
    );
    await b.end().catch(() => {});
  } finally {
    await admin.end();
    await s.stop();
  }
});

// Found in review: host=a,b went to net.connect whole and failed with ENOTFOUND.
test('a comma list of hosts: new server connections take turns (round-robin) or all go to the first (disable)', async () => {
  const s = await startSluice({
    pg: pgsrv,
    settings: { pool_mode: 'transaction' },
    databases: {
      rr: `host=127.0.0.1,localhost port=${pgsrv.port} dbname=postgres`,
      first: `host=127.0.0.1,localhost port=${pgsrv.port} dbname=postgres load_balance_hosts=disable`,
    },
  });
  try {
    for (const db of ['rr', 'first']) {
      const clients = [0, 1, 2].map(() => new pg.Client({ connectionString: s.url(db) }));
      await Promise.all(clients.map((c) => c.connect()));
      await Promise.all(clients.map((c) => c.query('begin')));
      const pool = [...s.app.pooler.pools.values()].find((p) => p.db.name === db)!;
      const hosts = [...pool.servers].map((sv) => sv.host).sort();
      assert.deepEqual(hosts, db === 'rr' ? ['127.0.0.1', '127.0.0.1', 'localhost'] : ['127.0.0.1', '127.0.0.1', '127.0.0.1']);
      await Promise.all(clients.map((c) => c.query('commit')));
      await Promise.all(clients.map((c) => c.end()));
    }
  } finally {
    await s.stop();
  }
});
