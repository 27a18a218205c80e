// Health endpoints. Readiness answers from local pool signals only: it must
// be cheap and must not depend on shared state that fails for every instance
// at once. The budget check reads pg_stat_activity and is for alerting and
// deploy gates, not for readiness (see docs/kit.md).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createPool, type CreatePoolOptions, type SluicePool } from './pool.js';
import { defaultLogger, type KitLogger } from './logger.js';

/** What a check found; `status` is the HTTP status to answer with. */
export interface HealthResult {
  readonly status: 200 | 503;
  readonly body: Readonly<Record<string, unknown>>;
}

/** A Node `(req, res)` handler: works with `http.createServer`, Express, and Fastify (`reply.hijack()` + raw objects). */
export type NodeHandler = (req: IncomingMessage, res: ServerResponse) => void;
/** A fetch-style handler: Hono, Next.js route handlers, Bun, Deno, Cloudflare. */
export type FetchHandler = (request: Request) => Promise<Response>;

/** One health endpoint in both handler shapes. */
export interface HealthEndpoint {
  check(): Promise<HealthResult>;
  readonly node: NodeHandler;
  readonly fetch: FetchHandler;
  /** Releases what the check owns (the budget check's own pool). */
  close(): Promise<void>;
}

function endpoint(check: () => Promise<HealthResult>, close: () => Promise<void> = async () => {}): HealthEndpoint {
  return {
    check,
    close,
    node(_req, res) {
      check().then(
        (r) => {
          res.writeHead(r.status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
          res.end(JSON.stringify(r.body));
        },
        (err: Error) => {
          res.writeHead(503, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ ok: false, error: err.message }));
        },
      );
    },
    async fetch() {
      let r: HealthResult;
      try {
        r = await check();
      } catch (err) {
        r = { status: 503, body: { ok: false, error: (err as Error).message } };
      }
      return new Response(JSON.stringify(r.body), {
        status: r.status,
        headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
      });
    },
  };
}

export interface ReadinessOptions {
  /** A recent acquire timeout makes the instance unready for this long. Default 5000. @example createReadiness(pool, { timeoutGraceMillis: 10_000 }) */
  readonly timeoutGraceMillis?: number;
}

/**
 * Readiness from local signals: not ready while the pool is closing, while the
 * last attempt to open a connection failed, or shortly after an acquire timed out.
 *
 * @example
 * const ready = createReadiness(pool);
 * http.createServer((req, res) => req.url === '/ready' ? ready.node(req, res) : app(req, res));
 */
export function createReadiness(pool: SluicePool, options: ReadinessOptions = {}): HealthEndpoint {
  const grace = options.timeoutGraceMillis ?? 5000;
  return endpoint(async () => {
    const s = pool.stats();
    const reasons: string[] = [];
    if (s.closing) reasons.push('pool is shutting down');
    if (pool.lastConnectError) reasons.push(`cannot connect: ${pool.lastConnectError.message}`);
    if (pool.lastAcquireTimeoutAt && Date.now() - pool.lastAcquireTimeoutAt < grace) reasons.push('recent acquire timeout: pool saturated');
    const body = { ok: reasons.length === 0, reasons, total: s.total, idle: s.idle, acquired: s.acquired, waiting: s.waiting, max: s.max };
    return { status: reasons.length === 0 ? 200 : 503, body };
  });
}

export interface BudgetCheckOptions {
  /** Fraction of the limit above which the check answers 503. Default 0.8. @example createBudgetCheck(url, { threshold: 0.9 }) */
  readonly threshold?: number;
  /** The limit to compare with. Default `max_connections - superuser_reserved_connections`. @example createBudgetCheck(url, { limit: 60 }) */
  readonly limit?: number;
  /** Options for the check's own one-connection pool. @example createBudgetCheck(url, { pool: { applicationName: 'api-budget' } }) */
  readonly pool?: Omit<CreatePoolOptions, 'max' | 'budget'>;
  readonly logger?: KitLogger;
}

/**
 * Connection budget from `pg_stat_activity` (client backends only), on its own
 * one-connection pool so it still answers when the app pool is exhausted.
 *
 * @example
 * const budget = createBudgetCheck(process.env.DATABASE_URL!, { threshold: 0.8 });
 * app.get('/health/budget', (req, reply) => { reply.hijack(); budget.node(req.raw, reply.raw); });
 */
export function createBudgetCheck(urlOrOptions: string | CreatePoolOptions, options: BudgetCheckOptions = {}): HealthEndpoint {
  const threshold = options.threshold ?? 0.8;
  if (!(threshold > 0 && threshold <= 1)) throw new RangeError(`threshold must be within (0, 1], got ${threshold}`);
  // The check's pool is always one connection, whatever the app pool's size options say.
  const { max: _max, budget: _budget, ...base }: CreatePoolOptions = typeof urlOrOptions === 'string' ? { connectionString: urlOrOptions } : urlOrOptions;
  const pool = createPool({
    applicationName: 'sluice-budget-check',
    acquireTimeoutMillis: 3000,
    statementTimeoutMillis: 3000,
    leakDetectionMillis: 0,
    logger: options.logger ?? defaultLogger(),
    ...base,
    ...options.pool,
    max: 1,
  });
  const check = async (): Promise<HealthResult> => {
    try {
      const { rows } = await pool.query<{ used: number; max_connections: number; reserved: number }>(
        `select (select count(*) from pg_stat_activity where backend_type = 'client backend')::int as used,
                current_setting('max_connections')::int as max_connections,
                current_setting('superuser_reserved_connections')::int as reserved`,
      );
      const row = rows[0]!;
      const limit = options.limit ?? row.max_connections - row.reserved;
      const ratio = row.used / limit;
      const ok = ratio <= threshold;
      return { status: ok ? 200 : 503, body: { ok, used: row.used, limit, ratio: Math.round(ratio * 1000) / 1000, threshold } };
    } catch (err) {
      return { status: 503, body: { ok: false, error: (err as Error).message } };
    }
  };
  return endpoint(check, () => pool.end());
}
