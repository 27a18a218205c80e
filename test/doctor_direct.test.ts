// `sluice doctor` against a direct connection to a real PostgreSQL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import pg from 'pg';
import { main, runDoctor, type CheckResult, type DoctorReport } from '../src/cli/doctor.js';
import { startPostgres, type TestPostgres } from './harness/postgres.js';

let server: TestPostgres;
let admin: pg.Client;
const opened: pg.Client[] = [];

before(async () => {
  server = await startPostgres();
  admin = new pg.Client({ connectionString: server.url(), application_name: 'test admin' });
  await admin.connect();
});
after(async () => {
  for (const c of opened) await c.end().catch(() => undefined);
  await admin.end().catch(() => undefined);
  await server.stop();
});

async function session(app: string, on: TestPostgres = server): Promise<{ client: pg.Client; pid: number }> {
  const client = new pg.Client({ connectionString: on.url(), application_name: app });
  client.on('error', () => undefined); // terminated on purpose in one test
  await client.connect();
  opened.push(client);
  const pid = Number((await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]?.pid);
  return { client, pid };
}

// Bounded poll on the server's clock: no fixed sleeps.
async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function idleAgeMs(pid: number, via: pg.Client = admin): Promise<number> {
  const r = await via.query<{ age: number }>(
    `select (extract(epoch from clock_timestamp() - state_change) * 1000)::float8 as age from pg_stat_activity where pid = $1`,
    [pid],
  );
  return Number(r.rows[0]?.age ?? -1);
}

async function alive(pid: number, via: pg.Client = admin): Promise<boolean> {
  return (await via.query('select 1 from pg_stat_activity where pid = $1', [pid])).rowCount === 1;
}

function check(r: DoctorReport, id: CheckResult['id']): CheckResult {
  const c = r.checks.find((x) => x.id === id);
  assert.ok(c, `check ${id} missing`);
  return c;
}

async function cli(argv: string[], isTTY = false): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (d) => (stdout += d));
  err.on('data', (d) => (stderr += d));
  const code = await main(argv, { stdout: out, stderr: err, isTTY });
  return { code, stdout, stderr };
}

test('flags a session idle in transaction, with its pid and application', async () => {
  const s = await session('stuck-tx');
  await s.client.query('begin');
  await s.client.query('select 1');
  const r = await runDoctor({ url: server.url() });
  const c = check(r, 'idle-in-transaction');
  assert.equal(c.ok, false);
  assert.ok(r.idleInTransaction.some((x) => x.pid === s.pid && x.application === 'stuck-tx'));
  const text = await cli([server.url()]);
  assert.match(text.stdout, /✗ Idle in transaction \[warning\]: 1 session\(s\)/);
  assert.match(text.stdout, new RegExp(`\\b${s.pid}\\s+stuck-tx`));
  await s.client.query('rollback');
  const clean = await runDoctor({ url: server.url() });
  assert.equal(check(clean, 'idle-in-transaction').ok, true);
  await s.client.end();
});

test('reports the server, client-backend usage by application and state, and no pooler', async () => {
  const s = await session('usage-app');
  const r = await runDoctor({ url: server.url() });
  assert.equal(check(r, 'connection').ok, true);
  const srv = check(r, 'server');
  assert.equal(srv.data['maxConnections'], 100);
  assert.equal(srv.data['superuserReserved'], 3);
  assert.equal(srv.data['reserved'], 0);
  assert.match(srv.detail, /PostgreSQL 1\d/);
  assert.ok(r.usage.some((u) => u.application === 'usage-app' && u.state === 'idle' && u.count === 1));
  assert.equal(r.pooler?.kind, 'none');
  assert.equal(check(r, 'pooler').ok, true);
  await s.client.end();
});

test('--instances × --pool-size over the limit is critical: exit 1, with advice', async () => {
  const over = await cli([server.url(), '--instances', '10', '--pool-size', '12']);
  assert.equal(over.code, 1);
  assert.match(over.stdout, /✗ Budget \[critical\]: 10 instances × pool 12 = 120 connections, over the 97 available/);
  assert.match(over.stdout, /→ Lower the pool size to 9 per instance/);
  const fits = await cli([server.url(), '--instances', '4', '--pool-size', '10', '--json']);
  assert.equal(fits.code, 0, fits.stdout);
  const j = JSON.parse(fits.stdout) as { ok: boolean; checks: CheckResult[] };
  assert.equal(j.ok, true);
  assert.equal(j.checks.find((c) => c.id === 'budget')?.ok, true);
});

test('--kill-idle lists, and with --yes terminates, only idle sessions older than the threshold', async (t) => {
  // A server of its own: sessions other tests leave behind must not count.
  const own = await startPostgres();
  const watcher = new pg.Client({ connectionString: own.url(), application_name: 'test watcher' });
  watcher.on('error', () => undefined);
  t.after(async () => {
    await watcher.end().catch(() => undefined);
    await own.stop();
  });
  await watcher.connect();
  const stuck = await session('old-but-in-tx', own);
  await stuck.client.query('begin');
  const old = await session('old-idle', own);
  // Age the first session measurably on the server's clock, then open the young one.
  await until('old session to age', async () => ((await idleAgeMs(old.pid, watcher)) >= 4000 ? true : undefined));
  const young = await session('young-idle', own);
  const threshold = '2s';

  const dry = await cli([own.url(), '--kill-idle', threshold, '--json']);
  const dj = JSON.parse(dry.stdout) as DoctorReport;
  assert.deepEqual(dj.idle.map((s) => s.pid), [old.pid]);
  assert.deepEqual(dj.terminated, []);
  assert.match(check(dj, 'idle').detail, new RegExp(`would terminate pids ${old.pid} \\(dry run\\)`));
  assert.ok(await alive(old.pid, watcher), 'dry run terminated nothing');

  const wet = await cli([own.url(), '--kill-idle', threshold, '--yes']);
  assert.match(wet.stdout, new RegExp(`✓ Idle connections: Terminated 1 idle connection\\(s\\) older than 2\\.0s: pids ${old.pid}\\.`));
  await until('old session to exit', async () => ((await alive(old.pid, watcher)) ? undefined : true));
  assert.ok(await alive(young.pid, watcher), 'young idle session survives');
  assert.ok(await alive(stuck.pid, watcher), 'idle-in-transaction session is not an idle session');
  assert.equal(Number((await young.client.query('select 7 as n')).rows[0]?.n), 7);
  await stuck.client.query('rollback');
});

test('bad usage exits 2', async () => {
  assert.equal((await cli([server.url(), '--yes'])).code, 2);
  assert.equal((await cli([server.url(), '--kill-idle', '10'])).code, 2);
  assert.equal((await cli([server.url(), '--instances', '3'])).code, 2);
  assert.equal((await cli(['mysql://x@y/z'])).code, 2);
});

test('an unreachable server is a critical finding', async () => {
  const r = await cli(['postgres://nobody@127.0.0.1:1/nothing']);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /✗ Connection \[critical\]: Cannot connect/);
});
