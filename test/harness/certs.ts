// Test certificates made at test time with the openssl CLI: a CA, a server
// certificate for 127.0.0.1/localhost, client certificates with CN=<user>, and
// a second, unrelated CA for negative tests.
// As root, PostgreSQL runs as an unprivileged user (see src/embedded/cluster.ts)
// and insists that its key file is owned by that user with mode 0600:
// installServerCert() copies the pair into the cluster with the right owner.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface TestCerts {
  readonly dir: string;
  readonly caCert: string;
  readonly caKey: string;
  readonly serverCert: string;
  readonly serverKey: string;
  /** Client cert/key per requested user (CN = user). */
  readonly clients: Readonly<Record<string, { readonly cert: string; readonly key: string }>>;
  /** Another CA: the server certificate does not verify against it. */
  readonly otherCaCert: string;
  /** A client cert with CN=<first user> signed by the other CA (must not be trusted). */
  readonly untrustedClient: { readonly cert: string; readonly key: string } | undefined;
  cleanup(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

const KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function makeCa(dir: string, name: string, cn: string): void {
  openssl(
    ['req', '-x509', ...KEY, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${cn}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    dir,
  );
}

function makeLeaf(dir: string, name: string, cn: string, ext: string, ca = 'ca'): void {
  writeFileSync(path.join(dir, `${name}.ext`), ext);
  openssl(['req', ...KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
  const serial = '0x' + Math.floor(Math.random() * 2 ** 48).toString(16);
  openssl(
    ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-set_serial', serial,
      '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`],
    dir,
  );
}

/** Generates the certificates into a fresh temp dir (world-readable certs, 0600 keys). */
export function generateCerts(options: { users?: readonly string[] } = {}): TestCerts {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-certs-'));
  chmodSync(dir, 0o755);
  makeCa(dir, 'ca', 'Sluice Test CA');
  makeCa(dir, 'other-ca', 'Sluice Other CA');
  makeLeaf(dir, 'server', 'localhost',
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  const clients: Record<string, { cert: string; key: string }> = {};
  for (const [i, user] of (options.users ?? []).entries()) {
    const name = `client${i}`;
    makeLeaf(dir, name, user, 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
    clients[user] = { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
  }
  const first = options.users?.[0];
  if (first !== undefined) {
    makeLeaf(dir, 'untrusted', first, 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n', 'other-ca');
  }
  for (const f of ['ca.crt', 'other-ca.crt', 'server.crt']) chmodSync(path.join(dir, f), 0o644);
  return {
    dir,
    caCert: path.join(dir, 'ca.crt'),
    caKey: path.join(dir, 'ca.key'),
    serverCert: path.join(dir, 'server.crt'),
    serverKey: path.join(dir, 'server.key'),
    clients,
    otherCaCert: path.join(dir, 'other-ca.crt'),
    untrustedClient: first === undefined ? undefined : { cert: path.join(dir, 'untrusted.crt'), key: path.join(dir, 'untrusted.key') },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * Copies server.crt, server.key and root.crt (the CA) into `targetDir` (e.g. a
 * cluster's data dir), owned by whoever owns `targetDir`, keys mode 0600.
 * Returns absolute paths for ssl_cert_file / ssl_key_file / ssl_ca_file.
 */
export function installServerCert(certs: TestCerts, targetDir: string): { cert: string; key: string; ca: string } {
  const { uid, gid } = statSync(targetDir);
  const out = { cert: path.join(targetDir, 'server.crt'), key: path.join(targetDir, 'server.key'), ca: path.join(targetDir, 'root.crt') };
  const copies: [string, string, number][] = [
    [certs.serverCert, out.cert, 0o644],
    [certs.serverKey, out.key, 0o600],
    [certs.caCert, out.ca, 0o644],
  ];
  for (const [from, to, mode] of copies) {
    copyFileSync(from, to);
    chmodSync(to, mode);
    if (typeof process.getuid === 'function' && process.getuid() === 0) chownSync(to, uid, gid);
  }
  return out;
}
