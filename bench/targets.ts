// The things pgbench talks to: a throw-away PostgreSQL, and PgBouncer and
// Sluice in front of it with the same pool settings.
import { chmodSync, chownSync, openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { PgCluster, freePort } from '../src/embedded/cluster.js';
import { fdLimits, osUser, runCapture, spawnTracked, stopChild, waitForPort, which, sleep } from './lib.js';

export type PoolMode = 'transaction' | 'session';
export type PoolerKind = 'pgbouncer' | 'sluice';

export const DB = 'bench';
export const USER = 'postgres';

export interface ClusterSetup {
  cluster: PgCluster;
  maxConnections: number;
  /** Why direct cells above some client count are skipped, if they are. */
  directLimitNote?: string;
}

/**
 * Starts PostgreSQL with fsync off and room for `wantConnections` direct
 * clients; falls back to 300 when the machine refuses (shared memory, semaphores).
 */
export async function startCluster(dir: string, wantConnections: number): Promise<ClusterSetup> {
  const base = {
    shared_buffers: "'256MB'",
    max_wal_size: "'2GB'",
    checkpoint_timeout: "'30min'",
    // Autovacuum kicking in mid-cell is noise that hits one target only.
    autovacuum: 'off',
  };
  for (const max of [wantConnections, 300]) {
    const cluster = new PgCluster({ dir: path.join(dir, `pg-${max}`), conf: { ...base, max_connections: max } });
    try {
      await cluster.start();
      return {
        cluster,
        maxConnections: max,
        directLimitNote:
          max < wantConnections ? `PostgreSQL would not start with max_connections=${wantConnections} on this machine; direct cells above ${max - 20} clients are skipped` : undefined,
      };
    } catch (err) {
      if (max === 300) throw err;
      process.stderr.write(`PostgreSQL did not start with max_connections=${max}; retrying with 300\n`);
      await cluster.stop('immediate').catch(() => {});
    }
  }
  throw new Error('unreachable');
}

export async function psql(port: number, db: string, sql: string): Promise<string> {
  const r = await runCapture('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(port), '-U', USER, '-d', db, '-c', sql], {
    timeoutMs: 30_000,
  });
  if (r.code !== 0) throw new Error(`psql -p ${port} -d ${db} -c "${sql}" failed: ${r.stderr.trim() || (r.timedOut ? 'timeout' : `exit ${r.code}`)}`);
  return r.stdout.trim();
}

export async function initPgbench(port: number, scale: number): Promise<number> {
  await psql(port, 'postgres', `CREATE DATABASE ${DB}`);
  const started = Date.now();
  const r = await runCapture('pgbench', ['-i', '-q', '-s', String(scale), '-h', '127.0.0.1', '-p', String(port), '-U', USER, DB], { timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`pgbench -i failed: ${r.stderr}`);
  await psql(port, DB, 'VACUUM ANALYZE');
  return Date.now() - started;
}

export interface PoolerOptions {
  kind: PoolerKind;
  mode: PoolMode;
  dir: string;
  pgPort: number;
  poolSize: number;
  maxClientConn: number;
  /** Extra node flags for the Sluice child, e.g. --cpu-prof. */
  nodeArgs?: readonly string[];
  /** Another build's dist/src/cli/main.js, to compare two versions of Sluice. */
  sluiceMain?: string;
  /** A command the pooler runs under, e.g. valgrind: starting and stopping then take much longer. */
  wrapper?: readonly string[];
}

const here = path.dirname(fileURLToPath(import.meta.url));
/** dist/src/cli/main.js, next to this file's compiled location (dist/bench/). */
export const SLUICE_MAIN = path.resolve(here, '..', 'src', 'cli', 'main.js');

export function pgbouncerPath(): string | null {
  return which('pgbouncer') ?? ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].find((p) => {
    try {
      readFileSync(p);
      return true;
    } catch {
      return false;
    }
  }) ?? null;
}

export const PGBOUNCER_MISSING =
  'PgBouncer is not installed; its columns are left out. Install it with: apt-get update && apt-get install -y pgbouncer';

/** The OS user a pooler runs as when we are root (PgBouncer refuses root), or null for our own. */
export function poolerOsUser(kind: PoolerKind): { uid: number; gid: number } | null {
  return kind === 'pgbouncer' && process.getuid?.() === 0 ? (osUser('postgres') ?? osUser('nobody')) : null;
}

