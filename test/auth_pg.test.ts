// server_login against a real PostgreSQL over a raw socket: scram, md5, cleartext,
// SASLprep, and SCRAM pass-through with keys recovered from a client's proof.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import pg from 'pg';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { createServerLogin, type ServerLogin } from '../src/auth/server_login.js';
import { createClientAuth } from '../src/auth/client_auth.js';
import { buildScramSecret, formatScramSecret } from '../src/protocol/scram.js';
import type { ScramKeys } from '../src/protocol/scram.js';

const DEADLINE_MS = 10_000;

/** Minimal backend-message reader with a deadline per read. */
function reader(socket: net.Socket) {
  let buf = Buffer.alloc(0);
  let waiter: (() => void) | null = null;
  let closed: Error | null = null;
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    waiter?.();
  });
  const onEnd = (err?: Error) => {
    closed = err ?? new Error('connection closed');
    waiter?.();
  };
  socket.on('error', onEnd);
  socket.on('close', () => onEnd());
  return async function next(): Promise<{ type: string; body: Buffer }> {
    const deadline = Date.now() + DEADLINE_MS;
    for (;;) {
      if (buf.length >= 5) {
        const len = buf.readInt32BE(1);
        if (buf.length >= 1 + len) {
          const msg = { type: String.fromCharCode(buf[0]!), body: buf.subarray(5, 1 + len) };
          buf = buf.subarray(1 + len);
          return msg;
        }
      }
      if (closed) throw closed;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for the server');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        waiter = () => {
          clearTimeout(t);
          waiter = null;
          resolve();
        };
      });
    }
  };
}

function startupMessage(user: string, database: string): Buffer {
  const params = Buffer.from(`user\0${user}\0database\0${database}\0\0`, 'utf8');
  const b = Buffer.alloc(8 + params.length);
  b.writeInt32BE(b.length, 0);
  b.writeInt32BE(196608, 4);
  params.copy(b, 8);
  return b;
}

function errorFields(body: Buffer): { code: string; message: string } {
  const f: Record<string, string> = {};
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const end = body.indexOf(0, i + 1);
    f[String.fromCharCode(body[i]!)] = body.subarray(i + 1, end).toString();
    i = end + 1;
  }
  return { code: f.C ?? '', message: f.M ?? '' };
}

/** Sends a StartupMessage and drives `login` until ReadyForQuery. Throws with the server's error. */
async function loginOver(socket: net.Socket, user: string, login: ServerLogin): Promise<void> {
  const next = reader(socket);
  socket.write(startupMessage(user, 'postgres'));
  for (;;) {
    const { type, body } = await next();
    if (type === 'R') {
      const step = login.onAuthRequest(body);
      if (step.error) throw new Error(`login: ${step.error}`);
      if (step.send) socket.write(step.send);
    } else if (type === 'E') {
      const e = errorFields(body);
      throw Object.assign(new Error(`server: ${e.code} ${e.message}`), { sqlstate: e.code });
    } else if (type === 'Z') {
      assert.equal(login.done, true, 'ReadyForQuery before AuthenticationOk');
      return;
    }
  }
}

