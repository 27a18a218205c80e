// Migrations against a real PostgreSQL: concurrency, checksums, failures, locks.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { run } from './harness/processes.js';
import { startSluice } from './harness/sluice.js';
import { createPool, migrate, readMigrations, type SluicePool } from '../src/kit/index.js';
import { spyLogger, waitFor } from './fixtures/kit/helpers.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const FIXTURES = path.resolve(here, '../../test/fixtures/kit/migrations');
const RUNNER = path.resolve(here, 'fixtures/kit/run-migrate.js');

let pgsrv: TestPostgres;
let admin: pg.Client;
const tmpDirs: string[] = [];
let dbCounter = 0;

before(async () => {
  pgsrv = await startPostgres({ conf: { max_connections: 60 } });
  admin = new pg.Client({ connectionString: pgsrv.url() });
  await admin.connect();
});

after(async () => {
  await admin?.end().catch(() => {});
  await pgsrv?.stop();
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh database per test so tests do not depend on each other. */
async function freshDb(): Promise<string> {
  const name = `mig_${process.pid}_${++dbCounter}`;
  await admin.query(`create database ${name}`);
  return pgsrv.url(name);
}

function copyFixtures(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-kit-mig-'));
  tmpDirs.push(dir);
  cpSync(FIXTURES, dir, { recursive: true });
  return dir;
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql)).rows;
  } finally {
    await c.end();
  }
}

test('ten concurrent runners (separate processes) apply each migration exactly once', async () => {
  const url = await freshDb();
  const runs = await Promise.all(
    Array.from({ length: 10 }, () => run(process.execPath, [RUNNER, '--dir', FIXTURES], { env: { DATABASE_URL: url }, timeoutMs: 60_000 })),
  );
  for (const r of runs) assert.equal(r.code, 0, `runner failed: ${r.stderr}`);
  const appliedLines = runs.flatMap((r) => r.stdout.split('\n').filter((l) => l.startsWith('applied ')));
  assert.deepEqual(appliedLines.sort(), ['applied 001_create_log', 'applied 002_widgets', 'applied 003_widget_price', 'applied 004_widget_name_index']);
  const log = await query<{ migration: string; n: number }>(url, 'select migration, count(*)::int as n from applied_log group by 1 order by 1');
  assert.deepEqual(log, [
    { migration: '001', n: 1 },
    { migration: '002', n: 1 },
    { migration: '003', n: 1 },
  ]);
  const history = await query<{ id: string }>(url, 'select id from sluice_migrations order by id');
  assert.deepEqual(history.map((h) => h.id), ['001_create_log', '002_widgets', '003_widget_price', '004_widget_name_index']);
  const idx = await query(url, "select 1 from pg_indexes where indexname = 'widgets_name_idx'");
  assert.equal(idx.length, 1);
});

test('ten concurrent runners in one process, each with its own pool', async () => {
  const url = await freshDb();
  const pools: SluicePool[] = Array.from({ length: 10 }, () => createPool({ connectionString: url, max: 1, logger: spyLogger() }));
  try {
    const results = await Promise.all(pools.map((p) => migrate(p, FIXTURES, { logger: spyLogger() })));
    assert.equal(results.reduce((n, r) => n + r.applied.length, 0), 4);
    for (const r of results) assert.equal(r.applied.length + r.alreadyApplied.length, 4);
    const log = await query<{ n: number }>(url, 'select count(*)::int as n from applied_log');
    assert.equal(log[0]!.n, 3);
  } finally {
    await Promise.all(pools.map((p) => p.drain(2000)));
  }
});

test('through Sluice in transaction mode: the session advisory lock pins, ten runners apply each migration once', async () => {
  const url = await freshDb();
  const dbname = new URL(url).pathname.slice(1);
  const sluice = await startSluice({ pg: pgsrv, settings: { pool_mode: 'transaction', default_pool_size: 3, max_client_conn: 50 } });
  const pools: SluicePool[] = Array.from({ length: 10 }, () => createPool({ connectionString: sluice.url(dbname), max: 1, logger: spyLogger() }));
  try {
    const results = await Promise.all(pools.map((p) => migrate(p, FIXTURES, { logger: spyLogger() })));
    assert.equal(results.reduce((n, r) => n + r.applied.length, 0), 4);
    const log = await query<{ n: number }>(url, 'select count(*)::int as n from applied_log');
    assert.equal(log[0]!.n, 3);
    // Pins come and go with the lock: nobody stays pinned once the runners are done.
    assert.ok(![...sluice.app.clients].some((c) => c.pinReasons.includes('advisory_lock')));
  } finally {
    await Promise.all(pools.map((p) => p.drain(2000)));
    await sluice.stop();
  }
});

