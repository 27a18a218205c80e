// SQL-file migrations that are safe to start from every instance at once.
//
// Order of events on one dedicated session:
//   1. session advisory lock, waited for by polling with a deadline (bounded);
//   2. history table created if missing, then read — after the lock, so a
//      runner that waited sees what the previous holder applied;
//   3. checksums of applied files verified;
//   4. each pending file in its own transaction with SET LOCAL lock_timeout,
//      retried (bounded) when DDL could not get its lock; a no-transaction
//      file gets neither (it may have taken effect in part);
//   5. unlock; a session that applied anything (its settings may have
//      changed) or whose unlock failed is destroyed, not reused.
// Needs a session: a direct connection, or Sluice transaction mode (which pins
// sessions holding advisory locks). PgBouncer transaction mode breaks it.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { MigrationError, MigrationErrorCodes } from './errors.js';
import { defaultLogger, type KitLogger } from './logger.js';
import { sqlState } from './transaction.js';

export interface MigrateOptions {
  /** History table, optionally schema-qualified. Default `sluice_migrations`. @example migrate(pool, dir, { table: 'ops.migrations' }) */
  readonly table?: string;
  /** How long to wait for another runner's lock (polled, 25–250 ms apart). Default 60000. @example migrate(pool, dir, { lockWaitMillis: 120_000 }) */
  readonly lockWaitMillis?: number;
  /** Advisory lock key. Default derived from the table name. @example migrate(pool, dir, { lockKey: 42n }) */
  readonly lockKey?: bigint;
  /** `lock_timeout` for each migration's statements. Default 5000. @example migrate(pool, dir, { ddlLockTimeoutMillis: 2000 }) */
  readonly ddlLockTimeoutMillis?: number;
  /** Extra attempts when a migration hits lock_timeout (55P03). Default 5. @example migrate(pool, dir, { ddlRetries: 10 }) */
  readonly ddlRetries?: number;
  /** `statement_timeout` inside migrations. Default 0 (none). @example migrate(pool, dir, { statementTimeoutMillis: 600_000 }) */
  readonly statementTimeoutMillis?: number;
  readonly logger?: KitLogger;
}

export interface MigrateResult {
  /** Files applied by this run, in order. */
  readonly applied: readonly string[];
  /** Files that were already applied. */
  readonly alreadyApplied: readonly string[];
}

export interface MigrationFile {
  readonly id: string;
  readonly order: bigint;
  readonly sql: string;
  readonly checksum: string;
  /** The file starts with `-- sluice:no-transaction` (e.g. CREATE INDEX CONCURRENTLY). */
  readonly noTransaction: boolean;
}

const FILE = /^(\d+)[_-][^/\\]*\.sql$/;
const NO_TX = /^\s*--\s*sluice:no-transaction\b/;

function quoteIdent(name: string): string {
  return name
    .split('.')
    .map((part) => {
      if (!/^[A-Za-z_][A-Za-z0-9_$]*$/.test(part)) throw new MigrationError(MigrationErrorCodes.badFile, `invalid history table name ${name}`);
      return `"${part}"`;
    })
    .join('.');
}

/** Reads `NNN_name.sql` files in numeric order. Other files are ignored; two files with one number are an error. */
export async function readMigrations(dir: string): Promise<MigrationFile[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    throw new MigrationError(MigrationErrorCodes.badFile, `cannot read migrations directory ${dir}: ${(err as Error).message}`, undefined, { cause: err });
  }
  const files: MigrationFile[] = [];
  for (const name of names) {
    const m = FILE.exec(name);
    if (!m) continue;
    // CRLF normalised so a checkout with autocrlf does not look like an edit.
    const sql = (await readFile(path.join(dir, name), 'utf8')).replace(/\r\n/g, '\n');
    files.push({
      id: name.slice(0, -4),
      order: BigInt(m[1]!),
      sql,
      checksum: createHash('sha256').update(sql).digest('hex'),
      noTransaction: NO_TX.test(sql),
    });
  }
  files.sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : a.id < b.id ? -1 : 1));
  for (let i = 1; i < files.length; i++) {
    if (files[i]!.order === files[i - 1]!.order) {
      throw new MigrationError(MigrationErrorCodes.badFile, `two migrations share number ${files[i]!.order}: ${files[i - 1]!.id}, ${files[i]!.id}`, files[i]!.id);
    }
  }
  return files;
}

