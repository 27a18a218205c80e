// The value syntax of [databases], [users] and [peers] entries:
// space-separated `key=value` pairs. A value is either bare (runs to the next
// space) or single-quoted, where `''` stands for one quote. As in PgBouncer,
// a backslash is an ordinary character (no escape), and an empty value is a
// syntax error (write the key out, or leave it away).

import { ConfigError, ValueError } from './errors.js';
import { PIN_POLICIES, POOL_MODES } from './settings.js';
import type {
  DatabaseEntry,
  LoadBalanceHosts,
  PeerEntry,
  PinPolicy,
  PoolMode,
  TargetSessionAttrs,
  UserEntry,
} from './types.js';
import { parseEnum, parseInteger, parseSecondsToMs } from './values.js';

export interface ConnPair {
  readonly key: string;
  readonly value: string;
}

export const LOAD_BALANCE_HOSTS: readonly LoadBalanceHosts[] = ['round-robin', 'disable'];
export const TARGET_SESSION_ATTRS: readonly TargetSessionAttrs[] = ['any', 'read-write', 'read-only', 'primary', 'standby'];

/** Database names PgBouncer keeps for itself. */
export const RESERVED_DATABASES: readonly string[] = ['pgbouncer'];

const isSpace = (ch: string | undefined): boolean => ch === ' ' || ch === '\t';

/**
 * Split a connection string into pairs. Throws ValueError on a syntax error.
 * @example parseConnString("host=db port=5432 connect_query='SELECT ''x'''")
 *   // [{key:'host',value:'db'}, {key:'port',value:'5432'}, {key:'connect_query',value:"SELECT 'x'"}]
 */
export function parseConnString(text: string): ConnPair[] {
  const pairs: ConnPair[] = [];
  let p = 0;
  const n = text.length;
  for (;;) {
    while (isSpace(text[p])) p++;
    if (p >= n) break;
    const keyStart = p;
    while (p < n && text[p] !== '=' && !isSpace(text[p])) p++;
    const key = text.slice(keyStart, p);
    while (isSpace(text[p])) p++;
    if (text[p] !== '=') {
      throw new ValueError(`syntax error: expected "=" after ${JSON.stringify(key)}`);
    }
    if (key === '') throw new ValueError('syntax error: "=" without a parameter name');
    p++;
    while (isSpace(text[p])) p++;
    let value = '';
    if (text[p] === "'") {
      p++;
      for (;;) {
        if (p >= n) throw new ValueError(`syntax error: unterminated quoted value for ${key}`);
        const ch = text[p]!;
        if (ch === "'") {
          if (text[p + 1] === "'") {
            value += "'";
            p += 2;
            continue;
          }
          p++;
          break;
        }
        value += ch;
        p++;
      }
      if (p < n && !isSpace(text[p])) {
        throw new ValueError(`syntax error: text right after the closing quote of ${key}`);
      }
    } else {
      const start = p;
      while (p < n && !isSpace(text[p])) p++;
      value = text.slice(start, p);
    }
    if (value === '') throw new ValueError(`syntax error: empty value for ${key}`);
    pairs.push({ key, value });
  }
  return pairs;
}

