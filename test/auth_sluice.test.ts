// Issue 4: client authentication through Sluice, server-side login, auth_query, and hostile input.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import pg from 'pg';
import postgres from 'postgres';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startSluice, type TestSluice } from './harness/sluice.js';
import { run } from './harness/processes.js';
import { readMessages, frame } from './harness/wire.js';
import { buildScramSecret, formatScramSecret } from '../src/protocol/scram.js';
import { md5StoredSecret } from '../src/protocol/md5.js';
import { startupMessage } from '../src/protocol/messages.js';

type PgErr = Error & { code?: string };
let server: TestPostgres;

const userlist = (entries: Record<string, string>) =>
  Object.entries(entries)
    .map(([u, s]) => `"${u}" "${s.replace(/"/g, '""')}"`)
    .join('\n') + '\n';

before(async () => {
  server = await startPostgres({
    hba: [
      'local all all trust',
      'host all postgres 127.0.0.1/32 trust',
      'host all plain_u,md5_u,scram_u,uni_u 127.0.0.1/32 trust',
      'host all md5_srv,aq_md5 127.0.0.1/32 md5',
      'host all all 127.0.0.1/32 scram-sha-256',
      '',
    ].join('\n'),
    conf: { password_encryption: "'scram-sha-256'" },
  });
  const c = new pg.Client({ host: server.cluster.socketDir, port: server.port, user: 'postgres', database: 'postgres' });
  await c.connect();
  await c.query('create role plain_u login; create role md5_u login; create role scram_u login; create role uni_u login');
  await c.query("create role scram_srv login password 'server secret'");
  await c.query("set password_encryption = 'md5'; create role md5_srv login password 'md5 secret'; reset password_encryption");
  await c.query("create role passthru login password 'pass through'");
  await c.query("create role aq_scram login password 'aq scram pw'");
  await c.query("set password_encryption = 'md5'; create role aq_md5 login password 'aq md5 pw'; reset password_encryption");
  await c.query("create role aq_expired login password 'old pw' valid until '2001-01-01'");
  await c.end();
});
after(async () => server?.stop());

async function pgLogin(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {});
  await c.connect();
  try {
    return (await c.query('select 1 as one')).rows[0].one;
  } finally {
    await c.end();
  }
}

async function pgRefused(url: string): Promise<PgErr> {
  try {
    await pgLogin(url);
  } catch (err) {
    return err as PgErr;
  }
  throw new Error('expected the login to be refused');
}

async function withSluice(settings: Record<string, string | number | boolean>, list: string, fn: (s: TestSluice) => Promise<void>) {
  const s = await startSluice({ pg: server, settings: { pool_mode: 'transaction', ...settings }, userlistText: list });
  try {
    await fn(s);
  } finally {
    await s.stop();
  }
}

const clientSecrets = {
  plain_u: 'plain pw',
  md5_u: md5StoredSecret('md5 pw', 'md5_u'),
  scram_u: formatScramSecret(buildScramSecret('scram pw')),
  uni_u: formatScramSecret(buildScramSecret('pässwörd ﬁ')),
};

for (const method of ['plain', 'md5', 'scram-sha-256'] as const) {
  test(`auth_type=${method}: psql, node-postgres and postgres.js log in; wrong password and unknown user get 28P01`, async () => {
    await withSluice({ auth_type: method }, userlist(clientSecrets), async (s) => {
      // plaintext secrets serve every method; md5 secrets serve plain and md5; SCRAM secrets serve plain, md5 (as SCRAM) and SCRAM.
      const logins: Array<[string, string]> = [['plain_u', 'plain pw'], ['scram_u', 'scram pw']];
      if (method !== 'scram-sha-256') logins.push(['md5_u', 'md5 pw']);
      for (const [user, pw] of logins) assert.equal(await pgLogin(s.url('postgres', user, pw)), 1, `${user} via pg`);
      const [user, pw] = logins[0];
      const r = await run('psql', [s.url('postgres', user, pw), '-XAtc', 'select current_user']);
      assert.equal(r.stdout.trim(), user, r.stderr);
      const sql = postgres(s.url('postgres', 'scram_u', 'scram pw'), { max: 1, onnotice: () => {} });
      assert.equal((await sql`select 2 as two`)[0].two, 2);
      await sql.end();
      const wrong = await pgRefused(s.url('postgres', 'plain_u', 'nope'));
      const unknown = await pgRefused(s.url('postgres', 'nobody_here', 'nope'));
      assert.equal(wrong.code, '28P01');
      assert.equal(unknown.code, '28P01');
      assert.equal(wrong.message.replace('plain_u', 'X'), unknown.message.replace('nobody_here', 'X'), 'same error text for both');
    });
  });
}

