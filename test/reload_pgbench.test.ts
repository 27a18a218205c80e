// Issue 6: RELOAD under load, and a broken file on RELOAD.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Sluice } from '../src/app.js';
import { loadConfig } from '../src/config/index.js';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { run } from './harness/processes.js';
import { waitFor } from './harness/wait.js';

let pgsrv: TestPostgres;
let app: Sluice;
let dir: string;
let ini: string;

function writeIni(poolSize: number | string, extra = ''): void {
  writeFileSync(
    ini,
    `[databases]\npostgres = host=127.0.0.1 port=${pgsrv.port}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = 0\nunix_socket_dir =\nauth_type = trust\npool_mode = transaction\nadmin_users = postgres\nmax_client_conn = 200\ndefault_pool_size = ${poolSize}\n${extra}`,
  );
}

before(async () => {
  pgsrv = await startPostgres({ conf: { max_connections: 60 } });
  dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-reload-'));
  ini = path.join(dir, 'pgbouncer.ini');
  writeIni(3);
  app = await Sluice.start(loadConfig(ini), { configFile: ini, loadConfig: () => loadConfig(ini) });
  const init = await run('pgbench', ['-i', '-q', '-s', '1', pgsrv.url()], { timeoutMs: 60_000 });
  assert.equal(init.code, 0, init.stderr);
});
after(async () => {
  await app?.stop('immediate');
  await pgsrv?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const url = (db: string) => `postgres://postgres@127.0.0.1:${app.port}/${db}`;

test('RELOAD changing default_pool_size during a pgbench run: zero failed transactions, clients stay connected', async () => {
  const bench = run('pgbench', ['-n', '-c', '20', '-j', '2', '-T', '4', url('postgres')], { timeoutMs: 60_000 });
  const pool = () => [...app.pooler.pools.values()].find((p) => p.db.name === 'postgres');
  await waitFor(() => (pool()?.stats.xactCount ?? 0) > 50, 'pgbench to get going', 20_000);
  const clientsBefore = app.clients.size;
  writeIni(8);
  const admin = new pg.Client({ connectionString: url('pgbouncer') });
  admin.on('error', () => {});
  await admin.connect();
  const r = await admin.query('RELOAD');
  assert.equal(r.command, 'RELOAD');
  assert.equal(pool()!.settings.size, 8);
  assert.ok(app.clients.size >= clientsBefore, 'no client was dropped by RELOAD');
  await waitFor(() => pool()!.servers.size > 3, 'the pool to grow to the new size', 20_000);
  const out = await bench;
  assert.equal(out.code, 0, out.stderr + out.stdout);
  assert.match(out.stdout, /number of failed transactions: 0 /);
  assert.ok(pool()!.servers.size <= 8);
  await admin.end();
});

test('a broken file on RELOAD keeps the old config running and reports file, line and key', async () => {
  writeIni('not-a-number');
  const admin = new pg.Client({ connectionString: url('pgbouncer') });
  admin.on('error', () => {});
  await admin.connect();
  await assert.rejects(admin.query('RELOAD'), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'F0000');
    assert.ok(err.message.includes(`${ini}:`), err.message);
    assert.match(err.message, /:12: key default_pool_size: /);
    assert.match(err.message, /keeping the old configuration/);
    return true;
  });
  assert.equal(app.settings().default_pool_size, 8);
  const cfg = new Map((await admin.query('SHOW CONFIG')).rows.map((x) => [x.key, x.value]));
  assert.equal(cfg.get('default_pool_size'), '8');
  const c = new pg.Client({ connectionString: url('postgres') });
  await c.connect();
  assert.equal((await c.query('SELECT 1 AS v')).rows[0].v, 1, 'still serving');
  await c.end();
  writeIni(5);
  await admin.query('RELOAD');
  assert.equal(app.settings().default_pool_size, 5);
  await admin.end();
});
