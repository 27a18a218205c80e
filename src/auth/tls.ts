// TLS settings → Node TLS options, with PgBouncer's spellings and libpq's sslmode meanings.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { PeerCertificate, SecureContextOptions, SecureVersion, TLSSocket } from 'node:tls';
import type { Settings, TlsMode } from '../config/types.js';
import { AuthError } from './errors.js';

const VERSIONS: readonly SecureVersion[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];
const PROTOCOL_WORDS: Readonly<Record<string, readonly SecureVersion[]>> = {
  secure: ['TLSv1.2', 'TLSv1.3'],
  default: ['TLSv1.2', 'TLSv1.3'],
  all: VERSIONS,
  legacy: VERSIONS,
  'tlsv1.0': ['TLSv1'],
  tlsv1: ['TLSv1'],
  'tlsv1.1': ['TLSv1.1'],
  'tlsv1.2': ['TLSv1.2'],
  'tlsv1.3': ['TLSv1.3'],
};

/**
 * `*_tls_protocols` (e.g. "secure", "all", "tlsv1.2,tlsv1.3") → minVersion/maxVersion.
 * Node can only express a range, so a list with gaps spans from its lowest to its highest.
 */
export function tlsProtocolRange(spec: string): { minVersion: SecureVersion; maxVersion: SecureVersion } {
  const words = (spec.trim() === '' ? 'secure' : spec).split(/[\s,:]+/).filter(Boolean).map((w) => w.toLowerCase());
  const idx: number[] = [];
  for (const w of words) {
    const vs = PROTOCOL_WORDS[w];
    if (!vs) throw new AuthError('SLUICE_AUTH_TLS_CONFIG', `unknown TLS protocol "${w}" (use secure, all, tlsv1.0, tlsv1.1, tlsv1.2, tlsv1.3)`);
    for (const v of vs) idx.push(VERSIONS.indexOf(v));
  }
  return { minVersion: VERSIONS[Math.min(...idx)]!, maxVersion: VERSIONS[Math.max(...idx)]! };
}

/** `*_tls_ciphers`: PgBouncer's keywords or an OpenSSL cipher list; undefined keeps Node's secure default. */
export function tlsCiphers(spec: string): string | undefined {
  const s = spec.trim().toLowerCase();
  if (s === '' || s === 'default' || s === 'secure' || s === 'fast') return undefined;
  if (s === 'normal' || s === 'compat') return 'HIGH:!aNULL';
  if (s === 'legacy') return 'HIGH:MEDIUM:!aNULL';
  if (s === 'insecure' || s === 'all') return 'ALL:!aNULL:!eNULL';
  return spec.trim();
}

function readPem(file: string, setting: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new AuthError('SLUICE_AUTH_TLS_CONFIG', `${setting} = ${file}: cannot read (${(err as Error).message})`, { cause: err });
  }
}

type ClientTlsSettings = Pick<
  Settings,
  'client_tls_sslmode' | 'client_tls_key_file' | 'client_tls_cert_file' | 'client_tls_ca_file' | 'client_tls_protocols' | 'client_tls_ciphers' | 'auth_type'
>;

export interface ClientTlsOptions {
  /** For tls.createSecureContext(). */
  readonly context: SecureContextOptions;
  /** Ask clients for a certificate (verify-ca/verify-full, auth_type=cert, or hba cert rules). */
  readonly requestCert: boolean;
  /** Refuse the handshake without a valid client certificate (verify-ca/verify-full). */
  readonly rejectUnauthorized: boolean;
}

/**
 * Options for accepting TLS from clients; null when client_tls_sslmode = disable.
 * Pass `needClientCerts: true` when auth_hba_file has cert rules.
 * @example const o = clientTlsOptions(settings); const tlsSock = o && await upgradeClientSocket(sock, o, 10_000)
 */
export function clientTlsOptions(s: ClientTlsSettings, needClientCerts = false): ClientTlsOptions | null {
  if (s.client_tls_sslmode === 'disable') return null;
  if (!s.client_tls_key_file || !s.client_tls_cert_file) {
    throw new AuthError('SLUICE_AUTH_TLS_CONFIG', `client_tls_sslmode = ${s.client_tls_sslmode} needs client_tls_key_file and client_tls_cert_file`);
  }
  const verify = s.client_tls_sslmode === 'verify-ca' || s.client_tls_sslmode === 'verify-full';
  const requestCert = verify || s.auth_type === 'cert' || needClientCerts;
  if (requestCert && !s.client_tls_ca_file) {
    throw new AuthError('SLUICE_AUTH_TLS_CONFIG', 'client certificates are requested but client_tls_ca_file is not set');
  }
  const context: SecureContextOptions = {
    key: readPem(s.client_tls_key_file, 'client_tls_key_file'),
    cert: readPem(s.client_tls_cert_file, 'client_tls_cert_file'),
    ...(s.client_tls_ca_file ? { ca: readPem(s.client_tls_ca_file, 'client_tls_ca_file') } : {}),
    ...tlsProtocolRange(s.client_tls_protocols),
  };
  const ciphers = tlsCiphers(s.client_tls_ciphers);
  if (ciphers) context.ciphers = ciphers;
  return Object.freeze({ context, requestCert, rejectUnauthorized: verify });
}

export type ServerTlsVerify = 'none' | 'chain' | 'full';

