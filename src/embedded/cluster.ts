// A local PostgreSQL cluster: initdb into a directory, start, stop, restart.
// Used by the test harness, the benchmark and `sluice` with no config.
// PostgreSQL refuses to run as root, so as root we run it as an unprivileged
// OS user (`postgres` if it exists, else `nobody`) and hand it the directory.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync, appendFileSync, openSync, closeSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { findPgBinaries, type PgBinaries } from './binaries.js';

export interface ClusterOptions {
  /** Data directory parent; the cluster lives in `${dir}/data`, its socket in `${dir}/sock`. */
  readonly dir: string;
  /** TCP port on 127.0.0.1; 0 picks a free one. */
  readonly port?: number;
  /** Extra postgresql.conf lines, appended after ours. */
  readonly conf?: Readonly<Record<string, string | number | boolean>>;
  /** Replaces pg_hba.conf entirely when given. */
  readonly hba?: string;
  /** Superuser name (initdb -U). */
  readonly superuser?: string;
  /** Superuser password; when given, pg_hba still trusts unless `hba` says otherwise. */
  readonly password?: string;
  readonly binaries?: PgBinaries;
  /** Milliseconds to wait for startup/shutdown. */
  readonly timeoutMs?: number;
}

interface OsUser {
  uid: number;
  gid: number;
  name: string;
}

function unprivilegedUser(): OsUser | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  for (const name of ['postgres', 'nobody']) {
    const r = spawnSync('id', ['-u', name], { encoding: 'utf8' });
    const g = spawnSync('id', ['-g', name], { encoding: 'utf8' });
    if (r.status === 0 && g.status === 0) return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()), name };
  }
  throw new Error('Running as root and found no unprivileged OS user (postgres or nobody) to run PostgreSQL as.');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Whether every directory from / down to `dir` lets `user` through (x permission). */
function traversable(dir: string, user: OsUser): boolean {
  let cur = path.resolve(dir);
  for (;;) {
    if (existsSync(cur)) {
      const st = statSync(cur);
      const ok = st.uid === user.uid ? st.mode & 0o100 : st.gid === user.gid ? st.mode & 0o010 : st.mode & 0o001;
      if (!ok) return false;
    }
    const parent = path.dirname(cur);
    if (parent === cur) return true;
    cur = parent;
  }
}

const liveClusters = new Set<PgCluster>();
// Never leave a postgres behind, even when a test throws or the process exits early.
process.once('exit', () => {
  for (const c of liveClusters) c.killNow();
});

export class PgCluster {
  readonly dir: string;
  readonly dataDir: string;
  readonly socketDir: string;
  readonly superuser: string;
  readonly binaries: PgBinaries;
  port = 0;
  private proc: ChildProcess | null = null;
  private readonly owner: OsUser | null = null;
  private readonly logFile: string;
  private readonly timeoutMs: number;

  /** Set when the requested directory was unreachable for the PostgreSQL OS user and another was used. */
  readonly relocatedFrom: string | null = null;

