// `sluice budget`: split a server's connections between environments and print
// the pool settings that enforce the split. The arithmetic lives in the kit
// (src/kit/budget.ts); this file parses flags, optionally reads the limits from
// a live server, and renders.
import { parseArgs } from 'node:util';
import {
  BudgetError,
  formatSurge,
  planBudget,
  type BudgetInput,
  type BudgetPlan,
  type EnvironmentAllocation,
  type EnvironmentSpec,
  type PoolerKind,
  type Surge,
} from '../kit/budget.js';
import { connectClient, parseTarget } from './doctor/connect.js';
import { parseDuration } from './doctor/duration.js';
import { isTty, renderTable, type CliIo } from './table.js';

export const BUDGET_USAGE = `Usage: sluice budget (--max-connections N | --from DATABASE_URL) --env SPEC [--env SPEC …] [options]

Splits a PostgreSQL server's connections between environments and prints the
pool settings for each (node-postgres, postgres.js, Prisma, Drizzle) and for
the pooler.

Limits:
  --max-connections N        the server's max_connections
  --from DATABASE_URL        read max_connections, superuser_reserved_connections
                             and reserved_connections from a live server
  --superuser-reserved N     superuser_reserved_connections (default 3, or the server's)
  --reserved N               reserved_connections, PostgreSQL 16+ (default 0, or the server's)
  --reserve N                slots kept free for admins/humans with psql (default 0)

Environments (repeat --env), SPEC is NAME:KEY=VALUE,KEY=VALUE,…:
  instances=N                N long-running instances, each with its own pool
  weight=W                   share of what is left after fixed needs (default 1)
  fixed=N                    exactly N connections in total (CI, cron, migrations)
  serverless=N               up to N concurrent functions, each with max=1
  surge=X                    this environment's deploy overlap (overrides --surge)
  direct                     bypass the pooler (migrations, session-level work)
  e.g. --env prod:instances=4,weight=3  --env ci:fixed=2  --env edge:serverless=50

Deploys and poolers:
  --surge X                  rolling-deploy overlap: extra instances (2), a
                             percentage (25%) or a fraction (0.25); default 0
  --pooler KIND              none (default), sluice or pgbouncer
  --max-client-conn N        the pooler's max_client_conn, when already fixed
  --timeout DURATION         how long apps wait for a connection (default 5s)

Output:
  --json                     the plan as JSON
  -h, --help

Exit codes: 0 plan printed, 1 budget infeasible, 2 bad usage or server unreachable.`;

class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code = 'SLUICE_USAGE';
}

function int(value: string, what: string, min = 0): number {
  if (!/^\d+$/.test(value.trim())) throw new UsageError(`${what} must be a whole number, got ${JSON.stringify(value)}`);
  const n = Number(value);
  if (n < min) throw new UsageError(`${what} must be ≥ ${min}, got ${n}`);
  return n;
}

/** `2` (instances), `25%`, or `0.25`. */
export function parseSurge(text: string): Surge {
  const s = text.trim();
  if (/^\d+$/.test(s)) return { kind: 'count', count: Number(s) };
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(s);
  if (pct) {
    const f = Number(pct[1]) / 100;
    if (f > 1) throw new UsageError(`surge ${s} is over 100%`);
    return { kind: 'fraction', fraction: f };
  }
  if (/^0?\.\d+$/.test(s)) return { kind: 'fraction', fraction: Number(s) };
  throw new UsageError(`surge must be a count (2), a percentage (25%) or a fraction below 1 (0.25), got ${JSON.stringify(text)}`);
}

