// Health endpoints and graceful shutdown against a real PostgreSQL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { createBudgetCheck, createPool, createReadiness, installShutdown, type HealthEndpoint } from '../src/kit/index.js';
import { spyLogger, waitFor } from './fixtures/kit/helpers.js';

let pgsrv: TestPostgres;

before(async () => {
  // 20 - 3 superuser-reserved = a limit of 17 for the budget check.
  pgsrv = await startPostgres({ conf: { max_connections: 20 } });
});

after(async () => {
  await pgsrv?.stop();
});

async function serve(h: HealthEndpoint): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => h.node(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/`, close: () => new Promise((r) => server.close(() => r())) };
}

test('budget handler answers 503 past the threshold, 200 below, as Node and fetch handlers', async () => {
  const budget = createBudgetCheck(pgsrv.url(), { threshold: 0.5, logger: spyLogger() });
  const srv = await serve(budget);
  const held: pg.Client[] = [];
  try {
    let res = await fetch(srv.url);
    let body = (await res.json()) as { used: number; limit: number; ok: boolean };
    assert.equal(res.status, 200);
    assert.equal(body.limit, 17);
    assert.equal(body.ok, true);
    // 9 more client backends + the check's own ≥ 10 of 17 > 0.5.
    for (let i = 0; i < 9; i++) {
      const c = new pg.Client({ connectionString: pgsrv.url() });
      await c.connect();
      held.push(c);
    }
    res = await fetch(srv.url);
    body = (await res.json()) as typeof body;
    assert.equal(res.status, 503, JSON.stringify(body));
    assert.ok(body.used >= 10);
    const viaFetch = await budget.fetch(new Request('http://x/health/budget'));
    assert.equal(viaFetch.status, 503);
    assert.equal(viaFetch.headers.get('content-type'), 'application/json');
    await Promise.all(held.splice(0).map((c) => c.end()));
    await waitFor(async () => (await budget.check()).status === 200, 'budget to recover after clients leave');
  } finally {
    await Promise.all(held.map((c) => c.end()));
    await srv.close();
    await budget.close();
  }
});

test('budget handler counts client backends only and answers 503 when it cannot reach the database', async () => {
  const budget = createBudgetCheck(pgsrv.url(), { threshold: 0.9, logger: spyLogger() });
  try {
    const r = await budget.check();
    // Background workers (checkpointer, walwriter, …) are not client backends.
    const all = new pg.Client({ connectionString: pgsrv.url() });
    await all.connect();
    const total = (await all.query('select count(*)::int as n from pg_stat_activity')).rows[0].n;
    await all.end();
    assert.ok((r.body.used as number) < total, `${String(r.body.used)} client backends < ${total} rows`);
  } finally {
    await budget.close();
  }
  const dead = createBudgetCheck('postgres://postgres@127.0.0.1:1/postgres', { logger: spyLogger(), pool: { acquireTimeoutMillis: 2000 } });
  try {
    const r = await dead.check();
    assert.equal(r.status, 503);
    assert.equal(r.body.ok, false);
  } finally {
    await dead.close();
  }
});

test('readiness follows local pool signals: ok, saturated, closing', async () => {
  const pool = createPool({ connectionString: pgsrv.url(), max: 1, acquireTimeoutMillis: 100, logger: spyLogger() });
  const ready = createReadiness(pool, { timeoutGraceMillis: 60_000 });
  const srv = await serve(ready);
  try {
    assert.equal((await fetch(srv.url)).status, 200);
    const held = await pool.connect();
    await assert.rejects(pool.connect(), { code: 'SLUICE_ACQUIRE_TIMEOUT' });
    const res = await fetch(srv.url);
    assert.equal(res.status, 503);
    assert.match(JSON.stringify(await res.json()), /saturated/);
    held.release();
    pool.beginClose();
    const viaFetch = await ready.fetch(new Request('http://x/ready'));
    assert.equal(viaFetch.status, 503);
    assert.match(await viaFetch.text(), /shutting down/);
  } finally {
    await srv.close();
    await pool.drain(2000);
  }
});

test('graceful shutdown on a signal: refuses new work, waits for in-flight work, ends the pool', async () => {
  const logger = spyLogger();
  const pool = createPool({ connectionString: pgsrv.url(), max: 2, logger });
  let stopped = false;
  const handle = installShutdown(pool, {
    signals: ['SIGUSR2'],
    exit: false,
    logger,
    stopAccepting: () => {
      stopped = true;
    },
  });
  try {
    const inFlight = await pool.connect();
    process.kill(process.pid, 'SIGUSR2');
    await waitFor(() => pool.closing, 'shutdown to begin');
    assert.equal(stopped, true);
    await assert.rejects(pool.connect(), { code: 'SLUICE_POOL_CLOSING' });
    assert.equal(pool.ending, false, 'still waiting for the in-flight client');
    assert.equal((await inFlight.query('select 1 as one')).rows[0].one, 1);
    inFlight.release();
    assert.equal(await handle.shutdown(), true);
    assert.equal(pool.ending, true);
    assert.equal(pool.totalCount, 0);
  } finally {
    handle.uninstall();
    if (!pool.ending) await pool.drain(1000);
  }
});

test('graceful shutdown closes leftovers after its deadline instead of hanging', async () => {
  const pool = createPool({ connectionString: pgsrv.url(), max: 1, logger: spyLogger() });
  const handle = installShutdown(pool, { signals: [], exit: false, drainTimeoutMillis: 200, logger: spyLogger() });
  const leaked = await pool.connect();
  assert.equal(await handle.shutdown('test'), false);
  assert.equal(pool.totalCount, 0);
  leaked.release(); // the owner's late release is harmless
});
