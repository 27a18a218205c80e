// A running Sluice: listeners, the pooler, client registries and limits.
import { existsSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Config, DatabaseEntry, Settings, UserEntry } from './config/types.js';
import type { ErrorFields } from './protocol/messages.js';
import { createLogger, silentLogger, type Logger } from './log.js';
import { Pooler } from './pool/pooler.js';
import type { Pool } from './pool/pool.js';
import type { ServerConn } from './pool/server_conn.js';
import { ClientConn } from './client/client_conn.js';
import type { ClientContext } from './client/context.js';
import { sendCancel } from './client/cancel.js';
import { CancelPids } from './client/cancel_pids.js';
import { serverAuthFactory, PassthroughKeys } from './pool/server_auth.js';
import { authenticateClient, closeLookupPools, hbaRules, type AuthEnvironment, type AuthVerdict } from './client/authenticate.js';
import { acceptBareHandles } from './net/listener.js';
import { ClientSlots } from './pool/client_slots.js';
import { clientClosed, clientOpened } from './memory.js';
import type { AcceptedHandle } from './net/wire.js';
import { clientTlsOptions, upgradeClientSocket, serverTlsConnectOptions, serverTlsPlan, verifiedClientCommonName, type ClientTlsOptions } from './auth/tls.js';
import type { TLSSocket } from 'node:tls';
import { StatementRegistry } from './session/prepared.js';

export interface SluiceOptions {
  readonly logger?: Logger;
  /** The file the config came from, for RELOAD. */
  readonly configFile?: string;
  /** Re-reads the config for RELOAD/SIGHUP; throws a ConfigError when the file is invalid. */
  readonly loadConfig?: () => Config;
}

/** Hooks the admin console and HTTP endpoint plug into (src/admin). */
export interface AdminPlugin {
  start(client: ClientConn): void;
  onMessage(client: ClientConn, type: number, msg: Buffer): void;
  /** The client has closed (whatever it was doing). */
  forget(client: ClientConn): void;
  close(): Promise<void>;
}

export type ShutdownMode = 'immediate' | 'wait-for-clients' | 'wait-for-servers';

/** An ordinary login's verdict goes straight to the client. */
const clientVerdict: AuthVerdict = (client, err) => client.authDone(err);

export class Sluice implements ClientContext {
  readonly pooler: Pooler;
  readonly clients = new ClientSlots<ClientConn>();
  readonly log: Logger;
  /** Cancel key pid → the client's slot (numbers, not clients: see src/pool/client_slots.ts). */
  private readonly cancelPids = new CancelPids();
  private readonly clientsPerDb = new Map<string, number>();
  private readonly clientsPerUser = new Map<string, number>();
  private readonly servers: net.Server[] = [];
  private readonly unixPaths: string[] = [];
  private config: Config;
  readonly options: SluiceOptions;
  private readonly passthrough = new PassthroughKeys();
  readonly statements = new StatementRegistry();
  private clientTls: ClientTlsOptions | null = null;
  /** Databases refused by DISABLE. */
  readonly disabledDbs = new Set<string>();
  /** Set by src/admin when the console is loaded. */
  admin: AdminPlugin | null = null;
  /** Called when the admin console asks for SHUTDOWN; the CLI decides how the process ends. */
  onShutdownRequest: (mode: ShutdownMode) => void = (mode) => void this.stop(mode);
  readonly startedAt = Date.now();
  /** TCP port actually bound (listen_port, or the ephemeral one for 0). */
  port = 0;
  shuttingDown = false;

  private constructor(config: Config, options: SluiceOptions) {
    this.config = config;
    this.options = options;
    this.log = options.logger ?? silentLogger;
    this.pooler = new Pooler(config, this.log, serverAuthFactory(() => this.config, this.passthrough), (db) => this.serverTls(db));
    this.pooler.clients = this.clients;
    this.checkHba(config);
    this.clientTls = this.buildClientTls(config);
  }

  /** auth_type = hba: the file is read and checked now (start, RELOAD), so a broken one is refused like any config error. */
  private checkHba(config: Config): void {
    if (config.settings.auth_type !== 'hba') return;
    for (const w of hbaRules(config).warnings) this.log.warn({ file: w.file, line: w.line }, w.message);
  }

