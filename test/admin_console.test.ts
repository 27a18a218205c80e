// Issue 6: the admin console against real PostgreSQL, through psql and node-postgres.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startSluice, type TestSluice } from './harness/sluice.js';
import { run } from './harness/processes.js';
import { waitFor } from './harness/wait.js';
import { VERSION } from '../src/version.js';

interface Fixture {
  pgbouncer_version: string;
  types: Record<string, number>;
  views: Record<string, { types: string; columns: string[] }>;
  lists_rows: string[];
  state_rows: string[];
  sluice_views: Record<string, string[]>;
}
const FIXTURE: Fixture = JSON.parse(readFileSync(fileURLToPath(new URL('../../test/fixtures/admin/pgbouncer-1.25-columns.json', import.meta.url)), 'utf8'));
const LETTER_OID: Record<string, number> = { s: 25, T: 25, i: 23, q: 20, N: 1700 };

let pgsrv: TestPostgres;
let sl: TestSluice;
const open: pg.Client[] = [];

async function connect(database: string, user = 'postgres'): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: sl.url(database, user) });
  c.on('error', () => {});
  await c.connect();
  open.push(c);
  return c;
}

before(async () => {
  pgsrv = await startPostgres();
  sl = await startSluice({
    pg: pgsrv,
    settings: { pool_mode: 'transaction', default_pool_size: 4, admin_users: 'postgres', stats_users: 'watcher', server_check_delay: 30 },
  });
});
after(async () => {
  for (const c of open) await c.end().catch(() => {});
  await sl?.stop();
  await pgsrv?.stop();
});

test('every PgBouncer SHOW view answers with PgBouncer 1.25 column names and types (node-postgres)', async () => {
  assert.equal(FIXTURE.pgbouncer_version, '1.25');
  const app = await connect('postgres');
  await app.query('SELECT 1');
  const admin = await connect('pgbouncer');
  for (const [view, spec] of Object.entries(FIXTURE.views)) {
    const r = await admin.query(`SHOW ${view}`);
    assert.deepEqual(r.fields.map((f) => f.name), spec.columns, `SHOW ${view} columns`);
    assert.deepEqual(r.fields.map((f) => f.dataTypeID), [...spec.types].map((t) => LETTER_OID[t]), `SHOW ${view} types`);
    for (const row of r.rows) assert.equal(Object.keys(row).length, spec.columns.length);
  }
  for (const [view, columns] of Object.entries(FIXTURE.sluice_views)) {
    const r = await admin.query(`SHOW ${view}`);
    assert.deepEqual(r.fields.map((f) => f.name), columns, `SHOW ${view} columns`);
  }
});

test('every SHOW view through psql has the same header', async () => {
  for (const view of [...Object.keys(FIXTURE.views), ...Object.keys(FIXTURE.sluice_views)]) {
    const r = await run('psql', ['-X', '-A', '-F', '|', '-P', 'footer=off', '-c', `SHOW ${view};`, sl.url('pgbouncer')], { timeoutMs: 20_000 });
    assert.equal(r.code, 0, `psql SHOW ${view}: ${r.stderr}`);
    const header = r.stdout.split('\n')[0]!.split('|');
    const expected = FIXTURE.views[view]?.columns ?? FIXTURE.sluice_views[view]!;
    assert.deepEqual(header, expected, `psql SHOW ${view}`);
  }
  const help = await run('psql', ['-X', '-c', 'SHOW HELP', sl.url('pgbouncer')], { timeoutMs: 20_000 });
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stderr, /Console usage[\s\S]*PAUSE \[<db>\][\s\S]*SHUTDOWN WAIT_FOR_SERVERS/);
});

test('SHOW x and SELECT x are the same; case, quotes and a trailing semicolon are accepted', async () => {
  const admin = await connect('pgbouncer');
  const a = await admin.query('SHOW VERSION');
  const b = await admin.query('select version;');
  const c = await admin.query('  Show "version" ;  ');
  assert.deepEqual(a.rows, b.rows);
  assert.deepEqual(a.rows, c.rows);
  assert.equal(a.rows[0].version, `Sluice ${VERSION}`);
  assert.ok(a.rows[0].version.startsWith('Sluice '), 'doctor detects Sluice by this prefix');
  const lists = await admin.query('SHOW LISTS');
  assert.deepEqual(lists.rows.map((r) => r.list), FIXTURE.lists_rows);
  const state = await admin.query('SHOW STATE');
  assert.deepEqual(state.rows.map((r) => r.key), FIXTURE.state_rows);
  await assert.rejects(admin.query('SHOW NOSUCHVIEW'), /invalid command/);
  await assert.rejects(admin.query('FROBNICATE'), /invalid command/);
  const enc = await admin.query('SHOW client_encoding');
  assert.equal(enc.rows[0].client_encoding, 'UTF8');
});

