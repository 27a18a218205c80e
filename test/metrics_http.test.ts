// Issue 6: /metrics under load, /health, /ready while paused, /budget past its threshold.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { freePort } from '../src/embedded/cluster.js';
import type { AdminLayer } from '../src/admin/index.js';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startSluice, type TestSluice } from './harness/sluice.js';
import { run } from './harness/processes.js';
import { waitFor } from './harness/wait.js';

let pgsrv: TestPostgres;
let sl: TestSluice;
let base: string;

before(async () => {
  // max_connections 20 with 3 superuser-reserved slots: 17 usable.
  pgsrv = await startPostgres({ conf: { max_connections: 20, superuser_reserved_connections: 3 } });
  const port = await freePort();
  sl = await startSluice({
    pg: pgsrv,
    settings: { pool_mode: 'transaction', default_pool_size: 3, http_listen: `127.0.0.1:${port}`, budget_threshold: 0.5, max_ready_wait: 1 },
  });
  base = `http://127.0.0.1:${port}`;
  const init = await run('pgbench', ['-i', '-q', '-s', '1', pgsrv.url()], { timeoutMs: 60_000 });
  assert.equal(init.code, 0, init.stderr);
});
after(async () => {
  await sl?.stop();
  await pgsrv?.stop();
});

/** Prometheus text format → samples keyed by `name{labels}`. */
function parseMetrics(text: string): { samples: Map<string, number>; types: Map<string, string> } {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      types.set(name!, type!);
      continue;
    }
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    assert.ok(m, `unparseable metrics line: ${line}`);
    samples.set(m[1]! + (m[2] ?? ''), Number(m[3]));
  }
  return { samples, types };
}

async function scrape(): Promise<ReturnType<typeof parseMetrics>> {
  const r = await fetch(`${base}/metrics`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /text\/plain/);
  return parseMetrics(await r.text());
}

const sum = (s: Map<string, number>, prefix: string) => [...s].filter(([k]) => k.startsWith(prefix)).reduce((n, [, v]) => n + v, 0);

test('/metrics is scraped and parsed during a pgbench run; counters and histograms move', async () => {
  const before = await scrape();
  for (const [name, type] of [
    ['sluice_pool_clients_active', 'gauge'], ['sluice_pool_clients_waiting', 'gauge'], ['sluice_pool_servers_active', 'gauge'],
    ['sluice_pool_servers_idle', 'gauge'], ['sluice_pool_servers_used', 'gauge'], ['sluice_pool_servers_login', 'gauge'],
    ['sluice_transactions_total', 'counter'], ['sluice_queries_total', 'counter'], ['sluice_received_bytes_total', 'counter'],
    ['sluice_sent_bytes_total', 'counter'], ['sluice_errors_total', 'counter'], ['sluice_pins_total', 'counter'],
    ['sluice_prepared_statement_hits_total', 'counter'], ['sluice_prepared_statement_misses_total', 'counter'],
    ['sluice_query_duration_seconds', 'histogram'], ['sluice_transaction_duration_seconds', 'histogram'], ['sluice_client_wait_seconds', 'histogram'],
  ]) assert.equal(before.types.get(name!), type, `${name} is a ${type}`);

  const bench = run('pgbench', ['-n', '-S', '-c', '12', '-j', '2', '-T', '3', sl.url()], { timeoutMs: 60_000 });
  let sawWaiting = false;
  let scrapes = 0;
  let done = false;
  void bench.finally(() => (done = true));
  while (!done) {
    const m = await scrape();
    scrapes++;
    if (sum(m.samples, 'sluice_pool_clients_waiting{') > 0) sawWaiting = true;
  }
  const out = await bench;
  assert.equal(out.code, 0, out.stderr);
  const after = await scrape();
  const label = '{database="postgres",user="postgres"}';
  const xacts = after.samples.get(`sluice_transactions_total${label}`) ?? 0;
  assert.ok(xacts > (before.samples.get(`sluice_transactions_total${label}`) ?? 0) + 50, `transactions moved: ${xacts}`);
  assert.ok((after.samples.get(`sluice_queries_total${label}`) ?? 0) >= xacts);
  assert.ok((after.samples.get(`sluice_received_bytes_total${label}`) ?? 0) > 0);
  assert.ok((after.samples.get(`sluice_query_duration_seconds_count${label}`) ?? 0) > 50);
  assert.ok((after.samples.get(`sluice_transaction_duration_seconds_count${label}`) ?? 0) > 50);
  assert.ok((after.samples.get(`sluice_client_wait_seconds_count${label}`) ?? 0) > 0, '12 clients over 3 servers must have waited');
  assert.ok(scrapes >= 2, `scraped ${scrapes} times during the run`);
  assert.ok(sawWaiting || (after.samples.get(`sluice_client_wait_seconds_count${label}`) ?? 0) > 0);
  // A client error shows up by SQLSTATE class.
  const c = new pg.Client({ connectionString: sl.url() });
  await c.connect();
  await assert.rejects(c.query('SELECT * FROM no_such_table'));
  await c.end();
  const errs = await scrape();
  assert.ok((errs.samples.get('sluice_errors_total{database="postgres",user="postgres",class="42"}') ?? 0) >= 1);
});

