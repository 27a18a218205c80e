// The [pgbouncer] section schema: every key Sluice implements (the Settings
// interface) plus every other PgBouncer 1.25 key, so real configs load
// quietly. Defaults are written in file units (seconds, bytes) and go through
// the same parsers as the file, so the default table cannot drift from them.

import type { AuthType, PinPolicy, PoolMode, Settings, TlsMode } from './types.js';
import {
  formatSeconds,
  parseBoolean,
  parseEnum,
  parseFileMode,
  parseFloatValue,
  parseInteger,
  parseList,
  parseListenAddress,
  parseSecondsToMs,
  parseSize,
  parseTlsProtocols,
} from './values.js';

export type SettingKind =
  | 'int' // plain integer
  | 'bool' // 1/0, yes/no, on/off, true/false
  | 'seconds' // seconds in the file, milliseconds in Settings
  | 'size' // bytes
  | 'enum'
  | 'string'
  | 'list' // comma-separated
  | 'float'
  | 'filemode' // octal with leading 0
  | 'address' // host:port or ''
  | 'tls-protocols';

export type SettingValue = string | number | boolean | readonly string[];

export interface SettingSpec {
  readonly key: string;
  readonly kind: SettingKind;
  /** PgBouncer's default (Sluice's for Sluice keys), written as in the file. */
  readonly default: string;
  /** Whether RELOAD / SIGHUP applies a change (PgBouncer's "changeable"). */
  readonly reloadable: boolean;
  /** True when Sluice implements it (it is a field of Settings). */
  readonly supported: boolean;
  /** True for keys PgBouncer does not have. */
  readonly sluice: boolean;
  readonly description: string;
  readonly values?: readonly string[];
  readonly min?: number;
  readonly max?: number;
  /** Unit in the file, for docs and SHOW CONFIG. */
  readonly unit?: 'seconds' | 'milliseconds' | 'bytes';
}

const POOL_MODES: readonly PoolMode[] = ['session', 'transaction', 'statement'];
const AUTH_TYPES: readonly AuthType[] = ['trust', 'any', 'plain', 'md5', 'scram-sha-256', 'cert', 'hba', 'pam', 'peer'];
const TLS_MODES: readonly TlsMode[] = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'];
export const PIN_POLICIES: readonly PinPolicy[] = ['pin', 'error', 'allow'];
export { POOL_MODES, AUTH_TYPES, TLS_MODES };

const DEFAULT_AUTH_QUERY =
  // Schema-qualified throughout, so a search_path on the lookup connection cannot redirect it.
  'SELECT rolname, CASE WHEN rolvaliduntil < pg_catalog.now() THEN NULL ELSE rolpassword END FROM pg_catalog.pg_authid WHERE rolname OPERATOR(pg_catalog.=) $1 AND rolcanlogin';

type SpecInput = Omit<SettingSpec, 'key' | 'supported' | 'sluice' | 'reloadable'> & {
  readonly reloadable?: boolean;
  readonly sluice?: boolean;
};

// Shorthands keep the table readable: one line per key.
const str = (def: string, description: string, o: Partial<SpecInput> = {}): SpecInput => ({ kind: 'string', default: def, description, ...o });
const int = (def: string, description: string, o: Partial<SpecInput> = {}): SpecInput => ({ kind: 'int', default: def, description, min: 0, ...o });
const bool = (def: string, description: string, o: Partial<SpecInput> = {}): SpecInput => ({ kind: 'bool', default: def, description, ...o });
const secs = (def: string, description: string, o: Partial<SpecInput> = {}): SpecInput => ({ kind: 'seconds', default: def, description, unit: 'seconds', ...o });
const size = (def: string, description: string, o: Partial<SpecInput> = {}): SpecInput => ({ kind: 'size', default: def, description, unit: 'bytes', ...o });
const list = (def: string, description: string, o: Partial<SpecInput> = {}): SpecInput => ({ kind: 'list', default: def, description, ...o });
const oneOf = (values: readonly string[], def: string, description: string, o: Partial<SpecInput> = {}): SpecInput => ({ kind: 'enum', values, default: def, description, ...o });
const fixed = { reloadable: false } as const; // CF_NO_RELOAD in PgBouncer: needs a restart

