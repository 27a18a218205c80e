// From ini entries (or in-memory records) to a validated, deeply frozen Config.
// Both loadConfig and buildConfig go through assemble(), so tests and the
// embedded default see exactly the validation a file gets.

import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseDatabaseEntry, parsePeerEntry, parseUserEntry } from './connstring.js';
import { ConfigError, ValueError } from './errors.js';
import { FrozenMap, deepFreeze } from './freeze.js';
import { readIni, unquote, type IniEntry } from './ini.js';
import {
  SETTING_SPECS,
  defaultValue,
  formatSetting,
  parseSetting,
  suggestSetting,
  type SettingValue,
} from './settings.js';
import type { Config, ConfigWarning, DatabaseEntry, PeerEntry, Settings, UserEntry, UserSecret } from './types.js';
import { parseUserlist } from './userlist.js';

export { parseUserlist } from './userlist.js';

/** Input for buildConfig. Values are written as in pgbouncer.ini. */
export interface BuildConfigInput {
  /**
   * `[pgbouncer]` keys. Strings are read exactly like file text; numbers are
   * in the file's units (durations in SECONDS, e.g. `{ query_wait_timeout: 5 }`);
   * booleans become 1/0.
   */
  readonly settings?: Readonly<Record<string, string | number | boolean>>;
  /** `[databases]`: name → connection string, e.g. `{ app: 'host=127.0.0.1 port=5432' }`. */
  readonly databases?: Readonly<Record<string, string>>;
  /** `[users]`: name → settings, e.g. `{ alice: 'pool_mode=session' }`. */
  readonly users?: Readonly<Record<string, string>>;
  /** Label for messages and base directory for a relative auth_file. */
  readonly file?: string;
  /** userlist.txt content; when absent and auth_file is set, auth_file is read from disk. */
  readonly userlistText?: string;
}

/**
 * Load pgbouncer.ini (with its %includes and auth_file).
 * @throws ConfigError naming file, line and key of the first invalid value.
 * @example
 *   const cfg = loadConfig('/etc/sluice/pgbouncer.ini');
 *   cfg.settings.query_wait_timeout; // 120000 (ms)
 */
export function loadConfig(file: string): Config {
  const doc = readIni(file);
  const abs = resolve(file);
  return assemble(doc.entries, {
    label: file,
    absFile: abs,
    baseDir: dirname(abs),
    files: doc.files,
    warnings: doc.warnings,
    userlistText: undefined,
  });
}

/**
 * Build a Config from in-memory records through the same validation as a file.
 * @example
 *   buildConfig({ settings: { pool_mode: 'transaction', listen_port: 7432 },
 *                 databases: { app: 'host=127.0.0.1 dbname=app' },
 *                 userlistText: '"app" "secret"' });
 */
export function buildConfig(input: BuildConfigInput = {}): Config {
  const label = input.file ?? '<memory>';
  const entries: IniEntry[] = [];
  const add = (section: string, rec: Readonly<Record<string, string | number | boolean>> | undefined): void => {
    if (!rec) return;
    for (const [key, v] of Object.entries(rec)) {
      const value = typeof v === 'boolean' ? (v ? '1' : '0') : String(v);
      entries.push({ section, key, value, file: label, line: 0 });
    }
  };
  add('pgbouncer', input.settings);
  add('databases', input.databases);
  add('users', input.users);
  const absFile = input.file ? resolve(input.file) : '';
  return assemble(entries, {
    label,
    absFile,
    baseDir: absFile ? dirname(absFile) : process.cwd(),
    files: absFile ? [absFile] : [],
    warnings: [],
    userlistText: input.userlistText,
  });
}

interface AssembleContext {
  readonly label: string;
  readonly absFile: string;
  readonly baseDir: string;
  readonly files: readonly string[];
  readonly warnings: readonly ConfigWarning[];
  readonly userlistText: string | undefined;
}

interface Loc {
  readonly file: string;
  readonly line: number;
}

