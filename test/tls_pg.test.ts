// TLS towards a real PostgreSQL (ssl=on with test certs, hostssl-only hba):
// SSLRequest, then tls.connect with serverTlsConnectOptions, then a SCRAM login.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import pg from 'pg';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { generateCerts, installServerCert, type TestCerts } from './harness/certs.js';
import { serverTlsConnectOptions, serverTlsPlan } from '../src/auth/tls.js';
import { createServerLogin } from '../src/auth/server_login.js';
import type { Settings, TlsMode } from '../src/config/types.js';

const DEADLINE_MS = 10_000;
let server: TestPostgres;
let certs: TestCerts;

before(async () => {
  certs = generateCerts({ users: ['cert_user'] });
  server = await startPostgres({
    hba: [
      'local all all trust',
      'hostssl all cert_user 127.0.0.1/32 cert',
      'hostssl all all 127.0.0.1/32 scram-sha-256',
      '',
    ].join('\n'),
    conf: { password_encryption: "'scram-sha-256'" },
  });
  const files = installServerCert(certs, server.cluster.dataDir);
  const c = new pg.Client({ host: server.cluster.socketDir, port: server.port, user: 'postgres', database: 'postgres' });
  await c.connect();
  await c.query(`ALTER SYSTEM SET ssl = on`);
  await c.query(`ALTER SYSTEM SET ssl_cert_file = '${files.cert}'`);
  await c.query(`ALTER SYSTEM SET ssl_key_file = '${files.key}'`);
  await c.query(`ALTER SYSTEM SET ssl_ca_file = '${files.ca}'`);
  await c.query(`CREATE ROLE tls_user LOGIN PASSWORD 'tls pw'`);
  await c.query(`CREATE ROLE cert_user LOGIN`);
  await c.end();
  await server.cluster.restart(); // start() waits until the server is ready
});
after(async () => {
  await server?.stop();
  certs?.cleanup();
});

function settings(mode: TlsMode, extra: Partial<Settings> = {}): Settings {
  return {
    server_tls_sslmode: mode,
    server_tls_ca_file: '',
    server_tls_key_file: '',
    server_tls_cert_file: '',
    server_tls_protocols: 'secure',
    server_tls_ciphers: 'default',
    ...extra,
  } as Settings;
}

function withDeadline<T>(p: Promise<T>, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`timed out: ${what}`)), DEADLINE_MS);
    }),
  ]);
}

/** Reads backend messages from a stream until ReadyForQuery, answering auth with server_login. */
async function login(sock: net.Socket | tls.TLSSocket, user: string, password?: string): Promise<void> {
  const auth = createServerLogin({ user, password });
  const params = Buffer.from(`user\0${user}\0database\0postgres\0\0`);
  const startup = Buffer.alloc(8 + params.length);
  startup.writeInt32BE(startup.length, 0);
  startup.writeInt32BE(196608, 4);
  params.copy(startup, 8);
  await withDeadline(
    new Promise<void>((resolve, reject) => {
      let buf = Buffer.alloc(0);
      sock.on('error', reject);
      sock.on('close', () => reject(new Error('closed')));
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 5 && buf.length >= 1 + buf.readInt32BE(1)) {
          const type = String.fromCharCode(buf[0]!);
          const body = buf.subarray(5, 1 + buf.readInt32BE(1));
          buf = buf.subarray(1 + buf.readInt32BE(1));
          if (type === 'R') {
            const step = auth.onAuthRequest(body);
            if (step.error) return reject(new Error(step.error));
            if (step.send) sock.write(step.send);
          } else if (type === 'E') {
            return reject(new Error(`server error: ${body.toString('latin1').replace(/\0/g, ' ')}`));
          } else if (type === 'Z') {
            return auth.done ? resolve() : reject(new Error('ReadyForQuery before AuthenticationOk'));
          }
        }
      });
      sock.write(startup);
    }),
    'login',
  );
}