  constructor(private readonly options: ClusterOptions) {
    this.owner = unprivilegedUser();
    let dir = path.resolve(options.dir);
    if (this.owner && !traversable(path.dirname(dir), this.owner)) {
      // As root in a private folder (e.g. /root, or a 0700 temp dir) PostgreSQL's user cannot reach the data.
      this.relocatedFrom = dir;
      dir = path.join(os.tmpdir(), `sluice-pg-${createHash('sha1').update(dir).digest('hex').slice(0, 12)}`);
    }
    this.dir = dir;
    this.dataDir = path.join(this.dir, 'data');
    this.socketDir = path.join(this.dir, 'sock');
    this.logFile = path.join(this.dir, 'postgres.log');
    this.superuser = options.superuser ?? 'postgres';
    this.binaries = options.binaries ?? findPgBinaries();
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** libpq-style connection URL over TCP. */
  url(database = 'postgres', user = this.superuser, password = this.options.password): string {
    const auth = password ? `${encodeURIComponent(user)}:${encodeURIComponent(password)}` : encodeURIComponent(user);
    return `postgres://${auth}@127.0.0.1:${this.port}/${encodeURIComponent(database)}`;
  }

  get initialised(): boolean {
    return existsSync(path.join(this.dataDir, 'PG_VERSION'));
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** The server log so far, for failure messages. */
  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }

  private chown(p: string): void {
    if (this.owner) chownSync(p, this.owner.uid, this.owner.gid);
  }

  private spawnAsOwner(cmd: string, args: string[], stdio: 'ignore' | number = 'ignore'): ChildProcess {
    return spawn(cmd, args, {
      stdio: ['ignore', stdio, stdio],
      env: { ...process.env, LC_ALL: 'C', LANG: 'C', PGTZ: 'UTC' },
      ...(this.owner ? { uid: this.owner.uid, gid: this.owner.gid } : {}),
      cwd: this.dir,
    });
  }

  async init(): Promise<void> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    mkdirSync(this.socketDir, { recursive: true, mode: 0o700 });
    this.chown(this.dir);
    this.chown(this.socketDir);
    if (this.initialised) return;
    const args = ['-D', this.dataDir, '-U', this.superuser, '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'];
    let pwfile: string | undefined;
    if (this.options.password) {
      pwfile = path.join(this.dir, 'pwfile');
      writeFileSync(pwfile, this.options.password + '\n', { mode: 0o600 });
      this.chown(pwfile);
      args.push(`--pwfile=${pwfile}`);
    }
    const fd = openSync(this.logFile, 'a');
    this.chown(this.logFile);
    try {
      const child = this.spawnAsOwner(this.binaries.initdb, args, fd);
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      if (code !== 0) throw new Error(`initdb failed (exit ${code}):\n${this.log()}`);
    } finally {
      closeSync(fd);
    }
    const conf: Record<string, string | number | boolean> = {
      listen_addresses: "'127.0.0.1'",
      unix_socket_directories: `'${this.socketDir}'`,
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      max_connections: 100,
      shared_buffers: "'32MB'",
      log_min_messages: 'warning',
      TimeZone: "'UTC'",
      ...this.options.conf,
    };
    const lines = Object.entries(conf).map(([k, v]) => `${k} = ${v}`);
    appendFileSync(path.join(this.dataDir, 'postgresql.conf'), `\n# sluice cluster settings\n${lines.join('\n')}\n`);
    if (this.options.hba !== undefined) writeFileSync(path.join(this.dataDir, 'pg_hba.conf'), this.options.hba);
  }

  async start(): Promise<void> {
    if (this.proc) return;
    if (!this.initialised) await this.init();
    if (!this.port) this.port = this.options.port || (await freePort());
    const fd = openSync(this.logFile, 'a');
    const child = this.spawnAsOwner(this.binaries.postgres, ['-D', this.dataDir, '-p', String(this.port)], fd);
    closeSync(fd);
    this.proc = child;
    liveClusters.add(this);
    let exited: number | null | undefined;
    child.once('exit', (code) => {
      exited = code;
      if (this.proc === child) {
        this.proc = null;
        liveClusters.delete(this);
      }
    });
    const deadline = Date.now() + this.timeoutMs;
    while (Date.now() < deadline) {
      if (exited !== undefined) throw new Error(`postgres exited during startup (code ${exited}):\n${this.log()}`);
      if (await this.acceptsConnections()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    this.killNow();
    throw new Error(`postgres did not become ready within ${this.timeoutMs} ms:\n${this.log()}`);
  }

  // postmaster.pid's 8th line reads "ready" once the server accepts connections.
  private async acceptsConnections(): Promise<boolean> {
    const pidFile = path.join(this.dataDir, 'postmaster.pid');
    if (!existsSync(pidFile)) return false;
    const lines = readFileSync(pidFile, 'utf8').split('\n');
    return (lines[7] ?? '').trim() === 'ready';
  }

  /** Stops the server: 'fast' rolls back sessions, 'immediate' is a crash stop. */
  async stop(mode: 'smart' | 'fast' | 'immediate' = 'fast'): Promise<void> {
    const child = this.proc;
    if (!child) return;
    const signal = mode === 'smart' ? 'SIGTERM' : mode === 'fast' ? 'SIGINT' : 'SIGQUIT';
    const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), this.timeoutMs);
    await done;
    clearTimeout(timer);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Synchronous last resort on process exit. */
  killNow(): void {
    if (this.proc?.pid) {
      try {
        process.kill(this.proc.pid, 'SIGQUIT');
      } catch {
        // already gone
      }
    }
  }
}