  static async start(config: Config, options: SluiceOptions = {}): Promise<Sluice> {
    const app = new Sluice(config, options);
    // The console must be ready before the first client can reach it.
    const { attachAdmin } = await import('./admin/index.js');
    await attachAdmin(app);
    await app.listen();
    app.pooler.start();
    return app;
  }

  static defaultLogger(config: Config): Logger {
    return createLogger({ file: config.settings.logfile || undefined, verbose: config.settings.verbose });
  }

  userEntry(name: string): UserEntry | undefined {
    return this.config.users.get(name);
  }

  settings(): Settings {
    return this.config.settings;
  }

  get currentConfig(): Config {
    return this.config;
  }

  // ---------------------------------------------------------------- listening
  private async listen(): Promise<void> {
    const s = this.config.settings;
    const addrs = s.listen_addr
      .split(',')
      .map((a) => a.trim())
      .filter(Boolean)
      .map((a) => (a === '*' ? '0.0.0.0' : a));
    let port = s.listen_port;
    for (const host of addrs) {
      const server = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host, port, backlog: s.listen_backlog }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      this.acceptBare(server);
      const addr = server.address();
      if (addr && typeof addr === 'object') port = addr.port;
      this.servers.push(server);
    }
    this.port = port;
    if (s.unix_socket_dir) {
      const sockPath = path.join(s.unix_socket_dir, `.s.PGSQL.${port}`);
      if (existsSync(sockPath)) unlinkSync(sockPath); // stale socket from a crash
      const server = net.createServer((socket) => this.accept(socket));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ path: sockPath, backlog: s.listen_backlog }, () => resolve());
      });
      this.acceptBare(server);
      this.servers.push(server);
      this.unixPaths.push(sockPath);
    }
    this.log.info({ addrs, port, unix: this.unixPaths }, 'listening');
  }

  /** While client TLS is off, connections skip net.Socket (src/net/listener.ts). */
  private acceptBare(server: net.Server): void {
    acceptBareHandles(
      server,
      () => this.clientTls === null && !this.shuttingDown,
      (handle) => this.accept(null, handle),
    );
  }

  private accept(socket: net.Socket | null, handle: AcceptedHandle | null = null): void {
    if (this.shuttingDown) {
      socket?.destroy();
      return;
    }
    const client = new ClientConn(socket, this, handle);
    this.clients.add(client);
    clientOpened();
    if (this.config.settings.log_connections) {
      this.log.info({ client: client.id, addr: client.remoteAddress }, 'client connected');
    }
  }

  // ---------------------------------------------------------------- ClientContext
  admit(client: ClientConn): ErrorFields | null {
    const s = this.config.settings;
    if (this.shuttingDown) return { code: '57P01', message: 'Sluice is shutting down' };
    if (this.disabledDbs.has(client.database)) {
      return { code: '57P03', message: `database "${client.database}" is disabled (DISABLE); try again after ENABLE` };
    }
    if (this.clients.size > s.max_client_conn) {
      return { code: '53300', message: `no more connections allowed (max_client_conn = ${s.max_client_conn})` };
    }
    const db = this.config.databases.get(client.database);
    const dbLimit = db?.max_db_client_connections ?? s.max_db_client_connections;
    const perDb = this.clientsPerDb.get(client.database) ?? 0;
    if (dbLimit > 0 && perDb >= dbLimit) {
      return { code: '53300', message: `no more connections allowed for database "${client.database}" (max_db_client_connections = ${dbLimit})` };
    }
    const userLimit = this.config.users.get(client.user)?.max_user_client_connections ?? s.max_user_client_connections;
    const perUser = this.clientsPerUser.get(client.user) ?? 0;
    if (userLimit > 0 && perUser >= userLimit) {
      return { code: '53300', message: `no more connections allowed for user "${client.user}" (max_user_client_connections = ${userLimit})` };
    }
    this.clientsPerDb.set(client.database, perDb + 1);
    this.clientsPerUser.set(client.user, perUser + 1);
    client.admitted = true;
    return null;
  }

  /** What the auth layer may see of Sluice: made once, not per login. */
  private readonly authEnvironment: AuthEnvironment = {
    config: () => this.config,
    findDatabase: (name) => this.findDatabase(name),
    onScramKeys: (user, keys) => this.passthrough.remember(user, keys),
    onLookedUpSecret: (user, secret) => this.passthrough.rememberSecret(user, secret),
    onConfigError: (err) => this.log.error({ err: err instanceof Error ? err.message : String(err) }, 'authentication configuration error'),
  };

  authenticate(client: ClientConn): void {
    authenticateClient(this.authEnvironment, client, this.isAdminDatabase(client.database) ? this.adminVerdict : clientVerdict);
  }

  /** The admin console takes only admin_users and stats_users, whatever the method said. */
  private readonly adminVerdict: AuthVerdict = (client, err) => {
    const s = this.config.settings;
    // auth_type = any: anyone gets in, as a stats user (as in PgBouncer).
    if (err || s.admin_users.includes(client.user) || s.stats_users.includes(client.user) || s.auth_type === 'any') client.authDone(err);
    else client.authDone({ code: '28000', message: `user "${client.user}" is not allowed to use the admin console (admin_users / stats_users)` });
  };

  tlsRequired(client: ClientConn): boolean {
    const mode = this.config.settings.client_tls_sslmode;
    return !client.isUnix && (mode === 'require' || mode === 'verify-ca' || mode === 'verify-full');
  }

  private buildClientTls(config: Config): ClientTlsOptions | null {
    // Client certificates are asked for only when an hba rule uses them.
    const wantsCerts = config.settings.auth_type === 'hba' && hbaRules(config).rules.some((r) => r.method === 'cert');
    const opts = clientTlsOptions(config.settings, wantsCerts);
    if (!opts) return null;
    // ALPN lets PostgreSQL 17 clients use direct TLS (sslnegotiation=direct).
    return Object.freeze({ ...opts, context: { ...opts.context, ALPNProtocols: ['postgresql'] } });
  }

  get tlsUpgrade(): ((client: ClientConn, direct: Buffer | null) => void) | undefined {
    const opts = this.clientTls;
    if (!opts) return undefined;
    const timeout = this.config.settings.client_login_timeout || 60_000;
    return (client, direct) => client.startTls((raw) => upgradeClientSocket(raw, opts, timeout), direct);
  }

  verifiedCommonName(socket: TLSSocket): string | undefined {
    return verifiedClientCommonName(socket);
  }

  /** TLS towards PostgreSQL, per server_tls_sslmode (libpq meanings). */
  private serverTls(db: DatabaseEntry) {
    const s = this.config.settings;
    const plan = serverTlsPlan(s.server_tls_sslmode, !!s.server_tls_ca_file);
    if (!plan.sendSSLRequest) return undefined;
    const host = db.host || '/tmp';
    if (host.startsWith('/')) return undefined;
    const options = serverTlsConnectOptions(s, host);
    if (!options) return undefined;
    return { mode: s.server_tls_sslmode, options };
  }

  findDatabase(name: string): DatabaseEntry | undefined {
    return this.pooler.findDatabase(name);
  }

  poolFor(db: DatabaseEntry, user: string): Pool {
    const pool = this.pooler.poolFor(db, user);
    if (this.pausedAll || this.pausedDbs.has(db.name)) pool.paused = true;
    return pool;
  }

  private pausedAll = false;
  private readonly pausedDbs = new Set<string>();

  /**
   * PAUSE (console or SIGUSR1): new transactions wait; running ones finish,
   * and server connections close as they are released, as in PgBouncer.
   * Without a name, every database.
   */
  pause(database?: string): void {
    if (database) this.pausedDbs.add(database);
    else this.pausedAll = true;
    for (const p of this.pooler.pools.values()) {
      if (database && p.db.name !== database) continue;
      p.paused = true;
      for (const s of [...p.servers]) {
        if (s.state === 'idle') s.close('PAUSE');
        else s.retire = true;
      }
    }
  }

  /** The database was paused by name (PAUSE db), not only by a global PAUSE. */
  isPausedByName(name: string): boolean {
    return this.pausedDbs.has(name);
  }

  /** Some database is paused by name. */
  get anyPausedByName(): boolean {
    return this.pausedDbs.size > 0;
  }

  resume(database?: string): void {
    if (database) this.pausedDbs.delete(database);
    else {
      this.pausedAll = false;
      this.pausedDbs.clear();
    }
    for (const p of this.pooler.pools.values()) {
      if (!database || p.db.name === database) {
        p.paused = this.pausedAll || this.pausedDbs.has(p.db.name);
        p.kick();
      }
    }
  }

  get isPaused(): boolean {
    return this.pausedAll;
  }

  isPausedDb(name: string): boolean {
    return this.pausedAll || this.pausedDbs.has(name);
  }

  /** log_pooler_errors: errors Sluice itself sends to clients. */
  onPoolerError(client: ClientConn, f: ErrorFields): void {
    if (this.config.settings.log_pooler_errors) {
      this.log.warn({ client: client.id, user: client.user, db: client.database, code: f.code }, f.message);
    }
  }

  registerCancel(client: ClientConn): number {
    return this.cancelPids.add(client.slot);
  }

  cancel(pid: number, key: Buffer): void {
    const slot = this.cancelPids.slotOf(pid);
    const target = slot < 0 ? undefined : this.clients.at(slot);
    // A cancel for an unknown client, a wrong key, or a client with nothing running does nothing,
    // as PostgreSQL ignores one for an idle backend (the server may soon be another client's).
    if (!target || target.cancelPid !== pid || !target.matchesCancelKey(key) || !target.awaitingServer) return;
    this.forwardCancel(target.linkedServer!);
  }

  forwardCancel(server: ServerConn): void {
    sendCancel(server);
  }

  isAdminDatabase(name: string): boolean {
    return name === 'pgbouncer';
  }

  startAdmin(client: ClientConn): void {
    if (!this.admin) {
      client.fatal({ code: '0A000', message: 'the admin console is not available' });
      return;
    }
    this.admin.start(client);
  }

  adminQuery = (client: ClientConn, type: number, data: Buffer, start: number, end: number): void => {
    this.admin?.onMessage(client, type, data.subarray(start, end));
  };

  /** RELOAD: re-reads the config file; on error the old config stays and the error is thrown. */
  reloadFromFile(): Config {
    if (!this.options.loadConfig) throw new Error('this Sluice was started without a config file; nothing to reload');
    const next = this.options.loadConfig();
    this.reload(next);
    return next;
  }

  logPin(client: ClientConn, reason: string): void {
    this.log.info({ client: client.id, user: client.user, db: client.database, reason }, 'client pinned to its server connection');
  }

  forget(client: ClientConn, reason: string, isError: boolean): void {
    if (client.cancelPid) this.cancelPids.delete(client.cancelPid);
    if (this.clients.delete(client)) clientClosed();
    this.admin?.forget(client);
    if (client.admitted) {
      client.admitted = false;
      this.clientsPerDb.set(client.database, (this.clientsPerDb.get(client.database) ?? 1) - 1);
      this.clientsPerUser.set(client.user, (this.clientsPerUser.get(client.user) ?? 1) - 1);
    }
    if (this.config.settings.log_disconnections) {
      this.log.info({ client: client.id, user: client.user, db: client.database, reason }, isError ? 'client closed with error' : 'client disconnected');
    }
  }

  // ---------------------------------------------------------------- lifecycle
  /** Applies a new config; connected clients keep going. */
  reload(config: Config): void {
    // Certificates and the hba file are re-read here; a broken file throws before anything changes.
    this.checkHba(config);
    const tls = this.buildClientTls(config);
    this.config = config;
    this.clientTls = tls;
    this.pooler.reconfigure(config);
  }

  /**
   * Stops accepting, then: 'immediate' closes everything now; 'wait-for-clients'
   * waits until every client has gone; 'wait-for-servers' waits until no client
   * holds a server. Resolves when done or after `timeoutMs`.
   */
  async stop(mode: ShutdownMode = 'immediate', timeoutMs = 0): Promise<void> {
    this.shuttingDown = true;
    for (const s of this.servers) s.close();
    for (const p of this.unixPaths) if (existsSync(p)) unlinkSync(p);
    if (mode !== 'immediate') {
      const deadline = timeoutMs > 0 ? Date.now() + timeoutMs : Number.POSITIVE_INFINITY;
      for (;;) {
        if (mode === 'wait-for-servers') {
          // Clients without a server are let go now; the others when their transaction ends.
          for (const c of [...this.clients]) if (c.linkedServer === null && c.state !== 'waiting') c.fatal({ code: '57P01', message: 'Sluice is shutting down' });
        }
        const done = mode === 'wait-for-clients' ? this.clients.size === 0 : [...this.clients].every((c) => c.linkedServer === null);
        if (done || Date.now() >= deadline) break;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    for (const c of [...this.clients]) c.fatal({ code: '57P01', message: 'Sluice is shutting down' });
    await this.admin?.close();
    await closeLookupPools();
    this.pooler.stop();
    this.pooler.closeAll('shutdown');
  }
}
