// createPool: one `pg.Pool` configured the safe way, usable by plain `pg`,
// Prisma's adapter, Drizzle and Kysely alike (it *is* a `pg.Pool`).
//
// What the subclass adds on top of pg-pool, all in `connect()`, which
// `pool.query()` and every ORM go through:
// - a deadline the kit enforces itself (a late connection is released, not leaked);
// - an error listener for the whole checkout, so a dying backend never
//   becomes an uncaught 'error' event;
// - a release that destroys clients left mid-transaction, with a query still
//   running, holding session state (SET, session advisory locks, temp tables,
//   LISTEN, … seen by Sluice's own SQL classifier), or broken;
// - leak detection with the acquiring stack, and stats histograms.
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { AcquireTimeoutError, KitConfigError, PoolClosingError } from './errors.js';
import { MillisHistogram, type HistogramSnapshot } from './histogram.js';
import { defaultLogger, type KitLogger } from './logger.js';
import { resolveTls, TLS_URL_PARAMS, type SslMode, type TlsPolicy } from './tls.js';
import { classifySql, SqlFlag } from '../session/classify.js';

/** Connection budget from which the pool size is derived. */
export interface PoolBudget {
  /** Connections the server allows this role (e.g. `max_connections` minus reserved slots). */
  readonly connectionLimit: number;
  /** App instances (processes, containers, functions) sharing that limit. Default 1. */
  readonly instances?: number;
  /** Connections kept free for admin, migrations and deploy overlap. Default max(2, 10 % of the limit). */
  readonly headroom?: number;
}

/**
 * Pool size from a budget: `floor((connectionLimit - headroom) / instances)`.
 * Throws `SLUICE_KIT_CONFIG` when that leaves less than one connection.
 *
 * @example
 * maxFromBudget({ connectionLimit: 100, instances: 8 }); // (100 - 10) / 8 → 11
 */
export function maxFromBudget(budget: PoolBudget): number {
  const instances = budget.instances ?? 1;
  const headroom = budget.headroom ?? Math.max(2, Math.ceil(budget.connectionLimit * 0.1));
  if (!Number.isInteger(budget.connectionLimit) || budget.connectionLimit < 1) {
    throw new KitConfigError(`budget.connectionLimit must be a positive integer, got ${budget.connectionLimit}`);
  }
  if (!Number.isInteger(instances) || instances < 1) throw new KitConfigError(`budget.instances must be a positive integer, got ${instances}`);
  const max = Math.floor((budget.connectionLimit - headroom) / instances);
  if (max < 1) {
    throw new KitConfigError(
      `connection budget too small: ${budget.connectionLimit} connections - ${headroom} headroom over ${instances} instances leaves ${max} per pool; ` +
        'put a pooler (Sluice) in front, or lower instances',
    );
  }
  return max;
}

/** A client held past `leakDetectionMillis`. */
export interface LeakReport {
  readonly heldMillis: number;
  /** Stack of the code that acquired the client. */
  readonly stack: string;
  /** Server backend pid, for pg_stat_activity. */
  readonly backendPid: number | undefined;
}

