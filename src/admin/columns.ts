// Result-set column lists of the admin console. PgBouncer's views copy the
// names, order and types of PgBouncer 1.25 (src/admin.c and src/stats.c) so
// exporters and dashboards keep working; Sluice's own views are separate.
// Types are PostgreSQL type OIDs as PgBouncer sends them.

export const TEXT = 25;
export const INT4 = 23;
export const INT8 = 20;
export const NUMERIC = 1700;

export interface Column {
  readonly name: string;
  readonly type: number;
}

const cols = (spec: string, ...names: string[]): readonly Column[] => {
  // spec letters: s text, i int4, q int8, N numeric, T timestamp rendered as text
  if (spec.length !== names.length) throw new Error(`column spec ${spec} does not match ${names.length} names`);
  return Object.freeze(
    names.map((name, i) => Object.freeze({ name, type: { s: TEXT, T: TEXT, i: INT4, q: INT8, N: NUMERIC }[spec[i] as 's']! })),
  );
};

const STAT_NAMES = [
  'server_assignment_count', 'xact_count', 'query_count', 'received', 'sent', 'xact_time', 'query_time',
  'wait_time', 'client_parse_count', 'server_parse_count', 'bind_count', 'client_connect_count',
] as const;

export const COLUMNS = {
  stats: cols(
    's' + 'N'.repeat(24),
    'database',
    ...STAT_NAMES.map((n) => `total_${n}`),
    ...['server_assignment_count', 'xact_count', 'query_count', 'recv', 'sent', 'xact_time', 'query_time', 'wait_time', 'client_parse_count', 'server_parse_count', 'bind_count', 'client_connect_count'].map((n) => `avg_${n}`),
  ),
  stats_totals: cols('s' + 'N'.repeat(12), 'database', 'server_assignment_count', 'xact_count', 'query_count', 'bytes_received', 'bytes_sent', 'xact_time', 'query_time', 'wait_time', 'client_parse_count', 'server_parse_count', 'bind_count', 'client_connect_count'),
  stats_averages: cols('s' + 'N'.repeat(12), 'database', 'server_assignment_count', 'xact_count', 'query_count', 'bytes_received', 'bytes_sent', 'xact_time', 'query_time', 'wait_time', 'avg_client_parse_count', 'avg_server_parse_count', 'avg_bind_count', 'client_connect_count'),
  totals: cols('sN', 'name', 'value'),
  sockets: cols(
    'ssssssisiTTiiississii',
    'type', 'user', 'database', 'replication', 'state', 'addr', 'port', 'local_addr', 'local_port', 'connect_time', 'request_time',
    'wait', 'wait_us', 'close_needed', 'ptr', 'link', 'remote_pid', 'tls', 'application_name', 'prepared_statements', 'id',
  ),
  pools: cols(
    'ssiiiiiiiiiiiiiss',
    'database', 'user', 'cl_active', 'cl_waiting', 'cl_active_cancel_req', 'cl_waiting_cancel_req', 'sv_active', 'sv_active_cancel',
    'sv_being_canceled', 'sv_idle', 'sv_used', 'sv_tested', 'sv_login', 'maxwait', 'maxwait_us', 'pool_mode', 'load_balance_hosts',
  ),
  lists: cols('si', 'list', 'items'),
  users: cols('ssssiiii', 'name', 'pool_size', 'reserve_pool_size', 'pool_mode', 'max_user_connections', 'current_connections', 'max_user_client_connections', 'current_client_connections'),
  databases: cols(
    'ssissiiiissiiiiii',
    'name', 'host', 'port', 'database', 'force_user', 'pool_size', 'min_pool_size', 'reserve_pool_size', 'server_lifetime', 'pool_mode',
    'load_balance_hosts', 'max_connections', 'current_connections', 'max_client_connections', 'current_client_connections', 'paused', 'disabled',
  ),
  config: cols('ssss', 'key', 'value', 'default', 'changeable'),
  version: cols('s', 'version'),
  state: cols('ss', 'key', 'value'),
  // Sluice's own views.
  pins: cols('sssq', 'database', 'user', 'reason', 'count'),
  prepared_statements: cols('ssqqqqi', 'database', 'user', 'parses', 'hits', 'misses', 'evictions', 'server_statements'),
  pinned_clients: cols('qsssi', 'id', 'database', 'user', 'reasons', 'server_pid'),
  latency: cols('sssqNNNN', 'database', 'user', 'metric', 'count', 'p50_ms', 'p90_ms', 'p99_ms', 'mean_ms'),
} as const satisfies Record<string, readonly Column[]>;

export type ViewName = keyof typeof COLUMNS;
