// Issue 4: TLS on both sides of Sluice, with certificates generated at test time.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startSluice, type TestSluice } from './harness/sluice.js';
import { run } from './harness/processes.js';
import { generateCerts, installServerCert, type TestCerts } from './harness/certs.js';
import { readMessages } from './harness/wire.js';
import { sslRequest, startupMessage } from '../src/protocol/messages.js';
import net from 'node:net';
import { once } from 'node:events';
import { waitFor } from './harness/wait.js';

let server: TestPostgres;
let certs: TestCerts;

before(async () => {
  certs = generateCerts({ users: ['cert_user'] });
  server = await startPostgres({
    hba: ['local all all trust', 'hostssl all all 127.0.0.1/32 trust', ''].join('\n'),
  });
  const files = installServerCert(certs, server.cluster.dataDir);
  const c = new pg.Client({ host: server.cluster.socketDir, port: server.port, user: 'postgres', database: 'postgres' });
  await c.connect();
  await c.query('ALTER SYSTEM SET ssl = on');
  await c.query(`ALTER SYSTEM SET ssl_cert_file = '${files.cert}'`);
  await c.query(`ALTER SYSTEM SET ssl_key_file = '${files.key}'`);
  await c.query('create role cert_user login');
  await c.end();
  await server.cluster.restart();
});
after(async () => {
  await server?.stop();
  certs?.cleanup();
});

function clientTlsSettings(mode: string) {
  return {
    client_tls_sslmode: mode,
    client_tls_key_file: certs.serverKey,
    client_tls_cert_file: certs.serverCert,
    client_tls_ca_file: certs.caCert,
    server_tls_sslmode: 'verify-full',
    server_tls_ca_file: certs.caCert,
  };
}

async function withSluice(settings: Record<string, string | number | boolean>, fn: (s: TestSluice) => Promise<void>) {
  const s = await startSluice({ pg: server, settings: { pool_mode: 'transaction', ...settings } });
  try {
    await fn(s);
  } finally {
    await s.stop();
  }
}

