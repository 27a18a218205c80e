// Kysely over the kit pool.
//   DATABASE_URL=postgres://… node dist/examples/kysely/main.js
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kysely, PostgresDialect, type Generated } from 'kysely';
import { createPool, migrate } from 'sluice/kit';

interface Database {
  notes: { id: Generated<number>; body: string; created_at: Generated<Date> };
}

const migrations = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../examples/kysely/migrations');

const pool = createPool({ connectionString: process.env.DATABASE_URL, applicationName: 'example-kysely', max: 4 });
const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
try {
  await migrate(pool, migrations);
  await db.insertInto('notes').values({ body: 'written by kysely' }).execute();
  await db.transaction().execute(async (trx) => {
    await trx.insertInto('notes').values({ body: 'inside a kysely transaction' }).execute();
  });
  const rows = await db.selectFrom('notes').select(['body']).orderBy('id').execute();
  console.log(JSON.stringify({ notes: rows.map((r) => r.body), stats: { acquired: pool.stats().acquired } }));
} finally {
  await db.destroy(); // ends the pool
}
