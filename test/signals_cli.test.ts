// Issue 6: PgBouncer's signals on the real `sluice` process, and its logs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freePort } from '../src/embedded/cluster.js';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { waitFor } from './harness/wait.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const SECRET = 'Sup3r-Secret-Pa55word';

let pgsrv: TestPostgres;
let dir: string;
const procs: ChildProcess[] = [];

before(async () => {
  pgsrv = await startPostgres();
  dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-signals-'));
  const c = new pg.Client({ connectionString: pgsrv.url() });
  await c.connect();
  await c.query('CREATE TABLE IF NOT EXISTS sig (tag text)');
  await c.end();
});
after(async () => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  await pgsrv?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Running {
  proc: ChildProcess;
  port: number;
  ini: string;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  url(db?: string): string;
}

function iniText(port: number, extra: Record<string, string | number> = {}): string {
  const settings = { listen_addr: '127.0.0.1', listen_port: port, unix_socket_dir: '', auth_type: 'trust', pool_mode: 'transaction', admin_users: 'postgres', default_pool_size: 4, ...extra };
  return (
    `[databases]\npostgres = host=127.0.0.1 port=${pgsrv.port} password=${SECRET}\n\n[pgbouncer]\n` +
    Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join('\n') +
    '\n'
  );
}

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function cliEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.SLUICE_LOG_LEVEL;
  return env;
}

async function startCli(extra: Record<string, string | number> = {}): Promise<Running> {
  const port = await freePort();
  const ini = path.join(dir, `sluice-${port}.ini`);
  writeFileSync(ini, iniText(port, extra));
  const proc = spawn(process.execPath, [MAIN, ini], { stdio: ['ignore', 'pipe', 'pipe'], env: cliEnv() });
  procs.push(proc);
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  await waitFor(() => accepts(port), `sluice on port ${port} to accept connections\n${out}`, 15_000);
  // The port opens before the admin console and the signal handlers are in place;
  // an answered SHOW VERSION proves both are (they are installed in the same turn).
  await waitFor(async () => {
    const c = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/pgbouncer` });
    c.on('error', () => {});
    try {
      await c.connect();
      await c.query('SHOW VERSION');
      return true;
    } catch {
      return false;
    } finally {
      await c.end().catch(() => {});
    }
  }, 'the admin console to answer', 15_000);
  return { proc, port, ini, output: () => out, exited, url: (db = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${db}` };
}

async function client(url: string): Promise<pg.Client & { lost: Promise<Error | null> }> {
  const c = new pg.Client({ connectionString: url }) as pg.Client & { lost: Promise<Error | null> };
  c.lost = new Promise((resolve) => {
    c.on('error', resolve);
    c.on('end', () => resolve(null));
  });
  await c.connect();
  return c;
}

async function committed(tag: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: pgsrv.url() });
  await c.connect();
  const r = await c.query('SELECT count(*)::int AS n FROM sig WHERE tag = $1', [tag]);
  await c.end();
  return r.rows[0].n === 1;
}

test('SIGTERM: stop accepting, let the open transaction commit, exit 0 once the client leaves', async () => {
  const s = await startCli();
  const c = await client(s.url());
  await c.query('BEGIN');
  await c.query("INSERT INTO sig VALUES ('term')");
  s.proc.kill('SIGTERM');
  await waitFor(async () => !(await accepts(s.port)), 'the listener to close');
  await c.query('COMMIT');
  assert.equal((await c.query('SELECT 1 AS v')).rows[0].v, 1, 'connected clients keep working while Sluice waits for them');
  await c.end();
  const { code } = await s.exited;
  assert.equal(code, 0, s.output());
  assert.ok(await committed('term'));
});

test('a second SIGTERM exits now', async () => {
  const s = await startCli();
  const c = await client(s.url());
  await c.query('SELECT 1');
  s.proc.kill('SIGTERM');
  await waitFor(async () => !(await accepts(s.port)), 'the listener to close');
  assert.equal(s.proc.exitCode, null, 'still waiting for the client');
  s.proc.kill('SIGTERM');
  const { code } = await s.exited;
  assert.equal(code, 0);
  await c.lost;
});

