// A Fastify service on sluice/kit: one pool, health endpoints, graceful SIGTERM.
//   DATABASE_URL=postgres://… PORT=3000 node dist/examples/http-service/server.js
import Fastify from 'fastify';
import { createBudgetCheck, createPool, createReadiness, globalPool, installShutdown, withTransaction } from 'sluice/kit';

const url = process.env.DATABASE_URL;
if (!url) throw new Error('set DATABASE_URL');

// globalPool: a dev server that reloads this module keeps one pool, not one per reload.
const pool = globalPool('http-service', () => createPool({ connectionString: url, applicationName: 'example-http', max: 5 }));
const ready = createReadiness(pool);
const budget = createBudgetCheck(url, { threshold: 0.8 });

const app = Fastify();

// Node (req, res) handlers: hand Fastify's raw objects over.
app.get('/ready', (req, reply) => {
  reply.hijack();
  ready.node(req.raw, reply.raw);
});
app.get('/health/budget', (req, reply) => {
  reply.hijack();
  budget.node(req.raw, reply.raw);
});

app.get('/now', async () => {
  const { rows } = await pool.query<{ now: Date }>('select now() as now');
  return { now: rows[0]!.now };
});

app.post('/counter', async () => {
  return withTransaction(pool, async (tx) => {
    await tx.query('create table if not exists counter (id int primary key, n int not null)');
    const { rows } = await tx.query<{ n: number }>(
      'insert into counter values (1, 1) on conflict (id) do update set n = counter.n + 1 returning n',
    );
    return { n: rows[0]!.n };
  });
});

installShutdown(pool, {
  // Stop accepting, then the pool drains and ends; then the budget check's own pool.
  stopAccepting: async () => {
    await app.close();
    await budget.close();
  },
});

const address = await app.listen({ port: Number(process.env.PORT ?? 3000), host: '127.0.0.1' });
console.log(JSON.stringify({ listening: address }));
