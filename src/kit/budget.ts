// The connection-budget planner behind `sluice budget`: a pure function from
// "how many connections does the server allow, and who needs them" to "what
// each environment may open, and the driver/pooler settings that enforce it".
// No I/O here, so it is property-testable and usable from app code (the kit
// re-exports it).

/** What sits between the apps and PostgreSQL. */
export type PoolerKind = 'none' | 'sluice' | 'pgbouncer';

/** Rolling-deploy overlap: old and new instances run side by side for a while. */
export type Surge =
  | { readonly kind: 'count'; readonly count: number }
  | { readonly kind: 'fraction'; readonly fraction: number };

interface EnvironmentBase {
  /** Environment name; also the database alias in the pooler snippet. `[A-Za-z0-9_.-]+`. */
  readonly name: string;
  /** Connect straight to PostgreSQL even when a pooler is in front (migrations, session-mode work). */
  readonly direct?: boolean;
}

/** Long-running app instances (servers, containers), each with its own pool. */
export interface InstancesEnvironment extends EnvironmentBase {
  readonly kind: 'instances';
  readonly instances: number;
  /** Share of the connections left after fixed needs and minimums. Default 1. */
  readonly weight?: number;
  /** Overrides the plan-wide surge for this environment. */
  readonly surge?: Surge;
}

/** Exactly `connections` connections in total (CI, cron, migrations), split over `instances` (default 1). */
export interface FixedEnvironment extends EnvironmentBase {
  readonly kind: 'fixed';
  readonly connections: number;
  readonly instances?: number;
}

/** Serverless functions: up to `concurrency` copies at once, each with a pool of one. */
export interface ServerlessEnvironment extends EnvironmentBase {
  readonly kind: 'serverless';
  readonly concurrency: number;
  /** Share of the pooler's server connections. Default 1. Only used behind a pooler. */
  readonly weight?: number;
}

export type EnvironmentSpec = InstancesEnvironment | FixedEnvironment | ServerlessEnvironment;

export interface BudgetInput {
  /** The server's `max_connections`. */
  readonly maxConnections: number;
  /** `superuser_reserved_connections`; PostgreSQL's default is 3. */
  readonly superuserReservedConnections?: number;
  /** `reserved_connections` (PostgreSQL 16+); 0 before that. */
  readonly reservedConnections?: number;
  /** Slots kept free for admins and humans with psql (who are often not superusers on managed Postgres). Default 0. */
  readonly reserve?: number;
  /** Plan-wide rolling-deploy overlap for `instances` environments. Default none. */
  readonly surge?: Surge;
  /** Default 'none'. */
  readonly pooler?: PoolerKind;
  /** The pooler's `max_client_conn`, when it is fixed; otherwise the plan computes it. */
  readonly maxClientConn?: number;
  /** How long an app waits for a pooled connection before failing. Default 5000 ms. */
  readonly connectionTimeoutMillis?: number;
  readonly environments: readonly EnvironmentSpec[];
}

/** Settings per client library for one environment. Each is per instance (per function). */
export interface DriverSettings {
  /** `new pg.Pool({ max, connectionTimeoutMillis })` */
  readonly nodePostgres: { readonly max: number; readonly connectionTimeoutMillis: number };
  /** `postgres(url, { max })` */
  readonly postgresJs: { readonly max: number };
  /** Prisma's classic engine reads these from the URL query string. `pool_timeout` is in seconds. */
  readonly prismaUrl: { readonly connection_limit: number; readonly pool_timeout: number; readonly pgbouncer?: true };
  /** Prisma 7 with `@prisma/adapter-pg`: URL parameters are ignored, the pg pool options apply. */
  readonly prismaAdapterPg: { readonly max: number; readonly connectionTimeoutMillis: number };
  /** Drizzle over node-postgres: the options of the `pg.Pool` you hand it. */
  readonly drizzle: { readonly driver: 'node-postgres'; readonly max: number; readonly connectionTimeoutMillis: number };
}

export interface EnvironmentAllocation {
  readonly name: string;
  readonly kind: EnvironmentSpec['kind'];
  readonly via: 'pooler' | 'direct';
  /** Instances (or functions) in steady state. */
  readonly instances: number;
  /** Instances during a rolling deploy (serverless: the concurrency limit). */
  readonly peakInstances: number;
  /** Pool size per instance/function: the `max` to configure in the app. */
  readonly perInstanceMax: number;
  /** App-side connections at peak (through a pooler these count against `max_client_conn`). */
  readonly clientConnections: number;
  /** Server connections this environment may hold at most; they sum to at most the budget. */
  readonly serverConnections: number;
  readonly weight: number;
  readonly settings: DriverSettings;
}

