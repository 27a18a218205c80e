// The admin console: the virtual database `pgbouncer`. Simple query protocol
// only. Commands follow PgBouncer's grammar (`CMD [arg]`, `SET key = value`,
// `SELECT x` as `SHOW x`); admin_users may run everything, stats_users only
// the read-only views.
import { Buffer } from 'node:buffer';
import type { Sluice, ShutdownMode } from '../app.js';
import type { ClientConn } from '../client/client_conn.js';
import { ConfigError } from '../config/errors.js';
import { SETTING_SPECS, parseSetting, type SettingValue } from '../config/settings.js';
import type { Config, Settings } from '../config/types.js';
import type { Pool } from '../pool/pool.js';
import { noticeResponse, parameterStatus, readyForQuery, errorResponse, welcome } from '../protocol/messages.js';
import { randomKey } from '../client/random_pool.js';
import { VERSION } from '../version.js';
import { COLUMNS, TEXT, type Column } from './columns.js';
import { AdminError, AdminErrorCode } from './errors.js';
import type { Metrics } from './metrics.js';
import type { StatsPeriod } from './stats.js';
import * as views from './views.js';
import { commandComplete, dataRow, rowDescription, type Cell } from './wire.js';

export type AdminRole = 'admin' | 'stats';

/** How long PAUSE and WAIT_CLOSE wait for servers before answering with an error. */
export const CONTROL_WAIT_MS = 60_000;

// Parameters some drivers SET or SHOW on connect; answered without effect, like PgBouncer.
const FAKE_PARAMS = new Map([
  ['client_encoding', 'UTF8'],
  ['default_transaction_isolation', 'read committed'],
  ['standard_conforming_strings', 'on'],
  ['datestyle', 'ISO'],
  ['timezone', 'GMT'],
  ['extra_float_digits', '2'],
]);

const WORD = `("(?:[^"]|"")+"|[0-9a-z_]+)`;
const CMD_RX = new RegExp(`^${WORD}(?:\\s+${WORD})?$`, 'i');
const SET_RX = new RegExp(`^set\\s+${WORD}\\s*(?:=|\\s+to\\s+|\\s+to$)\\s*('(?:[^']|'')*'|"(?:[^"]|"")*"|[^\\s;']+)$`, 'i');

function unquote(w: string): string {
  if (w.startsWith('"')) return w.slice(1, -1).replace(/""/g, '"');
  if (w.startsWith("'")) return w.slice(1, -1).replace(/''/g, "'");
  return w;
}

const HELP = [
  'SHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION|STATE|LISTS',
  'SHOW STATS|STATS_TOTALS|STATS_AVERAGES|TOTALS',
  'SHOW PINS|PINNED_CLIENTS|PREPARED_STATEMENTS|LATENCY   (Sluice)',
  'SET key = arg',
  'RELOAD',
  'PAUSE [<db>]',
  'RESUME [<db>]',
  'DISABLE <db>',
  'ENABLE <db>',
  'RECONNECT [<db>]',
  'KILL [<db>]',
  'KILL_CLIENT <client_id>',
  'SHUTDOWN',
  'SHUTDOWN WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS',
  'WAIT_CLOSE [<db>]',
];

export class AdminConsole {
  readonly sessions = new Map<ClientConn, AdminRole>();
  private readonly queues = new WeakMap<ClientConn, Promise<void>>();

  constructor(
    private readonly app: Sluice,
    private readonly metrics: Metrics,
    private readonly stats: StatsPeriod,
  ) {}

