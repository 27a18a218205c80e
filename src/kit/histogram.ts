// A fixed-bucket histogram in milliseconds: cheap to update on every acquire
// and release, and easy to export to Prometheus.

/** Upper bounds (ms) of the kit's histogram buckets. */
export const DEFAULT_BUCKETS_MS: readonly number[] = Object.freeze([1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000]);

/** A point-in-time copy of a histogram; `buckets` are cumulative like Prometheus'. */
export interface HistogramSnapshot {
  readonly buckets: ReadonlyArray<{ readonly le: number; readonly count: number }>;
  readonly count: number;
  readonly sumMillis: number;
  readonly maxMillis: number;
}

export class MillisHistogram {
  private readonly counts: number[];
  private count = 0;
  private sum = 0;
  private max = 0;
  constructor(private readonly bounds: readonly number[] = DEFAULT_BUCKETS_MS) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(ms: number): void {
    let i = 0;
    while (i < this.bounds.length && ms > this.bounds[i]!) i++;
    this.counts[i]!++;
    this.count++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
  }

  snapshot(): HistogramSnapshot {
    let running = 0;
    const buckets = this.bounds.map((le, i) => {
      running += this.counts[i]!;
      return { le, count: running };
    });
    buckets.push({ le: Number.POSITIVE_INFINITY, count: this.count });
    return { buckets, count: this.count, sumMillis: this.sum, maxMillis: this.max };
  }
}