export interface PoolerDatabase {
  readonly name: string;
  readonly pool_size: number;
  readonly max_db_connections: number;
}

export interface PoolerSettings {
  readonly kind: 'sluice' | 'pgbouncer';
  readonly pool_mode: 'transaction';
  readonly default_pool_size: number;
  readonly max_db_connections: number;
  readonly reserve_pool_size: number;
  readonly max_client_conn: number;
  readonly databases: readonly PoolerDatabase[];
}

export interface BudgetPlan {
  readonly maxConnections: number;
  readonly superuserReservedConnections: number;
  readonly reservedConnections: number;
  readonly reserve: number;
  /** max_connections minus all reserved slots: what applications may use. */
  readonly available: number;
  /** Sum of the environments' server connections (≤ available). */
  readonly allocated: number;
  /** Slots left over because no environment could use them (a whole extra connection per instance did not fit). */
  readonly unallocated: number;
  readonly pooler: PoolerKind;
  /** App-side connections through the pooler at peak. */
  readonly peakClientConnections: number;
  readonly connectionTimeoutMillis: number;
  readonly environments: readonly EnvironmentAllocation[];
  /** `null` without a pooler. */
  readonly poolerSettings: PoolerSettings | null;
  readonly notes: readonly string[];
}

export type BudgetErrorCode = 'SLUICE_BUDGET_INFEASIBLE' | 'SLUICE_BUDGET_INVALID';

/** The budget cannot be met (`SLUICE_BUDGET_INFEASIBLE`, with `shortBy`) or the input makes no sense (`SLUICE_BUDGET_INVALID`). */
export class BudgetError extends Error {
  override readonly name = 'BudgetError';
  /** How many connections are missing (infeasible only; 0 otherwise). */
  readonly shortBy: number;
  constructor(
    readonly code: BudgetErrorCode,
    message: string,
    shortBy = 0,
  ) {
    super(message);
    this.shortBy = shortBy;
  }
  static is(err: unknown): err is BudgetError {
    return err instanceof BudgetError || (typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'BudgetError');
  }
}

const NAME_RE = /^[A-Za-z0-9_.-]+$/;

function invalid(message: string): never {
  throw new BudgetError('SLUICE_BUDGET_INVALID', message);
}

function checkInt(value: number, what: string, min: number): void {
  if (!Number.isInteger(value) || value < min) invalid(`${what} must be an integer ≥ ${min}, got ${value}`);
}

function checkSurge(s: Surge, where: string): void {
  if (s.kind === 'count') checkInt(s.count, `${where} surge count`, 0);
  else if (!(s.fraction >= 0 && s.fraction <= 1)) invalid(`${where} surge fraction must be between 0 and 1, got ${s.fraction}`);
}

/** Extra instances during a deploy. Fractions round up: 25% of 3 instances is 1 extra. */
export function surgeInstances(instances: number, surge: Surge | undefined): number {
  if (!surge) return 0;
  return surge.kind === 'count' ? surge.count : Math.ceil(instances * surge.fraction - 1e-9);
}

/** Human description of a surge, as the CLI accepts it. */
export function formatSurge(s: Surge | undefined): string {
  if (!s) return 'none';
  return s.kind === 'count' ? `${s.count}` : `${Math.round(s.fraction * 10000) / 100}%`;
}

// Internal per-environment working state.
interface Work {
  spec: EnvironmentSpec;
  via: 'pooler' | 'direct';
  instances: number;
  peakInstances: number;
  weight: number;
  /** Fixed server need (not weighted). */
  fixed: number;
  /** For weighted environments: connections per unit and units granted. */
  unit: number;
  units: number;
  /** Upper bound on units (serverless behind a pooler never needs more than its concurrency). */
  maxUnits: number;
  /** Why the minimum is what it is, for the infeasible message. */
  why: string;
}

