// Is there a pooler between us and PostgreSQL, which one, in which mode?
// Two independent signals, because either alone can mislead:
//  (a) backend pids: separate transactions on one client that land on different
//      backends, or a second client that lands on the first one's backend, can
//      only happen behind a transaction/statement pooler;
//  (b) the admin console: database `pgbouncer` on the same host/port answers
//      SHOW VERSION ("PgBouncer 1.x" / "Sluice x.y") and SHOW CONFIG (pool_mode).
// A session-mode pooler without admin access is indistinguishable from a direct
// connection; the report says so.
import type pg from 'pg';
import { connectClient, type ParsedTarget } from './connect.js';

export type PoolerKindDetected = 'none' | 'pgbouncer' | 'sluice' | 'unknown';
export type PoolModeDetected = 'session' | 'transaction' | 'statement' | 'unknown';

export interface PoolerDetection {
  readonly kind: PoolerKindDetected;
  readonly version: string | null;
  readonly poolMode: PoolModeDetected | null;
  /** pids seen by consecutive transactions on one client, then by a second client. */
  readonly pids: readonly number[];
  readonly secondClientPid: number | null;
  readonly pidsShared: boolean;
  readonly admin: { readonly reachable: boolean; readonly error: string | null };
  readonly config: Readonly<Record<string, string>>;
  readonly evidence: readonly string[];
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function pid(c: pg.Client): Promise<number> {
  const r = await c.query<{ pid: number }>('select pg_backend_pid() as pid');
  return Number(r.rows[0]?.pid);
}

function parseMode(v: string | undefined): PoolModeDetected | null {
  if (v === undefined || v === '') return null;
  return v === 'session' || v === 'transaction' || v === 'statement' ? v : 'unknown';
}

export async function detectPooler(target: ParsedTarget, main: pg.Client): Promise<PoolerDetection> {
  const evidence: string[] = [];
  const pids: number[] = [];
  // Each autocommit statement is its own transaction: a transaction pooler may hand each one another backend.
  for (let i = 0; i < 4; i++) pids.push(await pid(main));
  let secondClientPid: number | null = null;
  try {
    const second = await connectClient(target, { applicationName: 'sluice doctor (pooler probe)', connectTimeoutMs: 5000 });
    try {
      secondClientPid = await pid(second);
    } finally {
      await second.end().catch(() => undefined);
    }
  } catch (err) {
    evidence.push(`a second connection failed: ${errText(err)}`);
  }
  const distinct = new Set(pids);
  const pidsShared = secondClientPid !== null && distinct.has(secondClientPid);
  if (distinct.size > 1) evidence.push(`pg_backend_pid() changed between transactions on one connection (${[...distinct].join(', ')})`);
  if (pidsShared) evidence.push(`a second connection was served by the same backend (pid ${secondClientPid}) while the first stayed connected`);

  let version: string | null = null;
  let adminError: string | null = null;
  let reachable = false;
  const config: Record<string, string> = {};
  let dbMode: string | undefined;
  try {
    const admin = await connectClient(target, { database: 'pgbouncer', applicationName: 'sluice doctor', connectTimeoutMs: 5000 });
    reachable = true;
    try {
      const v = await admin.query<Record<string, unknown>>('SHOW VERSION');
      const first = v.rows[0];
      const cell = first ? Object.values(first)[0] : undefined;
      if (typeof cell === 'string') version = cell;
      try {
        const c = await admin.query<{ key: string; value: string }>('SHOW CONFIG');
        for (const r of c.rows) config[String(r.key)] = String(r.value ?? '');
      } catch (err) {
        evidence.push(`SHOW CONFIG refused: ${errText(err)}`);
      }
      try {
        const d = await admin.query<{ name: string; pool_mode: string | null }>('SHOW DATABASES');
        const row = d.rows.find((r) => r.name === target.database) ?? d.rows.find((r) => r.name === '*');
        if (row?.pool_mode) dbMode = String(row.pool_mode);
      } catch {
        // Older versions or stats-only users: the global pool_mode is what we have.
      }
    } finally {
      await admin.end().catch(() => undefined);
    }
  } catch (err) {
    adminError = errText(err);
  }

  let kind: PoolerKindDetected = 'none';
  if (version && /^pgbouncer/i.test(version)) kind = 'pgbouncer';
  else if (version && /^sluice/i.test(version)) kind = 'sluice';
  else if (distinct.size > 1 || pidsShared) kind = 'unknown';
  if (version) evidence.push(`admin console answered SHOW VERSION: ${version}`);
  else if (adminError) evidence.push(`no admin console (${adminError.split('\n')[0]})`);

  let poolMode: PoolModeDetected | null = parseMode(dbMode) ?? parseMode(config['pool_mode']);
  if (poolMode && dbMode) evidence.push(`SHOW DATABASES: pool_mode=${dbMode} for ${target.database}`);
  else if (poolMode) evidence.push(`SHOW CONFIG: pool_mode=${config['pool_mode']}`);
  if (!poolMode && kind !== 'none') {
    // Statement mode refuses multi-statement transactions; transaction mode does not.
    try {
      await main.query('begin');
      await main.query('select 1');
      await main.query('commit');
      poolMode = distinct.size > 1 || pidsShared ? 'transaction' : 'unknown';
    } catch {
      await main.query('rollback').catch(() => undefined);
      poolMode = 'statement';
    }
    evidence.push(`pool mode inferred from behaviour: ${poolMode}`);
  }
  return {
    kind,
    version,
    poolMode: kind === 'none' ? null : poolMode,
    pids,
    secondClientPid,
    pidsShared,
    admin: { reachable, error: adminError },
    config,
    evidence,
  };
}

/** What this pooler/mode means for apps, one sentence per consequence. */
export function poolerConsequences(d: PoolerDetection): { warn: boolean; lines: string[] } {
  const lines: string[] = [];
  let warn = false;
  if (d.kind === 'none') {
    lines.push('No pooler detected: every app connection is a PostgreSQL backend, so pool sizes add up directly against max_connections.');
    lines.push('A session-mode pooler without admin-console access looks the same; serverless apps need a pooler in transaction mode.');
    return { warn, lines };
  }
  const mode = d.poolMode ?? 'unknown';
  if (mode === 'session') {
    lines.push('Session mode: each client keeps one backend while connected, so prepared statements and session state (SET, advisory locks, temp tables, LISTEN) work, but connections are not multiplexed.');
    return { warn, lines };
  }
  if (mode === 'statement') {
    warn = true;
    lines.push('Statement mode: multi-statement transactions are refused, and no session state (SET, prepared statements, temp tables, advisory locks, LISTEN) survives between statements.');
    return { warn, lines };
  }
  if (d.kind === 'sluice') {
    lines.push('Sluice transaction mode: prepared statements are emulated across backends; SET and other reported parameters are replayed; session advisory locks, temp tables, LISTEN and WITH HOLD cursors pin the client to its backend while they exist (see SHOW POOLS / logs for pins).');
    return { warn, lines };
  }
  if (d.kind === 'pgbouncer') {
    const mps = Number(d.config['max_prepared_statements'] ?? '0');
    if (mps > 0) lines.push(`PgBouncer transaction mode with max_prepared_statements=${mps}: protocol-level prepared statements work (named SQL PREPARE does not).`);
    else {
      warn = true;
      lines.push('PgBouncer transaction mode with max_prepared_statements=0: named prepared statements fail ("prepared statement … does not exist") or hit the wrong backend.');
    }
    lines.push('SET, session advisory locks, temp tables and LISTEN do not survive between transactions: use SET LOCAL and pg_advisory_xact_lock, keep temp tables inside one transaction.');
    return { warn, lines };
  }
  warn = true;
  lines.push('An unidentified transaction-level pooler: backends change between transactions, so prepared statements and session state (SET, advisory locks, temp tables, LISTEN) are not safe unless the pooler emulates them.');
  return { warn, lines };
}
