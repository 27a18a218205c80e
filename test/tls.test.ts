import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import {
  certCommonName,
  clientTlsOptions,
  serverTlsConnectOptions,
  serverTlsPlan,
  tlsCiphers,
  tlsProtocolRange,
  verifiedClientCommonName,
  upgradeClientSocket,
} from '../src/auth/tls.js';
import { AuthError } from '../src/auth/errors.js';
import { generateCerts } from './harness/certs.js';
import type { Settings } from '../src/config/types.js';

const certs = generateCerts({ users: ['alice'] });
after(() => certs.cleanup());

test('client_tls_protocols spellings', () => {
  assert.deepEqual(tlsProtocolRange('secure'), { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' });
  assert.deepEqual(tlsProtocolRange(''), { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' });
  assert.deepEqual(tlsProtocolRange('all'), { minVersion: 'TLSv1', maxVersion: 'TLSv1.3' });
  assert.deepEqual(tlsProtocolRange('tlsv1.3'), { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' });
  assert.deepEqual(tlsProtocolRange('TLSv1.2, tlsv1.3'), { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' });
  assert.throws(() => tlsProtocolRange('sslv3'), (e: unknown) => e instanceof AuthError && e.code === 'SLUICE_AUTH_TLS_CONFIG');
  assert.equal(tlsCiphers('default'), undefined);
  assert.equal(tlsCiphers('HIGH:!aNULL'), 'HIGH:!aNULL');
});

test('server_tls_sslmode plans follow libpq', () => {
  assert.deepEqual(serverTlsPlan('disable'), { sendSSLRequest: false, tlsRequired: false, retryWithTls: false, verify: 'none' });
  assert.deepEqual(serverTlsPlan('allow'), { sendSSLRequest: false, tlsRequired: false, retryWithTls: true, verify: 'none' });
  assert.deepEqual(serverTlsPlan('prefer'), { sendSSLRequest: true, tlsRequired: false, retryWithTls: false, verify: 'none' });
  assert.equal(serverTlsPlan('require').verify, 'none');
  assert.equal(serverTlsPlan('require', true).verify, 'chain');
  assert.equal(serverTlsPlan('verify-ca').verify, 'chain');
  assert.equal(serverTlsPlan('verify-full').verify, 'full');
  const base = { server_tls_ca_file: '', server_tls_key_file: '', server_tls_cert_file: '', server_tls_protocols: 'secure', server_tls_ciphers: 'default' };
  assert.equal(serverTlsConnectOptions({ ...base, server_tls_sslmode: 'disable' }, 'h'), null);
  assert.throws(() => serverTlsConnectOptions({ ...base, server_tls_sslmode: 'verify-full' }, 'h'), /server_tls_ca_file/);
  const o = serverTlsConnectOptions({ ...base, server_tls_sslmode: 'require' }, 'db.example')!;
  assert.equal(o.rejectUnauthorized, false);
  assert.equal(o.servername, 'db.example');
  assert.equal(serverTlsConnectOptions({ ...base, server_tls_sslmode: 'require' }, '10.0.0.1')!.servername, undefined);
});

function clientSettings(extra: Partial<Settings>): Settings {
  return {
    client_tls_sslmode: 'require',
    client_tls_key_file: certs.serverKey,
    client_tls_cert_file: certs.serverCert,
    client_tls_ca_file: certs.caCert,
    client_tls_protocols: 'secure',
    client_tls_ciphers: 'default',
    auth_type: 'scram-sha-256',
    ...extra,
  } as Settings;
}

/** Accepts one TLS client with our options, upgrading a plain socket as the pooler does after SSLRequest. */
async function handshake(extra: Partial<Settings>, client: tls.ConnectionOptions): Promise<{ cn: string | undefined; authorized: boolean } | Error> {
  const opts = clientTlsOptions(clientSettings(extra))!;
  const srv = net.createServer();
  const seen = new Promise<{ cn: string | undefined; authorized: boolean } | Error>((resolve) => {
    srv.once('connection', (sock: net.Socket) => {
      upgradeClientSocket(sock, opts, 5_000).then(
        (s) => {
          resolve({ cn: verifiedClientCommonName(s), authorized: s.authorized });
          s.end();
        },
        (err: Error) => resolve(err),
      );
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  try {
    const c = tls.connect({ port, host: '127.0.0.1', ca: readFileSync(certs.caCert), ...client });
    c.on('error', () => {});
    const res = await seen;
    c.destroy();
    return res;
  } finally {
    srv.close();
  }
}

test('accepting client TLS: cert auth reads only a verified CN; verify-full enforces it', async () => {
  const load = (c: { cert: string; key: string }) => ({ cert: readFileSync(c.cert), key: readFileSync(c.key) });
  const alice = load(certs.clients.alice!);
  const forged = load(certs.untrustedClient!);
  assert.deepEqual(await handshake({ auth_type: 'cert' }, alice), { cn: 'alice', authorized: true });
  // A certificate from another CA with the same CN is not trusted.
  assert.deepEqual(await handshake({ auth_type: 'cert' }, forged), { cn: undefined, authorized: false });
  // require without cert auth: no client certificate requested, no CN.
  assert.deepEqual(await handshake({}, alice), { cn: undefined, authorized: false });
  // verify-full refuses clients without a valid certificate at the handshake.
  assert.ok((await handshake({ client_tls_sslmode: 'verify-full' }, {})) instanceof Error);
  assert.ok((await handshake({ client_tls_sslmode: 'verify-full' }, forged)) instanceof Error);
  assert.deepEqual(await handshake({ client_tls_sslmode: 'verify-full' }, alice), { cn: 'alice', authorized: true });
});

test('clientTlsOptions validates settings', () => {
  assert.equal(clientTlsOptions(clientSettings({ client_tls_sslmode: 'disable' })), null);
  assert.throws(() => clientTlsOptions(clientSettings({ client_tls_key_file: '' })), /client_tls_key_file/);
  assert.throws(() => clientTlsOptions(clientSettings({ auth_type: 'cert', client_tls_ca_file: '' })), /client_tls_ca_file/);
  assert.throws(() => clientTlsOptions(clientSettings({ client_tls_cert_file: '/nonexistent' })), /cannot read/);
  const o = clientTlsOptions(clientSettings({ client_tls_protocols: 'tlsv1.3' }))!;
  assert.equal(o.context.minVersion, 'TLSv1.3');
  assert.equal(o.requestCert, false);
  assert.equal(certCommonName(undefined), undefined);
  assert.equal(certCommonName({}), undefined);
});