/** Options of {@link createPool}. Every field is optional; a URL string alone is enough. */
export interface CreatePoolOptions {
  /**
   * `postgres://user:pass@host:port/db?sslmode=verify-full&sslrootcert=/ca.pem`.
   * Default `process.env.DATABASE_URL`. TLS parameters are read by the kit and removed before `pg` sees the URL.
   * @example createPool({ connectionString: process.env.DATABASE_URL })
   */
  readonly connectionString?: string;
  /** Overrides for the URL's parts. @example createPool({ host: 'db', user: 'app', database: 'app', password: secret }) */
  readonly host?: string;
  readonly port?: number;
  readonly user?: string;
  readonly password?: string;
  readonly database?: string;
  /** libpq sslmode; overrides the URL. @example createPool({ connectionString, sslmode: 'verify-full', sslrootcert: './ca.pem' }) */
  readonly sslmode?: SslMode;
  /** CA bundle path, or `system` for public CAs. Falls back to `PGSSLROOTCERT`. */
  readonly sslrootcert?: string;
  readonly sslcert?: string;
  readonly sslkey?: string;
  /** Pool size. Mutually exclusive with `budget`. Default 10. @example createPool({ max: 5 }) */
  readonly max?: number;
  /** Derive `max` from a connection budget. @example createPool({ budget: { connectionLimit: 97, instances: 6 } }) */
  readonly budget?: PoolBudget;
  /** Deadline for getting a connection, enforced by the kit. Default 5000. @example createPool({ acquireTimeoutMillis: 2000 }) */
  readonly acquireTimeoutMillis?: number;
  /** Close connections idle this long. Default 10000. @example createPool({ idleTimeoutMillis: 30_000 }) */
  readonly idleTimeoutMillis?: number;
  /** TCP keepalive on server sockets. Default true. @example createPool({ keepAlive: false }) */
  readonly keepAlive?: boolean;
  /** Shown in pg_stat_activity. Default `sluice-kit`. @example createPool({ applicationName: 'billing-api' }) */
  readonly applicationName?: string;
  /** Recycle connections after this long (0 = never), jittered so they do not all reconnect at once. Default 1800. @example createPool({ maxLifetimeSeconds: 600 }) */
  readonly maxLifetimeSeconds?: number;
  /** Fraction of the lifetime taken off at random per connection, 0..1. Default 0.2. @example createPool({ lifetimeJitter: 0.1 }) */
  readonly lifetimeJitter?: number;
  /** Server-side `statement_timeout` in ms. Default unset (server's). @example createPool({ statementTimeoutMillis: 15_000 }) */
  readonly statementTimeoutMillis?: number;
  /** Server-side `idle_in_transaction_session_timeout` in ms. Default 60000. @example createPool({ idleInTransactionTimeoutMillis: 10_000 }) */
  readonly idleInTransactionTimeoutMillis?: number;
  /** Report clients held longer than this (0 = off). Default 30000. @example createPool({ leakDetectionMillis: 5_000 }) */
  readonly leakDetectionMillis?: number;
  /** Called once per leaked checkout, after the warning is logged. @example createPool({ onLeak: (r) => metrics.leaks.inc() }) */
  readonly onLeak?: (report: LeakReport) => void;
  /** Structured logger (pino-compatible). Default: pino to stdout. @example createPool({ logger: app.log }) */
  readonly logger?: KitLogger;
  /** Name used in logs and metric labels. Default the application name. @example createPool({ name: 'primary' }) */
  readonly name?: string;
  /** Environment to read DATABASE_URL and PGSSL* from. Default `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
}

/** Counts and histograms of one pool. */
export interface PoolStats {
  readonly name: string;
  readonly max: number;
  /** Open connections (idle + acquired + connecting). */
  readonly total: number;
  readonly idle: number;
  /** Callers waiting in `connect()`. */
  readonly waiting: number;
  /** Clients checked out right now. */
  readonly acquired: number;
  readonly leaks: number;
  readonly acquireTimeouts: number;
  /** Clients destroyed at release because they were mid-transaction, had a query running, or held session state. */
  readonly dirtyReleases: number;
  /** Clients destroyed because their connection failed while checked out. */
  readonly brokenReleases: number;
  readonly closing: boolean;
  readonly acquireWait: HistogramSnapshot;
  readonly hold: HistogramSnapshot;
}

interface Checkout {
  readonly since: number;
  readonly stack: string;
  reported: boolean;
  broken: Error | undefined;
  /** Released by drain() past its deadline; the owner's late release() is ignored. */
  forced: boolean;
}

type ConnectCallback = (err: Error | undefined, client: pg.PoolClient | undefined, done: (release?: Error | boolean) => void) => void;

const NOT_SSL = /does not support SSL/i;
const warnedHosts = new Set<string>();
const doomed = new WeakSet<pg.PoolClient>();

interface Resolved {
  readonly pgConfig: pg.PoolConfig;
  readonly tls: TlsPolicy;
  readonly host: string;
  readonly kit: Required<Pick<CreatePoolOptions, 'acquireTimeoutMillis' | 'leakDetectionMillis' | 'maxLifetimeSeconds' | 'lifetimeJitter'>> & {
    readonly name: string;
    readonly logger: KitLogger;
    readonly onLeak: ((r: LeakReport) => void) | undefined;
  };
}

/** What a statement can leave behind in a session, for the next user of the connection to inherit. */
const SESSION_STATE =
  SqlFlag.SessionSet | SqlFlag.Advisory | SqlFlag.TempObject | SqlFlag.Listen | SqlFlag.HoldCursor | SqlFlag.SqlPrepare | SqlFlag.Load | SqlFlag.Unknown;
const kSessionState = Symbol('sluice.kit.sessionState');
const kWatched = Symbol('sluice.kit.watched');

/**
 * Wraps a client's query() once, so a statement that may leave session state
 * marks the client (classifySql's prefilter: one regex test per query). SET
 * LOCAL, set_config(…, true) and transaction-scoped locks do not.
 */
function watchSessionState(client: pg.PoolClient): void {
  const c = client as unknown as Record<symbol, unknown> & { query: (...args: unknown[]) => unknown };
  if (c[kWatched]) return;
  c[kWatched] = true;
  const query = c.query;
  c.query = function (this: unknown, ...args: unknown[]) {
    const q = args[0] as string | { text?: unknown } | undefined;
    const text = typeof q === 'string' ? q : typeof q?.text === 'string' ? q.text : undefined;
    if (text !== undefined && classifySql(text) & SESSION_STATE) c[kSessionState] = true;
    return query.apply(this, args);
  };
}

/** pg's own record of a query sent or queued on this client (no public API; missing fields read as none). */
function queriesInFlight(client: pg.PoolClient): boolean {
  const c = client as unknown as { _getActiveQuery?: () => unknown; _queryQueue?: unknown[] };
  return (typeof c._getActiveQuery === 'function' && c._getActiveQuery() != null) || (Array.isArray(c._queryQueue) && c._queryQueue.length > 0);
}

function positive(name: string, v: number | undefined, dflt: number, allowZero = true): number {
  if (v === undefined) return dflt;
  if (!Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) throw new KitConfigError(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, got ${v}`);
  return v;
}

function resolveOptions(input: string | CreatePoolOptions | undefined): Resolved {
  const opts: CreatePoolOptions = typeof input === 'string' ? { connectionString: input } : (input ?? {});
  const env = opts.env ?? process.env;
  const raw = opts.connectionString ?? env.DATABASE_URL;
  const params = new Map<string, string>();
  let connectionString: string | undefined;
  let urlHost = '';
  if (raw) {
    let url: URL;
    // libpq and pg take a user with no host (postgres://app@/db?host=/cloudsql/…);
    // URL does not, so parse it with a stand-in host and put the real one in ?host=.
    const hostless = /^postgres(?:ql)?:\/\/[^/?#]*@\//i.test(raw);
    try {
      url = new URL(hostless ? raw.replace('@/', '@localhost/') : raw);
    } catch {
      throw new KitConfigError('connection string is not a valid postgres:// URL');
    }
    if (hostless && !url.searchParams.has('host')) url.searchParams.set('host', env.PGHOST || 'localhost');
    if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
      throw new KitConfigError(`connection string scheme must be postgres:// or postgresql://, got ${url.protocol}//`);
    }
    for (const key of TLS_URL_PARAMS) {
      const v = url.searchParams.get(key);
      if (v !== null) params.set(key, v);
      url.searchParams.delete(key);
    }
    // pg lets the URL win over separate fields; we want explicit options to win.
    if (opts.host !== undefined) url.hostname = opts.host;
    if (opts.port !== undefined) url.port = String(opts.port);
    if (opts.user !== undefined) url.username = encodeURIComponent(opts.user);
    if (opts.password !== undefined) url.password = encodeURIComponent(opts.password);
    if (opts.database !== undefined) url.pathname = '/' + encodeURIComponent(opts.database);
    urlHost = url.searchParams.get('host') ?? decodeURIComponent(url.hostname);
    connectionString = url.toString();
  }
  const host = opts.host ?? (urlHost || env.PGHOST || 'localhost');
  let sslmode = opts.sslmode ?? params.get('sslmode');
  // `ssl=true` is node-postgres' own switch: full verification against public CAs.
  const legacy = params.get('ssl');
  if (sslmode === undefined && legacy !== undefined) sslmode = legacy === 'false' || legacy === '0' ? 'disable' : 'verify-full';
  const rootcert = opts.sslrootcert ?? params.get('sslrootcert') ?? (legacy !== undefined && sslmode === 'verify-full' ? 'system' : undefined);
  const tls = resolveTls({
    host,
    sslmode,
    sslrootcert: rootcert,
    sslcert: opts.sslcert ?? params.get('sslcert'),
    sslkey: opts.sslkey ?? params.get('sslkey'),
    sslpassword: params.get('sslpassword'),
    env,
  });

