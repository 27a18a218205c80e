// sslmode with libpq's meanings, turned into Node TLS options for `pg`.
//
// Why this exists: `pg` reads ssl* parameters from the connection string and
// lets them override the `ssl` object, and its historic mapping makes
// `sslmode=require` verify the certificate chain against Node's public CAs,
// which fails for private CAs and pushes people to `rejectUnauthorized: false`
// everywhere. We strip every TLS parameter from the URL and build the `ssl`
// object ourselves, so what the URL says is what happens.
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { TlsConfigError } from './errors.js';

/** libpq's sslmode values the kit honours (`allow` is refused: `pg` cannot fall back from plaintext to TLS). */
export type SslMode = 'disable' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';

const MODES: readonly string[] = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full'];

/** URL query parameters that are TLS settings; they never reach `pg`. */
export const TLS_URL_PARAMS: readonly string[] = Object.freeze([
  'ssl',
  'sslmode',
  'sslrootcert',
  'sslcert',
  'sslkey',
  'sslpassword',
  'sslnegotiation',
  'sslsni',
  'sslcrl',
  'uselibpqcompat',
]);

export interface TlsInput {
  /** Host the client connects to: decides whether the "remote" defaults apply. */
  readonly host: string;
  readonly sslmode?: string | undefined;
  /** CA bundle path, or `system` for Node's public CAs (libpq 16's meaning). */
  readonly sslrootcert?: string | undefined;
  readonly sslcert?: string | undefined;
  readonly sslkey?: string | undefined;
  readonly sslpassword?: string | undefined;
  /** Environment for PGSSLMODE / PGSSLROOTCERT / PGSSLCERT / PGSSLKEY and HOME. */
  readonly env?: NodeJS.ProcessEnv;
}

export interface TlsPolicy {
  readonly mode: SslMode;
  /** What goes into `pg`'s `ssl` option. */
  readonly ssl: false | ConnectionOptions;
  /** Whether the server certificate chain is checked against a CA. */
  readonly verifiesChain: boolean;
  /** Whether the host name is checked against the certificate. */
  readonly verifiesHost: boolean;
  /** Why the mode was chosen (explicit, CA given, localhost, remote default). */
  readonly reason: string;
  /** A warning to log once, when the choice is weaker than it should be. */
  readonly warning?: string;
}

/** True for loopback addresses, `localhost` and Unix-socket directories. */
export function isLocalHost(host: string): boolean {
  if (host === '' || host.startsWith('/') || host === 'localhost') return true;
  const bare = host.replace(/^\[|\]$/g, '');
  if (net.isIPv4(bare)) return bare.startsWith('127.');
  if (net.isIPv6(bare)) return bare === '::1';
  return false;
}

function readFile(what: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new TlsConfigError(`cannot read ${what} ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Decide the TLS policy for one connection target.
 *
 * @example
 * resolveTls({ host: 'db.example.com', sslmode: 'verify-full', sslrootcert: '/etc/ssl/rds-ca.pem' });
 */
export function resolveTls(input: TlsInput): TlsPolicy {
  const env = input.env ?? process.env;
  const local = isLocalHost(input.host);
  const requested = input.sslmode ?? env.PGSSLMODE;
  let rootcert = input.sslrootcert ?? env.PGSSLROOTCERT;
  // libpq also looks for ~/.postgresql/root.crt; its presence turns require into verify-ca.
  if (rootcert === undefined) {
    const home = env.HOME ?? os.homedir();
    const implicit = path.join(home, '.postgresql', 'root.crt');
    if (home && existsSync(implicit)) rootcert = implicit;
  }
  let mode: SslMode;
  let reason: string;
  let warning: string | undefined;
  if (requested !== undefined && requested !== '') {
    if (requested === 'allow') {
      throw new TlsConfigError("sslmode=allow is not supported: use 'disable' or 'prefer' (pg cannot retry plaintext-then-TLS)");
    }
    if (!MODES.includes(requested)) throw new TlsConfigError(`unknown sslmode '${requested}'; expected one of ${MODES.join(', ')}`);
    mode = requested as SslMode;
    reason = 'sslmode given';
  } else if (rootcert !== undefined) {
    mode = 'verify-full';
    reason = 'a CA was given';
  } else if (local) {
    // Over loopback TLS protects nothing; libpq would say prefer, we avoid the probe.
    mode = 'disable';
    reason = 'local host';
  } else {
    mode = 'require';
    reason = 'remote host without a CA';
    warning =
      `TLS to ${input.host} is encrypted but the server certificate is not verified (sslmode=require, no CA). ` +
      'Set sslrootcert=<ca file> (or sslrootcert=system for public CAs) and sslmode=verify-full.';
  }
  if (rootcert === 'system' && mode !== 'verify-full') {
    // libpq 16 refuses weaker modes with sslrootcert=system, since any public cert would pass.
    throw new TlsConfigError(`sslrootcert=system requires sslmode=verify-full, not ${mode}`);
  }
  if (mode === 'disable') return { mode, ssl: false, verifiesChain: false, verifiesHost: false, reason };

  const ssl: ConnectionOptions = {};
  if (input.sslcert ?? env.PGSSLCERT) ssl.cert = readFile('client certificate', (input.sslcert ?? env.PGSSLCERT)!);
  if (input.sslkey ?? env.PGSSLKEY) ssl.key = readFile('client key', (input.sslkey ?? env.PGSSLKEY)!);
  if (input.sslpassword) ssl.passphrase = input.sslpassword;
  if (rootcert !== undefined && rootcert !== 'system') ssl.ca = readFile('CA file (sslrootcert)', rootcert);

  // libpq: require/prefer with a CA present verify the chain (verify-ca semantics).
  const verifiesChain = mode === 'verify-ca' || mode === 'verify-full' || rootcert !== undefined;
  const verifiesHost = mode === 'verify-full';
  if ((mode === 'verify-ca' || mode === 'verify-full') && rootcert === undefined) {
    throw new TlsConfigError(
      `sslmode=${mode} needs a CA: set sslrootcert=<file> (or PGSSLROOTCERT), or sslrootcert=system to trust public CAs`,
    );
  }
  ssl.rejectUnauthorized = verifiesChain;
  if (verifiesChain && !verifiesHost) ssl.checkServerIdentity = () => undefined;
  return { mode, ssl, verifiesChain, verifiesHost, reason, ...(warning ? { warning } : {}) };
}
