// The rows of each SHOW view, computed from the live pooler state. Nothing
// here runs on the hot path: views walk clients and pools when asked.
import type { Sluice } from '../app.js';
import type { ClientConn } from '../client/client_conn.js';
import type { Pool } from '../pool/pool.js';
import type { ServerConn } from '../pool/server_conn.js';
import { settingRows } from '../config/format.js';
import { VERSION } from '../version.js';
import type { Cell } from './wire.js';
import { formatTime } from './wire.js';
import type { StatsPeriod, StatFigures } from './stats.js';

export const ADMIN_DB = 'pgbouncer';

export interface PoolCounts {
  clActive: number;
  clWaiting: number;
  svActive: number;
  svIdle: number;
  svUsed: number;
  svTested: number;
  svLogin: number;
  maxWaitMs: number;
}

// One walk over the clients serves every pool of a scrape or a SHOW.
let memo: { at: number; app: Sluice; byPool: Map<Pool, { active: number; waiting: number }> } | null = null;
function clientCounts(app: Sluice): Map<Pool, { active: number; waiting: number }> {
  const now = Date.now();
  if (memo && memo.app === app && now - memo.at < 20) return memo.byPool;
  const byPool = new Map<Pool, { active: number; waiting: number }>();
  for (const c of app.clients) {
    if (!c.pool) continue;
    let e = byPool.get(c.pool);
    if (!e) byPool.set(c.pool, (e = { active: 0, waiting: 0 }));
    if (c.state === 'waiting') e.waiting++;
    else if (c.state === 'idle' || c.state === 'active' || c.state === 'linking') e.active++;
  }
  memo = { at: now, app, byPool };
  return byPool;
}

export function serverState(app: Sluice, s: ServerConn): 'active' | 'idle' | 'used' | 'tested' | 'new' | null {
  switch (s.state) {
    case 'connecting':
    case 'login':
      return 'new';
    case 'active':
      return 'active';
    case 'internal':
      return s.client ? 'active' : 'tested';
    case 'idle': {
      const delay = app.settings().server_check_delay;
      return delay >= 0 && Date.now() - s.lastUsed > delay && app.settings().server_check_query ? 'used' : 'idle';
    }
    default:
      return null;
  }
}

export function poolCounts(app: Sluice, pool: Pool): PoolCounts {
  const c = clientCounts(app).get(pool) ?? { active: 0, waiting: 0 };
  const out: PoolCounts = { clActive: c.active, clWaiting: c.waiting, svActive: 0, svIdle: 0, svUsed: 0, svTested: 0, svLogin: 0, maxWaitMs: 0 };
  for (const s of pool.servers) {
    switch (serverState(app, s)) {
      case 'active':
        out.svActive++;
        break;
      case 'idle':
        out.svIdle++;
        break;
      case 'used':
        out.svUsed++;
        break;
      case 'tested':
        out.svTested++;
        break;
      case 'new':
        out.svLogin++;
        break;
      default:
        break;
    }
  }
  const first = pool.waiters.peek();
  if (first && first.waitStart) out.maxWaitMs = Math.max(0, Date.now() - first.waitStart);
  return out;
}

/** The longest current wait across pools (for /ready). */
export function longestWaitMs(app: Sluice): number {
  let max = 0;
  const now = Date.now();
  for (const p of app.pooler.pools.values()) {
    const first = p.waiters.peek();
    if (first && first.waitStart) max = Math.max(max, now - first.waitStart);
  }
  return max;
}

export function isDbPaused(app: Sluice, name: string): boolean {
  return app.isPausedDb(name); // also before the database has a pool
}

// ---------------------------------------------------------------- stats
function statCells(f: StatFigures): Cell[] {
  return [f.serverAssignCount, f.xactCount, f.queryCount, f.bytesReceived, f.bytesSent, f.xactTimeUs, f.queryTimeUs, f.waitTimeUs, 0, 0, 0, f.clientConnectCount];
}

export function statsRows(stats: StatsPeriod, which: 'both' | 'totals' | 'averages'): Cell[][] {
  const rows: Cell[][] = [];
  for (const [db, { total, avg }] of stats.perDatabase()) {
    if (which === 'both') rows.push([db, ...statCells(total), ...statCells(avg)]);
    else if (which === 'totals') rows.push([db, ...statCells(total)]);
    else rows.push([db, ...statCells(avg)]);
  }
  return rows;
}