function validate(input: BudgetInput): void {
  checkInt(input.maxConnections, 'max_connections', 1);
  checkInt(input.superuserReservedConnections ?? 3, 'superuser_reserved_connections', 0);
  checkInt(input.reservedConnections ?? 0, 'reserved_connections', 0);
  checkInt(input.reserve ?? 0, 'reserve', 0);
  if (input.maxClientConn !== undefined) checkInt(input.maxClientConn, 'max_client_conn', 1);
  checkInt(input.connectionTimeoutMillis ?? 5000, 'connectionTimeoutMillis', 0);
  if (input.surge) checkSurge(input.surge, 'plan');
  const pooler = input.pooler ?? 'none';
  if (pooler !== 'none' && pooler !== 'sluice' && pooler !== 'pgbouncer') invalid(`pooler must be none, sluice or pgbouncer, got ${String(pooler)}`);
  if (input.environments.length === 0) invalid('at least one environment is needed (e.g. --env prod:instances=2)');
  const seen = new Set<string>();
  for (const e of input.environments) {
    if (!NAME_RE.test(e.name)) invalid(`environment name ${JSON.stringify(e.name)} may only contain letters, digits, _ . -`);
    if (seen.has(e.name)) invalid(`environment ${e.name} is given twice`);
    seen.add(e.name);
    if (e.kind === 'instances') {
      checkInt(e.instances, `${e.name}: instances`, 1);
      if (e.weight !== undefined && !(e.weight > 0 && Number.isFinite(e.weight))) invalid(`${e.name}: weight must be > 0`);
      if (e.surge) checkSurge(e.surge, e.name);
    } else if (e.kind === 'fixed') {
      checkInt(e.connections, `${e.name}: fixed`, 1);
      checkInt(e.instances ?? 1, `${e.name}: instances`, 1);
      if ((e.instances ?? 1) > e.connections) invalid(`${e.name}: fixed=${e.connections} cannot give each of ${e.instances} instances a connection`);
    } else if (e.kind === 'serverless') {
      checkInt(e.concurrency, `${e.name}: serverless concurrency`, 1);
      if (e.weight !== undefined && !(e.weight > 0 && Number.isFinite(e.weight))) invalid(`${e.name}: weight must be > 0`);
    } else {
      invalid(`unknown environment kind ${JSON.stringify((e as { kind: unknown }).kind)}`);
    }
  }
}

/**
 * Splits a server's connections between environments.
 *
 * Fixed needs (fixed environments; serverless without a pooler, one per function)
 * come first; every other environment gets its minimum (one connection per
 * instance at peak when direct, one pooler server connection when pooled); the
 * rest goes by weight (D'Hondt: each next "unit" goes to the environment with the
 * lowest allocation per weight). Direct instance environments grow in units of
 * their peak instance count, because each instance's `max` must fit during a
 * rolling deploy.
 *
 * @example
 * planBudget({ maxConnections: 25, reserve: 2, pooler: 'sluice',
 *   environments: [{ name: 'prod', kind: 'serverless', concurrency: 50, weight: 3 },
 *                  { name: 'ci', kind: 'fixed', connections: 2, direct: true }] });
 * @throws BudgetError `SLUICE_BUDGET_INFEASIBLE` when the minimums do not fit.
 */