test('SCRAM with a non-ASCII password (SASLprep) works from node-postgres and psql', async () => {
  await withSluice({ auth_type: 'scram-sha-256' }, userlist(clientSecrets), async (s) => {
    assert.equal(await pgLogin(s.url('postgres', 'uni_u', 'pässwörd ﬁ')), 1);
    const r = await run('psql', ['-XAtc', 'select 1', `host=127.0.0.1 port=${s.port} user=uni_u dbname=postgres`], { env: { PGPASSWORD: 'pässwörd ﬁ' } });
    assert.equal(r.stdout.trim(), '1', r.stderr);
  });
});

test('auth_type=trust and any; hba picks methods per rule and rejects with the rule location', async () => {
  await withSluice({ auth_type: 'trust' }, '', async (s) => assert.equal(await pgLogin(s.url('postgres', 'plain_u')), 1));
  await withSluice({ auth_type: 'any' }, '', async (s) => assert.equal(await pgLogin(s.url('postgres', 'plain_u')), 1));
  // trust with an auth_file admits only its users, as PgBouncer does.
  // (auth_file names the list, given here as text: with no auth_file, trust admits everyone.)
  await withSluice({ auth_type: 'trust', auth_file: 'userlist.txt' }, userlist({ plain_u: 'plain pw' }), async (s) => {
    assert.equal(await pgLogin(s.url('postgres', 'plain_u')), 1);
    const refused = await pgRefused(s.url('postgres', 'nobody_here'));
    assert.equal(refused.code, '28000');
    assert.match(refused.message, /nobody_here/);
    // A role PostgreSQL itself trusts from here, but not in auth_file: Sluice refuses it, not the server.
    const unlisted = await pgRefused(s.url('postgres', 'md5_u'));
    assert.equal(unlisted.code, '28000');
    assert.match(unlisted.message, /no such user: "md5_u"/);
  });
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-hba-'));
  const hbaFile = path.join(dir, 'hba.conf');
  writeFileSync(hbaFile, ['host all scram_u 127.0.0.1/32 scram-sha-256', 'host all plain_u 127.0.0.1/32 password', 'host all md5_u 0.0.0.0/0 reject', ''].join('\n'));
  await withSluice({ auth_type: 'hba', auth_hba_file: hbaFile }, userlist(clientSecrets), async (s) => {
    assert.equal(await pgLogin(s.url('postgres', 'scram_u', 'scram pw')), 1);
    assert.equal(await pgLogin(s.url('postgres', 'plain_u', 'plain pw')), 1);
    const rejected = await pgRefused(s.url('postgres', 'md5_u', 'md5 pw'));
    assert.equal(rejected.code, '28000');
    assert.match(rejected.message, /hba\.conf:3/);
  });
});

test('server side: Sluice logs in to PostgreSQL requiring scram-sha-256 and md5 with stored passwords', async () => {
  await withSluice({ auth_type: 'trust' }, userlist({ scram_srv: 'server secret', md5_srv: 'md5 secret' }), async (s) => {
    assert.equal(await pgLogin(s.url('postgres', 'scram_srv')), 1);
    assert.equal(await pgLogin(s.url('postgres', 'md5_srv')), 1);
  });
  // An md5 hash in auth_file is enough for an md5 server.
  await withSluice({ auth_type: 'trust' }, userlist({ md5_srv: md5StoredSecret('md5 secret', 'md5_srv') }), async (s) => {
    assert.equal(await pgLogin(s.url('postgres', 'md5_srv')), 1);
  });
});

test('SCRAM pass-through: no plaintext anywhere, Sluice logs in with the key from the client proof', async () => {
  const admin = new pg.Client({ connectionString: server.url() });
  await admin.connect();
  const secret = (await admin.query("select rolpassword from pg_authid where rolname = 'passthru'")).rows[0].rolpassword as string;
  await admin.end();
  assert.match(secret, /^SCRAM-SHA-256\$/);
  await withSluice({ auth_type: 'scram-sha-256' }, userlist({ passthru: secret }), async (s) => {
    assert.equal(await pgLogin(s.url('postgres', 'passthru', 'pass through')), 1);
    const wrong = await pgRefused(s.url('postgres', 'passthru', 'guess'));
    assert.equal(wrong.code, '28P01');
  });
});