  if (opts.max !== undefined && opts.budget !== undefined) throw new KitConfigError('give either max or budget, not both');
  const max = opts.budget ? maxFromBudget(opts.budget) : positive('max', opts.max, 10, false);
  if (!Number.isInteger(max)) throw new KitConfigError(`max must be an integer, got ${max}`);
  const acquireTimeoutMillis = positive('acquireTimeoutMillis', opts.acquireTimeoutMillis, 5000, false);
  const lifetimeJitter = positive('lifetimeJitter', opts.lifetimeJitter, 0.2);
  if (lifetimeJitter > 1) throw new KitConfigError(`lifetimeJitter must be within 0..1, got ${lifetimeJitter}`);
  const applicationName = opts.applicationName ?? 'sluice-kit';
  const idleInTx = positive('idleInTransactionTimeoutMillis', opts.idleInTransactionTimeoutMillis, 60_000);

  const pgConfig: pg.PoolConfig = {
    ...(connectionString !== undefined
      ? { connectionString }
      : {
          ...(opts.host !== undefined ? { host: opts.host } : {}),
          ...(opts.port !== undefined ? { port: opts.port } : {}),
          ...(opts.user !== undefined ? { user: opts.user } : {}),
          ...(opts.password !== undefined ? { password: opts.password } : {}),
          ...(opts.database !== undefined ? { database: opts.database } : {}),
        }),
    ssl: tls.ssl,
    max,
    idleTimeoutMillis: positive('idleTimeoutMillis', opts.idleTimeoutMillis, 10_000),
    // pg's own timeout is only a backstop that clears pg-pool's queue and hung
    // sockets; the kit's deadline fires first and is the one callers see.
    connectionTimeoutMillis: acquireTimeoutMillis + 5_000,
    keepAlive: opts.keepAlive ?? true,
    keepAliveInitialDelayMillis: 10_000,
    application_name: applicationName,
    ...(opts.statementTimeoutMillis !== undefined ? { statement_timeout: positive('statementTimeoutMillis', opts.statementTimeoutMillis, 0) } : {}),
    ...(idleInTx > 0 ? { idle_in_transaction_session_timeout: idleInTx } : {}),
  };
  return {
    pgConfig,
    tls,
    host,
    kit: {
      acquireTimeoutMillis,
      leakDetectionMillis: positive('leakDetectionMillis', opts.leakDetectionMillis, 30_000),
      maxLifetimeSeconds: positive('maxLifetimeSeconds', opts.maxLifetimeSeconds, 1800),
      lifetimeJitter,
      name: opts.name ?? applicationName,
      logger: opts.logger ?? defaultLogger(),
      onLeak: opts.onLeak,
    },
  };
}