/** Parses one `--env` SPEC. */
export function parseEnvSpec(text: string): EnvironmentSpec {
  const colon = text.indexOf(':');
  if (colon <= 0) throw new UsageError(`--env ${JSON.stringify(text)}: expected NAME:KEY=VALUE,… (e.g. prod:instances=3)`);
  const name = text.slice(0, colon);
  const kv = new Map<string, string>();
  for (const part of text.slice(colon + 1).split(',')) {
    const p = part.trim();
    if (p === '') continue;
    const eq = p.indexOf('=');
    const key = eq < 0 ? p : p.slice(0, eq);
    if (kv.has(key)) throw new UsageError(`--env ${name}: ${key} given twice`);
    kv.set(key, eq < 0 ? 'true' : p.slice(eq + 1));
  }
  const known = ['instances', 'weight', 'fixed', 'serverless', 'surge', 'direct'];
  for (const k of kv.keys()) {
    if (!known.includes(k)) throw new UsageError(`--env ${name}: unknown key ${JSON.stringify(k)} (known: ${known.join(', ')})`);
  }
  const directRaw = kv.get('direct');
  if (directRaw !== undefined && directRaw !== 'true' && directRaw !== 'false') throw new UsageError(`--env ${name}: direct takes no value (or true/false)`);
  const direct = directRaw === 'true' ? { direct: true } : {};
  const weightRaw = kv.get('weight');
  let weight: { weight: number } | Record<string, never> = {};
  if (weightRaw !== undefined) {
    const w = Number(weightRaw);
    if (!(w > 0) || !Number.isFinite(w)) throw new UsageError(`--env ${name}: weight must be a number > 0, got ${JSON.stringify(weightRaw)}`);
    weight = { weight: w };
  }
  const kinds = ['fixed', 'serverless'].filter((k) => kv.has(k));
  if (kinds.length > 1) throw new UsageError(`--env ${name}: give only one of fixed= or serverless=`);
  if (kv.has('fixed')) {
    if (kv.has('weight') || kv.has('surge')) throw new UsageError(`--env ${name}: fixed= takes no weight= or surge= (its size is fixed)`);
    const instances = kv.get('instances');
    return { name, kind: 'fixed', connections: int(kv.get('fixed') ?? '', `--env ${name}: fixed`, 1), ...(instances !== undefined ? { instances: int(instances, `--env ${name}: instances`, 1) } : {}), ...direct };
  }
  if (kv.has('serverless')) {
    if (kv.has('instances') || kv.has('surge')) throw new UsageError(`--env ${name}: serverless= takes no instances= or surge= (concurrency is the limit)`);
    return { name, kind: 'serverless', concurrency: int(kv.get('serverless') ?? '', `--env ${name}: serverless`, 1), ...weight, ...direct };
  }
  if (!kv.has('instances')) throw new UsageError(`--env ${name}: say instances=N, fixed=N or serverless=N`);
  const surge = kv.get('surge');
  return {
    name,
    kind: 'instances',
    instances: int(kv.get('instances') ?? '', `--env ${name}: instances`, 1),
    ...weight,
    ...(surge !== undefined ? { surge: parseSurge(surge) } : {}),
    ...direct,
  };
}

interface ServerLimits {
  maxConnections: number;
  superuserReserved: number;
  reserved: number;
}

/** Reads the connection limits from a live server; `reserved_connections` is absent before PostgreSQL 16. */
export async function readServerLimits(url: string): Promise<ServerLimits> {
  const client = await connectClient(parseTarget(url), { applicationName: 'sluice budget' });
  try {
    const { rows } = await client.query<{ name: string; setting: string }>(
      `select name, setting from pg_settings where name in ('max_connections', 'superuser_reserved_connections', 'reserved_connections')`,
    );
    const get = (n: string): number => Number(rows.find((r) => r.name === n)?.setting ?? 0);
    return { maxConnections: get('max_connections'), superuserReserved: get('superuser_reserved_connections'), reserved: get('reserved_connections') };
  } finally {
    await client.end().catch(() => undefined);
  }
}

function describeShape(e: EnvironmentAllocation): string {
  if (e.kind === 'serverless') return `serverless ×${e.instances}`;
  if (e.kind === 'fixed') return e.instances > 1 ? `fixed, ${e.instances} instances` : 'fixed';
  const base = `${e.instances} instance${e.instances === 1 ? '' : 's'}`;
  return e.peakInstances > e.instances ? `${base} (+${e.peakInstances - e.instances} in deploy)` : base;
}

