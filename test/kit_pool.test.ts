// sluice/kit pool behaviour against a real PostgreSQL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { Registry } from 'prom-client';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import {
  AcquireTimeoutError,
  createPool,
  endGlobalPool,
  globalPool,
  isSluiceKitError,
  maxFromBudget,
  registerMetrics,
  type LeakReport,
  type SluicePool,
} from '../src/kit/index.js';
import { delayProxy, spyLogger, waitFor } from './fixtures/kit/helpers.js';

let pgsrv: TestPostgres;
let admin: pg.Client;
const uncaught: unknown[] = [];
const onUncaught = (err: unknown): void => {
  uncaught.push(err);
};

before(async () => {
  pgsrv = await startPostgres();
  admin = new pg.Client({ connectionString: pgsrv.url() });
  await admin.connect();
  process.on('uncaughtException', onUncaught);
});

after(async () => {
  process.removeListener('uncaughtException', onUncaught);
  await admin?.end().catch(() => {});
  await pgsrv?.stop();
});

function pool(extra: Parameters<typeof createPool>[0] & object = {}): SluicePool {
  return createPool({ connectionString: pgsrv.url(), logger: spyLogger(), ...extra });
}

async function terminate(pid: number): Promise<void> {
  const { rows } = await admin.query('select pg_terminate_backend($1) as ok', [pid]);
  assert.equal(rows[0].ok, true);
}

test('killing the backend of a checked-out client mid-query rejects the query, no uncaught error, pool recovers', async () => {
  const logger = spyLogger();
  const p = pool({ max: 1, logger });
  try {
    const client = await p.connect();
    const pid = (client as unknown as { processID: number }).processID;
    // Settled into a value at once, so the rejection is never "unhandled" while we terminate.
    const sleeping = client.query('select pg_sleep(30)').then(
      () => assert.fail('the query should have failed'),
      (err: unknown) => err,
    );
    await waitFor(async () => (await admin.query("select 1 from pg_stat_activity where pid = $1 and query like 'select pg_sleep%'", [pid])).rowCount, 'query to start');
    await terminate(pid);
    const err = (await sleeping) as Error & { code?: string };
    assert.ok(err.code === '57P01' || /terminat/i.test(err.message), String(err));
    client.release();
    const { rows } = await p.query('select pg_backend_pid() as pid');
    assert.notEqual(rows[0].pid, pid, 'a fresh connection replaced the dead one');
    assert.equal(p.stats().acquired, 0);
    assert.equal(p.stats().brokenReleases, 1);
    assert.deepEqual(uncaught, []);
  } finally {
    await p.drain(2000);
  }
});

test('killing the backend of a checked-out but quiet client: error is caught, next query fails, release destroys it', async () => {
  const p = pool({ max: 1 });
  try {
    const client = await p.connect();
    const pid = (client as unknown as { processID: number }).processID;
    const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
    await terminate(pid);
    await Promise.race([ended, new Promise((_, rej) => setTimeout(() => rej(new Error('client never saw its connection end')), 10_000))]);
    await assert.rejects(client.query('select 1'));
    client.release();
    assert.equal((await p.query('select 1 as one')).rows[0].one, 1);
    assert.deepEqual(uncaught, []);
  } finally {
    await p.drain(2000);
  }
});

test('idle-client errors are logged, never thrown', async () => {
  const logger = spyLogger();
  const p = pool({ max: 1, logger });
  try {
    const { rows } = await p.query('select pg_backend_pid() as pid');
    assert.equal(p.idleCount, 1);
    await terminate(rows[0].pid);
    await waitFor(() => logger.entries.find((e) => e.level === 'error' && /idle database client failed/.test(e.message)), 'idle error log');
    await waitFor(() => p.totalCount === 0, 'dead client removed');
    assert.equal((await p.query('select 2 as two')).rows[0].two, 2);
    assert.deepEqual(uncaught, []);
  } finally {
    await p.drain(2000);
  }
});

test('a client released mid-transaction is destroyed; the next caller gets a clean one', async () => {
  const logger = spyLogger();
  const p = pool({ max: 1, logger });
  try {
    const dirty = await p.connect();
    const dirtyPid = (dirty as unknown as { processID: number }).processID;
    await dirty.query('begin');
    await dirty.query("select set_config('sluice.marker', 'dirty', true)");
    dirty.release();
    const next = await p.connect();
    try {
      assert.notEqual((next as unknown as { processID: number }).processID, dirtyPid);
      assert.equal(next.getTransactionStatus(), 'I');
      const { rows } = await next.query("select current_setting('sluice.marker', true) as m, now() = statement_timestamp() as fresh");
      assert.ok(rows[0].m === null || rows[0].m === '', 'no session state carried over');
    } finally {
      next.release();
    }
    assert.equal(p.stats().dirtyReleases, 1);
    assert.ok(logger.entries.some((e) => /released inside a transaction/.test(e.message)));
  } finally {
    await p.drain(2000);
  }
});