/**
 * A `pg.Pool` with the kit's safety rails. Create it with {@link createPool}.
 * It is an ordinary `pg.Pool` to every library that takes one.
 */
export class SluicePool extends pg.Pool {
  /** The TLS policy in force (mode, what is verified, why). */
  readonly tls: TlsPolicy;
  readonly name: string;
  readonly acquireTimeoutMillis: number;
  private readonly logger: KitLogger;
  private readonly leakMillis: number;
  private readonly onLeak: ((r: LeakReport) => void) | undefined;
  private readonly checkouts = new Map<pg.PoolClient, Checkout>();
  private readonly waitHist = new MillisHistogram();
  private readonly holdHist = new MillisHistogram();
  private readonly observers = new Set<(kind: 'wait' | 'hold', ms: number) => void>();
  private waiters = 0;
  private leakCount = 0;
  private timeoutCount = 0;
  private dirtyCount = 0;
  private brokenCount = 0;
  private closingFlag = false;
  private leakTimer: NodeJS.Timeout | undefined;
  /** Last failure to open a connection, cleared by the next success. */
  lastConnectError: Error | undefined;
  /** Time (ms since epoch) of the last acquire timeout. */
  lastAcquireTimeoutAt = 0;

  constructor(resolved: Resolved) {
    super(resolved.pgConfig);
    this.tls = resolved.tls;
    this.name = resolved.kit.name;
    this.acquireTimeoutMillis = resolved.kit.acquireTimeoutMillis;
    this.logger = resolved.kit.logger;
    this.leakMillis = resolved.kit.leakDetectionMillis;
    this.onLeak = resolved.kit.onLeak;
    const lifetime = resolved.kit.maxLifetimeSeconds;
    const jitter = resolved.kit.lifetimeJitter;
    if (lifetime > 0) {
      // pg-pool reads maxLifetimeSeconds each time a connection opens; a getter
      // gives every connection its own jittered lifetime.
      Object.defineProperty(this.options, 'maxLifetimeSeconds', {
        get: () => lifetime * (1 - jitter * Math.random()),
        enumerable: true,
        configurable: true,
      });
    }
    // A FATAL ErrorResponse means the server is closing this session (e.g.
    // pg_terminate_backend). The query rejects before the socket closes, so
    // without this mark a prompt release() would put a dying client back.
    this.on('connect', (client: pg.PoolClient) => {
      const connection = (client as unknown as { connection?: NodeJS.EventEmitter }).connection;
      connection?.on('errorMessage', (msg: { severity?: string }) => {
        if (msg.severity === 'FATAL' || msg.severity === 'PANIC') doomed.add(client);
      });
    });
    // Errors on idle clients (server restart, network drop) must not crash the process.
    this.on('error', (err: Error) => {
      this.logger.error({ pool: this.name, err: { message: err.message, code: (err as { code?: string }).code } }, 'idle database client failed; it was removed from the pool');
    });
  }

