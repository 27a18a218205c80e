// The set of pools, the global connection limits, and the janitor.
//
// Timers: one coarse interval (JANITOR_MS) checks every deadline. The hot path
// only stores timestamps on objects; nothing schedules a timer per connection
// or per query, so 10,000 idle clients cost one scan per tick.
import type { Config, DatabaseEntry, Settings } from '../config/types.js';
import type { Logger } from '../log.js';
import { Pool, type PoolHost, type PoolSettings } from './pool.js';
import type { ServerTarget } from './server_conn.js';
import type { PoolObserver } from './observer.js';

export const JANITOR_MS = 100;

/** A connection the janitor visits each tick (clients implement it). */
export interface Tickable {
  onTick(now: number): void;
}

export type ServerAuthFactory = (db: DatabaseEntry, serverUser: string, clientUser: string) => ServerTarget['auth'];
export type ServerTlsFactory = (db: DatabaseEntry) => ServerTarget['tls'];

export class Pooler implements PoolHost {
  readonly pools = new Map<string, Pool>();
  /** The same pools by database name, then server user: found at each login without building a key string. */
  private readonly poolIndex = new Map<string, Map<string, Pool>>();
  /** The clients to tick (the owner's registry; see src/pool/client_slots.ts). */
  clients: Iterable<Tickable> = [];
  private readonly serversPerDb = new Map<string, number>();
  private readonly serversPerUser = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  config: Config;
  /** Set by the metrics layer; handed to every pool. */
  private poolObserver: PoolObserver | null = null;

  get observer(): PoolObserver | null {
    return this.poolObserver;
  }

  set observer(o: PoolObserver | null) {
    this.poolObserver = o;
    for (const p of this.pools.values()) p.observer = o;
  }

  constructor(
    config: Config,
    private readonly log: Logger,
    private readonly serverAuth: ServerAuthFactory,
    private readonly serverTls: ServerTlsFactory = () => undefined,
  ) {
    this.config = config;
  }

  get settings(): Settings {
    return this.config.settings;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), JANITOR_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Finds the [databases] entry for a client's database name ('*' is the fallback). */
  findDatabase(name: string): DatabaseEntry | undefined {
    const exact = this.config.databases.get(name);
    if (exact) return exact;
    const fallback = this.config.databases.get('*');
    if (!fallback) return undefined;
    return { ...fallback, name, dbname: fallback.dbname || name };
  }

  poolSettingsFor(db: DatabaseEntry, user: string): PoolSettings {
    const s = this.settings;
    const u = this.config.users.get(user);
    return Object.freeze({
      mode: u?.pool_mode ?? db.pool_mode ?? s.pool_mode,
      size: u?.pool_size ?? db.pool_size ?? s.default_pool_size,
      minSize: db.min_pool_size ?? s.min_pool_size,
      reserveSize: u?.reserve_pool_size ?? db.reserve_pool_size ?? s.reserve_pool_size,
      reserveTimeoutMs: s.reserve_pool_timeout,
      roundRobin: s.server_round_robin,
      pinPolicy: u?.pin_policy ?? db.pin_policy ?? s.pin_policy,
      // A [users] query_wait_timeout is the waiting client's own (ClientConn.onTick).
      queryWaitTimeoutMs: db.query_wait_timeout ?? s.query_wait_timeout,
      serverLifetimeMs: db.server_lifetime ?? s.server_lifetime,
    });
  }

  /** The pool for a client of `db` logging in as `user` (created on first use). */
  private targetFor(db: DatabaseEntry, serverUser: string, user: string): ServerTarget {
    const s = this.settings;
    return {
      host: db.host || '/tmp',
      port: db.port || 5432,
      database: db.dbname || db.name,
      user: serverUser,
      startupParams: this.serverStartupParams(db),
      auth: this.serverAuth(db, serverUser, user),
      tls: this.serverTls(db),
      keepAlive: s.tcp_keepalive,
      maxPacketSize: s.max_packet_size,
      connectQuery: db.connect_query || undefined,
      hosts: Object.freeze((db.host || '/tmp').split(',').map((h) => h.trim()).filter(Boolean)),
      loadBalanceHosts: db.load_balance_hosts,
    };
  }

  poolFor(db: DatabaseEntry, user: string): Pool {
    const serverUser = db.user || user;
    let byUser = this.poolIndex.get(db.name);
    const known = byUser?.get(serverUser);
    if (known) return known;
    const target = this.targetFor(db, serverUser, user);
    const pool = new Pool(db, serverUser, target, this.poolSettingsFor(db, user), this);
    pool.observer = this.poolObserver;
    this.pools.set(`${db.name}\u0000${serverUser}`, pool);
    if (!byUser) this.poolIndex.set(db.name, (byUser = new Map()));
    byUser.set(serverUser, pool);
    return pool;
  }