test('exhaustion: the typed error arrives within the deadline, and the pool works again after release', async () => {
  const p = pool({ max: 1, acquireTimeoutMillis: 300 });
  try {
    const held = await p.connect();
    const started = Date.now();
    const err = await p.connect().then(
      () => assert.fail('connect should have timed out'),
      (e: unknown) => e,
    );
    const elapsed = Date.now() - started;
    assert.ok(err instanceof AcquireTimeoutError);
    assert.ok(isSluiceKitError(err));
    assert.equal((err as AcquireTimeoutError).code, 'SLUICE_ACQUIRE_TIMEOUT');
    assert.ok(elapsed < 300 + 2000, `timed out after ${elapsed} ms`);
    await assert.rejects(p.query('select 1'), { code: 'SLUICE_ACQUIRE_TIMEOUT' });
    assert.equal(p.stats().acquireTimeouts, 2);
    held.release();
    assert.equal((await p.query('select 1 as one')).rows[0].one, 1);
    assert.equal(p.stats().acquired, 0);
  } finally {
    await p.drain(2000);
  }
});

test('a connection that arrives after the deadline is released into the pool, not leaked', async () => {
  const proxy = await delayProxy(pgsrv.port, 800);
  const url = new URL(pgsrv.url());
  url.port = String(proxy.port);
  const p = createPool({ connectionString: url.toString(), max: 1, acquireTimeoutMillis: 200, logger: spyLogger() });
  try {
    await assert.rejects(p.connect(), { code: 'SLUICE_ACQUIRE_TIMEOUT' });
    await waitFor(() => p.totalCount === 1 && p.idleCount === 1, 'late connection to land idle in the pool');
    assert.equal(p.stats().acquired, 0);
    assert.equal((await p.query('select 7 as n')).rows[0].n, 7);
  } finally {
    await p.drain(2000);
    await proxy.close();
  }
});

async function leakyRequestHandler(p: SluicePool): Promise<pg.PoolClient> {
  const client = await p.connect(); // never released: the bug under test
  return client;
}

test('a leaked client is reported once, with the stack of the code that acquired it, and counted', async () => {
  const reports: LeakReport[] = [];
  const logger = spyLogger();
  const p = pool({ leakDetectionMillis: 100, logger, onLeak: (r) => reports.push(r) });
  try {
    const client = await leakyRequestHandler(p);
    await waitFor(() => reports.length > 0, 'leak report');
    assert.match(reports[0]!.stack, /leakyRequestHandler/);
    assert.match(reports[0]!.stack, /kit_pool\.test\.js/);
    assert.doesNotMatch(reports[0]!.stack.split('\n').slice(1, 2).join(''), /pool\.js/, 'top frame is the caller, not the kit');
    assert.equal(reports[0]!.backendPid, (client as unknown as { processID: number }).processID);
    const warned = logger.entries.find((e) => e.level === 'warn' && /held longer/.test(e.message));
    assert.match(String(warned?.fields.acquiredAt), /leakyRequestHandler/);
    // Held for several more scan periods (25 ms each here): still one report.
    const t0 = Date.now();
    await waitFor(() => Date.now() - t0 >= 400, 'several scan periods to pass');
    assert.equal(reports.length, 1);
    assert.equal(p.stats().leaks, 1);
    client.release();
  } finally {
    await p.drain(2000);
  }
});

test('application_name, statement_timeout and idle_in_transaction_session_timeout reach the server', async () => {
  const p = pool({ applicationName: 'kit-test-app', statementTimeoutMillis: 1234, idleInTransactionTimeoutMillis: 4321 });
  try {
    const { rows } = await p.query(
      "select current_setting('application_name') as app, current_setting('statement_timeout') as st, current_setting('idle_in_transaction_session_timeout') as iit",
    );
    assert.deepEqual(rows[0], { app: 'kit-test-app', st: '1234ms', iit: '4321ms' });
    await assert.rejects(p.query('select pg_sleep(5)'), { code: '57014' });
  } finally {
    await p.drain(2000);
  }
});

test('connections are recycled after their jittered maximum lifetime', async () => {
  const p = pool({ maxLifetimeSeconds: 0.3, lifetimeJitter: 0.5 });
  try {
    const seen = new Set<number>();
    for (let i = 0; i < 20; i++) seen.add(p.options.maxLifetimeSeconds);
    assert.ok(seen.size > 1, 'each connection gets its own lifetime');
    for (const v of seen) assert.ok(v > 0.15 - 1e-9 && v <= 0.3, `lifetime ${v} within [0.15, 0.3]`);
    const first = (await p.query('select pg_backend_pid() as pid')).rows[0].pid;
    await waitFor(() => p.totalCount === 0, 'idle connection to expire');
    const second = (await p.query('select pg_backend_pid() as pid')).rows[0].pid;
    assert.notEqual(first, second);
  } finally {
    await p.drain(2000);
  }
});