test('an edited migration fails the checksum check with a clear error and exit 1', async () => {
  const url = await freshDb();
  const dir = copyFixtures();
  const first = await run(process.execPath, [RUNNER, '--dir', dir, '--url', url]);
  assert.equal(first.code, 0, first.stderr);
  appendFileSync(path.join(dir, '002_widgets.sql'), '\n-- edited later\n');
  const second = await run(process.execPath, [RUNNER, '--dir', dir, '--url', url]);
  assert.equal(second.code, 1);
  assert.match(second.stderr, /SLUICE_MIGRATION_CHECKSUM: migration 002_widgets changed after it was applied/);
  // CRLF line endings alone do not count as an edit.
  const crlf = copyFixtures();
  const f = path.join(crlf, '003_widget_price.sql');
  const body = readFileSync(f, 'utf8');
  writeFileSync(f, body.replace(/\n/g, '\r\n'));
  const third = await run(process.execPath, [RUNNER, '--dir', crlf, '--url', url]);
  assert.equal(third.code, 0, third.stderr);
});

test('a failing migration stops the run: earlier ones stay, it is not recorded, exit 1 names file and SQLSTATE', async () => {
  const url = await freshDb();
  const dir = copyFixtures();
  writeFileSync(path.join(dir, '005_broken.sql'), "insert into applied_log (migration) values ('005');\nselect * from no_such_table;\n");
  writeFileSync(path.join(dir, '006_after.sql'), "insert into applied_log (migration) values ('006');\n");
  const r = await run(process.execPath, [RUNNER, '--dir', dir, '--url', url]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /SLUICE_MIGRATION_FAILED: migration 005_broken failed: relation "no_such_table" does not exist \(SQLSTATE 42P01\)/);
  const history = await query<{ id: string }>(url, 'select id from sluice_migrations order by id');
  assert.deepEqual(history.map((h) => h.id), ['001_create_log', '002_widgets', '003_widget_price', '004_widget_name_index']);
  const log = await query<{ migration: string }>(url, "select migration from applied_log where migration in ('005', '006')");
  assert.deepEqual(log, [], 'the failed migration rolled back as a whole');
});

test('an applied migration whose file disappeared is an error', async () => {
  const url = await freshDb();
  const dir = copyFixtures();
  const pool = createPool({ connectionString: url, max: 1, logger: spyLogger() });
  try {
    await migrate(pool, dir, { logger: spyLogger() });
    unlinkSync(path.join(dir, '003_widget_price.sql'));
    await assert.rejects(migrate(pool, dir, { logger: spyLogger() }), { code: 'SLUICE_MIGRATION_MISSING', file: '003_widget_price' });
  } finally {
    await pool.drain(2000);
  }
});

test('waiting for another runner is bounded: lock held elsewhere → typed error within the deadline', async () => {
  const url = await freshDb();
  const holder = new pg.Client({ connectionString: url });
  await holder.connect();
  const pool = createPool({ connectionString: url, max: 1, logger: spyLogger() });
  try {
    await holder.query('select pg_advisory_lock(4242)');
    const started = Date.now();
    await assert.rejects(migrate(pool, FIXTURES, { lockKey: 4242n, lockWaitMillis: 300, logger: spyLogger() }), { code: 'SLUICE_MIGRATION_LOCK_TIMEOUT' });
    assert.ok(Date.now() - started < 300 + 3000);
    assert.equal(pool.stats().acquired, 0);
    // Once the holder lets go, a waiting runner proceeds as soon as the lock is free.
    const logger = spyLogger();
    const waiting = migrate(pool, FIXTURES, { lockKey: 4242n, lockWaitMillis: 20_000, logger });
    await waitFor(() => logger.entries.some((e) => /holds the migration lock; waiting/.test(e.message)), 'runner to wait on the lock');
    await holder.query('select pg_advisory_unlock(4242)');
    assert.equal((await waiting).applied.length, 4);
  } finally {
    await holder.end();
    await pool.drain(2000);
  }
});

