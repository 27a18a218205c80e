// A pool of server connections for one (database, user) pair.
// Idle servers are a stack (LIFO: the warmest connection first) or a queue
// with server_round_robin. Waiting clients are served FIFO from a ring buffer.
import type { DatabaseEntry, PoolMode, PinPolicy } from '../config/types.js';
import { PoolError, PoolErrorCode } from './errors.js';
import { RingQueue } from './waiter_queue.js';
import { ServerConn, type ServerEvents, type ServerTarget } from './server_conn.js';
import type { PoolObserver } from './observer.js';
import { now } from '../net/clock.js';

export interface Waiter {
  /** When the client started waiting (ms); 0 when not waiting. */
  waitStart: number;
  onServer(server: ServerConn): void;
  onAcquireFailed(err: PoolError): void;
}

export interface PoolSettings {
  readonly mode: PoolMode;
  readonly size: number;
  readonly minSize: number;
  readonly reserveSize: number;
  readonly reserveTimeoutMs: number;
  readonly roundRobin: boolean;
  readonly pinPolicy: PinPolicy;
  /** Effective for this pool: [databases], then [pgbouncer]. */
  readonly queryWaitTimeoutMs: number;
  readonly serverLifetimeMs: number;
}

/** The manager-level decisions a pool defers to (global limits, timers, config). */
export interface PoolHost {
  mayLaunch(pool: Pool): boolean;
  connectTimeoutMs(): number;
  loginRetryMs(): number;
  onServerCountChanged(pool: Pool): void;
}

export interface PoolStats {
  xactCount: number;
  queryCount: number;
  bytesReceived: number;
  bytesSent: number;
  xactTimeUs: number;
  queryTimeUs: number;
  waitTimeUs: number;
  serverAssignCount: number;
  loginErrors: number;
  clientConnectCount: number;
  /** Batches replayed after "cached plan must not change result type". */
  preparedHealed: number;
  /** Named Parse messages from clients (transaction/statement mode). */
  preparedParses: number;
  /** Bind/Describe of a named statement already prepared on the server. */
  preparedHits: number;
  /** ... that Sluice had to prepare on the server first. */
  preparedMisses: number;
  /** Statements closed to respect max_prepared_statements. */
  preparedEvictions: number;
}

export class Pool implements ServerEvents {
  readonly idle: ServerConn[] = [];
  readonly servers = new Set<ServerConn>();
  readonly waiters = new RingQueue<Waiter>();
  /** Servers still connecting or logging in. */
  private readonly loggingIn = new Set<ServerConn>();
  /** ParameterStatus values of a logged-in server, for client welcome messages. */
  params: ReadonlyMap<string, string> | null = null;
  private paramWaiters: Array<(err: PoolError | null) => void> = [];
  lastLoginFailure: { at: number; error: PoolError } | null = null;
  paused = false;
  /** Metrics sink (src/admin), or null. */
  observer: PoolObserver | null = null;
  readonly stats: PoolStats = {
    xactCount: 0,
    queryCount: 0,
    bytesReceived: 0,
    bytesSent: 0,
    xactTimeUs: 0,
    queryTimeUs: 0,
    waitTimeUs: 0,
    serverAssignCount: 0,
    loginErrors: 0,
    clientConnectCount: 0,
    preparedHealed: 0,
    preparedParses: 0,
    preparedHits: 0,
    preparedMisses: 0,
    preparedEvictions: 0,
  };
  /** Number of clients attached to this pool (any state). */
  clientCount = 0;
  activeClients = 0;

  constructor(
    /** Replaced by a RELOAD that changes the entry (limits, timeouts). */
    public db: DatabaseEntry,
    readonly user: string,
    public target: ServerTarget,
    public settings: PoolSettings,
    private readonly host: PoolHost,
  ) {}

  get name(): string {
    return `${this.db.name}/${this.user}`;
  }

  get hasParamWaiters(): boolean {
    return this.paramWaiters.length > 0;
  }

  get connecting(): number {
    return this.loggingIn.size;
  }

  get activeServers(): number {
    return this.servers.size - this.idle.length - this.connecting;
  }

  /** Hands a server to the waiter now, or queues it. */
  acquire(w: Waiter): void {
    if (!this.paused && this.idle.length > 0 && this.waiters.length === 0) {
      const server = this.settings.roundRobin ? this.idle.shift()! : this.idle.pop()!;
      this.assign(server, w, 0);
      return;
    }
    const failure = this.recentLoginFailure();
    if (failure && this.servers.size === 0) {
      w.onAcquireFailed(failure);
      return;
    }
    w.waitStart = now();
    this.waiters.push(w);
    this.launchIfNeeded();
  }

  cancelWait(w: Waiter): void {
    if (w.waitStart !== 0) {
      this.waiters.remove(w);
      w.waitStart = 0;
    }
  }

  private assign(server: ServerConn, w: Waiter, waitStart: number): void {
    server.state = 'active';
    this.stats.serverAssignCount++;
    if (waitStart) {
      const ms = now() - waitStart;
      this.stats.waitTimeUs += ms * 1000;
      this.observer?.onWait(this, ms);
    }
    w.waitStart = 0;
    w.onServer(server);
  }

