// Client authentication: picks the method (auth_type, or the first matching
// auth_hba_file rule), finds the user's secret (auth_file, else auth_query),
// and drives the exchange. Every failure a client can cause ends in 28P01 /
// 28000 with the same text for a wrong password and an unknown user.
import pg from 'pg';
import type { Config, DatabaseEntry } from '../config/types.js';
import { createClientAuth, type ClientAuthMethod } from '../auth/client_auth.js';
import { loadHbaFile, findHbaRule, type HbaFile } from '../auth/hba.js';
import type { ErrorFields } from '../protocol/messages.js';
import type { ScramKeys } from '../protocol/scram.js';
import type { ClientConn } from './client_conn.js';

export interface AuthEnvironment {
  config(): Config;
  findDatabase(name: string): DatabaseEntry | undefined;
  onScramKeys(user: string, keys: ScramKeys): void;
  /** A secret auth_query returned (md5 hashes can log in to md5 servers). */
  onLookedUpSecret(user: string, secret: string): void;
  /** Authentication could not be configured for a client (logged; the client gets a generic 28000). */
  onConfigError(err: unknown): void;
}

const hbaCache = new WeakMap<Config, HbaFile>();

/**
 * A config's auth_hba_file, read once. The app reads it at start and RELOAD,
 * so a broken file is a config error there, never a login error later.
 */
export function hbaRules(config: Config): HbaFile {
  let hba = hbaCache.get(config);
  if (!hba) {
    hba = loadHbaFile(config.settings.auth_hba_file);
    hbaCache.set(config, hba);
  }
  return hba;
}

interface MethodChoice {
  readonly method: ClientAuthMethod;
  /** The auth_hba_file rule's location, when one decided. */
  readonly rule?: string;
}

/** auth_type's choice: one object per method, not one per login. */
const typeChoices = new Map<ClientAuthMethod, MethodChoice>();
function typeChoice(method: ClientAuthMethod): MethodChoice {
  let choice = typeChoices.get(method);
  if (choice === undefined) typeChoices.set(method, (choice = Object.freeze({ method })));
  return choice;
}

/** The method for this client, and the hba rule's location when one decided it. */
function chooseMethod(config: Config, client: ClientConn): MethodChoice {
  const type = config.settings.auth_type;
  if (type !== 'hba') return typeChoice(type === 'pam' ? 'reject' : type);
  const rule = findHbaRule(hbaRules(config).rules, {
    local: client.isUnix,
    tls: client.tls,
    address: client.remoteAddress,
    database: client.database,
    user: client.user,
  });
  if (!rule) return typeChoice('reject');
  return { method: rule.method, rule: `${rule.file}:${rule.line}` };
}

function needsSecret(method: ClientAuthMethod): boolean {
  return method === 'plain' || method === 'password' || method === 'md5' || method === 'scram-sha-256';
}

/** How authenticateClient reports: once per client, null when it is admitted. A plain function, not a closure per login. */
export type AuthVerdict = (client: ClientConn, err: ErrorFields | null) => void;

export function authenticateClient(env: AuthEnvironment, client: ClientConn, verdict: AuthVerdict): void {
  const config = env.config();
  let choice: MethodChoice;
  try {
    choice = chooseMethod(config, client);
  } catch (err) {
    // The details (file, line) are for the log, not for a client that has not logged in.
    verdict(client, { code: '28000', message: 'authentication configuration error; see the pooler log' });
    env.onConfigError(err);
    return;
  }
  const { method } = choice;
  if (method === 'reject') {
    const why = choice.rule ? `rejected by ${choice.rule}` : 'no auth_hba_file rule matches';
    verdict(client, { code: '28000', message: `connection for user "${client.user}" to database "${client.database}" is not allowed (${why})` });
    return;
  }
  const listed = config.userlist.get(client.user)?.secret;
  // Like PgBouncer, trust still wants the user in auth_file — when there is one.
  const requireKnownUser = method === 'trust' && config.settings.auth_file !== '';
  if (method === 'trust' && (listed !== undefined || !requireKnownUser)) {
    // No exchange to run: admit at once, without building one (most logins behind a private network).
    // AuthenticationOk is left to the client, to send in one Buffer with its welcome.
    client.deferAuthOk();
    verdict(client, null);
    return;
  }
  exchange(env, client, verdict, method, requireKnownUser, listed);
}

