// withTransaction against a real PostgreSQL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { createPool, withTransaction, type SluicePool } from '../src/kit/index.js';
import { spyLogger, waitFor } from './fixtures/kit/helpers.js';

let pgsrv: TestPostgres;
let pool: SluicePool;
let admin: pg.Client;

before(async () => {
  pgsrv = await startPostgres();
  pool = createPool({ connectionString: pgsrv.url(), max: 4, logger: spyLogger() });
  admin = new pg.Client({ connectionString: pgsrv.url() });
  await admin.connect();
  await admin.query('create table items (id serial primary key, name text not null)');
});

after(async () => {
  await pool?.drain(2000);
  await admin?.end().catch(() => {});
  await pgsrv?.stop();
});

async function count(name: string): Promise<number> {
  return (await admin.query('select count(*)::int as n from items where name = $1', [name])).rows[0].n;
}

test('commits when fn resolves and returns its value', async () => {
  const id = await withTransaction(pool, async (tx) => {
    assert.equal(tx.getTransactionStatus(), 'T');
    return (await tx.query("insert into items(name) values ('commit-me') returning id")).rows[0].id as number;
  });
  assert.ok(id > 0);
  assert.equal(await count('commit-me'), 1);
  assert.equal(pool.stats().acquired, 0);
});

test('rolls back when fn throws, rethrows, and returns a clean client', async () => {
  await assert.rejects(
    withTransaction(pool, async (tx) => {
      await tx.query("insert into items(name) values ('roll-me-back')");
      throw new Error('boom');
    }),
    /boom/,
  );
  assert.equal(await count('roll-me-back'), 0);
  assert.equal(pool.stats().acquired, 0);
  assert.equal(pool.stats().dirtyReleases, 0, 'rolled back before release, so reused');
});

test('isolation level and read-only reach the server', async () => {
  const level = await withTransaction(pool, async (tx) => (await tx.query('show transaction_isolation')).rows[0].transaction_isolation, {
    isolationLevel: 'serializable',
  });
  assert.equal(level, 'serializable');
  await assert.rejects(
    withTransaction(pool, (tx) => tx.query("insert into items(name) values ('ro')"), { readOnly: true }),
    { code: '25006' },
  );
});

test('retries serialization failures and deadlocks with backoff, a bounded number of times', async () => {
  let attempts = 0;
  const result = await withTransaction(pool, async (tx) => {
    attempts++;
    if (attempts === 1) await tx.query("do $$ begin raise exception 'conflict' using errcode = 'serialization_failure'; end $$");
    if (attempts === 2) await tx.query("do $$ begin raise exception 'deadlock' using errcode = 'deadlock_detected'; end $$");
    await tx.query("insert into items(name) values ('retried')");
    return 'ok';
  });
  assert.equal(result, 'ok');
  assert.equal(attempts, 3);
  assert.equal(await count('retried'), 1);

  let tries = 0;
  await assert.rejects(
    withTransaction(
      pool,
      async (tx) => {
        tries++;
        await tx.query("do $$ begin raise exception 'always' using errcode = 'serialization_failure'; end $$");
      },
      { retries: 2, backoffMillis: 1 },
    ),
    { code: '40001' },
  );
  assert.equal(tries, 3);
  let other = 0;
  await assert.rejects(
    withTransaction(pool, async (tx) => {
      other++;
      await tx.query('select 1/0');
    }),
    { code: '22012' },
  );
  assert.equal(other, 1, 'other errors are not retried');
});

test('a backend killed inside the transaction surfaces the error and the client is destroyed', async () => {
  const before = pool.stats().brokenReleases;
  let pid = 0;
  await assert.rejects(
    withTransaction(pool, async (tx) => {
      pid = (await tx.query('select pg_backend_pid() as pid')).rows[0].pid;
      const sleeping = tx.query('select pg_sleep(30)');
      sleeping.catch(() => {}); // rejects while we terminate; awaited below
      await waitFor(async () => (await admin.query("select 1 from pg_stat_activity where pid = $1 and query like 'select pg_sleep%'", [pid])).rowCount, 'sleep to start');
      await admin.query('select pg_terminate_backend($1)', [pid]);
      await sleeping;
    }),
  );
  assert.equal(pool.stats().brokenReleases, before + 1);
  assert.equal(pool.stats().acquired, 0);
  const again = (await pool.query('select pg_backend_pid() as pid')).rows[0].pid;
  assert.notEqual(again, pid);
});

test('works on a plain pg.Pool too, and never returns a client left in a transaction', async () => {
  const plain = new pg.Pool({ connectionString: pgsrv.url(), max: 1 });
  try {
    let pid = 0;
    await assert.rejects(
      withTransaction(plain, async (tx) => {
        pid = (await tx.query('select pg_backend_pid() as pid')).rows[0].pid;
        // Make ROLLBACK impossible: the connection is closed under us.
        await admin.query('select pg_terminate_backend($1)', [pid]);
        await tx.query('select pg_sleep(5)');
      }),
    );
    const next = (await plain.query('select pg_backend_pid() as pid')).rows[0].pid;
    assert.notEqual(next, pid);
  } finally {
    await plain.end();
  }
});

// Found in review: PostgreSQL answers COMMIT of a failed transaction with a
// ROLLBACK tag, not an error, and withTransaction resolved as if it committed.
test('a statement that failed inside, its error caught or not awaited: nothing committed, and it rejects SLUICE_TX_ABORTED', async () => {
  await assert.rejects(
    withTransaction(pool, async (tx) => {
      await tx.query("insert into items(name) values ('caught')");
      await tx.query('select 1/0').catch(() => {});
      return 'ok';
    }),
    (err: Error & { code?: string }) => err.code === 'SLUICE_TX_ABORTED',
  );
  assert.equal(await count('caught'), 0);
  const dup = (await admin.query("insert into items(name) values ('dup') returning id")).rows[0].id as number;
  await assert.rejects(
    withTransaction(pool, async (tx) => {
      await tx.query("insert into items(name) values ('not-awaited')");
      tx.query('insert into items(id, name) values ($1, $2)', [dup, 'clash']).catch(() => {});
      return 'ok';
    }),
    (err: Error & { code?: string }) => err.code === 'SLUICE_TX_ABORTED',
  );
  assert.equal(await count('not-awaited'), 0);
  assert.equal(pool.stats().acquired, 0);
});

// Found in review: session state made inside a transaction outlives it.
test('session state left by the callback (SET, session advisory lock) never reaches the next user: that client is closed', async () => {
  const solo = createPool({ connectionString: pgsrv.url(), max: 1, logger: spyLogger() });
  try {
    const pidOf = async (): Promise<number> => (await solo.query('select pg_backend_pid() as p')).rows[0].p;
    const first = await pidOf();
    await withTransaction(solo, async (tx) => {
      await tx.query("set local statement_timeout = '50ms'");
      await tx.query('select pg_advisory_xact_lock(1)');
    });
    assert.equal(await pidOf(), first, 'transaction-scoped state: the client is reused');
    await withTransaction(solo, async (tx) => {
      await tx.query("set statement_timeout = '50ms'");
      await tx.query('select pg_advisory_lock(4242)');
    });
    const r = (await solo.query("select current_setting('statement_timeout') as t, (select count(*)::int from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()) as locks")).rows[0];
    assert.deepEqual([r.t, r.locks], ['0', 0], 'the next user sees neither');
    assert.notEqual(await pidOf(), first);
    assert.equal(solo.stats().dirtyReleases, 1);
  } finally {
    await solo.drain(2000);
  }
});
