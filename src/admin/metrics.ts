// Prometheus metrics in a private prom-client Registry. The hot path only
// observes into pre-bound histogram children (cached per pool); every gauge
// and the traffic counters are computed from pool state at scrape time.
import { Counter, Gauge, Registry } from 'prom-client';
import type { Sluice } from '../app.js';
import type { Pool } from '../pool/pool.js';
import { FastHistogram, type HistogramSeries } from './fast_histogram.js';
import type { PoolObserver } from '../pool/observer.js';
import { poolCounts } from './views.js';

// Seconds. Covers sub-millisecond pooled queries up to long reports.
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

interface Observed {
  observe(v: number): void;
}
interface PoolChildren {
  query: HistogramSeries;
  xact: HistogramSeries;
  wait: HistogramSeries;
}

type StatKey = 'xactCount' | 'queryCount' | 'bytesReceived' | 'bytesSent';

export class Metrics implements PoolObserver {
  readonly registry = new Registry();
  private readonly children = new WeakMap<Pool, PoolChildren>();
  private readonly queryHist: FastHistogram;
  private readonly xactHist: FastHistogram;
  private readonly waitHist: FastHistogram;
  private readonly errors: Counter<'database' | 'user' | 'class'>;
  private readonly pinsCounter: Counter<'database' | 'user' | 'reason'>;
  /** Pins by pool and reason, for SHOW PINS. */
  readonly pins = new Map<string, { database: string; user: string; reason: string; count: number }>();
  /** What each pool's counters were at the last scrape, so counters move by deltas. */
  private readonly lastSeen = new WeakMap<Pool, Record<StatKey, number>>();

  constructor(private readonly app: Sluice) {
    const registers = [this.registry];
    const pl = ['database', 'user'] as const;
    this.queryHist = new FastHistogram('sluice_query_duration_seconds', 'Query duration (simple Query or extended batch up to ReadyForQuery).', LATENCY_BUCKETS, registers);
    this.xactHist = new FastHistogram('sluice_transaction_duration_seconds', 'How long a client held a server (a transaction in transaction mode).', LATENCY_BUCKETS, registers);
    this.waitHist = new FastHistogram('sluice_client_wait_seconds', 'How long clients waited for a server connection.', LATENCY_BUCKETS, registers);
    this.errors = new Counter({ name: 'sluice_errors_total', help: 'ErrorResponses sent to clients, by SQLSTATE class (first two characters).', labelNames: ['database', 'user', 'class'], registers });
    this.pinsCounter = new Counter({ name: 'sluice_pins_total', help: 'Clients pinned to their server in transaction mode, by reason.', labelNames: ['database', 'user', 'reason'], registers });
    // Read from the pools' counters at scrape time; the hot path only increments numbers.
    const pooler = this.app.pooler;
    const preparedCounter = (name: string, help: string, pick: (s: import('../pool/pool.js').PoolStats) => number) =>
      new Counter({
        name,
        help,
        labelNames: pl,
        registers,
        collect() {
          this.reset();
          for (const p of pooler.pools.values()) this.inc({ database: p.db.name, user: p.user }, pick(p.stats));
        },
      });
    preparedCounter('sluice_prepared_statement_hits_total', 'Binds/Describes of a named statement already prepared on the server.', (s) => s.preparedHits);
    preparedCounter('sluice_prepared_statement_misses_total', 'Named statements Sluice had to prepare on the server first.', (s) => s.preparedMisses);
    preparedCounter('sluice_prepared_statement_evictions_total', 'Statements closed to respect max_prepared_statements.', (s) => s.preparedEvictions);

    const pools = () => [...this.app.pooler.pools.values()];
    const gauge = (name: string, help: string, pick: (c: ReturnType<typeof poolCounts>) => number) =>
      new Gauge({
        name,
        help,
        labelNames: pl,
        registers,
        collect() {
          this.reset();
          for (const p of pools()) this.set({ database: p.db.name, user: p.user }, pick(poolCounts(app, p)));
        },
      });
    gauge('sluice_pool_clients_active', 'Clients linked to a server or idle (cl_active).', (c) => c.clActive);
    gauge('sluice_pool_clients_waiting', 'Clients waiting for a server (cl_waiting).', (c) => c.clWaiting);
    gauge('sluice_pool_servers_active', 'Server connections linked to a client (sv_active).', (c) => c.svActive);
    gauge('sluice_pool_servers_idle', 'Idle server connections ready for use (sv_idle).', (c) => c.svIdle);
    gauge('sluice_pool_servers_used', 'Idle server connections due a server_check_query (sv_used).', (c) => c.svUsed);
    gauge('sluice_pool_servers_login', 'Server connections connecting or logging in (sv_login).', (c) => c.svLogin);
    gauge('sluice_pool_max_wait_seconds', 'How long the oldest waiting client has waited.', (c) => c.maxWaitMs / 1000);
    new Gauge({
      name: 'sluice_paused',
      help: '1 while PAUSE (or SIGUSR1) is in force for every database.',
      registers,
      collect() {
        this.set(app.isPaused ? 1 : 0);
      },
    });

    const lastSeen = this.lastSeen;
    const counter = (name: string, help: string, key: StatKey) =>
      new Counter({
        name,
        help,
        labelNames: pl,
        registers,
        collect() {
          for (const p of pools()) {
            let seen = lastSeen.get(p);
            if (!seen) lastSeen.set(p, (seen = { xactCount: 0, queryCount: 0, bytesReceived: 0, bytesSent: 0 }));
            const delta = p.stats[key] - seen[key];
            seen[key] = p.stats[key];
            // Always touch the series so it is exported from the first scrape on.
            this.inc({ database: p.db.name, user: p.user }, delta > 0 ? delta : 0);
          }
        },
      });
    counter('sluice_transactions_total', 'Transactions pooled (server assignments released).', 'xactCount');
    counter('sluice_queries_total', 'Queries pooled.', 'queryCount');
    counter('sluice_received_bytes_total', 'Bytes received from clients.', 'bytesReceived');
    counter('sluice_sent_bytes_total', 'Bytes sent to clients.', 'bytesSent');
  }