export interface ServerTlsPlan {
  /** Send SSLRequest before the StartupMessage. */
  readonly sendSSLRequest: boolean;
  /** The server refusing TLS ('N') is fatal. */
  readonly tlsRequired: boolean;
  /** 'allow': connect in plain text first; retry with TLS only if the server refuses that. */
  readonly retryWithTls: boolean;
  /** 'none': no checks; 'chain': CA chain only; 'full': chain + host name. */
  readonly verify: ServerTlsVerify;
}

/**
 * What a server_tls_sslmode means (libpq semantics). As in libpq, `require` with a
 * root CA file (server_tls_ca_file) verifies the chain like `verify-ca`.
 */
export function serverTlsPlan(mode: TlsMode, hasCaFile = false): ServerTlsPlan {
  switch (mode) {
    case 'disable':
      return { sendSSLRequest: false, tlsRequired: false, retryWithTls: false, verify: 'none' };
    case 'allow':
      return { sendSSLRequest: false, tlsRequired: false, retryWithTls: true, verify: 'none' };
    case 'prefer':
      return { sendSSLRequest: true, tlsRequired: false, retryWithTls: false, verify: 'none' };
    case 'require':
      return { sendSSLRequest: true, tlsRequired: true, retryWithTls: false, verify: hasCaFile ? 'chain' : 'none' };
    case 'verify-ca':
      return { sendSSLRequest: true, tlsRequired: true, retryWithTls: false, verify: 'chain' };
    case 'verify-full':
      return { sendSSLRequest: true, tlsRequired: true, retryWithTls: false, verify: 'full' };
  }
}

type ServerTlsSettings = Pick<
  Settings,
  'server_tls_sslmode' | 'server_tls_ca_file' | 'server_tls_key_file' | 'server_tls_cert_file' | 'server_tls_protocols' | 'server_tls_ciphers'
>;

/**
 * tls.connect() options towards PostgreSQL at `host` (after it answered 'S' to
 * SSLRequest: pass the plain socket as `socket`). Null when the mode never uses TLS.
 */
export function serverTlsConnectOptions(s: ServerTlsSettings, host: string, socket?: net.Socket): tls.ConnectionOptions | null {
  const plan = serverTlsPlan(s.server_tls_sslmode, !!s.server_tls_ca_file);
  if (!plan.sendSSLRequest && !plan.retryWithTls) return null;
  if (plan.verify !== 'none' && !s.server_tls_ca_file) {
    throw new AuthError('SLUICE_AUTH_TLS_CONFIG', `server_tls_sslmode = ${s.server_tls_sslmode} needs server_tls_ca_file`);
  }
  if (!!s.server_tls_cert_file !== !!s.server_tls_key_file) {
    throw new AuthError('SLUICE_AUTH_TLS_CONFIG', 'server_tls_cert_file and server_tls_key_file must be set together');
  }
  const opts: tls.ConnectionOptions = {
    ...tlsProtocolRange(s.server_tls_protocols),
    rejectUnauthorized: plan.verify !== 'none',
    ...(socket ? { socket } : {}),
    // SNI must not carry an IP address.
    ...(net.isIP(host) ? {} : { servername: host }),
  };
  if (s.server_tls_ca_file) opts.ca = readPem(s.server_tls_ca_file, 'server_tls_ca_file');
  if (s.server_tls_cert_file) {
    opts.cert = readPem(s.server_tls_cert_file, 'server_tls_cert_file');
    opts.key = readPem(s.server_tls_key_file, 'server_tls_key_file');
  }
  const ciphers = tlsCiphers(s.server_tls_ciphers);
  if (ciphers) opts.ciphers = ciphers;
  // Node checks the name by default; verify-ca and weaker must not, verify-full checks `host` explicitly
  // (with an upgraded socket Node would otherwise check against servername/'localhost').
  opts.checkServerIdentity =
    plan.verify === 'full' ? (_name: string, cert: PeerCertificate) => tls.checkServerIdentity(host, cert) : () => undefined;
  return opts;
}

/** The subject CN of a peer certificate, or undefined (no certificate / no CN / several CNs). */
export function certCommonName(peerCert: PeerCertificate | Record<string, never> | null | undefined): string | undefined {
  if (!peerCert || !('subject' in peerCert) || !peerCert.subject) return undefined;
  const cn: unknown = (peerCert.subject as unknown as Record<string, unknown>).CN;
  return typeof cn === 'string' && cn.length > 0 ? cn : undefined;
}

/**
 * Upgrades an accepted plain socket (after answering 'S' to SSLRequest) to TLS as a server.
 * Goes through a tls.Server rather than `new tls.TLSSocket(socket, { isServer: true })`:
 * a bare server-side TLSSocket never sets `authorized` and does not enforce
 * `rejectUnauthorized` for client certificates. Rejects on handshake failure or after `timeoutMs`.
 */
export function upgradeClientSocket(socket: net.Socket, options: ClientTlsOptions, timeoutMs: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const server = tls.createServer({
      ...options.context,
      requestCert: options.requestCert,
      rejectUnauthorized: options.rejectUnauthorized,
      handshakeTimeout: Math.max(1, timeoutMs),
    });
    server.once('secureConnection', (t: TLSSocket) => resolve(t));
    server.once('tlsClientError', (err: Error, t: TLSSocket) => {
      t.destroy();
      reject(err);
    });
    server.emit('connection', socket);
  });
}

/**
 * For auth_type = cert: the CN of the client's certificate, only if TLS verified it
 * against client_tls_ca_file. The socket must come from upgradeClientSocket (or a tls.Server).
 */
export function verifiedClientCommonName(socket: TLSSocket): string | undefined {
  if (!socket.authorized) return undefined;
  return certCommonName(socket.getPeerCertificate());
}
