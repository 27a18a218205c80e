// Attaches the admin console (virtual database `pgbouncer`) and, when
// http_listen is set, the HTTP endpoint for /metrics, /health, /ready, /budget.
import type { AdminPlugin, Sluice } from '../app.js';
import type { ClientConn } from '../client/client_conn.js';
import { diffConfig } from '../config/diff.js';
import type { Config } from '../config/types.js';
import { AdminConsole } from './console.js';
import { HttpEndpoint } from './http.js';
import { Metrics } from './metrics.js';
import { StatsPeriod } from './stats.js';

export { AdminConsole } from './console.js';
export { AdminError, AdminErrorCode } from './errors.js';
export { COLUMNS } from './columns.js';
export { Metrics } from './metrics.js';

/** The admin layer of one Sluice; `app.admin` is this object. */
export class AdminLayer implements AdminPlugin {
  readonly metrics: Metrics;
  readonly stats: StatsPeriod;
  readonly console: AdminConsole;
  http: HttpEndpoint | null = null;
  private watcher: NodeJS.Timeout | null = null;
  private seenConfig: Config;

  constructor(private readonly app: Sluice) {
    this.metrics = new Metrics(app);
    this.stats = new StatsPeriod(app);
    this.console = new AdminConsole(app, this.metrics, this.stats);
    this.seenConfig = app.currentConfig;
  }

  async open(): Promise<void> {
    this.app.pooler.observer = this.metrics;
    this.stats.schedule();
    this.applyVerbose();
    // RELOAD, SET and SIGHUP all end in app.reload(); a cheap watcher picks the
    // change up (stats_period, verbose) and logs what changed, secrets excluded.
    this.watcher = setInterval(() => this.onConfigMaybeChanged(), 250);
    this.watcher.unref();
    const listen = this.app.settings().http_listen;
    if (listen) {
      this.http = new HttpEndpoint(this.app, this.metrics);
      await this.http.listen(listen);
    }
  }

  private onConfigMaybeChanged(): void {
    const cfg = this.app.currentConfig;
    if (cfg === this.seenConfig) return;
    const changes = diffConfig(this.seenConfig, cfg);
    this.seenConfig = cfg;
    for (const c of changes) {
      this.app.log.info({ section: c.section, key: c.key, old: c.old, new: c.new }, c.reloadable ? 'configuration changed' : 'configuration change needs a restart to take effect');
    }
    this.stats.schedule();
    this.applyVerbose();
  }

  private applyVerbose(): void {
    const log = this.app.log;
    if (log.level === 'silent' || process.env.SLUICE_LOG_LEVEL) return;
    const want = this.app.settings().verbose > 1 ? 'trace' : this.app.settings().verbose > 0 ? 'debug' : 'info';
    if (log.level !== want) log.level = want;
  }

  start(client: ClientConn): void {
    this.console.start(client);
  }

  onMessage(client: ClientConn, type: number, msg: Buffer): void {
    this.console.onMessage(client, type, msg);
  }

  forget(client: ClientConn): void {
    this.console.sessions.delete(client);
  }

  async close(): Promise<void> {
    if (this.watcher) clearInterval(this.watcher);
    this.watcher = null;
    this.stats.stop();
    if (this.app.pooler.observer === this.metrics) this.app.pooler.observer = null;
    await this.http?.close();
    this.http = null;
  }
}

export async function attachAdmin(app: Sluice): Promise<void> {
  const layer = new AdminLayer(app);
  app.admin = layer;
  await layer.open();
}