function assemble(entries: readonly IniEntry[], ctx: AssembleContext): Config {
  const warnings: ConfigWarning[] = [...ctx.warnings];
  const files = [...ctx.files];

  // [pgbouncer]
  const values = new Map<string, SettingValue>();
  const where = new Map<string, Loc>();
  const other = new Map<string, string>();
  for (const spec of SETTING_SPECS.values()) if (spec.supported) values.set(spec.key, defaultValue(spec));

  const databases = new Map<string, DatabaseEntry>();
  const users = new Map<string, UserEntry>();
  const peers = new Map<number, PeerEntry>();

  for (const e of entries) {
    switch (e.section) {
      case 'pgbouncer': {
        const key = e.key.toLowerCase();
        const spec = SETTING_SPECS.get(key);
        if (!spec) {
          const hint = suggestSetting(key);
          warnings.push({
            file: e.file,
            line: e.line,
            key: e.key,
            message: `unknown setting ${e.key} is ignored${hint ? ` (did you mean ${hint}?)` : ''}`,
          });
          break;
        }
        const raw = unquote(e.value);
        let parsed: SettingValue;
        try {
          parsed = parseSetting(spec, raw);
        } catch (err) {
          if (!(err instanceof ValueError)) throw err;
          throw new ConfigError({ file: e.file, line: e.line, key, section: 'pgbouncer' }, `${key} = ${describeProblem(raw, err.message)}`);
        }
        if (spec.supported) {
          values.set(key, parsed);
          where.set(key, { file: e.file, line: e.line });
        } else {
          other.set(key, raw);
          if (formatSetting(spec, parsed) !== formatSetting(spec, defaultValue(spec))) {
            warnings.push({ file: e.file, line: e.line, key, message: `${key} is not supported by Sluice yet; the value is ignored` });
          }
        }
        break;
      }
      case 'databases':
        databases.set(e.key, parseDatabaseEntry(e.key, e.value, e.file, e.line));
        break;
      case 'users':
        users.set(e.key, parseUserEntry(e.key, e.value, e.file, e.line));
        break;
      case 'peers': {
        const peer = parsePeerEntry(e.key, e.value, e.file, e.line);
        peers.set(peer.peer_id, peer);
        break;
      }
      default:
        // readIni already dropped unknown sections; in-memory input cannot produce them
        break;
    }
  }

  const settings = Object.freeze(Object.fromEntries(values)) as unknown as Settings;
  const locOf = (key: keyof Settings): Loc => where.get(key) ?? { file: ctx.label, line: 0 };

  // auth_file
  let userlist: ReadonlyMap<string, UserSecret> = new FrozenMap();
  const needsAuthFile = settings.auth_type !== 'any' && settings.auth_type !== 'pam';
  if (ctx.userlistText !== undefined) {
    const parsed = parseUserlist(ctx.userlistText, settings.auth_file || '<userlist>');
    userlist = parsed.users;
    warnings.push(...parsed.warnings);
  } else if (settings.auth_file !== '') {
    const path = isAbsolute(settings.auth_file) ? settings.auth_file : resolve(ctx.baseDir, settings.auth_file);
    let text: string | undefined;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
      const loc = locOf('auth_file');
      const detail = `auth_file = ${JSON.stringify(settings.auth_file)} cannot be read (${path}: ${reason})`;
      if (needsAuthFile) throw new ConfigError({ ...loc, key: 'auth_file', section: 'pgbouncer' }, detail, { cause: err });
      warnings.push({ ...loc, key: 'auth_file', message: detail });
    }
    if (text !== undefined) {
      const parsed = parseUserlist(text, path);
      userlist = parsed.users;
      warnings.push(...parsed.warnings);
      files.push(path);
    }
  }

  crossChecks(settings, databases, users, userlist, locOf, warnings);

  return deepFreeze({
    file: ctx.absFile,
    settings,
    databases: new FrozenMap(databases),
    users: new FrozenMap(users),
    userlist: userlist instanceof FrozenMap ? userlist : new FrozenMap(userlist),
    peers: new FrozenMap(peers),
    otherSettings: new FrozenMap(other),
    files: Object.freeze(files),
    warnings: Object.freeze(warnings.map((w) => Object.freeze({ ...w }))),
  });
}

function describeProblem(raw: string, message: string): string {
  const lead = JSON.stringify(raw) + ' ';
  return message.startsWith(lead) ? message : `${JSON.stringify(raw)} is invalid: ${message}`;
}

