// Drizzle ORM over the kit pool: the pool is an ordinary pg.Pool to Drizzle.
//   DATABASE_URL=postgres://… node dist/examples/drizzle/main.js
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { desc } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { pgTable, serial, text, timestamp } from 'drizzle-orm/pg-core';
import { createPool, migrate, withTransaction } from 'sluice/kit';

const notes = pgTable('notes', {
  id: serial('id').primaryKey(),
  body: text('body').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

// Migrations live next to the sources; compiled code runs from dist/examples/drizzle.
const migrations = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../examples/drizzle/migrations');

const pool = createPool({ connectionString: process.env.DATABASE_URL, applicationName: 'example-drizzle', max: 4 });
try {
  await migrate(pool, migrations);
  const db = drizzle(pool);
  await db.insert(notes).values({ body: 'written by drizzle' });
  // Drizzle's own transaction goes through pool.connect(), so the kit's rails apply.
  await db.transaction(async (tx) => {
    await tx.insert(notes).values({ body: 'inside a drizzle transaction' });
  });
  // The kit's withTransaction with Drizzle bound to the checked-out client.
  await withTransaction(pool, async (client) => {
    await drizzle(client).insert(notes).values({ body: 'inside withTransaction' });
  });
  const rows = await db.select().from(notes).orderBy(desc(notes.id));
  console.log(JSON.stringify({ notes: rows.map((r) => r.body), stats: { acquired: pool.stats().acquired } }));
} finally {
  await pool.end();
}