export function totalsRows(stats: StatsPeriod): Cell[][] {
  const { total, avg } = stats.overall();
  const names = ['server_assignment_count', 'xact_count', 'query_count', 'received', 'sent', 'xact_time', 'query_time', 'wait_time', 'client_parse_count', 'server_parse_count', 'bind_count', 'client_connect_count'];
  const t = statCells(total);
  const a = statCells(avg);
  return [...names.map((n, i) => [`total_${n}`, t[i]!]), ...names.map((n, i) => [`avg_${n}`, a[i]!])];
}

// ---------------------------------------------------------------- sockets
const ptr = (kind: 'C' | 'S', id: number) => `0x${((kind === 'C' ? 0x1000000 : 0x2000000) + id).toString(16)}`;

function tlsInfo(socket: import('node:net').Socket | null, on: boolean): string {
  if (!on || !socket) return '';
  const t = socket as import('node:tls').TLSSocket;
  const proto = typeof t.getProtocol === 'function' ? t.getProtocol() : null;
  const cipher = typeof t.getCipher === 'function' ? t.getCipher()?.name : undefined;
  return [proto, cipher].filter(Boolean).join('/');
}

export function clientRows(app: Sluice, adminClients: ReadonlySet<ClientConn>): Cell[][] {
  const rows: Cell[][] = [];
  const now = Date.now();
  for (const c of app.clients) {
    const isAdmin = adminClients.has(c);
    if (!isAdmin && (!c.pool || c.state === 'startup' || c.state === 'auth' || c.state === 'welcome' || c.state === 'closed')) continue;
    const server = c.linkedServer;
    const waiting = c.state === 'waiting' && c.waitStart ? now - c.waitStart : 0;
    const state = c.state === 'waiting' ? 'waiting' : server || isAdmin ? 'active' : 'idle';
    rows.push([
      'C', c.user, isAdmin ? ADMIN_DB : c.database, 'none', state,
      c.remoteAddress, c.remotePort, c.local.address ?? '', c.local.port ?? 0,
      formatTime(c.connectedAt), formatTime(c.lastActivity),
      Math.floor(waiting / 1000), (waiting % 1000) * 1000, 0,
      ptr('C', c.id), server ? ptr('S', server.id) : '', 0, tlsInfo(c.socket, c.tls), c.appName, c.statements.size, c.id,
    ]);
  }
  return rows;
}

export function serverRows(app: Sluice): Cell[][] {
  const linked = new Map<ServerConn, ClientConn>();
  for (const c of app.clients) if (c.linkedServer) linked.set(c.linkedServer, c);
  const rows: Cell[][] = [];
  for (const p of app.pooler.pools.values()) {
    for (const s of p.servers) {
      const state = serverState(app, s);
      if (!state) continue;
      const client = linked.get(s);
      rows.push([
        'S', p.user, p.db.name, 'none', state,
        s.host, p.target.port, s.socket.localAddress ?? '', s.socket.localPort ?? 0,
        formatTime(s.createdAt), formatTime(s.linkedAt || s.lastUsed),
        0, 0, s.retire ? 1 : 0,
        ptr('S', s.id), client ? ptr('C', client.id) : '', s.pid, tlsInfo(s.socket, s.tlsActive), client?.appName ?? '', s.statements.size, s.id,
      ]);
    }
  }
  return rows;
}

// ---------------------------------------------------------------- pools, lists, users, databases
export function poolRows(app: Sluice, adminCount: number): Cell[][] {
  const rows: Cell[][] = [[ADMIN_DB, ADMIN_DB, adminCount, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 'statement', null]];
  for (const p of app.pooler.pools.values()) {
    const c = poolCounts(app, p);
    rows.push([
      p.db.name, p.user, c.clActive, c.clWaiting, 0, 0, c.svActive, 0, 0, c.svIdle, c.svUsed, c.svTested, c.svLogin,
      Math.floor(c.maxWaitMs / 1000), (c.maxWaitMs % 1000) * 1000, p.settings.mode, p.db.host.includes(',') ? p.db.load_balance_hosts : null,
    ]);
  }
  return rows;
}

function knownUsers(app: Sluice): string[] {
  const cfg = app.currentConfig;
  const names = new Set<string>([...cfg.users.keys(), ...cfg.userlist.keys()]);
  for (const p of app.pooler.pools.values()) names.add(p.user);
  for (const c of app.clients) if (c.user) names.add(c.user);
  return [...names].sort();
}