function defaultLockKey(table: string): bigint {
  return createHash('sha256').update(`sluice:migrate:${table}`).digest().readBigInt64BE(0);
}

function describe(err: unknown): string {
  const e = err as { message?: string; code?: string; position?: string; detail?: string; hint?: string };
  let s = e.message ?? String(err);
  if (e.code) s += ` (SQLSTATE ${e.code})`;
  if (e.position) s += ` at character ${e.position}`;
  if (e.detail) s += `; detail: ${e.detail}`;
  if (e.hint) s += `; hint: ${e.hint}`;
  return s;
}

/**
 * Apply pending `NNN_name.sql` files from `dir`, each exactly once, even with
 * many runners starting together.
 *
 * @example
 * const { applied } = await migrate(pool, new URL('./migrations', import.meta.url).pathname);
 */
export async function migrate(pool: pg.Pool, dir: string, options: MigrateOptions = {}): Promise<MigrateResult> {
  const tableName = options.table ?? 'sluice_migrations';
  let table = quoteIdent(tableName);
  const logger = options.logger ?? defaultLogger();
  const lockKey = (options.lockKey ?? defaultLockKey(tableName)).toString();
  const lockWait = Math.max(1, Math.round(options.lockWaitMillis ?? 60_000));
  const ddlLock = Math.max(1, Math.round(options.ddlLockTimeoutMillis ?? 5000));
  const ddlRetries = options.ddlRetries ?? 5;
  const stmtTimeout = Math.max(0, Math.round(options.statementTimeoutMillis ?? 0));
  const files = await readMigrations(dir);

  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (err: Error): void => {
    broken ??= err;
  };
  client.on('error', onError);
  let locked = false;
  let ranAny = false;
  const newly: string[] = [];
  try {
    // Bounded wait for the lock by polling pg_try_advisory_lock. A blocking
    // pg_advisory_lock() would be an open transaction for as long as it waits,
    // and CREATE INDEX CONCURRENTLY in the holder's migration waits for every
    // open transaction: the two deadlock (40P01).
    const deadline = Date.now() + lockWait;
    let pause = 25;
    for (let first = true; ; first = false) {
      const { rows: got } = await client.query<{ ok: boolean }>('select pg_try_advisory_lock($1::bigint) as ok', [lockKey]);
      if (got[0]?.ok) break;
      if (first) logger.info({ lockKey }, 'another runner holds the migration lock; waiting');
      if (Date.now() >= deadline) {
        throw new MigrationError(
          MigrationErrorCodes.lockTimeout,
          `another migration run held the lock for more than ${lockWait} ms; is one stuck? (pg_locks where locktype = 'advisory')`,
        );
      }
      await new Promise((r) => setTimeout(r, Math.min(pause, Math.max(1, deadline - Date.now()))));
      pause = Math.min(250, pause * 2);
    }
    locked = true;
    if (!tableName.includes('.')) {
      // Pinned to the schema it starts in: a migration may change search_path.
      const { rows: schema } = await client.query<{ s: string | null }>('select pg_catalog.current_schema() as s');
      if (schema[0]?.s) table = `"${schema[0].s.replace(/"/g, '""')}".${table}`;
    }
    await client.query(
      `create table if not exists ${table} (
         id text primary key,
         checksum text not null,
         applied_at timestamptz not null default now(),
         duration_ms integer not null
       )`,
    );
    const { rows } = await client.query<{ id: string; checksum: string }>(`select id, checksum from ${table}`);
    const applied = new Map(rows.map((r) => [r.id, r.checksum]));
    const onDisk = new Set(files.map((f) => f.id));
    for (const id of applied.keys()) {
      if (!onDisk.has(id)) {
        throw new MigrationError(MigrationErrorCodes.missing, `migration ${id} was applied but its file is missing from ${dir}`, id);
      }
    }
    const done: string[] = [];
    const pending: MigrationFile[] = [];
    for (const f of files) {
      const sum = applied.get(f.id);
      if (sum === undefined) pending.push(f);
      else if (sum !== f.checksum) {
        throw new MigrationError(
          MigrationErrorCodes.checksum,
          `migration ${f.id} changed after it was applied (checksum ${sum.slice(0, 12)}… in ${tableName}, ${f.checksum.slice(0, 12)}… on disk); add a new migration instead of editing it`,
          f.id,
        );
      } else done.push(f.id);
    }
    for (const f of pending) {
      ranAny = true;
      await applyOne(client, table, f, { ddlLock, ddlRetries, stmtTimeout, logger });
      newly.push(f.id);
      logger.info({ migration: f.id }, 'migration applied');
    }
    return { applied: newly, alreadyApplied: done };
  } finally {
    // A migration may leave session settings (a plain SET search_path): its
    // connection is closed rather than handed to the application.
    let releaseWith: Error | boolean | undefined = broken ?? (ranAny || undefined);
    if (locked && !broken) {
      try {
        await client.query('select pg_advisory_unlock($1::bigint)', [lockKey]);
      } catch (err) {
        releaseWith = err instanceof Error ? err : true; // closing the session frees the lock
      }
    }
    client.removeListener('error', onError);
    client.release(releaseWith);
  }
}

