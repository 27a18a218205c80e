// Turns a DATABASE_URL into `pg` client options with libpq's sslmode meaning.
// pg's own URL parser treats sslmode=require as verify-full (and warns); the
// doctor must judge the URL the way libpq-based tools and the docs mean it, so
// we strip the TLS parameters and build the `ssl` option ourselves.
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';

export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';
const SSL_MODES: readonly SslMode[] = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'];
const TLS_PARAMS = ['sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'ssl', 'uselibpqcompat', 'sslnegotiation'];

export class DoctorUrlError extends Error {
  override readonly name = 'DoctorUrlError';
  readonly code = 'SLUICE_DOCTOR_BAD_URL';
}

export interface ParsedTarget {
  /** The URL with the password replaced by `***`, for output. */
  readonly redacted: string;
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password: string | undefined;
  /** From `sslmode`; libpq's default when absent is `prefer`. */
  readonly sslmode: SslMode;
  readonly sslmodeExplicit: boolean;
  readonly sslrootcert: string | undefined;
  /** The URL without TLS parameters, for `pg`'s connectionString. */
  readonly bareUrl: string;
  readonly sslcert: string | undefined;
  readonly sslkey: string | undefined;
}

export function parseTarget(url: string): ParsedTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new DoctorUrlError(`not a URL: ${JSON.stringify(redact(url))} (expected postgres://user:password@host:port/database)`);
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new DoctorUrlError(`unsupported scheme ${u.protocol} (expected postgres:// or postgresql://)`);
  }
  const modeRaw = u.searchParams.get('sslmode');
  if (modeRaw !== null && !SSL_MODES.includes(modeRaw as SslMode)) {
    throw new DoctorUrlError(`sslmode=${modeRaw} is not one of ${SSL_MODES.join(', ')}`);
  }
  const bare = new URL(u.toString());
  for (const p of TLS_PARAMS) bare.searchParams.delete(p);
  const host = decodeURIComponent(u.hostname.replace(/^\[|\]$/g, '')) || u.searchParams.get('host') || 'localhost';
  return {
    redacted: redact(url),
    host,
    port: u.port ? Number(u.port) : 5432,
    database: decodeURIComponent(u.pathname.replace(/^\//, '')) || decodeURIComponent(u.username) || 'postgres',
    user: decodeURIComponent(u.username) || process.env.USER || 'postgres',
    password: u.password ? decodeURIComponent(u.password) : undefined,
    sslmode: (modeRaw as SslMode | null) ?? 'prefer',
    sslmodeExplicit: modeRaw !== null,
    sslrootcert: u.searchParams.get('sslrootcert') ?? undefined,
    sslcert: u.searchParams.get('sslcert') ?? undefined,
    sslkey: u.searchParams.get('sslkey') ?? undefined,
    bareUrl: bare.toString(),
  };
}

export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/:\/\/([^:@/]*):[^@/]*@/, '://$1:***@');
  }
}

/** The `ssl` option for pg, or false. `prefer`/`allow` try TLS first; see `connectClient`. */
export function sslOption(t: ParsedTarget): false | ConnectionOptions {
  if (t.sslmode === 'disable') return false;
  const opts: ConnectionOptions = {};
  if (t.sslcert) opts.cert = readFileSync(t.sslcert);
  if (t.sslkey) opts.key = readFileSync(t.sslkey);
  // sslrootcert=system means the OS trust store, which is Node's default.
  if (t.sslrootcert && t.sslrootcert !== 'system') opts.ca = readFileSync(t.sslrootcert);
  if (t.sslmode === 'verify-full') return { ...opts, rejectUnauthorized: true };
  if (t.sslmode === 'verify-ca') return { ...opts, rejectUnauthorized: true, checkServerIdentity: () => undefined };
  return { ...opts, rejectUnauthorized: false };
}

export interface ConnectOptions {
  readonly database?: string;
  readonly applicationName?: string;
  readonly connectTimeoutMs?: number;
}

/** Connects like libpq would for this URL (including prefer's fallback to plain text). */
export async function connectClient(t: ParsedTarget, options: ConnectOptions = {}): Promise<pg.Client> {
  // pg lets the connection string override explicit options, so switch databases in the URL itself.
  let connectionString = t.bareUrl;
  if (options.database !== undefined) {
    const u = new URL(t.bareUrl);
    u.pathname = '/' + encodeURIComponent(options.database);
    connectionString = u.toString();
  }
  const base: pg.ClientConfig = {
    connectionString,
    application_name: options.applicationName ?? 'sluice doctor',
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
  };
  const ssl = sslOption(t);
  const attempt = async (withSsl: false | ConnectionOptions): Promise<pg.Client> => {
    const c = new pg.Client({ ...base, ssl: withSsl });
    // An idle client that the server terminates emits 'error'; don't let that crash the CLI.
    c.on('error', () => undefined);
    try {
      await c.connect();
      return c;
    } catch (err) {
      await c.end().catch(() => undefined);
      throw err;
    }
  };
  if (ssl === false) return attempt(false);
  try {
    return await attempt(ssl);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    if ((t.sslmode === 'prefer' || t.sslmode === 'allow') && /does not support SSL/i.test(msg)) return attempt(false);
    throw err;
  }
}
