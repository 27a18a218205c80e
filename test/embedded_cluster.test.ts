import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startPostgres } from './harness/postgres.js';

test('the harness starts a real PostgreSQL, survives a restart, and cleans up', async () => {
  const pgsrv = await startPostgres();
  after(() => pgsrv.stop());
  const client = new pg.Client({ connectionString: pgsrv.url() });
  await client.connect();
  const { rows } = await client.query('select current_user as u, 1 + 1 as two');
  assert.equal(rows[0].u, 'postgres');
  assert.equal(rows[0].two, 2);
  await client.end();
  await pgsrv.cluster.restart();
  const again = new pg.Client({ connectionString: pgsrv.url() });
  await again.connect();
  assert.equal((await again.query('select 3 as n')).rows[0].n, 3);
  await again.end();
});