  private serverStartupParams(db: DatabaseEntry): Record<string, string> {
    const p: Record<string, string> = {};
    if (db.application_name) p.application_name = db.application_name;
    if (db.client_encoding) p.client_encoding = db.client_encoding;
    if (db.datestyle) p.DateStyle = db.datestyle;
    if (db.timezone) p.TimeZone = db.timezone;
    return p;
  }

  // ---- PoolHost ----
  mayLaunch(pool: Pool): boolean {
    const s = this.settings;
    const dbLimit = pool.db.max_db_connections ?? s.max_db_connections;
    if (dbLimit > 0 && (this.serversPerDb.get(pool.db.name) ?? 0) >= dbLimit) {
      // Make room by closing an idle server of another pool on the same database.
      if (!this.evictIdle((p) => p !== pool && p.db.name === pool.db.name)) return false;
    }
    const userEntry = this.config.users.get(pool.user);
    const userLimit = userEntry?.max_user_connections ?? s.max_user_connections;
    if (userLimit > 0 && (this.serversPerUser.get(pool.user) ?? 0) >= userLimit) {
      if (!this.evictIdle((p) => p !== pool && p.user === pool.user)) return false;
    }
    return true;
  }

  private evictIdle(match: (p: Pool) => boolean): boolean {
    for (const p of this.pools.values()) {
      if (match(p) && p.idle.length > 0) {
        p.idle[0].close('evicted to make room under max_db_connections/max_user_connections');
        return true;
      }
    }
    return false;
  }

  connectTimeoutMs(): number {
    return this.settings.server_connect_timeout;
  }

  loginRetryMs(): number {
    return this.settings.server_login_retry;
  }

  onServerCountChanged(): void {
    this.serversPerDb.clear();
    this.serversPerUser.clear();
    for (const p of this.pools.values()) {
      this.serversPerDb.set(p.db.name, (this.serversPerDb.get(p.db.name) ?? 0) + p.servers.size);
      this.serversPerUser.set(p.user, (this.serversPerUser.get(p.user) ?? 0) + p.servers.size);
    }
  }

  /** A server slot may have opened somewhere: let waiting pools try again. */
  private kickAll(): void {
    for (const p of this.pools.values()) if (p.waiters.length > 0 || p.hasParamWaiters) p.launchIfNeeded();
  }

  /** Applies a new config: pool settings change in place, connected clients stay. */
  reconfigure(config: Config): void {
    this.config = config;
    for (const p of this.pools.values()) {
      const db = this.findDatabase(p.db.name) ?? p.db;
      p.db = db; // per-database limits such as max_db_connections take effect
      p.settings = this.poolSettingsFor(db, p.user);
      // New connections use the new host, password and TLS files.
      p.target = this.targetFor(db, p.user, p.user);
      p.kick();
    }
  }

  tick(now = Date.now()): void {
    const s = this.settings;
    for (const c of this.clients) c.onTick(now);
    for (const pool of this.pools.values()) {
      for (const server of pool.servers) {
        if ((server.state === 'connecting' || server.state === 'login') && server.connectDeadline && now > server.connectDeadline) {
          server.close(`server_connect_timeout (${s.server_connect_timeout / 1000} s) fired while connecting to ${server.host}:${pool.target.port}`);
          continue;
        }
        if (server.state !== 'idle') continue;
        const lifetime = pool.settings.serverLifetimeMs;
        if (lifetime > 0 && now - server.createdAt > lifetime && pool.servers.size > pool.settings.minSize) {
          server.close('server_lifetime reached');
        } else if (s.server_idle_timeout > 0 && now - server.lastUsed > s.server_idle_timeout && pool.servers.size > pool.settings.minSize) {
          server.close('server_idle_timeout reached');
        }
      }
      // Reserve pool: launches once a waiter has waited reserve_pool_timeout.
      if (pool.waiters.length > 0 || pool.hasParamWaiters) pool.launchIfNeeded();
      if (pool.settings.minSize > 0 && pool.params) pool.fillToMin();
    }
    this.kickAll();
  }

  /** Counts of servers and clients, for limits that span pools. */
  serverCountForDb(name: string): number {
    return this.serversPerDb.get(name) ?? 0;
  }

  closeAll(reason: string): void {
    for (const p of this.pools.values()) p.closeAll(reason, true);
  }

  logger(): Logger {
    return this.log;
  }
}