  /** Stops handing out clients: every later `connect()` fails with `SLUICE_POOL_CLOSING`. */
  beginClose(): void {
    this.closingFlag = true;
  }

  get closing(): boolean {
    return this.closingFlag || this.ending;
  }

  override connect(): Promise<pg.PoolClient>;
  override connect(callback: ConnectCallback): void;
  override connect(callback?: ConnectCallback): Promise<pg.PoolClient> | void {
    // Captured here, synchronously, so the stack names the caller.
    const holder: { stack?: string } = {};
    if (this.leakMillis > 0) Error.captureStackTrace(holder, this.connect);
    const p = this.acquire(holder.stack ?? '');
    if (!callback) return p;
    p.then(
      (client) => callback(undefined, client, client.release),
      (err: Error) => callback(err, undefined, () => {}),
    );
  }

  override end(): Promise<void>;
  override end(callback: () => void): void;
  override end(callback?: () => void): Promise<void> | void {
    this.closingFlag = true;
    this.stopLeakTimer();
    return callback ? super.end(callback) : super.end();
  }

  private async acquire(stack: string): Promise<pg.PoolClient> {
    if (this.closing) throw new PoolClosingError();
    const started = performance.now();
    const deadline = started + this.acquireTimeoutMillis;
    this.waiters++;
    let client: pg.PoolClient;
    try {
      client = await this.acquireOnce(deadline);
    } catch (err) {
      if (this.tls.mode === 'prefer' && this.options.ssl && err instanceof Error && NOT_SSL.test(err.message)) {
        // libpq's prefer: the server refused TLS, so use plaintext from now on.
        this.options.ssl = false;
        this.logger.info({ pool: this.name }, 'server does not offer TLS; sslmode=prefer continues without it');
        client = await this.acquireOnce(deadline);
      } else {
        throw err;
      }
    } finally {
      this.waiters--;
    }
    const waited = performance.now() - started;
    this.waitHist.observe(waited);
    for (const o of this.observers) o('wait', waited);
    return this.track(client, stack);
  }