/** The human-readable report. Deterministic: the README quotes it and a golden test pins it. */
export function renderBudget(plan: BudgetPlan, tty: boolean, surge: Surge | undefined): string {
  const out: string[] = [];
  const via = plan.pooler === 'none' ? 'no pooler' : `via ${plan.pooler}`;
  out.push(`Connection budget: max_connections ${plan.maxConnections}, ${plan.available} for applications (${via}, surge ${formatSurge(surge)})`);
  out.push('');
  const rows: string[][] = [];
  rows.push(['superuser_reserved_connections', '', '', '', '', String(plan.superuserReservedConnections)]);
  if (plan.reservedConnections > 0) rows.push(['reserved_connections', '', '', '', '', String(plan.reservedConnections)]);
  rows.push(['reserve (admins, psql)', '', '', '', '', String(plan.reserve)]);
  for (const e of plan.environments) {
    rows.push([e.name, describeShape(e), e.via, String(e.perInstanceMax), String(e.clientConnections), String(e.serverConnections)]);
  }
  if (plan.unallocated > 0) rows.push(['unallocated', '', '', '', '', String(plan.unallocated)]);
  rows.push(['total', '', '', '', '', String(plan.maxConnections)]);
  out.push(
    renderTable(
      [
        { header: 'slot' },
        { header: 'shape' },
        { header: 'via' },
        { header: 'max/instance', align: 'right' },
        { header: 'clients at peak', align: 'right' },
        { header: 'server conns', align: 'right' },
      ],
      rows,
      { tty, rulesAfter: [rows.length - 2] },
    ).trimEnd(),
  );
  for (const e of plan.environments) {
    const s = e.settings;
    const t = s.nodePostgres.connectionTimeoutMillis;
    const prismaParams = `connection_limit=${s.prismaUrl.connection_limit}&pool_timeout=${s.prismaUrl.pool_timeout}${s.prismaUrl.pgbouncer ? '&pgbouncer=true' : ''}`;
    out.push('');
    out.push(`${e.name}: max ${e.perInstanceMax} per ${e.kind === 'serverless' ? 'function' : 'instance'}${e.via === 'pooler' ? `, through ${plan.pooler}` : plan.pooler === 'none' ? '' : ', straight to PostgreSQL'}`);
    out.push(
      renderTable(
        [{ header: 'client' }, { header: 'setting' }],
        [
          ['node-postgres', `new pg.Pool({ max: ${s.nodePostgres.max}, connectionTimeoutMillis: ${t} })`],
          ['postgres.js', `postgres(url, { max: ${s.postgresJs.max} })`],
          ['Prisma (classic engine)', `DATABASE_URL="…?${prismaParams}"`],
          ['Prisma 7 + adapter-pg', `new PrismaPg({ connectionString, max: ${s.prismaAdapterPg.max}, connectionTimeoutMillis: ${t} })`],
          ['Drizzle (node-postgres)', `drizzle({ client: new pg.Pool({ max: ${s.drizzle.max}, connectionTimeoutMillis: ${t} }) })`],
        ],
        { tty },
      ).trimEnd(),
    );
  }
  const ps = plan.poolerSettings;
  if (ps) {
    out.push('');
    out.push(`${ps.kind === 'sluice' ? 'sluice.ini (pgbouncer.ini syntax)' : 'pgbouncer.ini'}:`);
    out.push('[databases]');
    for (const d of ps.databases) {
      out.push(`${d.name} = host=DB_HOST port=5432 dbname=${d.name} pool_size=${d.pool_size} max_db_connections=${d.max_db_connections}`);
    }
    out.push('');
    // Sluice reads pgbouncer.ini as is, section names included.
    out.push('[pgbouncer]');
    out.push(`pool_mode = ${ps.pool_mode}`);
    out.push(`default_pool_size = ${ps.default_pool_size}    ; databases not listed above`);
    out.push(`max_db_connections = ${ps.max_db_connections}`);
    out.push(`reserve_pool_size = ${ps.reserve_pool_size}    ; every server slot is budgeted above`);
    out.push(`max_client_conn = ${ps.max_client_conn}`);
  }
  if (plan.notes.length > 0) {
    out.push('');
    for (const n of plan.notes) out.push(`Note: ${n}`);
  }
  return out.join('\n') + '\n';
}