/** One pooler process. Restartable, so one crash does not sink the whole run. */
export class Pooler {
  readonly name: string;
  port = 0;
  restarts = 0;
  private child: ChildProcess | null = null;
  private readonly iniFile: string;
  private readonly logFile: string;
  private lastExit = '';

  constructor(readonly options: PoolerOptions) {
    this.name = `${options.kind}-${options.mode}`;
    this.iniFile = path.join(options.dir, `${this.name}.ini`);
    this.logFile = path.join(options.dir, `${this.name}.log`);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get alive(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Why the process last exited, for failure rows. */
  get exitReason(): string {
    return this.lastExit;
  }

  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  private writeConfig(): void {
    const o = this.options;
    const userlist = path.join(o.dir, `${this.name}.userlist.txt`);
    // auth_type = trust still needs the user in auth_file for PgBouncer.
    writeFileSync(userlist, `"${USER}" ""\n`, { mode: 0o644 });
    const ini = [
      '[databases]',
      `${DB} = host=127.0.0.1 port=${o.pgPort} dbname=${DB}`,
      `postgres = host=127.0.0.1 port=${o.pgPort} dbname=postgres`,
      '',
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${this.port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${userlist}`,
      `admin_users = ${USER}`,
      `pool_mode = ${o.mode}`,
      `default_pool_size = ${o.poolSize}`,
      `max_client_conn = ${o.maxClientConn}`,
      'listen_backlog = 4096',
      'server_tls_sslmode = disable',
      'ignore_startup_parameters = extra_float_digits',
      // Per-connection log lines would dominate the churn (-C) cells for both.
      'log_connections = 0',
      'log_disconnections = 0',
      'log_stats = 0',
      '',
    ].join('\n');
    writeFileSync(this.iniFile, ini, { mode: 0o644 });
  }

  async start(): Promise<void> {
    const o = this.options;
    if (!this.port) this.port = await freePort();
    this.writeConfig();
    const fd = openSync(this.logFile, 'a');
    let child: ChildProcess;
    const { soft, hard } = fdLimits();
    // Raise the soft fd limit to the hard one for the pooler (10,000 idle clients need it).
    const raise = soft < hard ? `ulimit -n ${hard} 2>/dev/null; ` : '';
    if (o.kind === 'pgbouncer') {
      const bin = pgbouncerPath();
      if (!bin) throw new Error(PGBOUNCER_MISSING);
      // PgBouncer refuses to run as root; run it as the postgres OS user, which must read the ini.
      const owner = poolerOsUser('pgbouncer');
      if (owner) {
        chmodSync(o.dir, 0o755);
        chownSync(this.logFile, owner.uid, owner.gid);
      }
      child = spawnTracked('sh', ['-c', `${raise}exec "$0" "$@"`, ...(o.wrapper ?? []), bin, this.iniFile], {
        stdio: ['ignore', fd, fd],
        ...(owner ? { uid: owner.uid, gid: owner.gid } : {}),
      });
    } else {
      child = spawnTracked('sh', ['-c', `${raise}exec "$0" "$@"`, ...(o.wrapper ?? []), process.execPath, ...(o.nodeArgs ?? []), o.sluiceMain ?? SLUICE_MAIN, this.iniFile], {
        stdio: ['ignore', fd, fd],
        cwd: o.dir,
        env: { ...process.env, NODE_ENV: 'production' },
      });
    }
    closeSync(fd);
    this.child = child;
    child.once('exit', (code, signal) => {
      this.lastExit = signal ? `killed by ${signal}` : `exited with code ${code}`;
    });
    await sleep(50);
    try {
      await waitForPort(this.port, '127.0.0.1', o.wrapper ? 120_000 : 20_000, () => !this.alive);
      // A real round trip through the pooler, so the pool has a server and the config works.
      await psql(this.port, DB, 'SELECT 1');
    } catch (err) {
      const tail = this.log().split('\n').slice(-15).join('\n');
      await this.stop();
      throw new Error(`${this.name} did not start: ${err instanceof Error ? err.message : String(err)}\n--- ${this.logFile} (tail) ---\n${tail}`);
    }
  }

  async restart(): Promise<void> {
    this.restarts++;
    await this.stop();
    await this.start();
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = null;
    // SIGINT: both PgBouncer and Sluice shut down once no server is in use.
    await stopChild(child, 'SIGINT', this.options.wrapper ? 120_000 : 5000);
  }
}
