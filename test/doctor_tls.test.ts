// TLS off vs verify-full against a TLS-enabled PostgreSQL, with a CA and server
// certificate made by the openssl CLI for this run.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runDoctor, type CheckResult, type DoctorReport } from '../src/cli/doctor.js';
import { startPostgres, type TestPostgres } from './harness/postgres.js';

interface Pki {
  dir: string;
  ca: string;
  cert: string;
  key: string;
}

// PostgreSQL runs as `postgres` when we are root (see src/embedded/cluster.ts) and refuses a key it does not own with mode 0600.
function makePki(): Pki {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-tls-'));
  const p = (f: string): string => path.join(dir, f);
  const ssl = (args: string[]): void => void execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  ssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.crt'), '-days', '2', '-subj', '/CN=sluice test CA']);
  ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=localhost']);
  writeFileSync(p('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n');
  ssl(['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('server.crt'), '-days', '2', '-extfile', p('ext.cnf')]);
  chmodSync(dir, 0o755);
  chmodSync(p('server.key'), 0o600);
  chmodSync(p('server.crt'), 0o644);
  if (process.getuid?.() === 0) {
    const who = ['postgres', 'nobody'].find((u) => {
      try {
        execFileSync('id', ['-u', u], { stdio: 'ignore' });
        return true;
      } catch {
        return false;
      }
    });
    if (who) {
      const uid = Number(execFileSync('id', ['-u', who], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', who], { encoding: 'utf8' }).trim());
      chownSync(p('server.key'), uid, gid);
      chownSync(p('server.crt'), uid, gid);
    }
  }
  return { dir, ca: p('ca.crt'), cert: p('server.crt'), key: p('server.key') };
}

let pki: Pki;
let server: TestPostgres;

before(async () => {
  pki = makePki();
  server = await startPostgres({ conf: { ssl: 'on', ssl_cert_file: `'${pki.cert}'`, ssl_key_file: `'${pki.key}'` } });
});
after(async () => {
  await server?.stop();
  rmSync(pki.dir, { recursive: true, force: true });
});

function tls(r: DoctorReport): CheckResult {
  const c = r.checks.find((x) => x.id === 'tls');
  assert.ok(c);
  return c;
}

test('sslmode=disable: TLS reported off, by the client and by pg_stat_ssl', async () => {
  const r = await runDoctor({ url: server.url() + '?sslmode=disable' });
  const c = tls(r);
  assert.equal(c.ok, false);
  assert.equal(c.severity, 'warning'); // loopback; a remote host would be critical
  assert.match(c.detail, /^Not in use \(sslmode=disable\)/);
  assert.equal(c.data['clientTls'], false);
  assert.deepEqual((c.data['server'] as { ssl: boolean }).ssl, false);
  assert.ok(c.advice.some((a) => /verify-full/.test(a)));
});

test('sslmode=verify-full with the CA: TLS on, certificate and host name verified', async () => {
  const r = await runDoctor({ url: `${server.url()}?sslmode=verify-full&sslrootcert=${encodeURIComponent(pki.ca)}` });
  const c = tls(r);
  assert.equal(c.ok, true, c.detail);
  assert.match(c.detail, /^In use \(TLSv1\.[23], [^)]+\); the certificate chain and host name are verified \(sslmode=verify-full/);
  assert.equal(c.data['clientTls'], true);
  assert.equal((c.data['server'] as { ssl: boolean }).ssl, true);
});

test('sslmode=require: TLS on but certificates not verified', async () => {
  const c = tls(await runDoctor({ url: server.url() + '?sslmode=require' }));
  assert.equal(c.ok, false);
  assert.match(c.detail, /certificates are NOT verified \(sslmode=require\)/);
  const def = tls(await runDoctor({ url: server.url() }));
  assert.match(def.detail, /NOT verified \(sslmode=prefer, the default\)/);
});

test('verify-full without the right CA fails to connect, and says why', async () => {
  const r = await runDoctor({ url: server.url() + '?sslmode=verify-full' });
  const c = r.checks.find((x) => x.id === 'connection');
  assert.equal(c?.ok, false);
  assert.equal(r.critical, 1);
  assert.ok(c?.advice.some((a) => /sslrootcert/.test(a)), JSON.stringify(c));
});
