// Issue 5: ORMs through Sluice in transaction mode, pool size 2, 50 concurrent clients, zero errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import postgres from 'postgres';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { drizzle as drizzlePostgresJs } from 'drizzle-orm/postgres-js';
import { pgTable, integer, text } from 'drizzle-orm/pg-core';
import { eq, sql as dsql } from 'drizzle-orm';
import { Kysely, PostgresDialect } from 'kysely';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startSluice, type TestSluice } from './harness/sluice.js';

const things = pgTable('things', { id: integer('id').primaryKey(), label: text('label').notNull() });
interface Db {
  things: { id: number; label: string };
}

let server: TestPostgres;
let sluice: TestSluice;
before(async () => {
  server = await startPostgres({ conf: { max_connections: 60 } });
  const c = new pg.Client({ connectionString: server.url() });
  await c.connect();
  await c.query("create table things(id int primary key, label text not null); insert into things select g, 'thing ' || g from generate_series(1, 200) g");
  await c.end();
  sluice = await startSluice({ pg: server, settings: { pool_mode: 'transaction', default_pool_size: 2, max_client_conn: 300 } });
});
after(async () => {
  await sluice?.stop();
  await server?.stop();
});

function serversWithinPool(): void {
  assert.ok([...sluice.app.pooler.pools.values()].every((p) => p.servers.size <= 2));
}

test('Drizzle over node-postgres: 50 concurrent clients, queries and transactions', async () => {
  const pool = new pg.Pool({ connectionString: sluice.url(), max: 50 });
  const db = drizzlePg(pool);
  const results = await Promise.all(
    Array.from({ length: 50 }, async (_, i) => {
      const id = (i % 200) + 1;
      const [row] = await db.select().from(things).where(eq(things.id, id));
      const inTx = await db.transaction(async (tx) => {
        await tx.execute(dsql`select pg_advisory_xact_lock(${id})`);
        const [r] = await tx.select().from(things).where(eq(things.id, id));
        return r;
      });
      return row?.label === `thing ${id}` && inTx?.id === id;
    }),
  );
  await pool.end();
  assert.ok(results.every(Boolean));
  serversWithinPool();
});

test('Drizzle over postgres.js (prepared statements and pipelining on): 50 concurrent clients', async () => {
  const client = postgres(sluice.url(), { max: 50, onnotice: () => {} });
  const db = drizzlePostgresJs(client);
  const results = await Promise.all(
    Array.from({ length: 50 }, async (_, i) => {
      const id = ((i * 7) % 200) + 1;
      const rows = await db.select().from(things).where(eq(things.id, id));
      const tx = await db.transaction(async (t) => t.select({ n: dsql<number>`count(*)::int` }).from(things));
      return rows[0]?.label === `thing ${id}` && tx[0]?.n === 200;
    }),
  );
  await client.end();
  assert.ok(results.every(Boolean));
  serversWithinPool();
});

test('Kysely over node-postgres: 50 concurrent clients, queries and transactions', async () => {
  const db = new Kysely<Db>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: sluice.url(), max: 50 }) }) });
  const results = await Promise.all(
    Array.from({ length: 50 }, async (_, i) => {
      const id = ((i * 3) % 200) + 1;
      const row = await db.selectFrom('things').selectAll().where('id', '=', id).executeTakeFirst();
      const label = await db.transaction().execute(async (trx) => (await trx.selectFrom('things').select('label').where('id', '=', id).executeTakeFirstOrThrow()).label);
      return row?.label === `thing ${id}` && label === `thing ${id}`;
    }),
  );
  await db.destroy();
  assert.ok(results.every(Boolean));
  serversWithinPool();
});