test('SHOW POOLS, CLIENTS, SERVERS and STATS reflect real traffic', async () => {
  const app = await connect('postgres');
  for (let i = 0; i < 20; i++) await app.query('SELECT $1::int AS n', [i]);
  await app.query('BEGIN');
  await app.query('SELECT 1');
  const admin = await connect('pgbouncer');
  const pools = (await admin.query('SHOW POOLS')).rows.find((r) => r.database === 'postgres' && r.user === 'postgres');
  assert.ok(pools, 'pool row');
  assert.equal(pools.pool_mode, 'transaction');
  assert.ok(pools.sv_active >= 1, `sv_active ${pools.sv_active}`);
  const clients = (await admin.query('SHOW CLIENTS')).rows;
  assert.ok(clients.some((r) => r.database === 'postgres' && r.state === 'active' && r.link !== ''));
  assert.ok(clients.some((r) => r.database === 'pgbouncer'));
  const servers = (await admin.query('SHOW SERVERS')).rows;
  assert.ok(servers.some((r) => r.state === 'active' && r.remote_pid > 0 && r.port === pgsrv.port));
  await app.query('COMMIT');
  const stats = (await admin.query('SHOW STATS')).rows.find((r) => r.database === 'postgres');
  assert.ok(Number(stats.total_query_count) >= 22, `total_query_count ${stats.total_query_count}`);
  assert.ok(Number(stats.total_xact_count) >= 21);
  assert.ok(Number(stats.total_received) > 0 && Number(stats.total_sent) > 0);
  const totals = new Map((await admin.query('SHOW TOTALS')).rows.map((r) => [r.name, Number(r.value)]));
  assert.ok(totals.get('total_query_count')! >= 22);
  const latency = (await admin.query('SHOW LATENCY')).rows.filter((r) => r.database === 'postgres');
  assert.ok(latency.some((r) => r.metric === 'query' && Number(r.count) >= 22));
  const dbs = (await admin.query('SHOW DATABASES')).rows;
  assert.ok(dbs.some((r) => r.name === 'pgbouncer'));
  assert.ok(dbs.some((r) => r.name === 'postgres' && r.current_connections >= 1));
  const users = (await admin.query('SHOW USERS')).rows;
  assert.ok(users.some((r) => r.name === 'postgres' && r.current_client_connections >= 1));
  const cfg = new Map((await admin.query('SHOW CONFIG')).rows.map((r) => [r.key, r]));
  assert.equal(cfg.get('pool_mode')?.value, 'transaction');
  assert.equal(cfg.get('listen_port')?.changeable, 'no');
});

test('stats_users may SHOW but not run control commands; others are refused at login', async () => {
  const stats = await connect('pgbouncer', 'watcher');
  assert.ok((await stats.query('SHOW POOLS')).rows.length >= 1);
  for (const cmd of ['PAUSE', 'RESUME', 'DISABLE postgres', 'ENABLE postgres', 'RECONNECT', 'KILL postgres', 'KILL_CLIENT 1', 'SHUTDOWN', 'RELOAD', 'WAIT_CLOSE', 'SET default_pool_size = 9']) {
    await assert.rejects(stats.query(cmd), (err: Error & { code?: string }) => {
      assert.equal(err.code, '42501', cmd);
      assert.match(err.message, /admin access needed/);
      return true;
    });
  }
  assert.equal(sl.app.isPaused, false);
  assert.equal(sl.app.shuttingDown, false);
  const stranger = new pg.Client({ connectionString: sl.url('pgbouncer', 'mallory') });
  stranger.on('error', () => {});
  await assert.rejects(stranger.connect(), (err: Error & { code?: string }) => err.code === '28000');
});

test('the admin console refuses the extended query protocol', async () => {
  const admin = new pg.Client({ connectionString: sl.url('pgbouncer') });
  admin.on('error', () => {});
  await admin.connect();
  await assert.rejects(admin.query('SHOW POOLS WHERE $1', [1]), /extended query protocol not supported/);
  await admin.end().catch(() => {});
});