/** Keys Sluice implements. The mapped type makes the compiler check it covers Settings exactly. */
const SUPPORTED: { readonly [K in keyof Settings]: SpecInput } = {
  // listening
  listen_addr: str('', "Comma-separated addresses to accept TCP clients on; '*' is all; empty means Unix socket only.", fixed),
  listen_port: int('6432', 'Port for TCP and the Unix socket name (0: an ephemeral port, for tests).', { ...fixed, min: 0, max: 65535 }),
  listen_backlog: int('128', 'Backlog passed to listen(2).', { ...fixed, min: 1 }),
  unix_socket_dir: str('/tmp', 'Directory for the Unix socket; empty disables it.', fixed),
  unix_socket_mode: { kind: 'filemode', default: '0777', description: 'File mode of the Unix socket (octal).', reloadable: false },
  http_listen: { kind: 'address', default: '', description: 'host:port for the /metrics, /health and /ready endpoints; empty disables.', reloadable: false, sluice: true },

  // pooling
  pool_mode: oneOf(POOL_MODES, 'session', 'When a server connection goes back to the pool: after the session, transaction or statement.'),
  default_pool_size: int('20', 'Server connections per (database, user) pool unless overridden.'),
  min_pool_size: int('0', 'Keep at least this many server connections open per pool.'),
  reserve_pool_size: int('0', 'Extra connections a pool may open when clients wait longer than reserve_pool_timeout.'),
  reserve_pool_timeout: secs('5', 'How long a client waits before the reserve pool is used.'),
  max_client_conn: int('100', 'Maximum client connections in total.'),
  max_db_connections: int('0', 'Maximum server connections per database across users; 0 is unlimited.'),
  max_user_connections: int('0', 'Maximum server connections per user across databases; 0 is unlimited.'),
  max_db_client_connections: int('0', 'Maximum client connections per database; 0 is unlimited.'),
  max_user_client_connections: int('0', 'Maximum client connections per user; 0 is unlimited.'),
  server_round_robin: bool('0', 'Reuse server connections round-robin instead of LIFO.'),
  max_prepared_statements: int('200', 'Protocol-level prepared statements kept per server connection in transaction mode; 0 disables tracking.'),
  pin_policy: oneOf(PIN_POLICIES, 'pin', 'Transaction mode and session state that cannot be emulated: pin the client to its server, error, or allow silently.', { sluice: true }),
  ignore_startup_parameters: list('', 'Startup parameters to accept and ignore.'),
  track_extra_parameters: list('IntervalStyle', 'Reported parameters tracked per client besides the built-in ones.', fixed),

  // auth
  auth_type: oneOf(AUTH_TYPES, 'md5', 'How clients authenticate.'),
  auth_file: str('', 'userlist.txt with user names and secrets; relative paths are relative to the ini file.'),
  auth_hba_file: str('', 'pg_hba.conf-style file used when auth_type = hba.'),
  auth_user: str('', 'User that runs auth_query for users missing from auth_file.'),
  auth_query: str(DEFAULT_AUTH_QUERY, 'Query returning (user name, secret) for a user.'),
  auth_dbname: str('', 'Database (from [databases]) that auth_query runs in; empty means the client database.'),
  admin_users: list('', 'Users allowed to run every admin console command.'),
  stats_users: list('', 'Users allowed to run read-only SHOW commands on the admin console.'),

  // server connections
  server_reset_query: str('DISCARD ALL', 'Query run on a server connection before another client gets it (session mode).'),
  server_reset_query_always: bool('0', 'Run server_reset_query in every pool mode.'),
  server_check_delay: secs('30', 'How long a released connection may be reused without a health check.'),
  server_check_query: str('<empty>', "Health-check query; '' disables checks, '<empty>' sends an empty query."),
  server_fast_close: bool('0', 'Close session-mode servers marked for closing at the end of the transaction.'),
  server_lifetime: secs('3600', 'Close unused server connections older than this; 0 means use once.'),
  server_idle_timeout: secs('600', 'Close server connections idle longer than this; 0 disables.'),
  server_connect_timeout: secs('15', 'Limit for connecting and logging in to a server.'),
  server_login_retry: secs('15', 'Wait before retrying after a failed server login.'),
  application_name_add_host: bool('0', 'Append the client address and port to application_name.'),

  // client timeouts
  client_login_timeout: secs('60', 'Disconnect clients that have not logged in within this time.'),
  client_idle_timeout: secs('0', 'Disconnect clients idle longer than this; 0 disables.'),
  query_timeout: secs('0', 'Cancel queries running longer than this; 0 disables.'),
  query_wait_timeout: secs('120', 'Disconnect clients waiting for a server longer than this; 0 waits forever.'),
  cancel_wait_timeout: secs('10', 'Give up on cancel requests waiting for a server longer than this; 0 waits forever.'),
  idle_transaction_timeout: secs('0', 'Disconnect clients idle in a transaction longer than this; 0 disables.'),
  transaction_timeout: secs('0', 'Disconnect clients in a transaction longer than this; 0 disables.'),
  suspend_timeout: secs('10', 'How long SUSPEND waits for buffers to flush.'),

  // low level
  max_packet_size: size('2147483647', 'Largest protocol message accepted.', { min: 1, max: 4294967295 }),
  pkt_buf: size('4096', 'Internal packet buffer size.', { ...fixed, min: 1 }),
  sbuf_loopcnt: int('5', 'Buffers processed per connection before yielding; 0 is unlimited.'),
  tcp_keepalive: bool('1', 'Enable TCP keepalive.'),
  tcp_keepidle: int('0', 'Seconds before the first keepalive probe; 0 is the OS default.', { unit: 'seconds' }),
  tcp_keepintvl: int('0', 'Seconds between keepalive probes; 0 is the OS default.', { unit: 'seconds' }),
  tcp_keepcnt: int('0', 'Unanswered keepalive probes before closing; 0 is the OS default.'),
  tcp_user_timeout: int('0', 'TCP_USER_TIMEOUT in milliseconds; 0 is the OS default.', { unit: 'milliseconds' }),
  tcp_defer_accept: int(process.platform === 'linux' ? '1' : '0', 'TCP_DEFER_ACCEPT on listening sockets (Linux).'),
  tcp_socket_buffer: size('0', 'Socket send/receive buffer size; 0 is the OS default.'),
  so_reuseport: bool('0', 'Set SO_REUSEPORT so several processes can share the port.', fixed),
  dns_max_ttl: secs('15', 'How long host name lookups are cached.'),

  // TLS
  client_tls_sslmode: oneOf(TLS_MODES, 'disable', 'TLS for client connections.'),
  client_tls_key_file: str('', 'Private key for client TLS.'),
  client_tls_cert_file: str('', 'Certificate for client TLS.'),
  client_tls_ca_file: str('', 'CA used to verify client certificates.'),
  client_tls_protocols: { kind: 'tls-protocols', default: 'secure', description: 'TLS versions allowed for clients.' },
  client_tls_ciphers: str('default', 'TLS 1.2 ciphers for clients (OpenSSL syntax).'),
  server_tls_sslmode: oneOf(TLS_MODES, 'prefer', 'TLS for server connections.'),
  server_tls_ca_file: str('', 'CA used to verify server certificates.'),
  server_tls_key_file: str('', 'Private key presented to servers.'),
  server_tls_cert_file: str('', 'Certificate presented to servers.'),
  server_tls_protocols: { kind: 'tls-protocols', default: 'secure', description: 'TLS versions allowed for servers.' },
  server_tls_ciphers: str('default', 'TLS 1.2 ciphers for servers (OpenSSL syntax).'),

  // logging and process
  logfile: str('', 'Log file; empty logs to stderr only.'),
  pidfile: str('', 'File the process id is written to.', fixed),
  syslog: bool('0', 'Log to syslog.'),
  log_connections: bool('1', 'Log successful logins.'),
  log_disconnections: bool('1', 'Log disconnections with reasons.'),
  log_pooler_errors: bool('1', 'Log errors the pooler sends to clients.'),
  log_stats: bool('1', 'Log aggregated statistics every stats_period.'),
  stats_period: secs('60', 'Period for averages in SHOW and for stats log lines.'),
  verbose: int('0', 'Log verbosity (0-3).'),
  user: str('', 'Unix user to switch to after start.', fixed),
  max_ready_wait: secs('10', '/ready answers 503 when the longest client wait exceeds this.', { sluice: true }),
  budget_threshold: { kind: 'float', default: '0.8', description: 'Fraction of max_connections at which the budget check warns.', min: 0, max: 1, sluice: true },
};