  private forPool(pool: Pool): PoolChildren {
    // Most processes serve one pool, or a few in turn: the last one is kept at hand (no WeakMap lookup per query).
    if (pool === this.lastPool) return this.lastChildren!;
    let c = this.children.get(pool);
    if (!c) {
      const labels = { database: pool.db.name, user: pool.user };
      c = { query: this.queryHist.seriesFor(pool, labels), xact: this.xactHist.seriesFor(pool, labels), wait: this.waitHist.seriesFor(pool, labels) };
      this.children.set(pool, c);
    }
    this.lastPool = pool;
    this.lastChildren = c;
    return c;
  }
  private lastPool: Pool | null = null;
  private lastChildren: PoolChildren | null = null;

  // ---- PoolObserver (hot path) ----
  onQuery(pool: Pool, ms: number): void {
    this.queryHist.observe(this.forPool(pool).query, ms / 1000);
  }
  onTransaction(pool: Pool, ms: number): void {
    this.xactHist.observe(this.forPool(pool).xact, ms / 1000);
  }
  onWait(pool: Pool, ms: number): void {
    this.waitHist.observe(this.forPool(pool).wait, ms / 1000);
  }
  onError(pool: Pool | null, sqlstate: string): void {
    this.errors.inc({ database: pool?.db.name ?? '', user: pool?.user ?? '', class: sqlstate.slice(0, 2) });
  }
  onPin(pool: Pool, reason: string): void {
    this.pinsCounter.inc({ database: pool.db.name, user: pool.user, reason });
    const key = `${pool.db.name}\u0000${pool.user}\u0000${reason}`;
    const row = this.pins.get(key);
    if (row) row.count++;
    else this.pins.set(key, { database: pool.db.name, user: pool.user, reason, count: 1 });
  }

  /** Percentiles per pool and histogram, estimated from bucket counts (for SHOW LATENCY). */
  async latency(): Promise<Array<{ database: string; user: string; metric: string; count: number; p50: number; p90: number; p99: number; mean: number }>> {
    const out: Array<{ database: string; user: string; metric: string; count: number; p50: number; p90: number; p99: number; mean: number }> = [];
    for (const [metric, hist] of [['query', this.queryHist], ['transaction', this.xactHist], ['wait', this.waitHist]] as const) {
      const data = await hist.get();
      const series = new Map<string, { database: string; user: string; buckets: Array<[number, number]>; sum: number; count: number }>();
      for (const v of data.values) {
        const database = String(v.labels.database ?? '');
        const user = String(v.labels.user ?? '');
        const key = `${database}\u0000${user}`;
        let s = series.get(key);
        if (!s) series.set(key, (s = { database, user, buckets: [], sum: 0, count: 0 }));
        if (v.metricName?.endsWith('_bucket')) {
          const raw = (v.labels as Record<string, string | number | undefined>).le;
          const le = raw === '+Inf' ? Infinity : Number(raw);
          s.buckets.push([le, v.value]);
        } else if (v.metricName?.endsWith('_sum')) s.sum = v.value;
        else if (v.metricName?.endsWith('_count')) s.count = v.value;
      }
      for (const s of series.values()) {
        if (s.count === 0) continue;
        s.buckets.sort((a, b) => a[0] - b[0]);
        const q = (p: number) => quantile(s.buckets, s.count, p) * 1000;
        out.push({ database: s.database, user: s.user, metric, count: s.count, p50: q(0.5), p90: q(0.9), p99: q(0.99), mean: (s.sum / s.count) * 1000 });
      }
    }
    return out;
  }
}

/** Linear interpolation inside the bucket holding the p-th observation (what histogram_quantile does). */
export function quantile(buckets: ReadonlyArray<readonly [number, number]>, count: number, p: number): number {
  const rank = p * count;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, cum] of buckets) {
    if (cum >= rank) {
      if (le === Infinity) return prevLe;
      const inBucket = cum - prevCount;
      return inBucket > 0 ? prevLe + ((le - prevLe) * (rank - prevCount)) / inBucket : le;
    }
    prevLe = le;
    prevCount = cum;
  }
  return prevLe;
}