test('psql with sslmode=verify-full through Sluice, and Sluice to PostgreSQL under server_tls_sslmode=verify-full', async () => {
  await withSluice(clientTlsSettings('require'), async (s) => {
    const r = await run('psql', [
      `host=localhost port=${s.port} user=postgres dbname=postgres sslmode=verify-full sslrootcert=${certs.caCert}`,
      '-XAtc',
      'select ssl from pg_stat_ssl where pid = pg_backend_pid()',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 't', 'the Sluice→PostgreSQL leg must be TLS (hostssl-only server)');
    assert.ok([...s.app.clients].length >= 0);
  });
});

test('client_tls_sslmode=require refuses a plaintext client with a clear error', async () => {
  await withSluice(clientTlsSettings('require'), async (s) => {
    const r = await run('psql', [`host=127.0.0.1 port=${s.port} user=postgres dbname=postgres sslmode=disable`, '-XAtc', 'select 1']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /SSL required/);
  });
});

test('node-postgres with a verified TLS connection; a wrong CA is refused by the client', async () => {
  await withSluice(clientTlsSettings('prefer'), async (s) => {
    const ok = new pg.Client({ host: 'localhost', port: s.port, user: 'postgres', database: 'postgres', ssl: { ca: readFileSync(certs.caCert, 'utf8') } });
    await ok.connect();
    assert.equal((await ok.query('select 1 as x')).rows[0].x, 1);
    // With client TLS on, connections are accepted as net.Sockets (TLS needs one), not bare handles.
    assert.ok([...s.app.clients].every((c) => c.socket !== null && c.tls), 'TLS clients have a socket');
    await ok.end();
    const bad = new pg.Client({ host: 'localhost', port: s.port, user: 'postgres', database: 'postgres', ssl: { ca: readFileSync(certs.otherCaCert, 'utf8') } });
    bad.on('error', () => {});
    await assert.rejects(bad.connect());
  });
});

test('auth_type=cert: the client certificate CN is the user; no certificate, no login', async () => {
  await withSluice({ ...clientTlsSettings('require'), auth_type: 'cert' }, async (s) => {
    const client = certs.clients.cert_user;
    const r = await run('psql', [
      `host=localhost port=${s.port} user=cert_user dbname=postgres sslmode=verify-full sslrootcert=${certs.caCert} sslcert=${client.cert} sslkey=${client.key}`,
      '-XAtc',
      'select current_user',
    ]);
    assert.equal(r.stdout.trim(), 'cert_user', r.stderr);
    const none = await run('psql', [`host=localhost port=${s.port} user=cert_user dbname=postgres sslmode=require`, '-XAtc', 'select 1']);
    assert.notEqual(none.code, 0);
  });
});

test('direct TLS (ALPN "postgresql", as PostgreSQL 17 sslnegotiation=direct) from a Node TLS client', async () => {
  await withSluice(clientTlsSettings('require'), async (s) => {
    const socket = tls.connect({ host: '127.0.0.1', port: s.port, servername: 'localhost', ca: readFileSync(certs.caCert), ALPNProtocols: ['postgresql'] });
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    assert.equal(socket.alpnProtocol, 'postgresql');
    const msgs = readMessages(socket as unknown as import('node:net').Socket);
    socket.write(startupMessage({ user: 'postgres', database: 'postgres' }));
    await msgs.until((m) => m.type === 'Z');
    socket.destroy();
    // Without ALPN the handshake is refused.
    const noAlpn = tls.connect({ host: '127.0.0.1', port: s.port, servername: 'localhost', ca: readFileSync(certs.caCert) });
    noAlpn.on('error', () => {});
    await new Promise<void>((resolve) => noAlpn.once('close', () => resolve()));
  });
});

test('GSSENCRequest is answered N and the client goes on in plain text', async () => {
  await withSluice({}, async (s) => {
    const r = await run('psql', [`host=127.0.0.1 port=${s.port} user=postgres dbname=postgres gssencmode=prefer sslmode=disable`, '-XAtc', 'select 5']);
    assert.equal(r.stdout.trim(), '5', r.stderr);
  });
});

test('RELOAD re-reads the client TLS certificate files', async () => {
  const { buildConfig } = await import('../src/config/index.js');
  const second = generateCerts({ users: [] });
  const settings = { listen_addr: '127.0.0.1', listen_port: 0, unix_socket_dir: '', auth_type: 'trust', pool_mode: 'transaction', admin_users: 'postgres' };
  const databases = { '*': `host=127.0.0.1 port=${server.port}` };
  await withSluice(clientTlsSettings('require'), async (s) => {
    const verify = (ca: string) =>
      run('psql', [`host=localhost port=${s.port} user=postgres dbname=postgres sslmode=verify-full sslrootcert=${ca}`, '-XAtc', 'select 1']);
    assert.equal((await verify(certs.caCert)).stdout.trim(), '1');
    assert.notEqual((await verify(second.caCert)).code, 0, 'the second CA does not sign the current certificate yet');
    s.app.reload(
      buildConfig({
        settings: { ...settings, ...clientTlsSettings('require'), client_tls_key_file: second.serverKey, client_tls_cert_file: second.serverCert, client_tls_ca_file: second.caCert },
        databases,
      }),
    );
    assert.equal((await verify(second.caCert)).stdout.trim(), '1', 'new connections present the reloaded certificate');
    assert.notEqual((await verify(certs.caCert)).code, 0);
  });
  second.cleanup();
});

test('a RELOAD that turns client TLS on: a client accepted before it (no net.Socket) is answered N and, under require, refused; new clients get TLS', async () => {
  const { buildConfig } = await import('../src/config/index.js');
  const settings = { listen_addr: '127.0.0.1', listen_port: 0, unix_socket_dir: '', auth_type: 'trust', pool_mode: 'transaction', admin_users: 'postgres' };
  const databases = { '*': `host=127.0.0.1 port=${server.port}` };
  await withSluice({}, async (s) => {
    const early = net.connect(s.port, '127.0.0.1');
    await once(early, 'connect');
    const messages = readMessages(early, { rawFirstByte: true });
    await waitFor(() => s.app.clients.size === 1, 'Sluice to accept the early client');
    assert.equal([...s.app.clients][0].socket, null, 'accepted while TLS was off: a bare handle, which cannot be upgraded');

    s.app.reload(buildConfig({ settings: { ...settings, ...clientTlsSettings('require') }, databases }));

    early.write(sslRequest());
    const answer = await messages.until(() => true);
    assert.equal(answer.type, 'N', 'the early client cannot be upgraded, so it is told N');
    early.write(startupMessage({ user: 'postgres', database: 'postgres' }));
    const refusal = await messages.until((m) => m.type === 'E');
    assert.equal(refusal.fields?.get('C'), '28000');
    assert.match(refusal.fields?.get('M') ?? '', /SSL required/);
    await messages.closed;

    const r = await run('psql', [`host=localhost port=${s.port} user=postgres dbname=postgres sslmode=verify-full sslrootcert=${certs.caCert}`, '-XAtc', 'select ssl from pg_stat_ssl where pid = pg_backend_pid()']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 't', 'a client after the RELOAD gets TLS');
  });
});

// Found in review: auth_type = hba asked every TLS client for a certificate
// (and would not start without client_tls_ca_file) whether or not a rule used
// cert; and the hba file was first read at the first login, so a broken one
// turned every login into an error showing its path.
test('auth_type = hba: certificates are asked for only when a rule uses cert; a broken file is refused at start and on RELOAD', async () => {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const { buildConfig } = await import('../src/config/index.js');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-hba-'));
  const hba = path.join(dir, 'hba.conf');
  writeFileSync(hba, 'hostssl all all 127.0.0.1/32 trust\n');
  const settings = {
    client_tls_sslmode: 'require',
    client_tls_key_file: certs.serverKey,
    client_tls_cert_file: certs.serverCert,
    server_tls_sslmode: 'require',
    auth_type: 'hba',
    auth_hba_file: hba,
  };
  const s = await startSluice({ pg: server, settings });
  try {
    const r = await run('psql', [`host=127.0.0.1 port=${s.port} user=postgres dbname=postgres sslmode=require`, '-XAtc', 'select 1']);
    assert.equal(r.stdout.trim(), '1', r.stderr);
    writeFileSync(hba, 'host all all 127.0.0.1/33 trust\n');
    const base = { listen_addr: '127.0.0.1', listen_port: s.port, unix_socket_dir: '', admin_users: 'postgres', ...settings };
    assert.throws(() => s.app.reload(buildConfig({ settings: base, databases: { '*': `host=127.0.0.1 port=${server.port}` } })), /hba\.conf:1/);
    const again = await run('psql', [`host=127.0.0.1 port=${s.port} user=postgres dbname=postgres sslmode=require`, '-XAtc', 'select 2']);
    assert.equal(again.stdout.trim(), '2', 'the old rules stay after a refused RELOAD');
  } finally {
    await s.stop();
  }
  await assert.rejects(startSluice({ pg: server, settings }), /hba\.conf:1/);
});