async function applyOne(
  client: pg.PoolClient,
  table: string,
  f: MigrationFile,
  o: { ddlLock: number; ddlRetries: number; stmtTimeout: number; logger: KitLogger },
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const started = Date.now();
    try {
      if (f.noTransaction) {
        // No lock_timeout: CREATE INDEX CONCURRENTLY waits for older transactions
        // by design, and a timeout there leaves an INVALID index behind.
        await client.query(`set statement_timeout = ${o.stmtTimeout}`);
        try {
          await client.query(f.sql);
        } finally {
          await client.query('reset statement_timeout');
        }
        await client.query(`insert into ${table} (id, checksum, duration_ms) values ($1, $2, $3)`, [f.id, f.checksum, Date.now() - started]);
      } else {
        await client.query('begin');
        await client.query(`set local lock_timeout = ${o.ddlLock}`);
        await client.query(`set local statement_timeout = ${o.stmtTimeout}`);
        await client.query(f.sql);
        await client.query(`insert into ${table} (id, checksum, duration_ms) values ($1, $2, $3)`, [f.id, f.checksum, Date.now() - started]);
        await client.query('commit');
      }
      return;
    } catch (err) {
      if (client.getTransactionStatus() !== 'I') await client.query('rollback').catch(() => {});
      // A file outside a transaction may have taken effect in part: never run it again by itself.
      if (sqlState(err) === '55P03' && attempt < o.ddlRetries && !f.noTransaction) {
        const ms = Math.min(5000, 100 * 2 ** attempt) * (0.5 + Math.random() / 2);
        o.logger.warn({ migration: f.id, attempt: attempt + 1, retryInMillis: Math.round(ms) }, 'migration could not get a lock in time; retrying');
        await new Promise((r) => setTimeout(r, ms));
        continue;
      }
      let hint = sqlState(err) === '55P03' ? ` after ${attempt + 1} attempts; a long transaction holds a conflicting lock` : '';
      if (f.noTransaction) {
        hint +=
          ' (it ran outside a transaction, so part of it may have taken effect: a failed CREATE INDEX CONCURRENTLY leaves an INVALID index, to drop with DROP INDEX CONCURRENTLY before the next run)';
      }
      throw new MigrationError(MigrationErrorCodes.failed, `migration ${f.id} failed${hint}: ${describe(err)}`, f.id, { cause: err });
    }
  }
}
