// /budget: how much of PostgreSQL's connection budget is in use, seen from
// the server: client backends in pg_stat_activity against max_connections
// minus the reserved slots. One small `pg` connection, opened on demand and
// reused. Kept out of /ready on purpose: every replica sees the same global
// number, so failing readiness on it would take all replicas out at once.
import pg from 'pg';
import type { Sluice } from '../app.js';

const BUDGET_SQL = `SELECT
  (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int AS used,
  current_setting('max_connections')::int AS max_connections,
  current_setting('superuser_reserved_connections')::int AS superuser_reserved,
  COALESCE(current_setting('reserved_connections', true), '0')::int AS reserved`;

export interface BudgetReport {
  ok: boolean;
  used?: number;
  available?: number;
  max_connections?: number;
  reserved?: number;
  ratio?: number;
  threshold: number;
  error?: string;
}

export class Budget {
  private client: pg.Client | null = null;
  private connecting: Promise<pg.Client> | null = null;

  constructor(private readonly app: Sluice) {}

  private target(): pg.ClientConfig {
    const cfg = this.app.currentConfig;
    const entry = [...cfg.databases.values()][0];
    if (!entry) throw new Error('no [databases] entry to measure');
    const user = entry.user || cfg.settings.admin_users[0] || 'postgres';
    const secret = cfg.userlist.get(user);
    const password = entry.password || (secret?.kind === 'plain' ? secret.secret : undefined);
    return {
      host: entry.host || '/tmp',
      port: entry.port || 5432,
      database: entry.dbname || (entry.name === '*' ? 'postgres' : entry.name),
      user,
      password,
      application_name: 'sluice-budget',
      connectionTimeoutMillis: 5000,
      query_timeout: 5000,
    };
  }

  private async connection(): Promise<pg.Client> {
    if (this.client) return this.client;
    this.connecting ??= (async () => {
      const c = new pg.Client(this.target());
      c.on('error', () => {
        if (this.client === c) this.client = null;
      });
      try {
        await c.connect();
      } catch (err) {
        await c.end().catch(() => {});
        throw err;
      }
      this.client = c;
      return c;
    })().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  async check(): Promise<BudgetReport> {
    const threshold = this.app.settings().budget_threshold;
    try {
      const c = await this.connection();
      const r = await c.query<{ used: number; max_connections: number; superuser_reserved: number; reserved: number }>(BUDGET_SQL);
      const row = r.rows[0]!;
      const reserved = row.superuser_reserved + row.reserved;
      const available = Math.max(1, row.max_connections - reserved);
      const ratio = row.used / available;
      return { ok: ratio <= threshold, used: row.used, available, max_connections: row.max_connections, reserved, ratio: Number(ratio.toFixed(4)), threshold };
    } catch (err) {
      const c = this.client;
      this.client = null;
      await c?.end().catch(() => {});
      // The message comes from pg and names host/port/user at most, never the password.
      return { ok: false, threshold, error: err instanceof Error ? err.message : String(err) };
    }
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => {});
  }
}
