// SHOW STATS figures: totals since start, and per-second averages over the
// last stats_period, computed like PgBouncer (rates for counts and bytes,
// per-transaction/per-query/per-assignment means for times). The period
// timer also writes the log_stats line.
import type { Sluice } from '../app.js';
import type { PoolStats } from '../pool/pool.js';

export interface StatFigures {
  serverAssignCount: number;
  xactCount: number;
  queryCount: number;
  bytesReceived: number;
  bytesSent: number;
  xactTimeUs: number;
  queryTimeUs: number;
  waitTimeUs: number;
  clientConnectCount: number;
}

const zero = (): StatFigures => ({ serverAssignCount: 0, xactCount: 0, queryCount: 0, bytesReceived: 0, bytesSent: 0, xactTimeUs: 0, queryTimeUs: 0, waitTimeUs: 0, clientConnectCount: 0 });

function add(into: StatFigures, s: PoolStats | StatFigures): void {
  into.serverAssignCount += s.serverAssignCount;
  into.xactCount += s.xactCount;
  into.queryCount += s.queryCount;
  into.bytesReceived += s.bytesReceived;
  into.bytesSent += s.bytesSent;
  into.xactTimeUs += s.xactTimeUs;
  into.queryTimeUs += s.queryTimeUs;
  into.waitTimeUs += s.waitTimeUs;
  if ('clientConnectCount' in s) into.clientConnectCount += s.clientConnectCount;
}

function average(cur: StatFigures, old: StatFigures, durMs: number): StatFigures {
  const avg = zero();
  if (durMs <= 0) return avg;
  const rate = (a: number, b: number) => Math.floor(((a - b) * 1000) / durMs);
  const mean = (t: number, tOld: number, n: number) => (n > 0 ? Math.floor((t - tOld) / n) : 0);
  const q = cur.queryCount - old.queryCount;
  const x = cur.xactCount - old.xactCount;
  const a = cur.serverAssignCount - old.serverAssignCount;
  avg.serverAssignCount = rate(cur.serverAssignCount, old.serverAssignCount);
  avg.xactCount = rate(cur.xactCount, old.xactCount);
  avg.queryCount = rate(cur.queryCount, old.queryCount);
  avg.bytesReceived = rate(cur.bytesReceived, old.bytesReceived);
  avg.bytesSent = rate(cur.bytesSent, old.bytesSent);
  avg.clientConnectCount = rate(cur.clientConnectCount, old.clientConnectCount);
  avg.xactTimeUs = mean(cur.xactTimeUs, old.xactTimeUs, x);
  avg.queryTimeUs = mean(cur.queryTimeUs, old.queryTimeUs, q);
  avg.waitTimeUs = mean(cur.waitTimeUs, old.waitTimeUs, a);
  return avg;
}

export class StatsPeriod {
  /** Per-database totals at the previous two period boundaries. */
  private older = new Map<string, StatFigures>();
  private newer = new Map<string, StatFigures>();
  private oldStamp = Date.now() - 1000;
  private newStamp = Date.now();
  private timer: NodeJS.Timeout | null = null;
  private period = 0;

  constructor(private readonly app: Sluice) {}

  /** (Re)starts the period timer when stats_period changed. */
  schedule(): void {
    const period = Math.max(1000, this.app.settings().stats_period);
    if (period === this.period && this.timer) return;
    this.period = period;
    if (this.timer) clearInterval(this.timer);
    this.timer = setInterval(() => this.tick(), period);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private current(): Map<string, StatFigures> {
    const m = new Map<string, StatFigures>();
    for (const p of this.app.pooler.pools.values()) {
      let f = m.get(p.db.name);
      if (!f) m.set(p.db.name, (f = zero()));
      add(f, p.stats);
    }
    return m;
  }

  tick(now = Date.now()): void {
    this.oldStamp = this.newStamp;
    this.newStamp = now;
    this.older = this.newer;
    this.newer = this.current();
    if (this.app.settings().log_stats) {
      const { avg } = this.overall(now);
      this.app.log.info(
        { xacts_per_s: avg.xactCount, queries_per_s: avg.queryCount, in_bytes_per_s: avg.bytesReceived, out_bytes_per_s: avg.bytesSent, xact_us: avg.xactTimeUs, query_us: avg.queryTimeUs, wait_us: avg.waitTimeUs },
        `stats: ${avg.xactCount} xacts/s, ${avg.queryCount} queries/s, in ${avg.bytesReceived} B/s, out ${avg.bytesSent} B/s, xact ${avg.xactTimeUs} us, query ${avg.queryTimeUs} us, wait ${avg.waitTimeUs} us`,
      );
    }
  }

  perDatabase(now = Date.now()): Map<string, { total: StatFigures; avg: StatFigures }> {
    const out = new Map<string, { total: StatFigures; avg: StatFigures }>();
    const cur = this.current();
    const names = [...cur.keys()].sort();
    for (const db of names) {
      const total = cur.get(db)!;
      out.set(db, { total, avg: average(this.newer.get(db) ?? zero(), this.older.get(db) ?? zero(), this.newStamp - this.oldStamp) });
    }
    void now;
    return out;
  }

  overall(now = Date.now()): { total: StatFigures; avg: StatFigures } {
    const total = zero();
    for (const f of this.current().values()) add(total, f);
    const newer = zero();
    for (const f of this.newer.values()) add(newer, f);
    const older = zero();
    for (const f of this.older.values()) add(older, f);
    void now;
    return { total, avg: average(newer, older, this.newStamp - this.oldStamp) };
  }
}