/** Quote a value if it needs it, so parseConnString reads it back unchanged. */
export function quoteConnValue(value: string): string {
  if (value !== '' && !/[\s']/.test(value)) return value;
  return `'${value.replaceAll("'", "''")}'`;
}

export function formatConnString(pairs: Iterable<ConnPair>): string {
  const out: string[] = [];
  for (const { key, value } of pairs) out.push(`${key}=${quoteConnValue(value)}`);
  return out.join(' ');
}

interface Where {
  readonly file: string;
  readonly line: number;
}

type Handler<T> = (value: string, target: T) => void;

function wrapValue<T>(fn: (raw: string) => T, where: Where, section: string, entry: string, key: string, raw: string): T {
  try {
    return fn(raw);
  } catch (err) {
    if (err instanceof ValueError) {
      throw new ConfigError({ ...where, key, section }, `[${section}] ${entry}: ${key} = ${quoteForMessage(raw)} ${trimLead(err.message, raw)}`);
    }
    throw err;
  }
}

// ValueError messages start with the raw value quoted; avoid saying it twice.
function trimLead(message: string, raw: string): string {
  const lead = JSON.stringify(raw) + ' ';
  return message.startsWith(lead) ? message.slice(lead.length) : `is invalid: ${message}`;
}

function quoteForMessage(raw: string): string {
  return JSON.stringify(raw);
}

function applyPairs<T>(
  text: string,
  where: Where,
  section: string,
  entry: string,
  handlers: Readonly<Record<string, Handler<T>>>,
  target: T,
): void {
  let pairs: ConnPair[];
  try {
    pairs = parseConnString(text);
  } catch (err) {
    if (err instanceof ValueError) throw new ConfigError({ ...where, key: entry, section }, `[${section}] ${entry}: ${err.message}`);
    throw err;
  }
  for (const { key, value } of pairs) {
    const h = Object.hasOwn(handlers, key) ? handlers[key] : undefined;
    if (!h) {
      throw new ConfigError(
        { ...where, key, section },
        `[${section}] ${entry}: unknown parameter ${JSON.stringify(key)} (known: ${Object.keys(handlers).join(', ')})`,
      );
    }
    wrapValue((raw) => h(raw, target), where, section, entry, key, value);
  }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const count = (raw: string): number => parseInteger(raw, { min: 0 });
const poolMode = (raw: string): PoolMode => parseEnum(raw, POOL_MODES);
const pinPolicy = (raw: string): PinPolicy => parseEnum(raw, PIN_POLICIES);
// "-1 means not set" in PgBouncer's per-database/user query_wait_timeout.
const optionalSeconds = (raw: string): number | undefined => (raw.trim() === '-1' ? undefined : parseSecondsToMs(raw));

const DATABASE_HANDLERS: Readonly<Record<string, Handler<Mutable<DatabaseEntry>>>> = {
  dbname: (v, d) => void (d.dbname = v),
  host: (v, d) => void (d.host = v),
  port: (v, d) => void (d.port = parseInteger(v, { min: 1, max: 65535 })),
  user: (v, d) => void (d.user = v),
  password: (v, d) => void (d.password = v),
  auth_user: (v, d) => void (d.auth_user = v),
  auth_query: (v, d) => void (d.auth_query = v),
  auth_dbname: (v, d) => void (d.auth_dbname = v),
  client_encoding: (v, d) => void (d.client_encoding = v),
  datestyle: (v, d) => void (d.datestyle = v),
  timezone: (v, d) => void (d.timezone = v),
  application_name: (v, d) => void (d.application_name = v),
  connect_query: (v, d) => void (d.connect_query = v),
  pool_size: (v, d) => void (d.pool_size = count(v)),
  min_pool_size: (v, d) => void (d.min_pool_size = count(v)),
  reserve_pool_size: (v, d) => void (d.reserve_pool_size = count(v)),
  reserve_pool: (v, d) => void (d.reserve_pool_size = count(v)), // older spelling, still accepted
  max_db_connections: (v, d) => void (d.max_db_connections = count(v)),
  max_db_client_connections: (v, d) => void (d.max_db_client_connections = count(v)),
  pool_mode: (v, d) => void (d.pool_mode = poolMode(v)),
  query_wait_timeout: (v, d) => void (d.query_wait_timeout = optionalSeconds(v)),
  server_lifetime: (v, d) => void (d.server_lifetime = parseSecondsToMs(v)),
  load_balance_hosts: (v, d) => void (d.load_balance_hosts = parseEnum(v, LOAD_BALANCE_HOSTS)),
  target_session_attrs: (v, d) => void (d.target_session_attrs = parseEnum(v, TARGET_SESSION_ATTRS)),
  pin_policy: (v, d) => void (d.pin_policy = pinPolicy(v)),
};

const USER_HANDLERS: Readonly<Record<string, Handler<Mutable<UserEntry>>>> = {
  pool_mode: (v, u) => void (u.pool_mode = poolMode(v)),
  pool_size: (v, u) => void (u.pool_size = count(v)),
  reserve_pool_size: (v, u) => void (u.reserve_pool_size = count(v)),
  max_user_connections: (v, u) => void (u.max_user_connections = count(v)),
  max_user_client_connections: (v, u) => void (u.max_user_client_connections = count(v)),
  query_timeout: (v, u) => void (u.query_timeout = parseSecondsToMs(v)),
  query_wait_timeout: (v, u) => void (u.query_wait_timeout = optionalSeconds(v)),
  idle_transaction_timeout: (v, u) => void (u.idle_transaction_timeout = parseSecondsToMs(v)),
  transaction_timeout: (v, u) => void (u.transaction_timeout = parseSecondsToMs(v)),
  client_idle_timeout: (v, u) => void (u.client_idle_timeout = parseSecondsToMs(v)),
  pin_policy: (v, u) => void (u.pin_policy = pinPolicy(v)),
};

const PEER_HANDLERS: Readonly<Record<string, Handler<Mutable<PeerEntry>>>> = {
  host: (v, p) => void (p.host = v),
  port: (v, p) => void (p.port = parseInteger(v, { min: 1, max: 65535 })),
  pool_size: (v, p) => void (p.pool_size = count(v)),
};

export const DATABASE_PARAMETERS: readonly string[] = Object.freeze(Object.keys(DATABASE_HANDLERS));
export const USER_PARAMETERS: readonly string[] = Object.freeze(Object.keys(USER_HANDLERS));

/** Parse one `[databases]` line. `name` is the (unquoted) key. */
export function parseDatabaseEntry(name: string, value: string, file: string, line: number): DatabaseEntry {
  const where = { file, line };
  if (RESERVED_DATABASES.includes(name)) {
    throw new ConfigError({ ...where, key: name, section: 'databases' }, `[databases] ${JSON.stringify(name)} is reserved for the admin console; pick another name`);
  }
  const db: Mutable<DatabaseEntry> = {
    name,
    host: '',
    port: 5432,
    dbname: name === '*' ? '' : name, // '*' serves whatever name the client asked for
    user: '',
    password: '',
    auth_user: '',
    auth_dbname: '',
    auth_query: '',
    pool_size: undefined,
    min_pool_size: undefined,
    reserve_pool_size: undefined,
    pool_mode: undefined,
    max_db_connections: undefined,
    max_db_client_connections: undefined,
    connect_query: '',
    application_name: '',
    client_encoding: '',
    datestyle: '',
    timezone: '',
    pin_policy: undefined,
    query_wait_timeout: undefined,
    server_lifetime: undefined,
    load_balance_hosts: 'round-robin',
    target_session_attrs: 'any',
    file,
    line,
  };
  applyPairs(value, where, 'databases', name, DATABASE_HANDLERS, db);
  return Object.freeze(db);
}

/** Parse one `[users]` line. */
export function parseUserEntry(name: string, value: string, file: string, line: number): UserEntry {
  const user: Mutable<UserEntry> = {
    name,
    pool_mode: undefined,
    pool_size: undefined,
    reserve_pool_size: undefined,
    max_user_connections: undefined,
    max_user_client_connections: undefined,
    query_timeout: undefined,
    idle_transaction_timeout: undefined,
    client_idle_timeout: undefined,
    query_wait_timeout: undefined,
    transaction_timeout: undefined,
    pin_policy: undefined,
    file,
    line,
  };
  applyPairs(value, { file, line }, 'users', name, USER_HANDLERS, user);
  return Object.freeze(user);
}

/** Parse one `[peers]` line; the key is the peer id. */
export function parsePeerEntry(name: string, value: string, file: string, line: number): PeerEntry {
  const where = { file, line };
  const peer_id = wrapValue((raw) => parseInteger(raw, { min: 1, max: 16383 }), where, 'peers', name, 'peer_id', name);
  const peer: Mutable<PeerEntry> = { peer_id, host: '', port: 6432, pool_size: undefined, file, line };
  applyPairs(value, where, 'peers', name, PEER_HANDLERS, peer);
  if (peer.host === '') {
    throw new ConfigError({ ...where, key: 'host', section: 'peers' }, `[peers] ${name}: host is required`);
  }
  return Object.freeze(peer);
}

/**
 * A database entry written back as a connection string with only the
 * parameters that differ from the defaults. Passwords are replaced by
 * `***` unless `withSecrets` is set, so the result is safe to log.
 */
export function databaseToConnString(db: DatabaseEntry, withSecrets = false): string {
  const pairs: ConnPair[] = [];
  const push = (key: string, value: string | number | undefined, skip: string | number | undefined = ''): void => {
    if (value === undefined || value === skip) return;
    pairs.push({ key, value: String(value) });
  };
  push('host', db.host);
  push('port', db.port, 5432);
  push('dbname', db.dbname, db.name === '*' ? '' : db.name);
  push('user', db.user);
  push('password', db.password === '' ? '' : withSecrets ? db.password : '***');
  push('auth_user', db.auth_user);
  push('auth_query', db.auth_query);
  push('auth_dbname', db.auth_dbname);
  push('pool_size', db.pool_size);
  push('min_pool_size', db.min_pool_size);
  push('reserve_pool_size', db.reserve_pool_size);
  push('pool_mode', db.pool_mode);
  push('max_db_connections', db.max_db_connections);
  push('max_db_client_connections', db.max_db_client_connections);
  push('connect_query', db.connect_query);
  push('application_name', db.application_name);
  push('client_encoding', db.client_encoding);
  push('datestyle', db.datestyle);
  push('timezone', db.timezone);
  push('query_wait_timeout', db.query_wait_timeout === undefined ? undefined : db.query_wait_timeout / 1000);
  push('server_lifetime', db.server_lifetime === undefined ? undefined : db.server_lifetime / 1000);
  push('load_balance_hosts', db.load_balance_hosts, 'round-robin');
  push('target_session_attrs', db.target_session_attrs, 'any');
  push('pin_policy', db.pin_policy);
  return formatConnString(pairs);
}

/** A user entry written back as its `[users]` value. */
export function userToConnString(u: UserEntry): string {
  const pairs: ConnPair[] = [];
  const push = (key: string, value: string | number | undefined): void => {
    if (value !== undefined) pairs.push({ key, value: String(value) });
  };
  const secs = (ms: number | undefined): number | undefined => (ms === undefined ? undefined : ms / 1000);
  push('pool_mode', u.pool_mode);
  push('pool_size', u.pool_size);
  push('reserve_pool_size', u.reserve_pool_size);
  push('max_user_connections', u.max_user_connections);
  push('max_user_client_connections', u.max_user_client_connections);
  push('query_timeout', secs(u.query_timeout));
  push('query_wait_timeout', secs(u.query_wait_timeout));
  push('idle_transaction_timeout', secs(u.idle_transaction_timeout));
  push('transaction_timeout', secs(u.transaction_timeout));
  push('client_idle_timeout', secs(u.client_idle_timeout));
  push('pin_policy', u.pin_policy);
  return formatConnString(pairs);
}