test('/health is 200; /ready turns 503 while paused and back to 200 after RESUME', async () => {
  assert.equal((await fetch(`${base}/health`)).status, 200);
  assert.equal((await fetch(`${base}/ready`)).status, 200);
  const admin = new pg.Client({ connectionString: sl.url('pgbouncer') });
  await admin.connect();
  await admin.query('PAUSE');
  const r = await fetch(`${base}/ready`);
  assert.equal(r.status, 503);
  assert.deepEqual((await r.json()).reasons, ['paused']);
  await admin.query('RESUME');
  assert.equal((await fetch(`${base}/ready`)).status, 200);
  await admin.end();
  assert.equal((await fetch(`${base}/nope`)).status, 404);
});

test('/ready turns 503 when a client has waited longer than max_ready_wait', async () => {
  const pool = [...sl.app.pooler.pools.values()].find((p) => p.db.name === 'postgres')!;
  const holders = await Promise.all([0, 1, 2].map(async () => {
    const c = new pg.Client({ connectionString: sl.url() });
    await c.connect();
    await c.query('BEGIN');
    await c.query('SELECT 1');
    return c;
  }));
  const waiter = new pg.Client({ connectionString: sl.url() });
  await waiter.connect();
  const q = waiter.query('SELECT 1');
  await waitFor(() => pool.waiters.length === 1, 'a waiting client');
  await waitFor(async () => (await fetch(`${base}/ready`)).status === 503, '/ready to notice the long wait', 5000);
  for (const h of holders) await h.query('COMMIT');
  await q;
  assert.equal((await fetch(`${base}/ready`)).status, 200);
  for (const h of [...holders, waiter]) await h.end();
});

test('/budget measures pg_stat_activity against max_connections minus reserved slots; 503 past the threshold', async () => {
  const ok = await fetch(`${base}/budget`);
  const body = await ok.json();
  assert.equal(ok.status, 200, JSON.stringify(body));
  assert.equal(body.max_connections, 20);
  assert.equal(body.available, 17);
  const extra: pg.Client[] = [];
  try {
    // Past 50 % of 17 usable slots.
    for (let i = 0; i < 9; i++) {
      const c = new pg.Client({ connectionString: pgsrv.url() });
      await c.connect();
      extra.push(c);
    }
    const over = await fetch(`${base}/budget`);
    const b = await over.json();
    assert.equal(over.status, 503, JSON.stringify(b));
    assert.ok(b.ratio > 0.5 && b.used >= 9);
  } finally {
    for (const c of extra) await c.end();
  }
  await waitFor(async () => (await fetch(`${base}/budget`)).status === 200, '/budget to recover');
  // Readiness ignores the global budget on purpose.
  assert.equal((await fetch(`${base}/ready`)).status, 200);
  void (sl.app.admin as AdminLayer).http;
});
