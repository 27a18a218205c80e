// Issue 2 acceptance: session-mode pooling with real PostgreSQL and real clients.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import pg from 'pg';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startSluice, type TestSluice } from './harness/sluice.js';
import { run } from './harness/processes.js';
import { startupMessage, query } from '../src/protocol/messages.js';
import { readMessages, loggedInSession } from './harness/wire.js';
import { waitFor } from './harness/wait.js';

let pgsrv: TestPostgres;
let sluice: TestSluice;

before(async () => {
  pgsrv = await startPostgres({ conf: { max_connections: 60 } });
  sluice = await startSluice({ pg: pgsrv, settings: { pool_mode: 'session', default_pool_size: 20 } });
});
after(async () => {
  await sluice?.stop();
  await pgsrv?.stop();
});

test('psql runs select 1 through Sluice', async () => {
  const r = await run('psql', [sluice.url(), '-XAtc', 'select 1']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), '1');
});

test('pgbench -i then -c 20 -j 2 -T 5 in session mode finishes with no failed transactions', async () => {
  const init = await run('pgbench', ['-i', '-q', '-s', '1', sluice.url()], { timeoutMs: 120_000 });
  assert.equal(init.code, 0, init.stderr);
  const r = await run('pgbench', ['-n', '-c', '20', '-j', '2', '-T', '5', sluice.url()], { timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const processed = /number of transactions actually processed: (\d+)/.exec(r.stdout);
  assert.ok(processed && Number(processed[1]) > 0, r.stdout);
  const failed = /number of failed transactions: (\d+)/.exec(r.stdout);
  assert.equal(failed ? Number(failed[1]) : 0, 0, r.stdout);
});

test('pg.Pool with 50 concurrent clients over default_pool_size=5: extra clients wait, all finish, no SET leaks', async () => {
  const small = await startSluice({ pg: pgsrv, settings: { pool_mode: 'session', default_pool_size: 5 } });
  try {
    // Each checkout is a new client connection (maxUses: 1) so sessions really turn over.
    const pool = new pg.Pool({ connectionString: small.url(), max: 50, maxUses: 1 });
    const seen = new Set<number>();
    const leaks: string[] = [];
    await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const c = await pool.connect();
        try {
          const before = await c.query("select pg_backend_pid() as pid, current_setting('application_name') as app");
          seen.add(before.rows[0].pid);
          if (before.rows[0].app.startsWith('leak-')) leaks.push(before.rows[0].app);
          await c.query(`set application_name = 'leak-${i}'`);
          await c.query('select pg_sleep(0.02)');
        } finally {
          c.release();
        }
      }),
    );
    await pool.end();
    await waitFor(() => small.app.clients.size === 0, 'pool clients to disconnect');
    assert.deepEqual(leaks, [], 'a SET from one client session was visible to a later client');
    assert.ok(seen.size <= 5, `expected at most 5 server connections, saw ${seen.size}`);
    const pools = [...small.app.pooler.pools.values()];
    assert.ok(pools.every((p) => p.servers.size <= 5));
  } finally {
    await small.stop();
  }
});

test('garbage after startup gets 08P01 and Sluice keeps serving', async () => {
  const { socket, msgs: messages } = await loggedInSession(sluice.port);
  socket.write(Buffer.from([0x51, 0xff, 0xff, 0xff, 0xf0, 1, 2, 3])); // Query with a negative length
  const err = await messages.until((m) => m.type === 'E');
  assert.equal(err.fields?.get('C'), '08P01');
  await messages.closed;
  const r = await run('psql', [sluice.url(), '-XAtc', 'select 42']);
  assert.equal(r.stdout.trim(), '42');
});

test('a huge declared length is refused before allocation with 08P01', async () => {
  const { socket, msgs: messages } = await loggedInSession(sluice.port);
  const hdr = Buffer.alloc(5);
  hdr[0] = 0x51;
  hdr.writeInt32BE(0x7ffffff0, 1);
  socket.write(hdr);
  const err = await messages.until((m) => m.type === 'E');
  assert.equal(err.fields?.get('C'), '08P01');
  assert.match(err.fields?.get('M') ?? '', /max_packet_size/);
  await messages.closed;
});

test('garbage instead of a startup packet gets 08P01', async () => {
  const socket = net.connect({ host: '127.0.0.1', port: sluice.port });
  const messages = readMessages(socket);
  socket.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  const err = await messages.until((m) => m.type === 'E');
  assert.equal(err.fields?.get('C'), '08P01');
  await messages.closed;
});

test('a client that disconnects mid-query: its server is reset or closed, never handed out dirty', async () => {
  const one = await startSluice({ pg: pgsrv, settings: { pool_mode: 'session', default_pool_size: 1 } });
  try {
    const { socket, msgs: messages } = await loggedInSession(one.port);
    socket.write(query("begin; create temp table dirty(x int); set application_name = 'dirty'; select pg_sleep(30)"));
    // Wait until the query is running on the server, then vanish.
    const admin = new pg.Client({ connectionString: pgsrv.url() });
    await admin.connect();
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const r = await admin.query("select count(*)::int as n from pg_stat_activity where query like '%pg_sleep(30)%' and state = 'active' and pid <> pg_backend_pid()");
      if (r.rows[0].n > 0) break;
    }
    socket.destroy();
    void messages;
    const c = new pg.Client({ connectionString: one.url() });
    await c.connect();
    const r = await c.query("select current_setting('application_name') as app, (select count(*)::int from pg_class where relname = 'dirty') as dirty, now() = statement_timestamp() as fresh_txn");
    assert.notEqual(r.rows[0].app, 'dirty');
    assert.equal(r.rows[0].dirty, 0);
    await c.end();
    await admin.end();
  } finally {
    await one.stop();
  }
});

test('the Unix-socket listener serves psql', async () => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-sock-'));
  const unix = await startSluice({ pg: pgsrv, settings: { unix_socket_dir: dir } });
  try {
    const r = await run('psql', ['-h', dir, '-p', String(unix.port), '-U', 'postgres', '-d', 'postgres', '-XAtc', 'select 11']);
    assert.equal(r.stdout.trim(), '11', r.stderr);
  } finally {
    await unix.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a 3.2 StartupMessage with _pq_ options gets NegotiateProtocolVersion, then a 32-byte cancel key', async () => {
  const socket = net.connect({ host: '127.0.0.1', port: sluice.port });
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  const messages = readMessages(socket);
  socket.write(startupMessage({ user: 'postgres', database: 'postgres', '_pq_.sluice_test': 'on' }, 3));
  const v = await messages.until((m) => m.type === 'v');
  assert.equal(v.body.readInt32BE(0), 2, 'newest minor version Sluice speaks');
  assert.equal(v.body.readInt32BE(4), 1);
  assert.equal(v.body.toString('utf8', 8, v.body.length - 1), '_pq_.sluice_test');
  const k = await messages.until((m) => m.type === 'K');
  assert.equal(k.body.length, 4 + 32);
  await messages.until((m) => m.type === 'Z');
  socket.destroy();
});