test('PAUSE waits for transactions in flight, paused clients wait, RESUME lets them finish without errors', async () => {
  const a = await connect('postgres');
  const b = await connect('postgres');
  const admin = await connect('pgbouncer');
  await a.query('BEGIN');
  await a.query('SELECT 1');
  let paused = false;
  const pause = admin.query('PAUSE').then(() => (paused = true));
  await waitFor(() => sl.app.isPaused, 'PAUSE to take effect');
  assert.equal(paused, false, 'PAUSE must not return while a server is in use');
  // A new transaction waits for RESUME.
  let bDone = false;
  const bQuery = b.query('SELECT 42 AS v').then((r) => {
    bDone = true;
    return r;
  });
  const pool = [...sl.app.pooler.pools.values()].find((p) => p.db.name === 'postgres')!;
  await waitFor(() => pool.waiters.length === 1, 'client b to queue');
  // The transaction in flight completes.
  await a.query('COMMIT');
  await pause;
  assert.equal(pool.servers.size, 0, 'PAUSE returns once every server connection is released and closed');
  assert.equal(bDone, false);
  const st = new Map((await admin.query('SHOW STATE')).rows.map((r) => [r.key, r.value]));
  assert.equal(st.get('paused'), 'yes');
  await assert.rejects(admin.query('PAUSE'), /already suspended\/paused/);
  await admin.query('RESUME');
  const r = await bQuery;
  assert.equal(r.rows[0].v, 42);
  await assert.rejects(admin.query('RESUME'), /not paused/);
});

test('DISABLE / ENABLE, KILL_CLIENT, KILL db, RECONNECT and WAIT_CLOSE', async () => {
  const admin = await connect('pgbouncer');
  await admin.query('DISABLE postgres');
  const refused = new pg.Client({ connectionString: sl.url('postgres') });
  refused.on('error', () => {});
  await assert.rejects(refused.connect(), (err: Error & { code?: string }) => err.code === '57P03');
  assert.equal((await admin.query('SHOW DATABASES')).rows.find((r) => r.name === 'postgres').disabled, 1);
  await admin.query('ENABLE postgres');
  const victim = await connect('postgres');
  await victim.query('SELECT 1');
  const victimId = (await admin.query('SHOW CLIENTS')).rows.filter((r) => r.database === 'postgres').map((r) => r.id).at(-1);
  const lost = new Promise<Error>((resolve) => victim.once('error', resolve));
  await admin.query(`KILL_CLIENT ${victimId}`);
  assert.match((await lost).message, /KILL_CLIENT/);
  await assert.rejects(admin.query('KILL_CLIENT 999999'), /client not found/);
  await assert.rejects(admin.query('DISABLE'), /database is required/);

  // RECONNECT: idle servers close now, busy ones are marked close_needed and close when released.
  const holder = await connect('postgres');
  await holder.query('BEGIN');
  await holder.query('SELECT 1');
  await admin.query('RECONNECT postgres');
  const marked = (await admin.query('SHOW SERVERS')).rows.filter((r) => r.database === 'postgres');
  assert.ok(marked.length >= 1 && marked.every((r) => r.close_needed === 1 && r.state === 'active'));
  let closed = false;
  const wait = admin.query('WAIT_CLOSE postgres').then(() => (closed = true));
  // WAIT_CLOSE cannot finish while the transaction holds its marked server.
  await holder.query('SELECT 2');
  assert.equal(closed, false);
  await holder.query('COMMIT');
  await wait;
  assert.equal((await holder.query('SELECT 3 AS v')).rows[0].v, 3, 'a fresh server serves the next transaction');

  // KILL db: clients and servers of the db go; the db stays paused until RESUME.
  const k = await connect('postgres');
  await k.query('SELECT 1');
  const killed = new Promise<Error>((resolve) => k.once('error', resolve));
  await admin.query('KILL postgres');
  assert.match((await killed).message, /KILL/);
  assert.equal((await admin.query('SHOW DATABASES')).rows.find((r) => r.name === 'postgres').paused, 1);
  await admin.query('RESUME postgres');
  const after = await connect('postgres');
  assert.equal((await after.query('SELECT 1 AS v')).rows[0].v, 1);
});

