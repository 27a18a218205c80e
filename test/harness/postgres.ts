// Test harness: a throw-away PostgreSQL cluster per test file.
// Always cleaned up: call `stop()` in an `after` hook; a process-exit hook in
// PgCluster kills any server a crashed test left running.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PgCluster, type ClusterOptions } from '../../src/embedded/cluster.js';

export interface TestPostgres {
  readonly cluster: PgCluster;
  /** URL for the superuser `postgres` on database `postgres`. */
  url(database?: string, user?: string, password?: string): string;
  readonly port: number;
  readonly host: '127.0.0.1';
  stop(): Promise<void>;
}

export async function startPostgres(options: Omit<ClusterOptions, 'dir'> = {}): Promise<TestPostgres> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-pg-'));
  const cluster = new PgCluster({ dir, ...options });
  try {
    await cluster.start();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    cluster,
    host: '127.0.0.1',
    get port() {
      return cluster.port;
    },
    url: (database, user, password) => cluster.url(database, user, password),
    async stop() {
      await cluster.stop('immediate');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
