// The shape of a loaded, validated, frozen configuration.
// Key names are PgBouncer's. Durations are stored in MILLISECONDS (PgBouncer
// writes them in seconds in the file; the loader converts), sizes in bytes.
// A value of 0 for a limit or timeout means "disabled", as in PgBouncer.

export type PoolMode = 'session' | 'transaction' | 'statement';
export type AuthType = 'trust' | 'any' | 'plain' | 'md5' | 'scram-sha-256' | 'cert' | 'hba' | 'pam' | 'peer';
export type TlsMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';
/** What transaction mode does with session state it cannot emulate. */
export type PinPolicy = 'pin' | 'error' | 'allow';
/** How a database entry with a host list picks the host for a new server connection. */
export type LoadBalanceHosts = 'round-robin' | 'disable';
/** Which servers a database entry accepts (PgBouncer 1.25 `target_session_attrs`). */
export type TargetSessionAttrs = 'any' | 'read-write' | 'read-only' | 'primary' | 'standby';
/** The form of a userlist.txt secret. */
export type SecretKind = 'plain' | 'md5' | 'scram-sha-256';

export interface Settings {
  // listening
  readonly listen_addr: string; // '*' or comma list; '' = no TCP
  readonly listen_port: number;
  readonly listen_backlog: number;
  readonly unix_socket_dir: string; // '' = no Unix socket
  readonly unix_socket_mode: number;
  readonly http_listen: string; // 'host:port' or '' (Sluice: metrics/health endpoint)

  // pooling
  readonly pool_mode: PoolMode;
  readonly default_pool_size: number;
  readonly min_pool_size: number;
  readonly reserve_pool_size: number;
  readonly reserve_pool_timeout: number; // ms
  readonly max_client_conn: number;
  readonly max_db_connections: number;
  readonly max_user_connections: number;
  readonly max_db_client_connections: number;
  readonly max_user_client_connections: number;
  readonly server_round_robin: boolean;
  readonly max_prepared_statements: number;
  readonly pin_policy: PinPolicy; // Sluice
  readonly ignore_startup_parameters: readonly string[];
  readonly track_extra_parameters: readonly string[];

  // auth
  readonly auth_type: AuthType;
  readonly auth_file: string;
  readonly auth_hba_file: string;
  readonly auth_user: string;
  readonly auth_query: string;
  readonly auth_dbname: string;
  readonly admin_users: readonly string[];
  readonly stats_users: readonly string[];

  // server connection handling
  readonly server_reset_query: string;
  readonly server_reset_query_always: boolean;
  readonly server_check_delay: number; // ms
  readonly server_check_query: string;
  readonly server_fast_close: boolean;
  readonly server_lifetime: number; // ms
  readonly server_idle_timeout: number; // ms
  readonly server_connect_timeout: number; // ms
  readonly server_login_retry: number; // ms
  readonly application_name_add_host: boolean;

  // client timeouts
  readonly client_login_timeout: number; // ms
  readonly client_idle_timeout: number; // ms
  readonly query_timeout: number; // ms
  readonly query_wait_timeout: number; // ms
  readonly cancel_wait_timeout: number; // ms
  readonly idle_transaction_timeout: number; // ms
  readonly transaction_timeout: number; // ms
  readonly suspend_timeout: number; // ms

  // low level
  readonly max_packet_size: number; // bytes
  readonly pkt_buf: number;
  readonly sbuf_loopcnt: number;
  readonly tcp_keepalive: boolean;
  readonly tcp_keepidle: number; // seconds, 0 = OS default
  readonly tcp_keepintvl: number;
  readonly tcp_keepcnt: number;
  readonly tcp_user_timeout: number; // ms
  readonly tcp_defer_accept: number;
  readonly tcp_socket_buffer: number;
  readonly so_reuseport: boolean;
  readonly dns_max_ttl: number; // ms

  // TLS
  readonly client_tls_sslmode: TlsMode;
  readonly client_tls_key_file: string;
  readonly client_tls_cert_file: string;
  readonly client_tls_ca_file: string;
  readonly client_tls_protocols: string;
  readonly client_tls_ciphers: string;
  readonly server_tls_sslmode: TlsMode;
  readonly server_tls_ca_file: string;
  readonly server_tls_key_file: string;
  readonly server_tls_cert_file: string;
  readonly server_tls_protocols: string;
  readonly server_tls_ciphers: string;

