// Prisma 7 under load through a transaction pooler: 50 concurrent clients,
// no `pgbouncer=true` needed with Sluice (prepared statements are emulated).
//   DATABASE_URL=postgres://…@sluice:6432/db node dist/examples/prisma/concurrent.js
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PrismaPg } from '@prisma/adapter-pg';
import { createPool, migrate } from 'sluice/kit';
import { PrismaClient } from './generated/client.js';

const migrations = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../examples/prisma/migrations');
const clients = Number(process.env.CLIENTS ?? 50);

const pool = createPool({ connectionString: process.env.DATABASE_URL, applicationName: 'example-prisma-concurrent', max: clients });
const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
try {
  await migrate(pool, migrations);
  const results = await Promise.allSettled(
    Array.from({ length: clients }, async (_, i) => {
      const created = await prisma.note.create({ data: { body: `note ${i}` } });
      const [found] = await prisma.$transaction([prisma.note.findUnique({ where: { id: created.id } })]);
      const count = await prisma.note.count({ where: { body: { startsWith: 'note ' } } });
      return found?.body === `note ${i}` && count >= 1;
    }),
  );
  const ok = results.filter((r) => r.status === 'fulfilled' && r.value).length;
  const errors = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason).slice(0, 300));
  console.log(JSON.stringify({ ok, errors }));
} finally {
  await prisma.$disconnect();
  await pool.end();
}
