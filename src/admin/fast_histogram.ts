// A Prometheus histogram cheap enough for the hot path: per label set, an
// array of bucket counts, a sum and a count, updated with plain arithmetic.
// prom-client's Histogram hashes its labels on every observe(); this one is
// read by the registry only at scrape time, in prom-client's own format.
import type { Registry } from 'prom-client';

export interface HistogramSeries {
  readonly labels: Readonly<Record<string, string>>;
  readonly counts: Float64Array; // per bucket, not cumulative
  sum: number;
  count: number;
}

interface MetricValue {
  value: number;
  labels: Record<string, string | number>;
  metricName: string;
}

export class FastHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<unknown, HistogramSeries>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly bounds: readonly number[],
    registers: readonly Registry[],
  ) {
    for (const r of registers) r.registerMetric(this as never);
  }

  /** The series for `key` (e.g. a pool), created with its labels on first use. */
  seriesFor(key: unknown, labels: Record<string, string>): HistogramSeries {
    let s = this.series.get(key);
    if (!s) {
      s = { labels: Object.freeze({ ...labels }), counts: new Float64Array(this.bounds.length), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    return s;
  }

  observe(s: HistogramSeries, value: number): void {
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) {
      if (value <= b[i]) {
        s.counts[i]++;
        break;
      }
    }
    s.sum += value;
    s.count++;
  }

  reset(): void {
    for (const s of this.series.values()) {
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }

  /** What prom-client's registry reads at scrape time. */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: MetricValue[] }> {
    const values: MetricValue[] = [];
    for (const s of this.series.values()) {
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += s.counts[i];
        values.push({ value: acc, labels: { ...s.labels, le: this.bounds[i] }, metricName: `${this.name}_bucket` });
      }
      values.push({ value: s.count, labels: { ...s.labels, le: '+Inf' }, metricName: `${this.name}_bucket` });
      values.push({ value: s.sum, labels: { ...s.labels }, metricName: `${this.name}_sum` });
      values.push({ value: s.count, labels: { ...s.labels }, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