  // ---------------------------------------------------------------- session
  start(client: ClientConn): void {
    const s = this.app.settings();
    let role: AdminRole | null = null;
    if (s.admin_users.includes(client.user)) role = 'admin';
    else if (s.stats_users.includes(client.user) || s.auth_type === 'any') role = 'stats';
    if (!role) {
      client.fatal({
        code: '28000',
        message: `not allowed: user "${client.user}" may not use the admin console`,
        hint: 'Add the user to admin_users or stats_users in pgbouncer.ini and RELOAD.',
      });
      return;
    }
    this.sessions.set(client, role);
    const out: Buffer[] = [
      parameterStatus('server_version', `${VERSION}/sluice`),
      parameterStatus('client_encoding', 'UTF8'),
      parameterStatus('server_encoding', 'UTF8'),
      parameterStatus('DateStyle', 'ISO'),
      parameterStatus('TimeZone', 'GMT'),
      parameterStatus('standard_conforming_strings', 'on'),
      parameterStatus('is_superuser', role === 'admin' ? 'on' : 'off'),
    ];
    client.cancelPid = this.app.registerCancel(client);
    client.cancelKey = randomKey(4);
    client.wire.write(welcome(Buffer.concat(out), client.cancelPid, client.cancelKey));
    if (s.log_connections) this.app.log.info({ client: client.id, user: client.user, role }, 'admin console login');
  }

  onMessage(client: ClientConn, type: number, msg: Buffer): void {
    const role = this.sessions.get(client);
    if (!role) return;
    if (type !== 0x51 /* Q */) {
      const extended = type === 0x50 || type === 0x42 || type === 0x45 || type === 0x44 || type === 0x53 || type === 0x48;
      client.fatal({
        code: '08P01',
        message: extended ? 'extended query protocol not supported by admin console' : `unsupported message type '${String.fromCharCode(type)}' for admin console`,
        hint: 'Use the simple query protocol (psql, or node-postgres queries without parameters).',
      });
      return;
    }
    const end = msg.length > 5 && msg[msg.length - 1] === 0 ? msg.length - 1 : msg.length;
    const sql = msg.toString('utf8', 5, end);
    // Commands run one at a time per client; PAUSE may take a while.
    const prev = this.queues.get(client) ?? Promise.resolve();
    const next = prev.then(() => this.run(client, role, sql));
    this.queues.set(client, next);
  }

  private async run(client: ClientConn, role: AdminRole, sql: string): Promise<void> {
    if (client.state === 'closed') return;
    try {
      const reply = await this.execute(client, role, sql);
      if (reply && !isClosed(client)) client.wire.write(Buffer.concat([...reply, readyForQuery('I')]));
    } catch (err) {
      const e = AdminError.is(err) ? err : new AdminError(AdminErrorCode.State, err instanceof Error ? err.message : String(err));
      if (this.app.settings().log_pooler_errors) this.app.log.warn({ client: client.id, user: client.user, code: e.sqlstate }, `admin console: ${e.message}`);
      if (!isClosed(client)) client.wire.write(Buffer.concat([errorResponse({ code: e.sqlstate, message: e.message, hint: e.hint }), readyForQuery('I')]));
    }
  }

  /** Parses and runs one command; returns the messages to send before ReadyForQuery (null: send nothing). */
  async execute(client: ClientConn, role: AdminRole, sqlText: string): Promise<Buffer[] | null> {
    const sql = sqlText.trim().replace(/;\s*$/, '').trim();
    if (sql === '') return [Buffer.from([0x49, 0, 0, 0, 4])]; // EmptyQueryResponse
    const set = SET_RX.exec(sql);
    if (set) return this.set(role, unquote(set[1]!), unquote(set[2]!));
    const m = CMD_RX.exec(sql);
    if (!m) throw syntax(sqlText);
    const cmd = unquote(m[1]!).toLowerCase();
    const arg = m[2] === undefined ? '' : unquote(m[2]);
    if (cmd === 'show' || cmd === 'select') {
      if (!arg) throw syntax(sqlText);
      return this.show(arg.toLowerCase());
    }
    const control: Record<string, (arg: string, client: ClientConn) => Promise<Buffer[] | null> | Buffer[] | null> = {
      pause: (a) => this.pause(a),
      resume: (a) => this.resume(a),
      disable: (a) => this.disable(a, true),
      enable: (a) => this.disable(a, false),
      reconnect: (a) => this.reconnect(a),
      kill: (a) => this.kill(a),
      kill_client: (a) => this.killClient(a),
      shutdown: (a) => this.shutdown(a),
      reload: (a) => this.reload(a),
      wait_close: (a) => this.waitClose(a),
      suspend: () => {
        throw new AdminError(AdminErrorCode.State, 'SUSPEND is not supported by Sluice', 'Use PAUSE, or SHUTDOWN WAIT_FOR_CLIENTS with so_reuseport for rolling restarts.');
      },
    };
    const fn = control[cmd];
    if (!fn) throw syntax(sqlText);
    if (role !== 'admin') throw new AdminError(AdminErrorCode.Denied, 'admin access needed', `${cmd.toUpperCase()} needs a user listed in admin_users; stats_users may only run SHOW.`);
    this.app.log.info({ client: client.id, user: client.user, command: cmd.toUpperCase(), arg: arg || undefined }, `${cmd.toUpperCase()} command issued`);
    return fn(arg, client);
  }