async function connect(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

async function tryLogin(user: string, opts: { password?: string; scramKeys?: ScramKeys }): Promise<void> {
  const socket = await connect(server.port);
  try {
    await loginOver(socket, user, createServerLogin({ user, ...opts }));
  } finally {
    socket.destroy();
  }
}

let server: TestPostgres;
const UNI = 'p\u00E4ss\u2168'; // SASLprep: U+2168 → "IX"

before(async () => {
  server = await startPostgres({
    hba: [
      'local all all trust',
      'host all postgres 127.0.0.1/32 trust',
      'host all md5_user 127.0.0.1/32 md5',
      'host all plain_user 127.0.0.1/32 password',
      'host all all 127.0.0.1/32 scram-sha-256',
      '',
    ].join('\n'),
    conf: { password_encryption: "'scram-sha-256'" },
  });
  const c = new pg.Client({ connectionString: server.url() });
  await c.connect();
  await c.query(`CREATE ROLE scram_user LOGIN PASSWORD 'scr@m pw'`);
  await c.query(`CREATE ROLE plain_user LOGIN PASSWORD 'clear pw'`);
  await c.query(`CREATE ROLE uni_user LOGIN PASSWORD '${UNI}'`);
  await c.query(`SET password_encryption = 'md5'`);
  await c.query(`CREATE ROLE md5_user LOGIN PASSWORD 'md5 pw'`);
  await c.end();
});
after(() => server?.stop());

async function rolpassword(role: string): Promise<string> {
  const c = new pg.Client({ connectionString: server.url() });
  await c.connect();
  try {
    return (await c.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [role])).rows[0].rolpassword as string;
  } finally {
    await c.end();
  }
}

test('scram-sha-256 login with a password', async () => {
  assert.match(await rolpassword('scram_user'), /^SCRAM-SHA-256\$/);
  await tryLogin('scram_user', { password: 'scr@m pw' });
  await assert.rejects(tryLogin('scram_user', { password: 'wrong' }), /28P01/);
});

test('md5 login with a password and with the stored md5 hash', async () => {
  const stored = await rolpassword('md5_user');
  assert.match(stored, /^md5[0-9a-f]{32}$/);
  await tryLogin('md5_user', { password: 'md5 pw' });
  await tryLogin('md5_user', { password: stored });
  await assert.rejects(tryLogin('md5_user', { password: 'wrong' }), /28P01/);
});

test('cleartext password login', async () => {
  await tryLogin('plain_user', { password: 'clear pw' });
  await assert.rejects(tryLogin('plain_user', { password: 'wrong' }), /28P01/);
});

test('SASLprep agrees with PostgreSQL for a non-ASCII password', async () => {
  await tryLogin('uni_user', { password: UNI });
  await tryLogin('uni_user', { password: 'p\u00E4ssIX' }); // the prepped spelling
});

test('SCRAM pass-through: keys recovered from a client proof against the pg_authid secret log in', async () => {
  const secret = await rolpassword('scram_user');
  // A client authenticates to us (client_auth) with the copied secret...
  const auth = createClientAuth({ method: 'scram-sha-256', user: 'scram_user', secret });
  const client = createServerLogin({ user: 'scram_user', password: 'scr@m pw' });
  let queue = auth.start();
  while (queue.length && !auth.result) {
    const step = client.onAuthRequest(queue.shift()!.subarray(5));
    assert.equal(step.error, undefined);
    if (step.send) queue = auth.onMessage(0x70, step.send.subarray(5)).send;
  }
  const result = auth.result;
  assert.ok(result?.ok && result.scramKeys, JSON.stringify(result));
  // ...and we log in to PostgreSQL with only the recovered keys, verifying the server's signature.
  await tryLogin('scram_user', { scramKeys: result.scramKeys });

  // Keys from a secret with a different salt (same password) do not work: the precondition.
  const other = formatScramSecret(buildScramSecret('scr@m pw'));
  const auth2 = createClientAuth({ method: 'scram-sha-256', user: 'scram_user', secret: other });
  const client2 = createServerLogin({ user: 'scram_user', password: 'scr@m pw' });
  let q2 = auth2.start();
  while (q2.length && !auth2.result) {
    const step = client2.onAuthRequest(q2.shift()!.subarray(5));
    if (step.send) q2 = auth2.onMessage(0x70, step.send.subarray(5)).send;
  }
  assert.ok(auth2.result?.ok && auth2.result.scramKeys);
  await assert.rejects(tryLogin('scram_user', { scramKeys: auth2.result.scramKeys }), /28P01/);
});

test('a SCRAM request with only an md5 hash known fails clearly', async () => {
  await assert.rejects(tryLogin('scram_user', { password: 'md5' + '0'.repeat(32) }), /only an md5 hash/);
});