test('DDL that cannot get its lock is retried under lock_timeout, a bounded number of times', async () => {
  const url = await freshDb();
  const dir = copyFixtures();
  const pool = createPool({ connectionString: url, max: 1, logger: spyLogger() });
  const blocker = new pg.Client({ connectionString: url });
  await blocker.connect();
  try {
    await migrate(pool, dir, { logger: spyLogger() });
    writeFileSync(path.join(dir, '005_alter.sql'), 'alter table widgets add column color text;\n');
    await blocker.query('begin');
    await blocker.query('lock table widgets in access share mode');
    // Exhausted retries: a clear error.
    await assert.rejects(migrate(pool, dir, { ddlLockTimeoutMillis: 50, ddlRetries: 1, logger: spyLogger() }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'SLUICE_MIGRATION_FAILED');
      assert.match(err.message, /005_alter failed after 2 attempts; a long transaction holds a conflicting lock/);
      return true;
    });
    // Retries succeed once the blocker goes away: release it on the first retry warning.
    const logger = spyLogger();
    const result = migrate(pool, dir, { ddlLockTimeoutMillis: 50, ddlRetries: 20, logger });
    await waitFor(() => logger.entries.some((e) => e.level === 'warn' && /retrying/.test(e.message)), 'a lock_timeout retry');
    await blocker.query('rollback');
    assert.deepEqual((await result).applied, ['005_alter']);
  } finally {
    await blocker.end();
    await pool.drain(2000);
  }
});

test('files are ordered numerically; duplicates and bad directories are refused; usage errors exit 2', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-kit-order-'));
  tmpDirs.push(dir);
  for (const n of ['10_b.sql', '9_a.sql', '0100_c.sql', 'notes.txt']) writeFileSync(path.join(dir, n), 'select 1;');
  assert.deepEqual((await readMigrations(dir)).map((f) => f.id), ['9_a', '10_b', '0100_c']);
  writeFileSync(path.join(dir, '010_dup.sql'), 'select 1;');
  await assert.rejects(readMigrations(dir), { code: 'SLUICE_MIGRATION_BAD_FILE' });
  await assert.rejects(readMigrations(path.join(dir, 'nope')), { code: 'SLUICE_MIGRATION_BAD_FILE' });
  const noUrl = await run(process.execPath, [RUNNER, '--dir', dir], { env: { DATABASE_URL: '' } });
  assert.equal(noUrl.code, 2);
  assert.match(noUrl.stderr, /DATABASE_URL/);
  const bad = await run(process.execPath, [RUNNER, '--bogus']);
  assert.equal(bad.code, 2);
});

// Found in review: the history table's INSERT was not schema-qualified, so a
// migration that ran a plain SET search_path failed ("sluice_migrations does
// not exist"), and the setting went back to the pool with the connection.
test('a migration that changes search_path: the history is still recorded, and no pooled connection keeps the setting', async () => {
  const url = await freshDb();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-kit-mig-'));
  tmpDirs.push(dir);
  writeFileSync(path.join(dir, '001_schema.sql'), 'create schema app;\nset search_path = app;\ncreate table t(a int);\n');
  writeFileSync(path.join(dir, '002_more.sql'), 'create table u(a int);\n');
  const pool = createPool({ connectionString: url, max: 1, logger: spyLogger() });
  try {
    const r = await migrate(pool, dir, { logger: spyLogger() });
    assert.deepEqual(r.applied, ['001_schema', '002_more']);
    const history = await query<{ id: string }>(url, 'select id from public.sluice_migrations order by id');
    assert.deepEqual(history.map((h) => h.id), ['001_schema', '002_more']);
    assert.equal((await pool.query('show search_path')).rows[0].search_path, '"$user", public', "the application's connection has the default");
  } finally {
    await pool.drain(2000);
  }
});

test('a failing no-transaction migration: the error says part of it may have taken effect', async () => {
  const url = await freshDb();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-kit-mig-'));
  tmpDirs.push(dir);
  writeFileSync(path.join(dir, '001_table.sql'), 'create table w(a int);\n');
  writeFileSync(path.join(dir, '002_index.sql'), '-- sluice:no-transaction\ncreate index concurrently w_a on no_such_table(a);\n');
  const pool = createPool({ connectionString: url, max: 1, logger: spyLogger() });
  try {
    await assert.rejects(migrate(pool, dir, { logger: spyLogger() }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'SLUICE_MIGRATION_FAILED');
      assert.match(err.message, /outside a transaction, so part of it may have taken effect/);
      return true;
    });
  } finally {
    await pool.drain(2000);
  }
});