  // ---------------------------------------------------------------- SHOW
  private result(columns: readonly Column[], rows: readonly (readonly Cell[])[], tag = 'SHOW'): Buffer[] {
    return [rowDescription(columns), ...rows.map((r) => dataRow(r)), commandComplete(tag)];
  }

  private async show(what: string): Promise<Buffer[]> {
    const app = this.app;
    const admins = this.sessions.size;
    switch (what) {
      case 'help':
        return [noticeResponse({ code: '00000', message: 'Console usage', detail: '\n\t' + HELP.join('\n\t') }), commandComplete('SHOW')];
      case 'stats':
        return this.result(COLUMNS.stats, views.statsRows(this.stats, 'both'));
      case 'stats_totals':
        return this.result(COLUMNS.stats_totals, views.statsRows(this.stats, 'totals'));
      case 'stats_averages':
        return this.result(COLUMNS.stats_averages, views.statsRows(this.stats, 'averages'));
      case 'totals':
        return this.result(COLUMNS.totals, views.totalsRows(this.stats));
      case 'servers':
        return this.result(COLUMNS.sockets, views.serverRows(app));
      case 'clients':
        return this.result(COLUMNS.sockets, views.clientRows(app, new Set(this.sessions.keys())));
      case 'pools':
        return this.result(COLUMNS.pools, views.poolRows(app, admins));
      case 'lists':
        return this.result(COLUMNS.lists, views.listRows(app));
      case 'users':
        return this.result(COLUMNS.users, views.userRows(app));
      case 'databases':
        return this.result(COLUMNS.databases, views.databaseRows(app, admins));
      case 'config':
        return this.result(COLUMNS.config, views.configRows(app));
      case 'version':
        return this.result(COLUMNS.version, [[views.VERSION_STRING]]);
      case 'state':
        return this.result(COLUMNS.state, views.stateRows(app));
      case 'pins':
        return this.result(COLUMNS.pins, [...this.metrics.pins.values()].map((p) => [p.database, p.user, p.reason, p.count]));
      case 'prepared_statements':
        return this.result(
          COLUMNS.prepared_statements,
          [...app.pooler.pools.values()].map((p) => {
            let onServers = 0;
            for (const srv of p.servers) onServers += srv.statements.size;
            return [p.db.name, p.user, p.stats.preparedParses, p.stats.preparedHits, p.stats.preparedMisses, p.stats.preparedEvictions, onServers];
          }),
        );
      case 'pinned_clients':
        return this.result(
          COLUMNS.pinned_clients,
          [...app.clients].filter((c) => c.pinned).map((c) => [c.id, c.database, c.user, c.pinReasons.join(','), c.linkedServer?.pid ?? 0]),
        );
      case 'latency': {
        const rows = await this.metrics.latency();
        const f = (n: number) => n.toFixed(3);
        return this.result(COLUMNS.latency, rows.map((r) => [r.database, r.user, r.metric, r.count, f(r.p50), f(r.p90), f(r.p99), f(r.mean)]));
      }
      case 'sockets':
      case 'active_sockets':
      case 'fds':
      case 'mem':
      case 'dns_hosts':
      case 'dns_zones':
      case 'peers':
      case 'peer_pools':
        throw new AdminError(AdminErrorCode.NotFound, `SHOW ${what.toUpperCase()} is not supported by Sluice`, 'See SHOW HELP for the views Sluice has.');
      default: {
        const fake = FAKE_PARAMS.get(what);
        if (fake !== undefined) return this.result([{ name: what, type: TEXT }], [[fake]]);
        throw new AdminError(AdminErrorCode.Syntax, `invalid command 'SHOW ${what}', use SHOW HELP;`);
      }
    }
  }