  // logging and process
  readonly logfile: string;
  readonly pidfile: string;
  readonly syslog: boolean;
  readonly log_connections: boolean;
  readonly log_disconnections: boolean;
  readonly log_pooler_errors: boolean;
  readonly log_stats: boolean;
  readonly stats_period: number; // ms
  readonly verbose: number;
  readonly user: string;
  readonly max_ready_wait: number; // Sluice: ms; /ready turns 503 when the longest wait exceeds it
  readonly budget_threshold: number; // Sluice: 0..1 for /budget
}

export interface DatabaseEntry {
  /** The name clients connect to ('*' is the fallback entry). */
  readonly name: string;
  readonly host: string; // '' = Unix socket in the default dir; a path starting with '/' = that socket dir
  readonly port: number;
  readonly dbname: string; // real database name on the server
  readonly user: string; // '' = the client's user name
  readonly password: string;
  readonly auth_user: string;
  readonly auth_dbname: string;
  readonly pool_size: number | undefined;
  readonly min_pool_size: number | undefined;
  readonly reserve_pool_size: number | undefined;
  readonly pool_mode: PoolMode | undefined;
  readonly max_db_connections: number | undefined;
  readonly max_db_client_connections: number | undefined;
  readonly connect_query: string;
  readonly application_name: string;
  readonly client_encoding: string;
  readonly datestyle: string;
  readonly timezone: string;
  readonly pin_policy: PinPolicy | undefined; // Sluice
  readonly auth_query: string; // '' = the global auth_query
  readonly query_wait_timeout: number | undefined; // ms
  readonly server_lifetime: number | undefined; // ms
  readonly load_balance_hosts: LoadBalanceHosts;
  readonly target_session_attrs: TargetSessionAttrs;
  /** Where it was defined, for error messages. */
  readonly file: string;
  readonly line: number;
}

export interface UserEntry {
  readonly name: string;
  readonly pool_mode: PoolMode | undefined;
  readonly pool_size: number | undefined;
  readonly reserve_pool_size: number | undefined;
  readonly max_user_connections: number | undefined;
  readonly max_user_client_connections: number | undefined;
  readonly query_timeout: number | undefined; // ms
  readonly idle_transaction_timeout: number | undefined; // ms
  readonly client_idle_timeout: number | undefined; // ms
  readonly query_wait_timeout: number | undefined; // ms
  readonly transaction_timeout: number | undefined; // ms
  readonly pin_policy: PinPolicy | undefined; // Sluice
  readonly file: string;
  readonly line: number;
}

/** A userlist.txt secret: plaintext, 'md5<32 hex>' or 'SCRAM-SHA-256$…'. */
export interface UserSecret {
  readonly user: string;
  readonly secret: string;
  readonly kind: SecretKind;
  readonly file: string;
  readonly line: number;
}

/** A `[peers]` entry: carried for completeness, not used by Sluice yet. */
export interface PeerEntry {
  readonly peer_id: number;
  readonly host: string;
  readonly port: number;
  readonly pool_size: number | undefined;
  readonly file: string;
  readonly line: number;
}

export interface ConfigWarning {
  readonly file: string;
  readonly line: number;
  readonly key?: string;
  readonly message: string;
}

export interface Config {
  /** Absolute path of the main file ('' when built in memory). */
  readonly file: string;
  readonly settings: Settings;
  readonly databases: ReadonlyMap<string, DatabaseEntry>;
  readonly users: ReadonlyMap<string, UserEntry>;
  /** Secrets from auth_file, keyed by user name (empty when auth_file is unset). */
  readonly userlist: ReadonlyMap<string, UserSecret>;
  readonly peers: ReadonlyMap<number, PeerEntry>;
  /** PgBouncer keys Sluice recognises but does not implement, as written (raw text). */
  readonly otherSettings: ReadonlyMap<string, string>;
  /** Every file read: the main file, its includes, auth_file (absolute paths; empty in memory). */
  readonly files: readonly string[];
  readonly warnings: readonly ConfigWarning[];
}
