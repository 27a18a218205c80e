// TLS policy against a real PostgreSQL with certificates generated at test time.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { createPool, resolveTls, type CreatePoolOptions } from '../src/kit/index.js';
import { makeCerts, spyLogger, type TestCerts } from './fixtures/kit/helpers.js';

let pgsrv: TestPostgres;
let certs: TestCerts;

before(async () => {
  // The certificate names 127.0.0.1 and db.test, but not "localhost".
  certs = makeCerts('IP:127.0.0.1,DNS:db.test');
  pgsrv = await startPostgres({
    conf: { ssl: 'on', ssl_cert_file: `'${certs.serverCert}'`, ssl_key_file: `'${certs.serverKey}'` },
  });
});

after(async () => {
  await pgsrv?.stop();
  if (certs) rmSync(certs.dir, { recursive: true, force: true });
});

/** Connects once and reports whether the session is encrypted. */
async function sslOf(options: CreatePoolOptions): Promise<boolean> {
  const pool = createPool({ logger: spyLogger(), acquireTimeoutMillis: 5000, env: {}, ...options });
  try {
    const { rows } = await pool.query('select ssl from pg_stat_ssl where pid = pg_backend_pid()');
    return rows[0].ssl as boolean;
  } finally {
    await pool.drain(2000);
  }
}

test('verify-full with the right CA connects over TLS', async () => {
  assert.equal(await sslOf({ connectionString: pgsrv.url(), sslmode: 'verify-full', sslrootcert: certs.ca }), true);
});

test('TLS parameters in the URL are honoured and stripped before pg sees them', async () => {
  const url = `${pgsrv.url()}?sslmode=verify-full&sslrootcert=${encodeURIComponent(certs.ca)}`;
  const pool = createPool({ connectionString: url, logger: spyLogger(), env: {} });
  try {
    assert.doesNotMatch(String(pool.options.connectionString), /ssl/);
    assert.equal(pool.tls.mode, 'verify-full');
    assert.equal((await pool.query('select ssl from pg_stat_ssl where pid = pg_backend_pid()')).rows[0].ssl, true);
  } finally {
    await pool.drain(2000);
  }
});

test('a CA given without sslmode means verify-full', async () => {
  const pool = createPool({ connectionString: pgsrv.url(), sslrootcert: certs.ca, logger: spyLogger(), env: {} });
  assert.equal(pool.tls.mode, 'verify-full');
  await pool.drain(1000);
});

test('verify-full with a wrong CA is refused', async () => {
  await assert.rejects(sslOf({ connectionString: pgsrv.url(), sslmode: 'verify-full', sslrootcert: certs.wrongCa }), /self.signed|unable to (verify|get)/i);
});

test('verify-full checks the host name; verify-ca does not', async () => {
  const url = new URL(pgsrv.url());
  url.hostname = 'localhost';
  await assert.rejects(sslOf({ connectionString: url.toString(), sslmode: 'verify-full', sslrootcert: certs.ca }), /altnames|Hostname/i);
  assert.equal(await sslOf({ connectionString: url.toString(), sslmode: 'verify-ca', sslrootcert: certs.ca }), true);
});

test('sslmode=require with a wrong CA fails like libpq (a root cert turns require into verify-ca)', async () => {
  await assert.rejects(sslOf({ connectionString: pgsrv.url(), sslmode: 'require', sslrootcert: certs.wrongCa }), /self.signed|unable to (verify|get)/i);
  // With the right CA, require succeeds even though the host name is not checked.
  const url = new URL(pgsrv.url());
  url.hostname = 'localhost';
  assert.equal(await sslOf({ connectionString: url.toString(), sslmode: 'require', sslrootcert: certs.ca }), true);
});

test('sslmode=require without a CA encrypts without verifying', async () => {
  assert.equal(await sslOf({ connectionString: pgsrv.url(), sslmode: 'require' }), true);
});

test('disable and prefer', async () => {
  assert.equal(await sslOf({ connectionString: pgsrv.url(), sslmode: 'disable' }), false);
  assert.equal(await sslOf({ connectionString: pgsrv.url(), sslmode: 'prefer' }), true);
  // PGSSLROOTCERT is read like libpq does.
  assert.equal(await sslOf({ connectionString: pgsrv.url(), sslmode: 'verify-full', env: { PGSSLROOTCERT: certs.ca } }), true);
});

test('policy defaults: remote without CA is require with one warning; local is disable; bad modes refused', () => {
  const remote = resolveTls({ host: 'db.example.com', env: { HOME: '/nonexistent' } });
  assert.equal(remote.mode, 'require');
  assert.equal(remote.verifiesChain, false);
  assert.match(remote.warning ?? '', /not verified/);
  assert.equal(resolveTls({ host: '127.0.0.1', env: { HOME: '/nonexistent' } }).mode, 'disable');
  assert.equal(resolveTls({ host: 'db.example.com', sslrootcert: certs.ca, env: {} }).mode, 'verify-full');
  assert.throws(() => resolveTls({ host: 'h', sslmode: 'allow', env: {} }), { code: 'SLUICE_TLS_CONFIG' });
  assert.throws(() => resolveTls({ host: 'h', sslmode: 'bogus', env: {} }), { code: 'SLUICE_TLS_CONFIG' });
  assert.throws(() => resolveTls({ host: 'h', sslmode: 'verify-full', env: { HOME: '/nonexistent' } }), /needs a CA/);
  assert.throws(() => resolveTls({ host: 'h', sslmode: 'require', sslrootcert: 'system', env: {} }), /requires sslmode=verify-full/);

  const logger = spyLogger();
  const a = createPool({ connectionString: 'postgres://u@warn-once.example.com/db', logger, env: { HOME: '/nonexistent' } });
  const b = createPool({ connectionString: 'postgres://u@warn-once.example.com/db', logger, env: { HOME: '/nonexistent' } });
  assert.equal(logger.entries.filter((e) => e.level === 'warn' && /not verified/.test(e.message)).length, 1);
  return Promise.all([a.end(), b.end()]).then(() => undefined);
});
