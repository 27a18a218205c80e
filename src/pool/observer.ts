// Events the metrics layer listens to. Called on the hot path: implementations
// must be cheap and must not throw.
import type { Pool } from './pool.js';

export interface PoolObserver {
  /** A query (simple Query, or an extended batch up to ReadyForQuery) finished after `ms`. */
  onQuery(pool: Pool, ms: number): void;
  /** A client released its server after holding it `ms` (a transaction in transaction mode). */
  onTransaction(pool: Pool, ms: number): void;
  /** A client waited `ms` for a server. */
  onWait(pool: Pool, ms: number): void;
  /** An ErrorResponse went to a client. */
  onError(pool: Pool | null, sqlstate: string): void;
  /** A client was pinned to its server (transaction mode), with the reason. */
  onPin(pool: Pool, reason: string): void;
}