test('pool size from a budget, or given directly, and bad budgets refused', () => {
  assert.equal(maxFromBudget({ connectionLimit: 100, instances: 8 }), 11);
  assert.equal(maxFromBudget({ connectionLimit: 25, instances: 2, headroom: 5 }), 10);
  assert.throws(() => maxFromBudget({ connectionLimit: 10, instances: 20 }), { code: 'SLUICE_KIT_CONFIG' });
  const a = createPool({ connectionString: pgsrv.url(), budget: { connectionLimit: 50, instances: 3 }, logger: spyLogger() });
  const b = createPool({ connectionString: pgsrv.url(), max: 4, logger: spyLogger() });
  assert.equal(a.options.max, 15);
  assert.equal(b.options.max, 4);
  assert.throws(() => createPool({ connectionString: pgsrv.url(), max: 2, budget: { connectionLimit: 10 } }), { code: 'SLUICE_KIT_CONFIG' });
  return Promise.all([a.end(), b.end()]).then(() => undefined);
});

test('stats() counts and histograms, and prom-client export', async () => {
  const p = pool({ max: 3, name: 'stats-test' });
  const registry = new Registry();
  const unregister = registerMetrics(p, registry);
  try {
    const held = await p.connect();
    let s = p.stats();
    assert.equal(s.acquired, 1);
    assert.equal(s.total, 1);
    await Promise.all([p.query('select 1'), p.query('select 2')]);
    held.release();
    s = p.stats();
    assert.equal(s.acquired, 0);
    assert.equal(s.idle, s.total);
    assert.equal(s.acquireWait.count, 3);
    assert.equal(s.hold.count, 3);
    assert.equal(s.acquireWait.buckets.at(-1)!.count, 3);
    const text = await registry.metrics();
    assert.match(text, /sluice_kit_pool_connections\{pool="stats-test"\} \d/);
    assert.match(text, /sluice_kit_acquire_wait_seconds_count\{pool="stats-test"\} 3/);
    assert.match(text, /sluice_kit_hold_seconds_count\{pool="stats-test"\} 3/);
  } finally {
    unregister();
    await p.drain(2000);
  }
});

test('globalPool returns one pool per key across module reloads, and replaces an ended one', async () => {
  const fresh = (await import(`../src/kit/pool.js?reload=${Date.now()}`)) as typeof import('../src/kit/pool.js');
  let created = 0;
  const make = (): SluicePool => {
    created++;
    return pool();
  };
  const a = globalPool('kit-test', make);
  const b = fresh.globalPool('kit-test', make as unknown as () => InstanceType<typeof fresh.SluicePool>);
  assert.equal(a, b);
  assert.equal(created, 1);
  await endGlobalPool('kit-test');
  const c = globalPool('kit-test', make);
  assert.notEqual(c, a);
  assert.equal(created, 2);
  await endGlobalPool('kit-test');
});

test('sslmode=prefer falls back to plaintext when the server offers no TLS; require does not', async () => {
  const p = pool({ sslmode: 'prefer' });
  try {
    assert.equal((await p.query('select 1 as one')).rows[0].one, 1);
    assert.equal(p.options.ssl, false);
  } finally {
    await p.drain(2000);
  }
  const r = pool({ sslmode: 'require', acquireTimeoutMillis: 3000 });
  try {
    await assert.rejects(r.query('select 1'), /does not support SSL/);
  } finally {
    await r.drain(2000);
  }
});

// Found in review: release() while a query was still on its way put the client
// back, and the next caller's statements ran inside that query's BEGIN.
test('a client released with a query still running is closed; the next caller gets a clean one', async () => {
  const solo = createPool({ connectionString: pgsrv.url(), max: 1, logger: spyLogger() });
  try {
    const c = await solo.connect();
    void c.query('begin').catch(() => {});
    c.release();
    const status = await withFresh(solo);
    assert.equal(status, 'I');
    assert.equal(solo.stats().dirtyReleases, 1);
  } finally {
    await solo.drain(2000);
  }
});

async function withFresh(p: SluicePool): Promise<string | null> {
  const c = await p.connect();
  try {
    await c.query('select 1');
    return c.getTransactionStatus();
  } finally {
    c.release();
  }
}

test('a URL with a user and no host (the host in ?host=, as Cloud SQL documents) is accepted, like libpq and pg do', async () => {
  const socketDir = pgsrv.cluster.socketDir;
  const p = createPool({ connectionString: `postgres://postgres@/postgres?host=${encodeURIComponent(socketDir)}&port=${pgsrv.port}&sslmode=disable`, max: 1, logger: spyLogger() });
  try {
    assert.equal((await p.query('select 1 as one')).rows[0].one, 1);
  } finally {
    await p.drain(2000);
  }
});