export async function main(
  argv: string[],
  io: CliIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const write = (s: string): void => void io.stdout.write(s);
  const fail = (s: string): void => void io.stderr.write(s.endsWith('\n') ? s : s + '\n');
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      allowPositionals: false,
      strict: true,
      options: {
        'max-connections': { type: 'string' },
        from: { type: 'string' },
        'superuser-reserved': { type: 'string' },
        reserved: { type: 'string' },
        reserve: { type: 'string' },
        env: { type: 'string', multiple: true },
        surge: { type: 'string' },
        pooler: { type: 'string' },
        'max-client-conn': { type: 'string' },
        timeout: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    fail(`sluice budget: ${err instanceof Error ? err.message : String(err)}\n\n${BUDGET_USAGE}`);
    return 2;
  }
  if (values.help) {
    write(BUDGET_USAGE + '\n');
    return 0;
  }
  let input: BudgetInput;
  let surge: Surge | undefined;
  try {
    if ((values['max-connections'] === undefined) === (values.from === undefined)) {
      throw new UsageError('give exactly one of --max-connections N or --from DATABASE_URL');
    }
    if (!values.env || values.env.length === 0) throw new UsageError('give at least one --env (e.g. --env prod:instances=2)');
    const pooler = values.pooler ?? 'none';
    if (pooler !== 'none' && pooler !== 'sluice' && pooler !== 'pgbouncer') throw new UsageError(`--pooler must be none, sluice or pgbouncer, got ${JSON.stringify(pooler)}`);
    let limits: ServerLimits;
    if (values.from !== undefined) {
      try {
        limits = await readServerLimits(values.from);
      } catch (err) {
        if (err instanceof UsageError) throw err;
        fail(`sluice budget: cannot read limits from the server: ${err instanceof Error ? err.message : String(err)}`);
        return 2;
      }
    } else {
      limits = { maxConnections: int(values['max-connections'] ?? '', '--max-connections', 1), superuserReserved: 3, reserved: 0 };
    }
    if (values['superuser-reserved'] !== undefined) limits.superuserReserved = int(values['superuser-reserved'], '--superuser-reserved');
    if (values.reserved !== undefined) limits.reserved = int(values.reserved, '--reserved');
    surge = values.surge !== undefined ? parseSurge(values.surge) : undefined;
    input = {
      maxConnections: limits.maxConnections,
      superuserReservedConnections: limits.superuserReserved,
      reservedConnections: limits.reserved,
      reserve: values.reserve !== undefined ? int(values.reserve, '--reserve') : 0,
      pooler: pooler as PoolerKind,
      environments: values.env.map(parseEnvSpec),
      ...(surge ? { surge } : {}),
      ...(values['max-client-conn'] !== undefined ? { maxClientConn: int(values['max-client-conn'], '--max-client-conn', 1) } : {}),
      ...(values.timeout !== undefined ? { connectionTimeoutMillis: parseDuration(values.timeout) } : {}),
    };
  } catch (err) {
    fail(`sluice budget: ${err instanceof Error ? err.message : String(err)}\nRun "sluice budget --help" for the syntax.`);
    return 2;
  }
  let plan: BudgetPlan;
  try {
    plan = planBudget(input);
  } catch (err) {
    if (BudgetError.is(err)) {
      if (values.json) write(JSON.stringify({ ok: false, error: { code: err.code, shortBy: err.shortBy, message: err.message } }, null, 2) + '\n');
      fail(`sluice budget: ${err.message}`);
      return err.code === 'SLUICE_BUDGET_INFEASIBLE' ? 1 : 2;
    }
    throw err;
  }
  if (values.json) write(JSON.stringify({ ok: true, plan }, null, 2) + '\n');
  else write(renderBudget(plan, isTty(io), surge));
  return 0;
}