/** PgBouncer keys Sluice accepts and validates but does not act on (yet). */
const OTHER: Readonly<Record<string, SpecInput>> = {
  auth_ident_file: str('', 'Ident map file for auth_type = hba.'),
  auth_ldap_options: str('', 'LDAP options for auth_type = ldap.'),
  autodb_idle_timeout: secs('3600', "Free pools created from the '*' database after this much idle time."),
  client_tls13_ciphers: str('', 'TLS 1.3 cipher suites for clients.'),
  client_tls_dheparams: str('auto', 'DHE parameters for client TLS.'),
  client_tls_ecdhcurve: str('auto', 'ECDH curve for client TLS.'),
  conffile: str('', 'Path of the config file (informational).'),
  disable_pqexec: bool('0', 'Refuse the simple query protocol.', fixed),
  dns_nxdomain_ttl: secs('15', 'How long failed lookups are cached.'),
  dns_zone_check_period: secs('0', 'Period for DNS zone serial checks (c-ares only).'),
  job_name: str('pgbouncer', 'Service name (Windows).', fixed),
  service_name: str('pgbouncer', 'Service name (Windows).', fixed),
  login_notify_message: str('', 'Notice sent to clients after login.'),
  peer_id: int('0', 'This process id within a peer group; 0 disables peering.', { max: 16383 }),
  pool_idle_timeout: secs('0', 'Free empty pools after this much idle time; 0 disables.'),
  query_wait_notify: secs('5', 'Tell queued clients they are waiting after this long; 0 disables.'),
  resolv_conf: str('', 'Custom resolv.conf for DNS.', fixed),
  scram_iterations: int('4096', 'Iterations when PgBouncer computes SCRAM secrets.', { min: 1 }),
  server_tls13_ciphers: str('', 'TLS 1.3 cipher suites for servers.'),
  syslog_facility: str('daemon', 'Syslog facility.'),
  syslog_ident: str('pgbouncer', 'Syslog program name.'),
  unix_socket_group: str('', 'Group owning the Unix socket.', fixed),
};