test('SIGINT: idle clients are let go, the transaction in flight finishes, then exit 0', async () => {
  const s = await startCli();
  const busy = await client(s.url());
  const idle = await client(s.url());
  await idle.query('SELECT 1');
  await busy.query('BEGIN');
  await busy.query("INSERT INTO sig VALUES ('int')");
  s.proc.kill('SIGINT');
  const idleLost = await idle.lost;
  assert.match(String(idleLost?.message ?? 'ended'), /shutting down|ended|terminated/);
  await busy.query('COMMIT');
  const { code } = await s.exited;
  assert.equal(code, 0, s.output());
  assert.ok(await committed('int'));
  await busy.lost;
});

test('SIGQUIT: exit now; an open transaction is rolled back by PostgreSQL', async () => {
  const s = await startCli();
  const c = await client(s.url());
  await c.query('BEGIN');
  await c.query("INSERT INTO sig VALUES ('quit')");
  s.proc.kill('SIGQUIT');
  const { code } = await s.exited;
  assert.equal(code, 0);
  await c.lost;
  await waitFor(async () => !(await committed('quit')), 'the transaction to be gone');
});

test('SIGUSR1 pauses, SIGUSR2 resumes; SIGHUP reloads, and a broken file keeps the old config', async () => {
  const s = await startCli();
  const admin = await client(s.url('pgbouncer'));
  const state = async () => new Map((await admin.query('SHOW STATE')).rows.map((r) => [r.key, r.value]));
  s.proc.kill('SIGUSR1');
  await waitFor(async () => (await state()).get('paused') === 'yes', 'SIGUSR1 to pause');
  s.proc.kill('SIGUSR2');
  await waitFor(async () => (await state()).get('active') === 'yes', 'SIGUSR2 to resume');
  const poolSize = async () => new Map((await admin.query('SHOW CONFIG')).rows.map((r) => [r.key, r.value])).get('default_pool_size');
  writeFileSync(s.ini, iniText(s.port, { default_pool_size: 9 }));
  s.proc.kill('SIGHUP');
  await waitFor(async () => (await poolSize()) === '9', 'SIGHUP to reload');
  writeFileSync(s.ini, iniText(s.port, { default_pool_size: 'nine' }));
  s.proc.kill('SIGHUP');
  await waitFor(() => /reload failed; keeping the old configuration/.test(s.output()), 'the reload error in the log');
  assert.equal(await poolSize(), '9');
  await admin.end();
  s.proc.kill('SIGQUIT');
  assert.equal((await s.exited).code, 0);
});

test('logs: connections, disconnections with reason, pooler errors, stats lines; the password never appears', async () => {
  const s = await startCli({ log_connections: 1, log_disconnections: 1, log_pooler_errors: 1, log_stats: 1, stats_period: 1 });
  const c = await client(s.url());
  for (let i = 0; i < 5; i++) await c.query('SELECT 1');
  const admin = await client(s.url('pgbouncer'));
  await admin.query('SHOW DATABASES');
  await admin.query('SHOW CONFIG');
  await assert.rejects(admin.query('NOT A COMMAND'));
  // A reload that changes the password is logged as a change, without the secret.
  writeFileSync(s.ini, iniText(s.port, { log_stats: 1, stats_period: 1 }).replace(SECRET, `${SECRET}-2`));
  await admin.query('RELOAD');
  await c.end();
  await waitFor(() => /client disconnected/.test(s.output()), 'the disconnection line');
  await waitFor(() => /"msg":"stats: \d+ xacts\/s/.test(s.output()), 'a stats line', 5000);
  await waitFor(() => /configuration changed/.test(s.output()), 'the reload diff');
  await admin.end();
  s.proc.kill('SIGQUIT');
  await s.exited;
  const log = s.output();
  assert.match(log, /client connected/);
  assert.match(log, /"reason":"client sent Terminate"/);
  assert.match(log, /admin console: invalid command/);
  assert.ok(!log.includes(SECRET), 'the password from the config must never be logged');
});
