// Issue 3: cancel requests through Sluice.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import pg from 'pg';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startSluice, type TestSluice } from './harness/sluice.js';
import { waitFor } from './harness/wait.js';
import { cancelRequest } from '../src/protocol/messages.js';

let pgsrv: TestPostgres;
let sluice: TestSluice;
let admin: pg.Client;

before(async () => {
  pgsrv = await startPostgres();
  sluice = await startSluice({ pg: pgsrv, settings: { pool_mode: 'transaction', default_pool_size: 4 } });
  admin = new pg.Client({ connectionString: pgsrv.url() });
  await admin.connect();
});
after(async () => {
  await admin?.end();
  await sluice?.stop();
  await pgsrv?.stop();
});

async function sleeping(tag: string): Promise<boolean> {
  const r = await admin.query("select count(*)::int as n from pg_stat_activity where state = 'active' and query like $1", [`%${tag}%`]);
  return r.rows[0].n > 0;
}

test('node-postgres cancels a pg_sleep(30) through Sluice within a second', async () => {
  const c = new pg.Client({ connectionString: sluice.url() });
  await c.connect();
  const started = Date.now();
  const query = new pg.Query('select pg_sleep(30) /* cancel-pg */');
  const outcome = new Promise<void>((resolve, reject) => {
    query.on('error', reject);
    query.on('end', () => resolve());
  });
  c.query(query);
  await waitFor(() => sleeping('cancel-pg'), 'the query to run');
  // pg's own cancel: a new connection carrying the key Sluice gave this client.
  const canceller = new pg.Client({ connectionString: sluice.url() });
  (canceller as unknown as { cancel(client: pg.Client, q: pg.Query): void }).cancel(c, query);
  await assert.rejects(outcome, (err: Error & { code?: string }) => err.code === '57014');
  assert.ok(Date.now() - started < 10_000);
  assert.equal((await c.query('select 1 as ok')).rows[0].ok, 1, 'the client keeps working after a cancel');
  await c.end();
});

test('psql cancels on SIGINT (Ctrl-C) through Sluice', async () => {
  const child = spawn('psql', [sluice.url(), '-Xc', 'select pg_sleep(30) /* cancel-psql */'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  await waitFor(() => sleeping('cancel-psql'), 'psql query to run');
  const t0 = Date.now();
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child.on('close', r));
  assert.ok(Date.now() - t0 < 5000, 'psql should return promptly after the cancel');
  assert.notEqual(code, 0);
  assert.match(stderr, /canceling statement due to user request/);
  await waitFor(async () => !(await sleeping('cancel-psql')), 'the server query to stop', 2000);
});

test('a forged cancel key cancels nothing', async () => {
  const c = new pg.Client({ connectionString: sluice.url() });
  await c.connect();
  const q = c.query("select pg_sleep(1.5) /* forged */, 'finished' as r");
  await waitFor(() => sleeping('forged'), 'the query to run');
  // Every client's pid is known to this test only through Sluice's registry; forge the key.
  const target = [...sluice.app.clients].find((x) => x.linkedServer !== null)!;
  const wrongKey = Buffer.from(target.cancelKey);
  wrongKey[0] ^= 0xff;
  for (const key of [wrongKey, Buffer.alloc(4), Buffer.alloc(32)]) {
    const s = net.connect({ host: '127.0.0.1', port: sluice.port });
    await new Promise<void>((r) => s.once('connect', r));
    s.end(cancelRequest(target.cancelPid, key));
    await new Promise<void>((r) => s.once('close', r));
  }
  // The right key with a process id that names the same registry slot but is not the client's.
  for (const pid of [target.cancelPid ^ (1 << 20), target.cancelPid ^ (1 << 29)]) {
    const s = net.connect({ host: '127.0.0.1', port: sluice.port });
    await new Promise<void>((r) => s.once('connect', r));
    s.end(cancelRequest(pid, target.cancelKey));
    await new Promise<void>((r) => s.once('close', r));
  }
  const r = await q;
  assert.equal(r.rows[0].r, 'finished');
  await c.end();
});

test('a client that left takes its cancel key with it: the next client in its registry slot is not cancelable with it', async () => {
  const first = new pg.Client({ connectionString: sluice.url() });
  await first.connect();
  const gone = [...sluice.app.clients].find((x) => x.state === 'idle')!;
  const old = { slot: gone.slot, pid: gone.cancelPid, key: Buffer.from(gone.cancelKey) };
  await first.end();
  await waitFor(() => sluice.app.clients.at(old.slot) === undefined, 'the client to be forgotten', 5000);
  const second = new pg.Client({ connectionString: sluice.url() });
  await second.connect();
  const heir = sluice.app.clients.at(old.slot);
  assert.ok(heir, 'the new client reuses the freed slot');
  assert.notEqual(heir.cancelPid, old.pid, 'and gets a pid of its own');
  const q = second.query("select pg_sleep(1.5) /* heir */, 'finished' as r");
  await waitFor(() => sleeping('heir'), 'the query to run');
  const s = net.connect({ host: '127.0.0.1', port: sluice.port });
  await new Promise<void>((r) => s.once('connect', r));
  s.end(cancelRequest(old.pid, old.key));
  await new Promise<void>((r) => s.once('close', r));
  assert.equal((await q).rows[0].r, 'finished', 'the old pid and key cancelled nothing');
  // Its own pid and key still work.
  const q2 = second.query('select pg_sleep(30) /* heir2 */');
  await waitFor(() => sleeping('heir2'), 'the second query to run');
  const t = net.connect({ host: '127.0.0.1', port: sluice.port });
  await new Promise<void>((r) => t.once('connect', r));
  t.end(cancelRequest(heir.cancelPid, Buffer.from(heir.cancelKey)));
  await assert.rejects(q2, /canceling statement due to user request/);
  await second.end();
});