  /** Returns a clean server to the pool, or closes it. */
  release(server: ServerConn, clean: boolean): void {
    server.client = null;
    if (server.state === 'closed') return;
    if (!clean || server.retire || server.txStatus !== 'I') {
      server.close(clean ? 'retired' : 'released unclean');
      return;
    }
    if (server.cancelsInFlight > 0) {
      // A cancel still on its way must not reach the next client's query.
      server.afterCancels = () => this.release(server, true);
      return;
    }
    server.state = 'idle';
    server.lastUsed = now();
    // Backpressure from the last client may have paused it; a pooled server always reads.
    if (server.wire.isPaused) server.wire.resume();
    if (!this.paused) {
      const w = this.waiters.shift();
      if (w) {
        this.assign(server, w, w.waitStart);
        return;
      }
    }
    this.idle.push(server);
  }

  /** Resumes serving waiters (after PAUSE or a config change). */
  kick(): void {
    while (!this.paused && this.idle.length > 0 && this.waiters.length > 0) {
      const server = this.settings.roundRobin ? this.idle.shift()! : this.idle.pop()!;
      const w = this.waiters.shift()!;
      this.assign(server, w, w.waitStart);
    }
    this.launchIfNeeded();
  }

  /** Calls back once the server's ParameterStatus set is known (launching a server if needed). */
  whenParamsKnown(cb: (err: PoolError | null) => void): void {
    if (this.params) {
      cb(null);
      return;
    }
    const failure = this.recentLoginFailure();
    if (failure) {
      cb(failure);
      return;
    }
    this.paramWaiters.push(cb);
    this.launchIfNeeded();
  }

  private recentLoginFailure(): PoolError | null {
    const f = this.lastLoginFailure;
    if (!f) return null;
    if (Date.now() - f.at < this.host.loginRetryMs()) return f.error;
    return null;
  }

  /** Size limit in force now: the reserve counts once a waiter has waited long enough. */
  private currentLimit(now: number): number {
    const { size, reserveSize, reserveTimeoutMs } = this.settings;
    if (reserveSize > 0) {
      const first = this.waiters.peek();
      if (first && first.waitStart && now - first.waitStart >= reserveTimeoutMs) return size + reserveSize;
    }
    return size;
  }

  launchIfNeeded(): void {
    if (this.paused) return;
    const now = Date.now();
    // Keep launching while waiters (and clients waiting for a first login) outnumber connections on their way.
    const demand = () => this.waiters.length + (this.paramWaiters.length > 0 ? 1 : 0);
    while (demand() > this.connecting && this.servers.size < this.currentLimit(now)) {
      if (this.recentLoginFailure()) return;
      if (!this.launch()) return;
    }
  }

  /** Opens servers up to min_pool_size. */
  fillToMin(): void {
    if (this.paused || this.recentLoginFailure()) return;
    while (this.servers.size < Math.min(this.settings.minSize, this.settings.size)) {
      if (!this.launch()) return;
    }
  }

  private launch(): boolean {
    if (!this.host.mayLaunch(this)) return false;
    const server = new ServerConn(this.target, this, this.host.connectTimeoutMs());
    server.poolSlot = this;
    this.servers.add(server);
    this.loggingIn.add(server);
    this.host.onServerCountChanged(this);
    return true;
  }

  // ---- ServerEvents ----
  onLoginDone(server: ServerConn): void {
    this.loggingIn.delete(server);
    this.lastLoginFailure = null;
    if (!this.params) this.params = new Map(server.params);
    const waiting = this.paramWaiters;
    this.paramWaiters = [];
    for (const cb of waiting) cb(null);
    this.release(server, true);
  }

  onLoginFailed(server: ServerConn, message: string, raw: Buffer | null, sqlstate: string): void {
    if (!this.loggingIn.delete(server)) return;
    this.stats.loginErrors++;
    const error = new PoolError(PoolErrorCode.LoginFailed, sqlstate, message, raw ?? undefined);
    this.lastLoginFailure = { at: Date.now(), error };
    const waiting = this.paramWaiters;
    this.paramWaiters = [];
    for (const cb of waiting) cb(error);
    // While the server refuses logins, waiting clients fail fast with its error.
    let usable = 0;
    for (const s of this.servers) if (s !== server && !this.loggingIn.has(s) && s.state !== 'closed') usable++;
    if (usable === 0) {
      for (let w = this.waiters.shift(); w; w = this.waiters.shift()) {
        w.waitStart = 0;
        w.onAcquireFailed(error);
      }
    }
  }

  onClosed(server: ServerConn): void {
    if (!this.servers.delete(server)) return;
    this.loggingIn.delete(server);
    const i = this.idle.indexOf(server);
    if (i >= 0) this.idle.splice(i, 1);
    this.host.onServerCountChanged(this);
    // A replacement for clients still waiting.
    setImmediate(() => this.launchIfNeeded());
  }

  onReleaseRequested(server: ServerConn): void {
    server.client?.detachServer(server);
  }

  /** Closes every server (idle now; active ones when released). */
  closeAll(reason: string, includeActive: boolean): void {
    for (const s of [...this.servers]) {
      if (s.state === 'idle' || s.state === 'connecting' || s.state === 'login' || includeActive) s.close(reason);
      else s.retire = true;
    }
  }

  /** Closes idle servers now and marks busy ones to close when released (RECONNECT). */
  closeIdle(reason: string): void {
    for (const s of [...this.servers]) {
      if (s.state === 'idle') s.close(reason);
      else s.retire = true;
    }
  }

  /** Fails every waiter with the given error. */
  failWaiters(err: PoolError): void {
    for (let w = this.waiters.shift(); w; w = this.waiters.shift()) {
      w.waitStart = 0;
      w.onAcquireFailed(err);
    }
  }
}
