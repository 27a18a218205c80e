// Every example under examples/ runs against a real PostgreSQL, as its own process.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { run } from './harness/processes.js';
import { waitFor } from './fixtures/kit/helpers.js';
import { startSluice } from './harness/sluice.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The compiled examples, beside dist (the examples find their files at ../../../examples from there). */
const built = path.join(root, '.examples-build');
let pgsrv: TestPostgres;
let admin: pg.Client;
let dbs = 0;

before(async () => {
  // Generate the Prisma client offline (see examples/prisma/README.md), then compile the examples.
  const gen = await run(process.execPath, [path.join(root, 'node_modules/prisma/build/index.js'), 'generate', '--schema', path.join(root, 'examples/prisma/schema.prisma')], {
    env: { PRISMA_SCHEMA_ENGINE_BINARY: '/bin/true', PRISMA_HIDE_UPDATE_MESSAGE: '1', CHECKPOINT_DISABLE: '1' },
    timeoutMs: 120_000,
  });
  assert.equal(gen.code, 0, `prisma generate failed:\n${gen.stdout}\n${gen.stderr}`);
  // Into a directory of its own: compiling the examples also emits the src files they import, and
  // rewriting dist/src while other test files' processes load it failed them at random.
  const tsc = await run(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'examples/tsconfig.json'), '--outDir', built], { timeoutMs: 180_000 });
  assert.equal(tsc.code, 0, `examples do not compile:\n${tsc.stdout}\n${tsc.stderr}`);
  pgsrv = await startPostgres();
  admin = new pg.Client({ connectionString: pgsrv.url() });
  await admin.connect();
});

after(async () => {
  await admin?.end().catch(() => {});
  await pgsrv?.stop();
});

async function freshDb(): Promise<string> {
  const name = `ex_${process.pid}_${++dbs}`;
  await admin.query(`create database ${name}`);
  return pgsrv.url(name);
}

async function runExample(rel: string): Promise<{ notes: string[]; stats: { acquired: number } }> {
  const url = await freshDb();
  const r = await run(process.execPath, [path.join(built, 'examples', rel)], { env: { DATABASE_URL: url, SLUICE_LOG_LEVEL: 'warn' }, timeoutMs: 60_000 });
  assert.equal(r.code, 0, `${rel} failed:\n${r.stdout}\n${r.stderr}`);
  const line = r.stdout.split('\n').find((l) => l.startsWith('{"notes"'));
  assert.ok(line, `no result line in:\n${r.stdout}`);
  return JSON.parse(line) as { notes: string[]; stats: { acquired: number } };
}

test('drizzle example: queries, drizzle transaction and withTransaction on the kit pool', async () => {
  const out = await runExample('drizzle/main.js');
  assert.deepEqual(out.notes.sort(), ['inside a drizzle transaction', 'inside withTransaction', 'written by drizzle']);
  assert.equal(out.stats.acquired, 0);
});

test('kysely example: PostgresDialect over the kit pool', async () => {
  const out = await runExample('kysely/main.js');
  assert.deepEqual(out.notes, ['written by kysely', 'inside a kysely transaction']);
  assert.equal(out.stats.acquired, 0);
});

test('prisma example: Prisma 7 + adapter-pg sharing the kit pool', async () => {
  const out = await runExample('prisma/main.js');
  assert.deepEqual(out.notes, ['written by prisma', 'inside a prisma transaction', 'written by the kit']);
  assert.equal(out.stats.acquired, 0);
});

test('http service example: health endpoints, a query route, and a clean exit on SIGTERM', async () => {
  const url = await freshDb();
  const child = spawn(process.execPath, [path.join(built, 'examples/http-service/server.js')], {
    env: { ...process.env, DATABASE_URL: url, PORT: '0', SLUICE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const deadline = Date.now() + 20_000;
    let base = '';
    while (!base) {
      const m = /"listening":"([^"]+)"/.exec(stdout);
      if (m) base = m[1]!;
      else if (Date.now() > deadline || child.exitCode !== null) throw new Error(`server did not start:\n${stdout}\n${stderr}`);
      else await new Promise((r) => setTimeout(r, 20));
    }
    const ready = await fetch(`${base}/ready`);
    assert.equal(ready.status, 200);
    assert.equal(((await ready.json()) as { ok: boolean }).ok, true);
    const budget = await fetch(`${base}/health/budget`);
    assert.equal(budget.status, 200);
    assert.equal(((await budget.json()) as { threshold: number }).threshold, 0.8);
    const now = await fetch(`${base}/now`);
    assert.equal(now.status, 200);
    assert.ok(!Number.isNaN(Date.parse(((await now.json()) as { now: string }).now)));
    assert.equal(((await (await fetch(`${base}/counter`, { method: 'POST' })).json()) as { n: number }).n, 1);
    assert.equal(((await (await fetch(`${base}/counter`, { method: 'POST' })).json()) as { n: number }).n, 2);
    child.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 15_000))]);
    assert.equal(code, 0, `exit ${String(code)}\n${stderr}`);
    // Backends leave pg_stat_activity shortly after their client disconnects.
    await waitFor(
      async () => (await admin.query("select count(*)::int as n from pg_stat_activity where application_name in ('example-http', 'sluice-budget-check')")).rows[0].n === 0,
      'the service to have closed its connections',
    );
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

test('Prisma 7 over @prisma/adapter-pg through Sluice transaction mode: 50 concurrent clients, pool size 2, no pgbouncer=true, zero errors', async () => {
  const url = await freshDb();
  const dbname = new URL(url).pathname.slice(1);
  const sluice = await startSluice({ pg: pgsrv, settings: { pool_mode: 'transaction', default_pool_size: 2, max_client_conn: 200 } });
  try {
    const r = await run(process.execPath, [path.join(built, 'examples/prisma/concurrent.js')], {
      env: { DATABASE_URL: sluice.url(dbname), SLUICE_LOG_LEVEL: 'warn', CLIENTS: '50' },
      timeoutMs: 120_000,
    });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const out = JSON.parse(r.stdout.split('\n').find((l) => l.startsWith('{"ok"')) ?? '{}') as { ok: number; errors: string[] };
    assert.deepEqual(out.errors, []);
    assert.equal(out.ok, 50);
    assert.ok([...sluice.app.pooler.pools.values()].every((p) => p.servers.size <= 2));
  } finally {
    await sluice.stop();
  }
});
