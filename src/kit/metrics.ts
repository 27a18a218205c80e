// Optional prom-client export of pool stats. Several pools can share a
// registry: metrics are created once per registry and labelled by pool name.
import client from 'prom-client';
import { DEFAULT_BUCKETS_MS } from './histogram.js';
import type { SluicePool } from './pool.js';

interface Registered {
  readonly pools: Set<SluicePool>;
  readonly wait: client.Histogram<'pool'>;
  readonly hold: client.Histogram<'pool'>;
}

const perRegistry = new WeakMap<client.Registry, Registered>();
const SECONDS = DEFAULT_BUCKETS_MS.map((ms) => ms / 1000);

/**
 * Export a pool's stats as `sluice_kit_*` metrics. Returns a function that stops exporting it.
 *
 * @example
 * import { register } from 'prom-client';
 * registerMetrics(pool, register);
 */
export function registerMetrics(pool: SluicePool, registry: client.Registry = client.register): () => void {
  let reg = perRegistry.get(registry);
  if (!reg) {
    const pools = new Set<SluicePool>();
    const gauge = (name: string, help: string, value: (p: SluicePool) => number): void => {
      new client.Gauge({
        name,
        help,
        labelNames: ['pool'],
        registers: [registry],
        collect() {
          this.reset();
          for (const p of pools) this.set({ pool: p.name }, value(p));
        },
      });
    };
    const counter = (name: string, help: string, value: (p: SluicePool) => number): void => {
      new client.Counter({
        name,
        help,
        labelNames: ['pool'],
        registers: [registry],
        collect() {
          this.reset();
          for (const p of pools) this.inc({ pool: p.name }, value(p));
        },
      });
    };
    gauge('sluice_kit_pool_connections', 'Open connections (idle + in use + connecting)', (p) => p.stats().total);
    gauge('sluice_kit_pool_idle', 'Idle connections', (p) => p.stats().idle);
    gauge('sluice_kit_pool_acquired', 'Connections checked out', (p) => p.stats().acquired);
    gauge('sluice_kit_pool_waiting', 'Callers waiting for a connection', (p) => p.stats().waiting);
    gauge('sluice_kit_pool_max', 'Pool size limit', (p) => p.stats().max);
    counter('sluice_kit_leaks_total', 'Checkouts held longer than leakDetectionMillis', (p) => p.stats().leaks);
    counter('sluice_kit_acquire_timeouts_total', 'Acquires that hit the deadline', (p) => p.stats().acquireTimeouts);
    counter('sluice_kit_dirty_releases_total', 'Clients destroyed because released inside a transaction', (p) => p.stats().dirtyReleases);
    counter('sluice_kit_broken_releases_total', 'Clients destroyed because their connection failed', (p) => p.stats().brokenReleases);
    reg = {
      pools,
      wait: new client.Histogram({ name: 'sluice_kit_acquire_wait_seconds', help: 'Time to get a connection', labelNames: ['pool'], buckets: SECONDS, registers: [registry] }),
      hold: new client.Histogram({ name: 'sluice_kit_hold_seconds', help: 'Time a connection stayed checked out', labelNames: ['pool'], buckets: SECONDS, registers: [registry] }),
    };
    perRegistry.set(registry, reg);
  }
  const r = reg;
  r.pools.add(pool);
  const unobserve = pool.observe((kind, ms) => (kind === 'wait' ? r.wait : r.hold).observe({ pool: pool.name }, ms / 1000));
  return () => {
    unobserve();
    r.pools.delete(pool);
  };
}