test('auth_query against pg_authid: SCRAM and md5 users log in, an expired role is refused', async () => {
  await withSluice({ auth_type: 'md5', auth_user: 'postgres' }, userlist({ postgres: '' }).replace('"postgres" ""', '"postgres" ""'), async (s) => {
    assert.equal(await pgLogin(s.url('postgres', 'aq_scram', 'aq scram pw')), 1);
    assert.equal(await pgLogin(s.url('postgres', 'aq_md5', 'aq md5 pw')), 1);
    const expired = await pgRefused(s.url('postgres', 'aq_expired', 'old pw'));
    assert.equal(expired.code, '28P01');
    const wrong = await pgRefused(s.url('postgres', 'aq_scram', 'wrong'));
    assert.equal(wrong.code, '28P01');
  });
});

test('auth_query cannot be steered by client startup parameters', async () => {
  await withSluice({ auth_type: 'scram-sha-256', auth_user: 'postgres' }, userlist({ postgres: '' }), async (s) => {
    // A client asking for a hostile search_path still authenticates against pg_catalog.pg_authid.
    const c = new pg.Client({ connectionString: s.url('postgres', 'aq_scram', 'aq scram pw'), options: '-c search_path=evil' });
    await c.connect();
    assert.equal((await c.query('select 1 as x')).rows[0].x, 1);
    await c.end();
  });
});

function raw(port: number) {
  const socket = net.connect({ host: '127.0.0.1', port });
  const msgs = readMessages(socket);
  return { socket, msgs };
}


test('fuzz: malformed SSLRequest, StartupMessage, SASLInitialResponse and SASLResponse end in an error or a closed socket; Sluice keeps serving', async () => {
  await withSluice({ auth_type: 'scram-sha-256' }, userlist(clientSecrets), async (s) => {
    const ssl = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
    const cases: Buffer[] = [
      Buffer.concat([ssl, Buffer.from('garbage after ssl request')]),
      Buffer.from([0, 0, 0, 9, 0x04, 0xd2, 0x16, 0x2f, 0]),
      Buffer.from([0, 0, 0, 4]),
      Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 3, 0, 0]),
      Buffer.concat([Buffer.from([0, 0, 0, 20, 0, 3, 0, 0]), Buffer.from('user\0x')]),
      Buffer.concat([Buffer.from([0, 0, 0, 16, 0, 2, 0, 0]), Buffer.from('user\0x\0\0')]),
    ];
    const sasl = (payload: Buffer, mech = 'SCRAM-SHA-256') => {
      const len = Buffer.alloc(4);
      len.writeInt32BE(payload.length);
      return frame('p', Buffer.concat([Buffer.from(mech + '\0'), len, payload]));
    };
    const afterStartup: Buffer[] = [
      sasl(Buffer.from('n,,n=,r=' + 'A'.repeat(100_000))),
      sasl(Buffer.from('p=tls-server-end-point,,n=,r=abc')),
      sasl(Buffer.from('n,,n=,r=abc'), 'PLAIN'),
      frame('p', Buffer.from([0xff, 0xff])),
      sasl(Buffer.from('x')),
      Buffer.concat([sasl(Buffer.from('n,,n=,r=abcdef')), frame('p', Buffer.from('c=bm90IGdzMg==,r=zzz,p=%%%notbase64'))]),
      Buffer.concat([sasl(Buffer.from('y,,n=,r=abcdef')), frame('p', Buffer.from('c=biws,r=abcdef,p=' + 'A'.repeat(44)))]),
    ];
    for (const bytes of cases) {
      const { socket, msgs } = raw(s.port);
      socket.write(bytes);
      await Promise.race([msgs.until((m) => m.type === 'E').catch(() => null), msgs.closed]);
      socket.destroy();
    }
    for (const bytes of afterStartup) {
      const { socket, msgs } = raw(s.port);
      socket.write(startupMessage({ user: 'scram_u', database: 'postgres' }));
      await msgs.until((m) => m.type === 'R');
      socket.write(bytes);
      const e = await Promise.race([msgs.until((m) => m.type === 'E').catch(() => null), msgs.closed.then(() => null)]);
      if (e) assert.match(e.fields?.get('C') ?? '', /^(28P01|08P01|28000)$/);
      socket.destroy();
    }
    assert.equal(await pgLogin(s.url('postgres', 'scram_u', 'scram pw')), 1);
  });
});

