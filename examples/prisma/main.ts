// Prisma 7 with @prisma/adapter-pg sharing the sluice/kit pool.
//   node node_modules/prisma/build/index.js generate --schema examples/prisma/schema.prisma   (see README.md)
//   DATABASE_URL=postgres://… node dist/examples/prisma/main.js
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PrismaPg } from '@prisma/adapter-pg';
import { createPool, migrate, withTransaction } from 'sluice/kit';
import { PrismaClient } from './generated/client.js';

const migrations = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../examples/prisma/migrations');

const pool = createPool({ connectionString: process.env.DATABASE_URL, applicationName: 'example-prisma', max: 4 });
// The adapter takes the pool itself: Prisma, raw SQL and the kit share one budget.
const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
try {
  await migrate(pool, migrations);
  await prisma.note.create({ data: { body: 'written by prisma' } });
  await prisma.$transaction([prisma.note.create({ data: { body: 'inside a prisma transaction' } })]);
  await withTransaction(pool, (tx) => tx.query("insert into notes (body) values ('written by the kit')"));
  const notes = await prisma.note.findMany({ orderBy: { id: 'asc' } });
  console.log(JSON.stringify({ notes: notes.map((n) => n.body), stats: { acquired: pool.stats().acquired, total: pool.stats().total } }));
} finally {
  await prisma.$disconnect(); // leaves an external pool open
  await pool.end();
}