export function planBudget(input: BudgetInput): BudgetPlan {
  validate(input);
  const superuserReserved = input.superuserReservedConnections ?? 3;
  const reserved = input.reservedConnections ?? 0;
  const reserve = input.reserve ?? 0;
  const pooler = input.pooler ?? 'none';
  const timeout = input.connectionTimeoutMillis ?? 5000;
  const available = input.maxConnections - superuserReserved - reserved - reserve;

  const work: Work[] = input.environments.map((spec) => {
    const via: Work['via'] = pooler !== 'none' && !spec.direct ? 'pooler' : 'direct';
    if (spec.kind === 'fixed') {
      const n = spec.instances ?? 1;
      return { spec, via, instances: n, peakInstances: n, weight: 0, fixed: spec.connections, unit: 0, units: 0, maxUnits: 0, why: `fixed=${spec.connections}` };
    }
    if (spec.kind === 'serverless') {
      if (via === 'direct') {
        return {
          spec, via, instances: spec.concurrency, peakInstances: spec.concurrency, weight: 0, fixed: spec.concurrency,
          unit: 0, units: 0, maxUnits: 0, why: `${spec.concurrency} concurrent functions × 1 connection each, with no pooler to share them`,
        };
      }
      return {
        spec, via, instances: spec.concurrency, peakInstances: spec.concurrency, weight: spec.weight ?? 1, fixed: 0,
        unit: 1, units: 1, maxUnits: spec.concurrency, why: 'one pooler server connection',
      };
    }
    const extra = surgeInstances(spec.instances, spec.surge ?? input.surge);
    const peak = spec.instances + extra;
    if (via === 'direct') {
      return {
        spec, via, instances: spec.instances, peakInstances: peak, weight: spec.weight ?? 1, fixed: 0, unit: peak, units: 1,
        maxUnits: Number.POSITIVE_INFINITY,
        why: `${spec.instances} instance${spec.instances === 1 ? '' : 's'}${extra > 0 ? ` + ${extra} during a rolling deploy` : ''}, ≥ 1 connection each`,
      };
    }
    return {
      spec, via, instances: spec.instances, peakInstances: peak, weight: spec.weight ?? 1, fixed: 0, unit: 1, units: 1,
      maxUnits: Number.POSITIVE_INFINITY, why: 'one pooler server connection',
    };
  });

  const minimum = work.reduce((s, w) => s + w.fixed + w.unit * w.units, 0);
  if (minimum > available) throw infeasible(input, work, available, minimum, superuserReserved, reserved, reserve, pooler);

  // D'Hondt over the remainder: deterministic, proportional, and respects unit sizes.
  let remaining = available - minimum;
  for (;;) {
    let best: Work | undefined;
    let bestScore = Number.POSITIVE_INFINITY;
    for (const w of work) {
      if (w.unit === 0 || w.unit > remaining || w.units >= w.maxUnits) continue;
      const score = ((w.units + 1) * w.unit) / w.weight;
      if (score < bestScore) {
        best = w;
        bestScore = score;
      }
    }
    if (!best) break;
    best.units += 1;
    remaining -= best.unit;
  }

  const envs: EnvironmentAllocation[] = work.map((w) => {
    const server = w.fixed + w.unit * w.units;
    let perInstanceMax: number;
    if (w.spec.kind === 'serverless') perInstanceMax = 1;
    else if (w.spec.kind === 'fixed') perInstanceMax = Math.floor(w.spec.connections / w.instances);
    else if (w.via === 'direct') perInstanceMax = w.units;
    // Behind a pooler, steady state fills the pooler's pool; a deploy's extra instances wait in the pooler, not on the server.
    else perInstanceMax = Math.ceil(server / w.instances);
    const clientConnections = w.spec.kind === 'fixed' ? perInstanceMax * w.instances : perInstanceMax * w.peakInstances;
    return {
      name: w.spec.name,
      kind: w.spec.kind,
      via: w.via,
      instances: w.instances,
      peakInstances: w.peakInstances,
      perInstanceMax,
      clientConnections,
      serverConnections: server,
      weight: w.weight,
      settings: driverSettings(perInstanceMax, timeout, w.via === 'pooler' && pooler === 'pgbouncer'),
    };
  });

  const allocated = envs.reduce((s, e) => s + e.serverConnections, 0);
  const pooled = envs.filter((e) => e.via === 'pooler');
  const peakClientConnections = pooled.reduce((s, e) => s + e.clientConnections, 0);
  const notes: string[] = [];
  let poolerSettings: PoolerSettings | null = null;
  if (pooler !== 'none') {
    const maxClientConn = input.maxClientConn ?? Math.max(1, peakClientConnections);
    if (peakClientConnections > maxClientConn) {
      const short = peakClientConnections - maxClientConn;
      throw new BudgetError(
        'SLUICE_BUDGET_INFEASIBLE',
        `Budget infeasible: at peak the apps open ${peakClientConnections} connections to ${pooler} but max_client_conn is ${maxClientConn}; short by ${short}. ` +
          `Raise --max-client-conn to at least ${peakClientConnections}, or lower instances, concurrency or --surge.`,
        short,
      );
    }
    const biggest = Math.max(1, ...pooled.map((e) => e.serverConnections));
    poolerSettings = {
      kind: pooler,
      pool_mode: 'transaction',
      // Only databases not listed fall back to the default; keep them from eating the budget.
      default_pool_size: 1,
      max_db_connections: biggest,
      reserve_pool_size: 0,
      max_client_conn: maxClientConn,
      databases: pooled.map((e) => ({ name: e.name, pool_size: e.serverConnections, max_db_connections: e.serverConnections })),
    };
    if (pooled.length === 0) notes.push('Every environment connects directly; the pooler carries nothing in this plan.');
    if (pooler === 'pgbouncer' && pooled.length > 0) {
      notes.push('PgBouncer in transaction mode: prepared statements need max_prepared_statements > 0 (PgBouncer ≥ 1.21); SET, session advisory locks, temp tables and LISTEN do not survive between transactions.');
    }
  }
  for (const w of work) {
    if (w.spec.kind === 'instances' && w.via === 'direct' && w.peakInstances > w.instances) {
      notes.push(`${w.spec.name}: max ${w.units} per instance leaves room for ${w.peakInstances - w.instances} extra instance(s) during a rolling deploy.`);
    }
  }
  if (available - allocated > 0) {
    notes.push(`${available - allocated} connection(s) unallocated: one more per instance did not fit anywhere. They stay free as headroom.`);
  }
  return Object.freeze({
    maxConnections: input.maxConnections,
    superuserReservedConnections: superuserReserved,
    reservedConnections: reserved,
    reserve,
    available,
    allocated,
    unallocated: available - allocated,
    pooler,
    peakClientConnections,
    connectionTimeoutMillis: timeout,
    environments: Object.freeze(envs),
    poolerSettings,
    notes: Object.freeze(notes),
  });
}