test('trust sends AuthenticationOk first: with the welcome, before a pool\'s first welcome, before 3D000 and the admin console; a refused admin login gets none', async () => {
  await withSluice({ auth_type: 'trust', admin_users: 'plain_u' }, '', async (s) => {
    /** The message types a raw trust login gets, up to ReadyForQuery or an error. */
    const messages = async (database: string, user = 'plain_u', minor = 0) => {
      const { socket, msgs } = raw(s.port);
      await new Promise<void>((r) => socket.once('connect', r));
      socket.write(startupMessage({ user, database }, minor));
      const last = await msgs.until((m) => m.type === 'Z' || m.type === 'E');
      socket.destroy();
      return { types: msgs.all.map((m) => m.type).join(''), last, all: msgs.all };
    };
    /** An admitted trust login: exactly one authentication message, AuthenticationOk, and it comes first. */
    const login = async (database: string) => {
      const r = await messages(database);
      assert.equal(r.all[0].type, 'R', `${database}: AuthenticationOk first`);
      assert.equal(r.all[0].body.readInt32BE(0), 0);
      assert.equal(r.all.filter((m) => m.type === 'R').length, 1, `${database}: exactly one authentication message`);
      return r;
    };
    // The pool has not logged in to PostgreSQL yet: AuthenticationOk is written alone, the welcome once the pool knows its
    // parameters (the order is what this can check; when each left is not visible in the bytes).
    const first = await login('postgres');
    assert.match(first.types, /^RS+KZ$/);
    // Now its parameters are known: AuthenticationOk travels in the welcome's Buffer.
    const again = await login('postgres');
    assert.equal(again.types, first.types);
    // A newer protocol minor: NegotiateProtocolVersion first, then the same login.
    const newer = await messages('postgres', 'plain_u', 9);
    assert.match(newer.types, /^vRS+KZ$/);
    const missing = await login('no_such_db');
    assert.equal(missing.types, 'RE');
    assert.equal(missing.last.fields?.get('C'), '3D000');
    const admin = await login('pgbouncer');
    assert.match(admin.types, /^RS*KZ$/);
    // Not in admin_users: refused as PostgreSQL and PgBouncer refuse a login, with no AuthenticationOk before the error.
    const refused = await messages('pgbouncer', 'scram_u');
    assert.equal(refused.types, 'E');
    assert.equal(refused.last.fields?.get('C'), '28000');
  });
});

// Found in review: a userlist entry "" (no password, for logging in to the
// server, as auth_user often is) accepted an empty password from any client
// over md5 and SCRAM, while PostgreSQL and PgBouncer refuse it.
test('an empty password in auth_file lets no client in over md5, SCRAM or cleartext', async () => {
  const { createHash } = await import('node:crypto');
  const md5 = (s: string | Buffer): string => createHash('md5').update(s).digest('hex');
  for (const method of ['md5', 'plain'] as const) {
    await withSluice({ auth_type: method, auth_user: 'postgres' }, userlist({ postgres: '' }), async (s) => {
      const socket = net.connect(s.port, '127.0.0.1');
      const msgs = readMessages(socket);
      socket.write(startupMessage({ user: 'postgres', database: 'postgres' }));
      const ask = await msgs.until((m) => m.type === 'R');
      const answer = method === 'md5' ? 'md5' + md5(Buffer.concat([Buffer.from(md5('' + 'postgres')), ask.body.subarray(4, 8)])) : '';
      socket.write(frame('p', Buffer.from(answer + '\0')));
      const err = await msgs.until((m) => m.type === 'E' || m.type === 'Z');
      assert.equal(err.type, 'E', `${method}: refused`);
      assert.equal(err.fields?.get('C'), '28P01');
      socket.destroy();
    });
  }
  await withSluice({ auth_type: 'scram-sha-256', auth_user: 'postgres' }, userlist({ postgres: '' }), async (s) => {
    const refused = await pgRefused(s.url('postgres', 'postgres', 'anything'));
    assert.equal(refused.code, '28P01', 'no SCRAM verifier is made up from an empty secret');
  });
});

// Found in review: before login the reader took messages up to max_packet_size,
// so an unauthenticated client could make Sluice buffer a gigabyte.
test('before login a message over 64 KiB is refused at its header with 08P01', async () => {
  await withSluice({ auth_type: 'md5' }, userlist({ md5_u: 'x' }), async (s) => {
    const socket = net.connect(s.port, '127.0.0.1');
    const msgs = readMessages(socket);
    socket.write(startupMessage({ user: 'md5_u', database: 'postgres' }));
    await msgs.until((m) => m.type === 'R');
    const header = Buffer.alloc(5);
    header[0] = 0x70;
    header.writeInt32BE(200 * 1024 * 1024, 1);
    socket.write(header);
    const err = await msgs.until((m) => m.type === 'E');
    assert.equal(err.fields?.get('C'), '08P01');
    socket.destroy();
  });
});