/** SSLRequest → 'S' → TLS handshake with our options; resolves the TLS socket. */
async function connectTls(s: Settings, host: string): Promise<tls.TLSSocket> {
  const plan = serverTlsPlan(s.server_tls_sslmode, !!s.server_tls_ca_file);
  assert.equal(plan.sendSSLRequest, true);
  const raw = net.connect(server.port, '127.0.0.1');
  return withDeadline(
    new Promise<tls.TLSSocket>((resolve, reject) => {
      raw.once('error', reject);
      raw.once('connect', () => {
        const req = Buffer.alloc(8);
        req.writeInt32BE(8, 0);
        req.writeInt32BE(80877103, 4);
        raw.write(req);
      });
      raw.once('data', (d: Buffer) => {
        if (d.length !== 1 || d[0] !== 0x53) return reject(new Error(`server refused TLS: ${d.toString('latin1')}`));
        const opts = serverTlsConnectOptions(s, host, raw)!;
        const t = tls.connect(opts);
        t.once('secureConnect', () => resolve(t));
        t.once('error', (err) => {
          raw.destroy();
          reject(err);
        });
      });
    }),
    'TLS handshake',
  );
}

test('verify-full succeeds for 127.0.0.1 (IP SAN) and logs in with SCRAM', async () => {
  const t = await connectTls(settings('verify-full', { server_tls_ca_file: certs.caCert }), '127.0.0.1');
  assert.equal(t.authorized, true);
  await login(t, 'tls_user', 'tls pw');
  t.destroy();
});

test('verify-full fails with the wrong CA', async () => {
  await assert.rejects(connectTls(settings('verify-full', { server_tls_ca_file: certs.otherCaCert }), '127.0.0.1'), (e: NodeJS.ErrnoException) =>
    /UNABLE_TO_VERIFY|SELF_SIGNED|unable to (get|verify)/i.test(`${e.code} ${e.message}`),
  );
});

test('verify-full fails on a host name mismatch; verify-ca does not check the name', async () => {
  await assert.rejects(connectTls(settings('verify-full', { server_tls_ca_file: certs.caCert }), 'db.invalid'), (e: NodeJS.ErrnoException) =>
    e.code === 'ERR_TLS_CERT_ALTNAME_INVALID',
  );
  const t = await connectTls(settings('verify-ca', { server_tls_ca_file: certs.caCert }), 'db.invalid');
  await login(t, 'tls_user', 'tls pw');
  t.destroy();
});

test('require: no verification without a CA file, chain verification with one (libpq)', async () => {
  const t = await connectTls(settings('require'), 'db.invalid');
  assert.equal(t.authorized, false);
  await login(t, 'tls_user', 'tls pw');
  t.destroy();
  await assert.rejects(connectTls(settings('require', { server_tls_ca_file: certs.otherCaCert }), '127.0.0.1'));
});

test('client certificate from server_tls_cert_file/key_file passes PostgreSQL cert auth', async () => {
  const s = settings('verify-full', {
    server_tls_ca_file: certs.caCert,
    server_tls_cert_file: certs.clients.cert_user!.cert,
    server_tls_key_file: certs.clients.cert_user!.key,
  });
  const t = await connectTls(s, 'localhost');
  await login(t, 'cert_user');
  t.destroy();
  // Without a client certificate, cert auth fails.
  const t2 = await connectTls(settings('verify-full', { server_tls_ca_file: certs.caCert }), 'localhost');
  await assert.rejects(login(t2, 'cert_user'), /server error/);
  t2.destroy();
});

test('plain TCP is refused by the hostssl-only hba', async () => {
  const raw = net.connect(server.port, '127.0.0.1');
  await withDeadline(new Promise((r) => raw.once('connect', r)), 'connect');
  await assert.rejects(login(raw, 'tls_user', 'tls pw'), /no pg_hba\.conf entry/);
  raw.destroy();
});