function driverSettings(max: number, timeout: number, pgbouncer: boolean): DriverSettings {
  const poolTimeoutSeconds = Math.max(1, Math.ceil(timeout / 1000));
  return {
    nodePostgres: { max, connectionTimeoutMillis: timeout },
    postgresJs: { max },
    prismaUrl: pgbouncer ? { connection_limit: max, pool_timeout: poolTimeoutSeconds, pgbouncer: true } : { connection_limit: max, pool_timeout: poolTimeoutSeconds },
    prismaAdapterPg: { max, connectionTimeoutMillis: timeout },
    drizzle: { driver: 'node-postgres', max, connectionTimeoutMillis: timeout },
  };
}

function infeasible(
  input: BudgetInput,
  work: readonly Work[],
  available: number,
  minimum: number,
  superuserReserved: number,
  reserved: number,
  reserve: number,
  pooler: PoolerKind,
): BudgetError {
  const short = minimum - available;
  const lines = [
    `Budget infeasible: the environments need at least ${minimum} connections but only ${Math.max(0, available)} are available ` +
      `(max_connections ${input.maxConnections} − ${superuserReserved} superuser-reserved − ${reserved} reserved − ${reserve} reserve); short by ${short}.`,
    'Needs:',
    ...work.map((w) => `  ${w.spec.name}: ${w.fixed + w.unit * w.units} (${w.why})`),
    'Change one of:',
    `  - raise max_connections to at least ${input.maxConnections + short}`,
  ];
  if (reserve > 0) lines.push(`  - lower --reserve (now ${reserve})`);
  const directServerless = work.filter((w) => w.spec.kind === 'serverless' && w.via === 'direct');
  if (directServerless.length > 0) {
    lines.push(
      pooler === 'none'
        ? `  - put a pooler in front (--pooler sluice): serverless functions (${directServerless.map((w) => w.spec.name).join(', ')}) then share a few server connections`
        : `  - route ${directServerless.map((w) => w.spec.name).join(', ')} through the pooler (drop "direct")`,
    );
  }
  const surged = work.filter((w) => w.via === 'direct' && w.peakInstances > w.instances && w.spec.kind === 'instances');
  if (surged.length > 0) lines.push(`  - lower --surge (deploy overlap adds ${surged.reduce((s, w) => s + w.peakInstances - w.instances, 0)} connection(s))`);
  const big = work.filter((w) => w.via === 'direct' && w.spec.kind === 'instances' && w.instances > 1);
  if (big.length > 0) lines.push(`  - run fewer instances of ${big.map((w) => w.spec.name).join(', ')}${pooler === 'none' ? ', or put a pooler in front (--pooler sluice)' : ''}`);
  const fixed = work.filter((w) => w.spec.kind === 'fixed' && w.fixed > 1);
  if (fixed.length > 0) lines.push(`  - lower the fixed sizes of ${fixed.map((w) => w.spec.name).join(', ')}`);
  return new BudgetError('SLUICE_BUDGET_INFEASIBLE', lines.join('\n'), short);
}
