// Issue 3: cancel requests through Sluice.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { once } from 'node:events';
import pg from 'pg';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startSluice, type TestSluice } from './harness/sluice.js';
import { waitFor } from './harness/wait.js';
import { cancelRequest } from '../src/protocol/messages.js';
import { loggedInSession, frame, cstr, int16, int32 } from './harness/wire.js';

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

/** The client Sluice knows by this pg.Client's backend pid (its cancel pid). */
function clientOf(s: TestSluice, c: pg.Client): { cancelPid: number; cancelKey: Buffer; state: string } {
  const pid = (c as unknown as { processID: number }).processID;
  const found = [...s.app.clients].find((x) => x.cancelPid === pid);
  assert.ok(found, 'the client is known to Sluice');
  return found;
}

/** Sends a cancel request to Sluice and waits until Sluice has read it and closed the connection. */
async function cancelThrough(s: TestSluice, pid: number, key: Buffer): Promise<void> {
  const sock = net.connect(s.port, '127.0.0.1');
  await once(sock, 'connect');
  sock.end(cancelRequest(pid, key));
  sock.resume();
  await once(sock, 'close');
}

// Found in review: a cancel for a client idle in a transaction went to its
// server; PostgreSQL ignored it there, or, arriving a moment later, stopped
// the next client's query once the first client's COMMIT had freed the server.
test("a cancel for a client with no query running is dropped: it never reaches the next client's query", async () => {
  const s = await startSluice({ pg: pgsrv, settings: { pool_mode: 'transaction', default_pool_size: 1 } });
  const a = new pg.Client({ connectionString: s.url() });
  const b = new pg.Client({ connectionString: s.url() });
  try {
    await a.connect();
    await b.connect();
    for (let i = 0; i < 5; i++) {
      await a.query('begin');
      const slow = b.query('select pg_sleep(0.2) as slept');
      await waitFor(() => [...s.app.clients].some((x) => x.state === 'waiting'), 'B to wait for the only server');
      const { cancelPid, cancelKey } = clientOf(s, a);
      await cancelThrough(s, cancelPid, cancelKey);
      await a.query('commit');
      assert.equal((await slow).rows.length, 1, `round ${i}: B's query ran to its end`);
    }
  } finally {
    await Promise.all([a.end(), b.end()]);
    await s.stop();
  }
});

// A query can end on its own while its cancel is on the way to PostgreSQL; the
// server must not run the next client's query until PostgreSQL has taken the
// cancel. A proxy in front of PostgreSQL holds the cancel connection to make
// that moment last.
test("a server whose cancel is still on its way is not handed to the next client until PostgreSQL has taken it", async () => {
  const held: Array<() => void> = [];
  // Half-open allowed: the cancel's connection to Sluice must stay open until PostgreSQL closes its side.
  const proxy = net.createServer({ allowHalfOpen: true }, (inbound) => {
    inbound.once('readable', () => {
      const first = inbound.read(8) as Buffer | null;
      if (!first) return inbound.destroy();
      const forward = (): void => {
        const outbound = net.connect(pgsrv.port, '127.0.0.1', () => {
          outbound.write(first);
          inbound.pipe(outbound).pipe(inbound);
        });
        outbound.on('error', () => inbound.destroy());
        inbound.on('error', () => outbound.destroy());
      };
      if (first.readInt32BE(4) === 80877102) held.push(forward); // CancelRequest: held until the test lets it go
      else forward();
    });
  });
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  const proxyPort = (proxy.address() as net.AddressInfo).port;
  const s = await startSluice({ pg: pgsrv, databases: { '*': `host=127.0.0.1 port=${proxyPort}` }, settings: { pool_mode: 'transaction', default_pool_size: 1 } });
  const a = new pg.Client({ connectionString: s.url() });
  const b = new pg.Client({ connectionString: s.url() });
  try {
    await a.connect();
    await b.connect();
    const aQuery = a.query('select pg_sleep(0.3) /* cancel-hold */ as slept');
    await waitFor(() => sleeping('cancel-hold'), "A's query to run");
    const { cancelPid, cancelKey } = clientOf(s, a);
    await cancelThrough(s, cancelPid, cancelKey);
    await waitFor(() => held.length === 1, 'the cancel to reach the proxy');
    const bQuery = b.query('select pg_sleep(0.3) as slept');
    assert.equal((await aQuery).rows.length, 1, "A's query ended on its own: its cancel has not reached PostgreSQL");
    assert.equal(clientOf(s, b).state, 'waiting', 'B waits while the cancel for the server is on its way');
    held[0]();
    assert.equal((await bQuery).rows.length, 1, "B's query runs once PostgreSQL has taken the cancel, and is not stopped by it");
  } finally {
    await Promise.all([a.end(), b.end()]);
    await s.stop();
    proxy.close();
  }
});

// Found in review: during COPY FROM STDIN (extended protocol) nothing counted as
// waiting for the server, so a cancel (and query_timeout) did nothing.
test('a cancel during COPY FROM STDIN over the extended protocol reaches PostgreSQL (transaction mode)', async () => {
  const s = await startSluice({ pg: pgsrv, settings: { pool_mode: 'transaction', default_pool_size: 1 } });
  await admin.query('create table if not exists copy_cancel(a int)');
  const { socket, msgs } = await loggedInSession(s.port);
  try {
    const key = msgs.all.find((m) => m.type === 'K')!.body;
    socket.write(Buffer.concat([frame('P', Buffer.concat([cstr(''), cstr('copy copy_cancel from stdin'), int16(0)])), frame('B', Buffer.concat([cstr(''), cstr(''), int16(0), int16(0), int16(0)])), frame('E', Buffer.concat([cstr(''), int32(0)])), frame('S', Buffer.alloc(0))]));
    await msgs.until((m) => m.type === 'G');
    socket.write(frame('d', Buffer.from('1\n')));
    await cancelThrough(s, key.readInt32BE(0), key.subarray(4));
    socket.write(frame('d', Buffer.from('2\n')));
    const err = await msgs.until((m) => m.type === 'E');
    assert.equal(err.fields?.get('C'), '57014');
  } finally {
    socket.destroy();
    await s.stop();
  }
});
