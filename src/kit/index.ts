// sluice/kit: the production checklist for node-postgres, as a library.
export * from './errors.js';
export { type KitLogger, defaultLogger, silentKitLogger } from './logger.js';
export { type HistogramSnapshot, DEFAULT_BUCKETS_MS } from './histogram.js';
export { type SslMode, type TlsPolicy, type TlsInput, resolveTls, isLocalHost, TLS_URL_PARAMS } from './tls.js';
export {
  type CreatePoolOptions,
  type PoolBudget,
  type PoolStats,
  type LeakReport,
  SluicePool,
  createPool,
  maxFromBudget,
  globalPool,
  endGlobalPool,
} from './pool.js';
export { type IsolationLevel, type TransactionOptions, withTransaction, sqlState } from './transaction.js';
export {
  type HealthResult,
  type HealthEndpoint,
  type NodeHandler,
  type FetchHandler,
  type ReadinessOptions,
  type BudgetCheckOptions,
  createReadiness,
  createBudgetCheck,
} from './health.js';
export { type ShutdownOptions, type ShutdownHandle, installShutdown } from './shutdown.js';
export { registerMetrics } from './metrics.js';
export { type MigrateOptions, type MigrateResult, type MigrationFile, migrate, readMigrations } from './migrate.js';
// The connection-budget planner (src/kit/budget.ts, owned by the budget work).
export * from './budget.js';
