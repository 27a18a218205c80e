// Starts Sluice in-process in front of a test PostgreSQL.
import { buildConfig } from '../../src/config/index.js';
import { Sluice } from '../../src/app.js';
import type { TestPostgres } from './postgres.js';

export interface TestSluice {
  readonly app: Sluice;
  readonly port: number;
  url(database?: string, user?: string, password?: string): string;
  stop(): Promise<void>;
}

export interface StartSluiceOptions {
  pg: TestPostgres;
  settings?: Record<string, string | number | boolean>;
  databases?: Record<string, string>;
  users?: Record<string, string>;
  userlistText?: string;
}

export async function startSluice(options: StartSluiceOptions): Promise<TestSluice> {
  const config = buildConfig({
    settings: {
      listen_addr: '127.0.0.1',
      listen_port: 0,
      unix_socket_dir: '',
      auth_type: 'trust',
      pool_mode: 'session',
      admin_users: 'postgres',
      ...options.settings,
    },
    databases: options.databases ?? { '*': `host=127.0.0.1 port=${options.pg.port}` },
    users: options.users,
    userlistText: options.userlistText,
  });
  const app = await Sluice.start(config);
  return {
    app,
    port: app.port,
    url(database = 'postgres', user = 'postgres', password?: string) {
      const auth = password ? `${encodeURIComponent(user)}:${encodeURIComponent(password)}` : encodeURIComponent(user);
      return `postgres://${auth}@127.0.0.1:${app.port}/${encodeURIComponent(database)}`;
    },
    async stop() {
      // Let clients that are already disconnecting leave on their own first.
      const deadline = Date.now() + 2000;
      while (app.clients.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      await app.stop('immediate');
    },
  };
}