  private acquireOnce(deadline: number): Promise<pg.PoolClient> {
    return new Promise((resolve, reject) => {
      let done = false;
      const timer = setTimeout(() => {
        if (done) return;
        done = true;
        this.timeoutCount++;
        this.lastAcquireTimeoutAt = Date.now();
        reject(
          new AcquireTimeoutError(
            this.acquireTimeoutMillis,
            `${this.totalCount}/${this.options.max} connections open, ${this.checkouts.size} in use, ${this.waiters} waiting`,
          ),
        );
      }, Math.max(0, deadline - performance.now()));
      super.connect().then(
        (client) => {
          this.lastConnectError = undefined;
          if (done) {
            // Arrived after the deadline: nobody is waiting for it, give it back.
            client.release();
            return;
          }
          done = true;
          clearTimeout(timer);
          resolve(client);
        },
        (err: Error) => {
          if (!/timeout exceeded when trying to connect/i.test(err.message)) this.lastConnectError = err;
          if (done) return;
          done = true;
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }

  private track(client: pg.PoolClient, stack: string): pg.PoolClient {
    const checkout: Checkout = { since: performance.now(), stack, reported: false, broken: undefined, forced: false };
    this.checkouts.set(client, checkout);
    watchSessionState(client);
    const onError = (err: Error): void => {
      // Without this listener a backend dying under a checked-out client is an
      // uncaught 'error' event. The caller's query rejects on its own.
      checkout.broken ??= err;
      this.logger.warn({ pool: this.name, err: { message: err.message, code: (err as { code?: string }).code } }, 'checked-out database client failed');
    };
    client.on('error', onError);
    const release = client.release;
    let released = false;
    client.release = (err?: Error | boolean) => {
      if (released) {
        if (checkout.forced) return;
        return release(err); // pg-pool throws the double-release error
      }
      released = true;
      client.removeListener('error', onError);
      this.checkouts.delete(client);
      if (this.checkouts.size === 0) this.stopLeakTimer();
      const held = performance.now() - checkout.since;
      this.holdHist.observe(held);
      for (const o of this.observers) o('hold', held);
      let destroy: Error | boolean | undefined = err;
      if (!destroy && (checkout.broken || doomed.has(client))) {
        destroy = checkout.broken ?? true;
        this.brokenCount++;
      } else if (!destroy && queriesInFlight(client)) {
        // The next caller's queries would queue behind it, inside whatever it began.
        this.dirtyCount++;
        this.logger.warn({ pool: this.name }, 'client released with a query still running; destroyed instead of reused');
        destroy = true;
      } else if (!destroy && (client as unknown as Record<symbol, boolean>)[kSessionState]) {
        this.dirtyCount++;
        this.logger.warn({ pool: this.name }, 'client released holding session state (SET, advisory lock, temp table, LISTEN, …); destroyed instead of reused');
        destroy = true;
      } else if (!destroy && client.getTransactionStatus() !== 'I') {
        // Handing a client in a transaction to the next caller would leak its
        // session state (and locks) into unrelated work.
        this.dirtyCount++;
        this.logger.warn({ pool: this.name, status: client.getTransactionStatus() }, 'client released inside a transaction; destroyed instead of reused');
        destroy = true;
      } else if (err) {
        this.brokenCount++;
      }
      release(destroy);
    };
    if (this.leakMillis > 0 && !this.leakTimer) {
      this.leakTimer = setInterval(() => this.scanLeaks(), Math.min(1000, Math.max(25, this.leakMillis / 4)));
      this.leakTimer.unref();
    }
    return client;
  }

  private stopLeakTimer(): void {
    if (this.leakTimer) clearInterval(this.leakTimer);
    this.leakTimer = undefined;
  }

  private scanLeaks(): void {
    const now = performance.now();
    for (const [client, c] of this.checkouts) {
      if (c.reported || now - c.since < this.leakMillis) continue;
      c.reported = true;
      this.leakCount++;
      const report: LeakReport = { heldMillis: Math.round(now - c.since), stack: c.stack, backendPid: (client as unknown as { processID?: number }).processID };
      this.logger.warn({ pool: this.name, heldMillis: report.heldMillis, backendPid: report.backendPid, acquiredAt: report.stack }, 'database client held longer than leakDetectionMillis; missing release()?');
      try {
        this.onLeak?.(report);
      } catch (err) {
        this.logger.error({ err: { message: (err as Error).message } }, 'onLeak callback threw');
      }
    }
  }

  /** Observe acquire waits and hold times as they happen (used by `registerMetrics`). Returns an unsubscribe function. */
  observe(fn: (kind: 'wait' | 'hold', millis: number) => void): () => void {
    this.observers.add(fn);
    return () => this.observers.delete(fn);
  }

  /** Counts and histograms right now. */
  stats(): PoolStats {
    return {
      name: this.name,
      max: this.options.max ?? 10,
      total: this.totalCount,
      idle: this.idleCount,
      waiting: this.waiters,
      acquired: this.checkouts.size,
      leaks: this.leakCount,
      acquireTimeouts: this.timeoutCount,
      dirtyReleases: this.dirtyCount,
      brokenReleases: this.brokenCount,
      closing: this.closing,
      acquireWait: this.waitHist.snapshot(),
      hold: this.holdHist.snapshot(),
    };
  }

  /**
   * Stop taking new work, wait (bounded) for checked-out clients to come back, then end the pool.
   * Resolves `true` when everything drained in time.
   */
  async drain(timeoutMillis = 10_000): Promise<boolean> {
    this.beginClose();
    const deadline = Date.now() + timeoutMillis;
    while ((this.checkouts.size > 0 || this.waiters > 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const drained = this.checkouts.size === 0 && this.waiters === 0;
    if (!drained) {
      this.logger.warn({ pool: this.name, acquired: this.checkouts.size }, 'pool did not drain in time; closing the remaining connections');
      // pg-pool's end() waits for every checked-out client; close them so it cannot hang.
      for (const [client, c] of [...this.checkouts]) {
        c.forced = true;
        client.release(new Error('pool drained past its deadline'));
      }
    }
    if (!this.ending) await this.end();
    return drained;
  }
}

/**
 * Create a pool from a URL or options.
 *
 * @example
 * const pool = createPool(process.env.DATABASE_URL);
 * const { rows } = await pool.query('select now()');
 */
export function createPool(urlOrOptions?: string | CreatePoolOptions): SluicePool {
  const resolved = resolveOptions(urlOrOptions);
  const pool = new SluicePool(resolved);
  if (resolved.tls.warning && !warnedHosts.has(resolved.host)) {
    warnedHosts.add(resolved.host);
    resolved.kit.logger.warn({ pool: pool.name, host: resolved.host, sslmode: resolved.tls.mode }, resolved.tls.warning);
  }
  return pool;
}

const REGISTRY = Symbol.for('sluice.kit.globalPools');

function globalRegistry(): Map<string, SluicePool> {
  const g = globalThis as unknown as Record<symbol, Map<string, SluicePool> | undefined>;
  return (g[REGISTRY] ??= new Map());
}

/**
 * One pool per key for the whole process, surviving module reloads (Next.js,
 * Vite, nodemon-less HMR): the pool lives on `globalThis`, not in the module.
 * A pool that has been ended is replaced.
 *
 * @example
 * export const pool = globalPool('main', () => createPool(process.env.DATABASE_URL));
 */
export function globalPool(key: string, create: () => SluicePool): SluicePool {
  const registry = globalRegistry();
  const existing = registry.get(key);
  if (existing && !existing.ending) return existing;
  const pool = create();
  registry.set(key, pool);
  return pool;
}

/**
 * End and forget the global pool under `key`, if any.
 *
 * @example
 * await endGlobalPool('main');
 */
export async function endGlobalPool(key: string): Promise<void> {
  const registry = globalRegistry();
  const pool = registry.get(key);
  registry.delete(key);
  if (pool && !pool.ending) await pool.end();
}
