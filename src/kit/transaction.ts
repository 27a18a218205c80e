// withTransaction: the checkout/BEGIN/COMMIT/ROLLBACK/release dance done once,
// correctly, with bounded retries for serialization failures and deadlocks.
import type pg from 'pg';
import { TransactionAbortedError } from './errors.js';

/** SQL isolation levels. */
export type IsolationLevel = 'read uncommitted' | 'read committed' | 'repeatable read' | 'serializable';

export interface TransactionOptions {
  /** @example withTransaction(pool, fn, { isolationLevel: 'serializable' }) */
  readonly isolationLevel?: IsolationLevel;
  /** @example withTransaction(pool, fn, { readOnly: true }) */
  readonly readOnly?: boolean;
  /** With `serializable` + `readOnly`: wait for a safe snapshot instead of risking serialization failures. @example withTransaction(pool, fn, { isolationLevel: 'serializable', readOnly: true, deferrable: true }) */
  readonly deferrable?: boolean;
  /**
   * Extra attempts after a 40001 (serialization failure) or 40P01 (deadlock). Default 3.
   * `fn` may therefore run more than once: keep side effects outside the database out of it.
   * @example withTransaction(pool, fn, { retries: 0 })
   */
  readonly retries?: number;
  /** First backoff in ms, doubled per attempt with jitter, capped at 1 s. Default 20. @example withTransaction(pool, fn, { backoffMillis: 50 }) */
  readonly backoffMillis?: number;
}

const RETRYABLE = new Set(['40001', '40P01']);
const LEVELS: readonly IsolationLevel[] = ['read uncommitted', 'read committed', 'repeatable read', 'serializable'];

/** The SQLSTATE of a server error, if any. */
export function sqlState(err: unknown): string | undefined {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

function beginStatement(o: TransactionOptions): string {
  let sql = 'BEGIN';
  if (o.isolationLevel) {
    if (!LEVELS.includes(o.isolationLevel)) throw new TypeError(`unknown isolation level ${String(o.isolationLevel)}`);
    sql += ` ISOLATION LEVEL ${o.isolationLevel.toUpperCase()}`;
  }
  if (o.readOnly) sql += ' READ ONLY';
  if (o.deferrable) sql += ' DEFERRABLE';
  return sql;
}

/**
 * Run `fn` inside a transaction on a client of its own.
 * Commits when `fn` resolves, rolls back when it throws; a client that is not
 * cleanly idle afterwards, or whose connection failed, is destroyed. When a
 * statement inside failed but `fn` resolved anyway (a caught or un-awaited
 * error), nothing is committed and it rejects with `SLUICE_TX_ABORTED`.
 *
 * @example
 * const id = await withTransaction(pool, async (tx) => {
 *   const { rows } = await tx.query('insert into orders(total) values ($1) returning id', [42]);
 *   await tx.query('update stock set n = n - 1 where sku = $1', ['A1']);
 *   return rows[0].id;
 * }, { isolationLevel: 'serializable' });
 */
export async function withTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  const retries = options.retries ?? 3;
  const backoff = options.backoffMillis ?? 20;
  const begin = beginStatement(options);
  for (let attempt = 0; ; attempt++) {
    const client = await pool.connect();
    let failed: Error | undefined;
    // For the whole checkout: a dying connection must reach us, not crash the process.
    const onError = (err: Error): void => {
      failed ??= err;
    };
    client.on('error', onError);
    let releaseWith: Error | boolean | undefined;
    try {
      await client.query(begin);
      const result = await fn(client);
      // PostgreSQL answers COMMIT of a failed transaction with a ROLLBACK, not an error.
      if (client.getTransactionStatus() === 'E') throw new TransactionAbortedError();
      const committed = await client.query('COMMIT');
      if (committed.command === 'ROLLBACK') throw new TransactionAbortedError();
      return result;
    } catch (err) {
      if (failed) {
        releaseWith = failed;
      } else if (client.getTransactionStatus() !== 'I') {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackErr) {
          releaseWith = rollbackErr instanceof Error ? rollbackErr : true;
        }
      }
      const state = sqlState(err);
      if (state && RETRYABLE.has(state) && attempt < retries && !releaseWith && !failed) {
        client.removeListener('error', onError);
        client.release();
        const ms = Math.min(1000, backoff * 2 ** attempt) * (0.5 + Math.random() / 2);
        await new Promise((r) => setTimeout(r, ms));
        continue;
      }
      throw err;
    } finally {
      if (client.listeners('error').includes(onError)) {
        client.removeListener('error', onError);
        if (failed) releaseWith ??= failed;
        // Belt and braces for plain pg.Pool: never return a client mid-transaction.
        if (!releaseWith && client.getTransactionStatus() !== 'I') releaseWith = true;
        client.release(releaseWith);
      }
    }
  }
}