/**
 * Finds the secret when auth_query must, then runs the method's exchange. A
 * function of its own: variables its callbacks capture live in a context
 * object, and in authenticateClient that object would be made for every
 * login, trust's included.
 */
function exchange(
  env: AuthEnvironment,
  client: ClientConn,
  verdict: AuthVerdict,
  method: ClientAuthMethod,
  requireKnownUser: boolean,
  listed: string | undefined,
): void {
  const proceed = (secret: string | undefined) => {
    if (client.state !== 'auth') return;
    const auth = createClientAuth({
      method,
      user: client.user,
      secret,
      requireKnownUser,
      certCommonName: client.certCommonName,
    });
    const finish = () => {
      const r = auth.result;
      if (!r) return;
      client.onAuthMessage = null;
      if (r.ok) {
        if (r.scramKeys) env.onScramKeys(client.user, r.scramKeys);
        verdict(client, null);
      } else verdict(client, { code: r.sqlstate, message: r.message });
    };
    for (const m of auth.start()) client.sendAuth(m);
    if (auth.result) return finish();
    client.onAuthMessage = (type, body) => {
      const step = auth.onMessage(type, body);
      for (const m of step.send) client.sendAuth(m);
      if (step.result) finish();
    };
  };
  const config = env.config();
  if (listed !== undefined || !needsSecret(method) || !config.settings.auth_user && !env.findDatabase(client.database)?.auth_user) {
    proceed(listed);
    return;
  }
  lookupSecret(env, client).then((secret) => {
    if (secret !== undefined && /^md5[0-9a-f]{32}$/.test(secret)) env.onLookedUpSecret(client.user, secret);
    proceed(secret);
  }, (err: unknown) => {
    if (client.state !== 'auth') return;
    verdict(client, { code: '28000', message: `auth_query failed: ${err instanceof Error ? err.message : String(err)}` });
  });
}

// One small pg pool per auth_query target, reused across logins.
const lookupPools = new Map<string, pg.Pool>();

/**
 * Runs auth_query as auth_user. The lookup connection uses only Sluice's own
 * settings — never the client's startup parameters — so a client cannot steer
 * search_path or anything else on it.
 */
async function lookupSecret(env: AuthEnvironment, client: ClientConn): Promise<string | undefined> {
  const config = env.config();
  const s = config.settings;
  const clientDb = env.findDatabase(client.database);
  const authDbName = clientDb?.auth_dbname || s.auth_dbname || client.database;
  const db = env.findDatabase(authDbName);
  if (!db) throw new Error(`auth_dbname "${authDbName}" is not a configured database`);
  const authUser = clientDb?.auth_user || s.auth_user;
  const password = config.userlist.get(authUser)?.secret;
  const host = db.host || '/tmp';
  const key = JSON.stringify([host, db.port, db.dbname || db.name, authUser, password ?? '']);
  let pool = lookupPools.get(key);
  if (!pool) {
    pool = new pg.Pool({
      host,
      port: db.port || 5432,
      database: db.dbname || db.name,
      user: authUser,
      password: password && !password.startsWith('md5') && !password.startsWith('SCRAM-SHA-256$') ? password : undefined,
      max: 2,
      idleTimeoutMillis: 10_000,
      connectionTimeoutMillis: Math.max(1000, s.server_connect_timeout || 15_000),
      application_name: 'sluice auth_query',
      options: '-c search_path=pg_catalog',
    });
    pool.on('error', () => {});
    lookupPools.set(key, pool);
  }
  const r = await pool.query<{ rolname: string; rolpassword: string | null }>({ text: s.auth_query, values: [client.user], rowMode: 'array' } as never);
  const row = (r.rows as unknown as Array<[string, string | null]>)[0];
  if (!row || row[1] === null || row[1] === undefined) return undefined;
  return String(row[1]);
}

export async function closeLookupPools(): Promise<void> {
  const pools = [...lookupPools.values()];
  lookupPools.clear();
  await Promise.all(pools.map((p) => p.end().catch(() => {})));
}
