// Property tests for the pure planner: random inputs from a seeded PRNG, so a
// failure reproduces from its seed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BudgetError, planBudget, surgeInstances, type BudgetInput, type EnvironmentSpec, type PoolerKind, type Surge } from '../src/kit/budget.js';

// mulberry32: tiny, fast, good enough to spread test cases.
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomInput(rand: () => number): BudgetInput {
  const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const surge = (): Surge | undefined => pick([undefined, { kind: 'count', count: int(0, 3) } as Surge, { kind: 'fraction', fraction: pick([0.1, 0.25, 0.5, 1]) } as Surge]);
  const pooler: PoolerKind = pick(['none', 'sluice', 'pgbouncer'] as const);
  const envs: EnvironmentSpec[] = [];
  const n = int(1, 6);
  for (let i = 0; i < n; i++) {
    const name = `env${i}`;
    const direct = rand() < 0.2;
    const k = pick(['instances', 'instances', 'fixed', 'serverless'] as const);
    if (k === 'instances') {
      const s = surge();
      envs.push({ name, kind: 'instances', instances: int(1, 12), weight: pick([0.5, 1, 2, 3, 10]), ...(s ? { surge: s } : {}), direct });
    } else if (k === 'fixed') {
      const c = int(1, 8);
      envs.push({ name, kind: 'fixed', connections: c, instances: int(1, c), direct });
    } else {
      envs.push({ name, kind: 'serverless', concurrency: int(1, 200), weight: pick([1, 2, 5]), direct });
    }
  }
  const s = surge();
  return {
    maxConnections: int(1, pick([30, 120, 600])),
    superuserReservedConnections: int(0, 5),
    reservedConnections: pick([0, 0, 2]),
    reserve: int(0, 4),
    pooler,
    environments: envs,
    ...(s ? { surge: s } : {}),
  };
}

// The minimum each environment must get, computed independently of the planner.
function minimumNeed(input: BudgetInput): number {
  const pooled = (input.pooler ?? 'none') !== 'none';
  return input.environments.reduce((sum, e) => {
    const viaPooler = pooled && !e.direct;
    if (e.kind === 'fixed') return sum + e.connections;
    if (e.kind === 'serverless') return sum + (viaPooler ? 1 : e.concurrency);
    return sum + (viaPooler ? 1 : e.instances + surgeInstances(e.instances, e.surge ?? input.surge));
  }, 0);
}

test('random budgets: allocations never exceed the limit, every environment gets ≥ 1, or the planner errors', () => {
  const seeds = 3000;
  let feasible = 0;
  let infeasible = 0;
  for (let seed = 1; seed <= seeds; seed++) {
    const input = randomInput(prng(seed));
    const available = input.maxConnections - (input.superuserReservedConnections ?? 3) - (input.reservedConnections ?? 0) - (input.reserve ?? 0);
    const need = minimumNeed(input);
    let plan;
    try {
      plan = planBudget(input);
    } catch (err) {
      assert.ok(err instanceof BudgetError, `seed ${seed}: unexpected ${String(err)}`);
      assert.equal(err.code, 'SLUICE_BUDGET_INFEASIBLE', `seed ${seed}: ${err.message}`);
      // Only errors when the minimums truly do not fit, and says by how much.
      assert.ok(need > available, `seed ${seed}: planner refused a feasible budget (need ${need} ≤ ${available})`);
      assert.equal(err.shortBy, need - available, `seed ${seed}`);
      assert.match(err.message, new RegExp(`short by ${need - available}`));
      infeasible++;
      continue;
    }
    feasible++;
    assert.ok(need <= available, `seed ${seed}: planned an infeasible budget`);
    const total = plan.environments.reduce((s, e) => s + e.serverConnections, 0);
    assert.equal(total, plan.allocated, `seed ${seed}`);
    assert.ok(total <= available, `seed ${seed}: allocated ${total} > available ${available}`);
    assert.ok(total + plan.superuserReservedConnections + plan.reservedConnections + plan.reserve <= input.maxConnections, `seed ${seed}`);
    assert.equal(plan.environments.length, input.environments.length);
    for (const e of plan.environments) {
      assert.ok(e.serverConnections >= 1, `seed ${seed}: ${e.name} got ${e.serverConnections}`);
      assert.ok(e.perInstanceMax >= 1, `seed ${seed}: ${e.name} max ${e.perInstanceMax}`);
      if (e.via === 'direct') {
        // Without a pooler every app connection is a server connection, even mid-deploy.
        assert.ok(e.perInstanceMax * e.peakInstances <= e.serverConnections, `seed ${seed}: ${e.name} ${e.perInstanceMax}×${e.peakInstances} > ${e.serverConnections}`);
      }
      assert.equal(e.settings.nodePostgres.max, e.perInstanceMax);
      assert.equal(e.settings.prismaUrl.connection_limit, e.perInstanceMax);
    }
    if (plan.poolerSettings) {
      const pooledEnvs = plan.environments.filter((e) => e.via === 'pooler');
      assert.equal(plan.poolerSettings.databases.reduce((s, d) => s + d.max_db_connections, 0), pooledEnvs.reduce((s, e) => s + e.serverConnections, 0));
      assert.ok(plan.poolerSettings.max_client_conn >= plan.peakClientConnections);
    }
  }
  // The generator must exercise both outcomes, or the property says little.
  assert.ok(feasible > seeds / 10 && infeasible > seeds / 10, `feasible ${feasible}, infeasible ${infeasible}`);
});

test('the same input always gives the same plan', () => {
  for (let seed = 1; seed <= 200; seed++) {
    const a = randomInput(prng(seed));
    const b = randomInput(prng(seed));
    let pa: unknown;
    let pb: unknown;
    try {
      pa = planBudget(a);
    } catch (e) {
      pa = (e as Error).message;
    }
    try {
      pb = planBudget(b);
    } catch (e) {
      pb = (e as Error).message;
    }
    assert.deepEqual(pa, pb);
  }
});

test('weights split the remainder proportionally', () => {
  const plan = planBudget({
    maxConnections: 43,
    superuserReservedConnections: 3,
    environments: [
      { name: 'a', kind: 'instances', instances: 1, weight: 3 },
      { name: 'b', kind: 'instances', instances: 1, weight: 1 },
    ],
  });
  assert.deepEqual(plan.environments.map((e) => e.serverConnections), [30, 10]);
});

test('invalid input is SLUICE_BUDGET_INVALID, not infeasible', () => {
  assert.throws(() => planBudget({ maxConnections: 10, environments: [] }), (e: unknown) => e instanceof BudgetError && e.code === 'SLUICE_BUDGET_INVALID');
  assert.throws(
    () => planBudget({ maxConnections: 10, environments: [{ name: 'x', kind: 'instances', instances: 0 }] }),
    (e: unknown) => e instanceof BudgetError && e.code === 'SLUICE_BUDGET_INVALID',
  );
});

test('a fixed max_client_conn that the apps exceed is infeasible, with the shortfall', () => {
  assert.throws(
    () => planBudget({ maxConnections: 25, pooler: 'pgbouncer', maxClientConn: 40, environments: [{ name: 'fn', kind: 'serverless', concurrency: 50 }] }),
    (e: unknown) => e instanceof BudgetError && e.code === 'SLUICE_BUDGET_INFEASIBLE' && e.shortBy === 10 && /max_client_conn/.test(e.message),
  );
});