/** Checks that span keys; errors where PgBouncer refuses to start, warnings where it would misbehave quietly. */
function crossChecks(
  s: Settings,
  databases: ReadonlyMap<string, DatabaseEntry>,
  users: ReadonlyMap<string, UserEntry>,
  userlist: ReadonlyMap<string, UserSecret>,
  locOf: (key: keyof Settings) => Loc,
  warnings: ConfigWarning[],
): void {
  const fail = (key: keyof Settings, detail: string): never => {
    throw new ConfigError({ ...locOf(key), key, section: 'pgbouncer' }, detail);
  };
  const warn = (key: keyof Settings, message: string): void => {
    warnings.push({ ...locOf(key), key, message });
  };

  if (s.listen_addr.trim() === '' && s.unix_socket_dir === '') {
    const key = locOf('listen_addr').line > 0 ? 'listen_addr' : 'unix_socket_dir';
    fail(key, 'listen_addr and unix_socket_dir are both empty, so no client could connect; set listen_addr (e.g. 127.0.0.1) or unix_socket_dir');
  }
  if (s.auth_type === 'hba' && s.auth_hba_file === '') {
    fail('auth_type', 'auth_type = "hba" needs auth_hba_file');
  }
  if (s.client_tls_sslmode !== 'disable' && (s.client_tls_key_file === '' || s.client_tls_cert_file === '')) {
    fail('client_tls_sslmode', `client_tls_sslmode = "${s.client_tls_sslmode}" needs client_tls_key_file and client_tls_cert_file`);
  }
  if ((s.client_tls_sslmode === 'verify-ca' || s.client_tls_sslmode === 'verify-full') && s.client_tls_ca_file === '') {
    warn('client_tls_sslmode', `client_tls_sslmode = "${s.client_tls_sslmode}" without client_tls_ca_file verifies client certificates against the system CA store only`);
  }
  if (s.auth_type === 'cert' && s.client_tls_sslmode !== 'verify-ca' && s.client_tls_sslmode !== 'verify-full') {
    warn('auth_type', 'auth_type = "cert" expects client_tls_sslmode = verify-ca or verify-full, so that client certificates are checked');
  }
  if ((s.server_tls_sslmode === 'verify-ca' || s.server_tls_sslmode === 'verify-full') && s.server_tls_ca_file === '') {
    warn('server_tls_sslmode', `server_tls_sslmode = "${s.server_tls_sslmode}" without server_tls_ca_file verifies against the system CA store only`);
  }
  if (s.min_pool_size > s.default_pool_size) {
    warn('min_pool_size', `min_pool_size (${s.min_pool_size}) exceeds default_pool_size (${s.default_pool_size}); it is capped at the pool size`);
  }
  if (s.max_db_client_connections > 0 && s.max_db_connections > 0 && s.max_db_client_connections < s.max_db_connections) {
    warn('max_db_client_connections', 'max_db_client_connections is below max_db_connections, so server connections can never all be used');
  }
  if (s.max_user_client_connections > 0 && s.max_user_connections > 0 && s.max_user_client_connections < s.max_user_connections) {
    warn('max_user_client_connections', 'max_user_client_connections is below max_user_connections, so server connections can never all be used');
  }
  const hasFallback = databases.has('*');
  if (s.auth_dbname !== '' && !databases.has(s.auth_dbname) && !hasFallback) {
    warn('auth_dbname', `auth_dbname = "${s.auth_dbname}" is not defined in [databases]`);
  }
  const anyDbAuthUser = [...databases.values()].some((d) => d.auth_user !== '');
  const passwordAuth = ['md5', 'scram-sha-256', 'plain', 'trust'].includes(s.auth_type);
  if (passwordAuth && s.auth_file === '' && s.auth_user === '' && !anyDbAuthUser && userlist.size === 0) {
    warn('auth_type', `auth_type = "${s.auth_type}" but neither auth_file nor auth_user is set, so no user can log in`);
  }
  if (s.auth_type === 'pam' && (s.auth_user !== '' || anyDbAuthUser)) {
    warn('auth_type', 'auth_type = "pam" does not work with auth_user');
  }
  if (s.auth_type === 'scram-sha-256') {
    for (const u of userlist.values()) {
      if (u.kind === 'md5') {
        warnings.push({ file: u.file, line: u.line, key: u.user, message: `user ${JSON.stringify(u.user)} has an md5 secret, which cannot be used with auth_type = scram-sha-256` });
      }
    }
  }
  for (const db of databases.values()) {
    if (s.auth_type === 'any' && db.user === '' && db.name !== '*') {
      warnings.push({ file: db.file, line: db.line, key: db.name, message: `auth_type = "any" needs user= on every database; [databases] ${db.name} has none` });
    }
    if (db.password !== '' && db.user === '') {
      warnings.push({ file: db.file, line: db.line, key: 'password', message: `[databases] ${db.name}: password= is only used together with user=` });
    }
    if (db.auth_dbname !== '' && !databases.has(db.auth_dbname) && !hasFallback) {
      warnings.push({ file: db.file, line: db.line, key: 'auth_dbname', message: `[databases] ${db.name}: auth_dbname "${db.auth_dbname}" is not defined in [databases]` });
    }
    if (db.min_pool_size !== undefined && db.pool_size !== undefined && db.min_pool_size > db.pool_size) {
      warnings.push({ file: db.file, line: db.line, key: 'min_pool_size', message: `[databases] ${db.name}: min_pool_size exceeds pool_size; it is capped at the pool size` });
    }
  }
  for (const u of users.values()) {
    if (u.max_user_client_connections !== undefined && u.max_user_connections !== undefined && u.max_user_client_connections > 0 && u.max_user_client_connections < u.max_user_connections) {
      warnings.push({ file: u.file, line: u.line, key: 'max_user_client_connections', message: `[users] ${u.name}: max_user_client_connections is below max_user_connections` });
    }
  }
}