test('SET validates through the config layer and applies without a restart', async () => {
  const admin = await connect('pgbouncer');
  const r = await admin.query("SET default_pool_size = 7");
  assert.equal(r.command, 'SET');
  const cfg = new Map((await admin.query('SHOW CONFIG')).rows.map((x) => [x.key, x.value]));
  assert.equal(cfg.get('default_pool_size'), '7');
  assert.equal(sl.app.settings().default_pool_size, 7);
  assert.ok([...sl.app.pooler.pools.values()].every((p) => p.settings.size === 7), 'pools pick the new size up');
  await admin.query("SET server_check_query = 'select 2'");
  assert.equal(sl.app.settings().server_check_query, 'select 2');
  await assert.rejects(admin.query('SET default_pool_size = lots'), /SET failed: default_pool_size/);
  await assert.rejects(admin.query('SET no_such_key = 1'), /unknown setting/);
  await assert.rejects(admin.query('SET listen_port = 7000'), /cannot be changed while running/);
  await admin.query('SET client_encoding = UTF8'); // accepted and ignored, as PgBouncer does
  await admin.query('SET default_pool_size = 4');
});

test('SHUTDOWN WAIT_FOR_CLIENTS answers, then the pooler stops accepting and exits once clients leave', async () => {
  const own = await startSluice({ pg: pgsrv, settings: { pool_mode: 'transaction' } });
  let mode = '';
  own.app.onShutdownRequest = (m) => {
    mode = m;
    void own.app.stop(m, 10_000);
  };
  const admin = new pg.Client({ connectionString: own.url('pgbouncer') });
  admin.on('error', () => {});
  await admin.connect();
  await admin.query('SHUTDOWN WAIT_FOR_CLIENTS');
  await waitFor(() => own.app.shuttingDown, 'shutdown to start');
  assert.equal(mode, 'wait-for-clients');
  await admin.end().catch(() => {});
  await waitFor(() => own.app.clients.size === 0, 'clients to leave');
  await own.stop();
});

// ---------------------------------------------------------------- found in review, 2026-11-29

async function consoleOf(s: TestSluice, user = 'postgres'): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: s.url('pgbouncer', user) });
  c.on('error', () => {});
  await c.connect();
  return c;
}

test('PAUSE db before the database has a pool: RESUME db undoes it and its clients are served', async () => {
  const s = await startSluice({ pg: pgsrv, settings: { pool_mode: 'transaction' } });
  const adm = await consoleOf(s);
  try {
    await adm.query('PAUSE postgres');
    await adm.query('RESUME postgres'); // answered "database postgres is not paused", and the pause stayed
    const c = new pg.Client({ connectionString: s.url(), connectionTimeoutMillis: 5000, query_timeout: 5000 });
    c.on('error', () => {});
    try {
      await c.connect();
      assert.equal((await c.query('select 1 as one')).rows[0].one, 1);
    } finally {
      await c.end().catch(() => {});
    }
  } finally {
    s.app.resume();
    await adm.end();
    await s.stop();
  }
});

test('RESUME db under a global PAUSE is refused, as in PgBouncer: only RESUME lifts it', async () => {
  const s = await startSluice({ pg: pgsrv, settings: { pool_mode: 'transaction' } });
  const adm = await consoleOf(s);
  try {
    await adm.query('PAUSE');
    await assert.rejects(adm.query('RESUME postgres'), /database postgres is not paused/);
    await adm.query('RESUME');
  } finally {
    await adm.end();
    await s.stop();
  }
});

test('auth_type = any: any user reaches the console as a stats user', async () => {
  const s = await startSluice({ pg: pgsrv, settings: { auth_type: 'any', pool_mode: 'transaction' } });
  const adm = await consoleOf(s, 'nobody');
  try {
    assert.ok((await adm.query('SHOW VERSION')).rows.length === 1);
    await assert.rejects(adm.query('PAUSE'), /admin/i);
  } finally {
    await adm.end();
    await s.stop();
  }
});

test('a pause (SIGUSR1 calls the same) closes idle server connections, as the console PAUSE does', async () => {
  const s = await startSluice({ pg: pgsrv, settings: { pool_mode: 'transaction' } });
  try {
    const c = new pg.Client({ connectionString: s.url(), query_timeout: 5000 });
    c.on('error', () => {});
    try {
      await c.connect();
      await c.query('select 1');
      const servers = () => [...s.app.pooler.pools.values()].reduce((n, p) => n + p.servers.size, 0);
      assert.equal(servers(), 1);
      s.app.pause();
      await waitFor(() => servers() === 0, 'the idle server to close');
      s.app.resume();
      assert.equal((await c.query('select 2 as two')).rows[0].two, 2);
    } finally {
      s.app.resume();
      await c.end().catch(() => {});
    }
  } finally {
    await s.stop();
  }
});