export function listRows(app: Sluice): Cell[][] {
  let servers = 0;
  for (const p of app.pooler.pools.values()) servers += p.servers.size;
  let login = 0;
  for (const c of app.clients) if (c.state === 'startup' || c.state === 'auth' || c.state === 'welcome') login++;
  return [
    ['databases', databaseNames(app).length + 1],
    ['users', knownUsers(app).length],
    ['peers', app.currentConfig.peers.size],
    ['pools', app.pooler.pools.size + 1],
    ['peer_pools', 0],
    ['free_clients', 0],
    ['used_clients', app.clients.size],
    ['login_clients', login],
    ['free_servers', 0],
    ['used_servers', servers],
    ['dns_names', 0],
    ['dns_zones', 0],
    ['dns_queries', 0],
    ['dns_pending', 0],
  ];
}

export function userRows(app: Sluice): Cell[][] {
  const s = app.settings();
  const serversByUser = new Map<string, number>();
  for (const p of app.pooler.pools.values()) serversByUser.set(p.user, (serversByUser.get(p.user) ?? 0) + p.servers.size);
  const clientsByUser = new Map<string, number>();
  for (const c of app.clients) if (c.user) clientsByUser.set(c.user, (clientsByUser.get(c.user) ?? 0) + 1);
  return knownUsers(app).map((name) => {
    const u = app.currentConfig.users.get(name);
    return [
      name,
      u?.pool_size === undefined ? '' : String(u.pool_size),
      u?.reserve_pool_size === undefined ? '' : String(u.reserve_pool_size),
      u?.pool_mode ?? null,
      u?.max_user_connections ?? s.max_user_connections,
      serversByUser.get(name) ?? 0,
      u?.max_user_client_connections ?? s.max_user_client_connections,
      clientsByUser.get(name) ?? 0,
    ];
  });
}

/** Configured databases (without the '*' fallback) and databases created from it. */
function databaseNames(app: Sluice): string[] {
  const names = new Set<string>();
  for (const n of app.currentConfig.databases.keys()) if (n !== '*') names.add(n);
  for (const p of app.pooler.pools.values()) names.add(p.db.name);
  return [...names].sort();
}

export function databaseRows(app: Sluice, adminCount: number): Cell[][] {
  const s = app.settings();
  const rows: Cell[][] = [];
  const serversByDb = new Map<string, number>();
  for (const p of app.pooler.pools.values()) serversByDb.set(p.db.name, (serversByDb.get(p.db.name) ?? 0) + p.servers.size);
  const clientsByDb = new Map<string, number>();
  for (const c of app.clients) clientsByDb.set(c.database, (clientsByDb.get(c.database) ?? 0) + 1);
  for (const name of databaseNames(app)) {
    const db = app.pooler.findDatabase(name);
    if (!db) continue;
    rows.push([
      name, db.host || null, db.port || 5432, db.dbname || name, db.user || null,
      db.pool_size ?? s.default_pool_size, db.min_pool_size ?? s.min_pool_size, db.reserve_pool_size ?? s.reserve_pool_size,
      Math.floor((db.server_lifetime ?? s.server_lifetime) / 1000), db.pool_mode ?? null, db.host.includes(',') ? db.load_balance_hosts : null,
      db.max_db_connections ?? s.max_db_connections, serversByDb.get(name) ?? 0,
      db.max_db_client_connections ?? s.max_db_client_connections, clientsByDb.get(name) ?? 0,
      isDbPaused(app, name) ? 1 : 0, app.disabledDbs.has(name) ? 1 : 0,
    ]);
  }
  rows.push([ADMIN_DB, null, app.port, ADMIN_DB, ADMIN_DB, 2, 0, 0, 0, 'statement', null, 0, 0, 0, adminCount, 0, 0]);
  rows.sort((a, b) => (String(a[0]) < String(b[0]) ? -1 : 1));
  return rows;
}

export function configRows(app: Sluice): Cell[][] {
  return settingRows(app.currentConfig).map((r) => [r.key, r.value, r.default, r.changeable ? 'yes' : 'no']);
}

export function stateRows(app: Sluice): Cell[][] {
  return [
    ['active', app.isPaused ? 'no' : 'yes'],
    ['paused', app.isPaused ? 'yes' : 'no'],
    ['suspended', 'no'],
  ];
}

export const VERSION_STRING = `Sluice ${VERSION}`;