  // ---------------------------------------------------------------- control
  private requireDb(name: string, verb: string): void {
    if (!name) throw new AdminError(AdminErrorCode.Syntax, 'a database is required');
    if (name === views.ADMIN_DB) throw new AdminError(AdminErrorCode.State, `cannot ${verb} admin db: ${name}`);
    if (!this.app.findDatabase(name)) throw new AdminError(AdminErrorCode.NotFound, `no such database: ${name}`);
  }

  private poolsOf(db: string): Pool[] {
    return [...this.app.pooler.pools.values()].filter((p) => !db || p.db.name === db);
  }

  private async waitFor(cond: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + CONTROL_WAIT_MS;
    while (!cond()) {
      if (Date.now() > deadline) throw new AdminError(AdminErrorCode.Timeout, `${what} did not finish within ${CONTROL_WAIT_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private async pause(db: string): Promise<Buffer[]> {
    if (this.app.isPaused) throw new AdminError(AdminErrorCode.State, 'already suspended/paused');
    if (db) this.requireDb(db, 'pause');
    // Servers close as they are released (app.pause); answer once none is left.
    this.app.pause(db || undefined);
    try {
      await this.waitFor(() => this.poolsOf(db).every((p) => p.servers.size === 0), 'PAUSE');
    } catch (err) {
      if (AdminError.is(err)) throw new AdminError(err.code, `${err.message}: server connections are still in use; the pause stays in force`, 'Run RESUME to undo, or KILL to drop the connections.');
      throw err;
    }
    return [commandComplete('PAUSE')];
  }

  private resume(db: string): Buffer[] {
    if (this.app.shuttingDown) throw new AdminError(AdminErrorCode.State, 'pooler is shutting down');
    if (!db) {
      if (!this.app.isPaused && !this.app.anyPausedByName && !this.poolsOf('').some((p) => p.paused)) throw new AdminError(AdminErrorCode.State, 'pooler is not paused/suspended');
      this.app.resume();
    } else {
      this.requireDb(db, 'resume');
      // Under a global PAUSE only a plain RESUME undoes it, as in PgBouncer.
      if (!this.app.isPausedByName(db)) throw new AdminError(AdminErrorCode.State, `database ${db} is not paused`);
      this.app.resume(db);
    }
    return [commandComplete('RESUME')];
  }

  private disable(db: string, disable: boolean): Buffer[] {
    this.requireDb(db, disable ? 'disable' : 'enable');
    if (disable) this.app.disabledDbs.add(db);
    else this.app.disabledDbs.delete(db);
    return [commandComplete(disable ? 'DISABLE' : 'ENABLE')];
  }

  private reconnect(db: string): Buffer[] {
    if (db) this.requireDb(db, 'reconnect');
    for (const p of this.poolsOf(db)) {
      for (const s of [...p.servers]) {
        s.retire = true;
        if (s.state === 'idle') s.close('RECONNECT');
      }
    }
    return [commandComplete('RECONNECT')];
  }

  private async waitClose(db: string): Promise<Buffer[]> {
    if (db) this.requireDb(db, 'wait in');
    await this.waitFor(() => this.poolsOf(db).every((p) => [...p.servers].every((s) => !s.retire || s.state === 'closed')), 'WAIT_CLOSE');
    return [commandComplete('WAIT_CLOSE')];
  }

  private kill(db: string): Buffer[] {
    if (this.app.isPaused) throw new AdminError(AdminErrorCode.State, 'already suspended/paused');
    if (db) this.requireDb(db, 'kill');
    // As PgBouncer: the database stays paused until RESUME, so new clients wait.
    this.app.pause(db || undefined);
    for (const c of [...this.app.clients]) {
      if (this.sessions.has(c) || !c.pool) continue;
      if (!db || c.database === db) c.fatal({ code: '57P01', message: 'terminating connection due to administrator command (KILL)' });
    }
    for (const p of this.poolsOf(db)) p.closeAll('KILL', true);
    return [commandComplete('KILL')];
  }

  private killClient(arg: string): Buffer[] {
    if (!/^\d+$/.test(arg)) throw new AdminError(AdminErrorCode.Syntax, 'invalid client id supplied', 'Use the id column of SHOW CLIENTS.');
    const id = Number(arg);
    const target = [...this.app.clients].find((c) => c.id === id && !this.sessions.has(c) && c.pool !== null);
    if (!target) throw new AdminError(AdminErrorCode.NotFound, 'client not found');
    target.fatal({ code: '57P01', message: 'terminating connection due to administrator command (KILL_CLIENT)' });
    return [commandComplete('KILL_CLIENT')];
  }

  private shutdown(arg: string): Buffer[] | null {
    const modes: Record<string, ShutdownMode> = { '': 'immediate', wait_for_clients: 'wait-for-clients', wait_for_servers: 'wait-for-servers' };
    const mode = modes[arg.toLowerCase()];
    if (!mode) throw syntax(`SHUTDOWN ${arg}`);
    if (mode === 'immediate') {
      // No reply: the connection stays open until the process is gone, as in PgBouncer.
      setImmediate(() => this.app.onShutdownRequest(mode));
      return null;
    }
    setImmediate(() => this.app.onShutdownRequest(mode));
    return [commandComplete('SHUTDOWN')];
  }

  private reload(arg: string): Buffer[] {
    if (arg) throw syntax(`RELOAD ${arg}`);
    try {
      this.app.reloadFromFile();
    } catch (err) {
      if (ConfigError.is(err)) {
        this.app.log.error({ file: err.file, line: err.line, key: err.key }, `RELOAD failed, keeping the old configuration: ${err.message}`);
        throw new AdminError(
          AdminErrorCode.Config,
          `RELOAD failed, keeping the old configuration: ${err.file}:${err.line}: ${err.key ? `key ${err.key}: ` : ''}${err.detail}`,
          'Fix the file and run RELOAD again.',
        );
      }
      throw new AdminError(AdminErrorCode.Config, `RELOAD failed, keeping the old configuration: ${err instanceof Error ? err.message : String(err)}`);
    }
    return [commandComplete('RELOAD')];
  }

  private set(role: AdminRole, key: string, raw: string): Buffer[] {
    const lower = key.toLowerCase();
    if (FAKE_PARAMS.has(lower)) return [noticeResponse({ code: '00000', message: 'SET ignored' }), commandComplete('SET')];
    if (role !== 'admin') throw new AdminError(AdminErrorCode.Denied, 'admin access needed', 'SET needs a user listed in admin_users.');
    const spec = SETTING_SPECS.get(lower);
    if (!spec) throw new AdminError(AdminErrorCode.NotFound, `unknown setting: ${key}`, 'SHOW CONFIG lists the settings.');
    if (!spec.supported) throw new AdminError(AdminErrorCode.State, `${lower} is not implemented by Sluice; SET has no effect`);
    if (!spec.reloadable) throw new AdminError(AdminErrorCode.State, `${lower} cannot be changed while running`, 'Change it in pgbouncer.ini and restart.');
    let value: SettingValue;
    try {
      value = parseSetting(spec, raw);
    } catch (err) {
      throw new AdminError(AdminErrorCode.Config, `SET failed: ${lower}: ${err instanceof Error ? err.message : String(err)}`);
    }
    const cur = this.app.currentConfig;
    const settings = Object.freeze({ ...cur.settings, [lower]: value }) as Settings;
    const next: Config = Object.freeze({ ...cur, settings });
    this.app.reload(next);
    this.app.log.info({ key: lower }, 'SET applied');
    return [commandComplete(`SET ${lower}=${raw}`)];
  }
}

/** State can change across an await; read it afresh. */
function isClosed(client: ClientConn): boolean {
  return (client.state as string) === 'closed';
}

function syntax(sql: string): AdminError {
  return new AdminError(AdminErrorCode.Syntax, `invalid command '${sql}', use SHOW HELP;`);
}