function finish(key: string, input: SpecInput, supported: boolean): SettingSpec {
  const { reloadable = true, sluice = false, ...rest } = input;
  return Object.freeze({ key, supported, sluice, reloadable, ...rest });
}

/** Every known [pgbouncer] key, sorted by name (the order SHOW CONFIG uses). */
export const SETTING_SPECS: ReadonlyMap<string, SettingSpec> = (() => {
  const all: [string, SettingSpec][] = [
    ...Object.entries(SUPPORTED).map(([k, v]): [string, SettingSpec] => [k, finish(k, v, true)]),
    ...Object.entries(OTHER).map(([k, v]): [string, SettingSpec] => [k, finish(k, v, false)]),
  ];
  all.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  return new Map(all);
})();

export function isSettingsKey(key: string): key is keyof Settings {
  return Object.hasOwn(SUPPORTED, key);
}

/** Parse one raw value (outer quotes already removed) per its spec. */
export function parseSetting(spec: SettingSpec, raw: string): SettingValue {
  const bounds = { min: spec.min, max: spec.max };
  switch (spec.kind) {
    case 'int':
      return parseInteger(raw, bounds);
    case 'bool':
      return parseBoolean(raw);
    case 'seconds':
      return parseSecondsToMs(raw, bounds);
    case 'size':
      return parseSize(raw, bounds);
    case 'float':
      return parseFloatValue(raw, bounds);
    case 'filemode':
      return parseFileMode(raw);
    case 'enum':
      return parseEnum(raw, spec.values ?? []);
    case 'list':
      return parseList(raw);
    case 'address':
      return parseListenAddress(raw);
    case 'tls-protocols':
      return parseTlsProtocols(raw);
    case 'string':
      return raw;
  }
}

/** Render a parsed value in the file's units (seconds, octal mode, 0/1), like SHOW CONFIG. */
export function formatSetting(spec: SettingSpec, value: SettingValue): string {
  if (Array.isArray(value)) return value.join(',');
  if (typeof value === 'boolean') return value ? '1' : '0';
  if (typeof value === 'number') {
    if (spec.kind === 'seconds') return formatSeconds(value);
    if (spec.kind === 'filemode') return '0' + value.toString(8);
    return String(value);
  }
  return String(value);
}

/** The parsed default of a key. */
export function defaultValue(spec: SettingSpec): SettingValue {
  return parseSetting(spec, spec.default);
}

/** A frozen Settings object holding every default. */
export function defaultSettings(): Settings {
  const out: Record<string, SettingValue> = {};
  for (const spec of SETTING_SPECS.values()) {
    if (spec.supported) out[spec.key] = defaultValue(spec);
  }
  return Object.freeze(out) as unknown as Settings;
}

/** Closest known key, for "did you mean" hints on typos. */
export function suggestSetting(key: string): string | undefined {
  let best: string | undefined;
  let bestDist = Number.POSITIVE_INFINITY;
  for (const candidate of SETTING_SPECS.keys()) {
    const d = editDistance(key, candidate);
    if (d < bestDist) {
      best = candidate;
      bestDist = d;
    }
  }
  return bestDist <= Math.max(2, Math.floor(key.length / 5)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

