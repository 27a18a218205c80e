// Issue 3: server faults — a terminated backend, a PostgreSQL restart under load.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startSluice, type TestSluice } from './harness/sluice.js';

let pgsrv: TestPostgres;
let s: TestSluice;
before(async () => {
  pgsrv = await startPostgres();
  s = await startSluice({ pg: pgsrv, settings: { pool_mode: 'transaction', default_pool_size: 4, query_wait_timeout: 5, server_login_retry: 0.2 } });
});
after(async () => {
  await s?.stop();
  await pgsrv?.stop();
});

type PgErr = Error & { code?: string };

test('pg_terminate_backend under an open transaction: that client gets 57P01, others carry on', async () => {
  const victim = new pg.Client({ connectionString: s.url() });
  const errors: PgErr[] = [];
  victim.on('error', (e) => errors.push(e as PgErr));
  await victim.connect();
  await victim.query('begin');
  const pid = (await victim.query('select pg_backend_pid() as p')).rows[0].p;
  const bystander = new pg.Client({ connectionString: s.url() });
  await bystander.connect();
  const admin = new pg.Client({ connectionString: pgsrv.url() });
  await admin.connect();
  await admin.query('select pg_terminate_backend($1)', [pid]);
  await assert.rejects(victim.query('select 1'), (e: PgErr) => e.code === '57P01' || /terminat|connection/i.test(e.message));
  assert.equal((await bystander.query('select 2 as x')).rows[0].x, 2);
  await bystander.end();
  await admin.end();
  await victim.end().catch(() => {});
});

test('PostgreSQL stop and start under load: errors, no hang, full recovery', async () => {
  const pool = new pg.Pool({ connectionString: s.url(), max: 8, connectionTimeoutMillis: 10_000 });
  pool.on('error', () => {});
  let ok = 0;
  let failed = 0;
  let stop = false;
  const worker = async () => {
    while (!stop) {
      try {
        await pool.query('select pg_sleep(0.01)');
        ok++;
      } catch {
        failed++;
      }
    }
  };
  const workers = Array.from({ length: 8 }, worker);
  while (ok < 50) await new Promise((r) => setTimeout(r, 10));
  await pgsrv.cluster.stop('fast');
  const failedBefore = failed;
  const t0 = Date.now();
  while (failed === failedBefore && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 10));
  assert.ok(failed > failedBefore, 'clients must see errors while PostgreSQL is down');
  await pgsrv.cluster.start();
  const okAfterRestart = ok;
  const t1 = Date.now();
  while (ok < okAfterRestart + 50 && Date.now() - t1 < 20_000) await new Promise((r) => setTimeout(r, 10));
  stop = true;
  await Promise.all(workers);
  await pool.end();
  assert.ok(ok >= okAfterRestart + 50, 'queries must succeed again after PostgreSQL is back');
});
