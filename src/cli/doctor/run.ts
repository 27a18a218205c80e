// The doctor's checks against one DATABASE_URL. Returns data; rendering and
// exit codes live in ../doctor.ts.
import net from 'node:net';
import tls from 'node:tls';
import type pg from 'pg';
import { connectClient, parseTarget, type ParsedTarget } from './connect.js';
import { formatDuration } from './duration.js';
import { detectPooler, poolerConsequences, type PoolerDetection } from './pooler.js';

export type CheckId = 'connection' | 'tls' | 'server' | 'usage' | 'idle-in-transaction' | 'idle' | 'pooler' | 'budget';

export interface CheckResult {
  readonly id: CheckId;
  readonly title: string;
  readonly ok: boolean;
  /** Only meaningful when `ok` is false: critical findings make the command exit non-zero. */
  readonly severity: 'critical' | 'warning' | null;
  readonly detail: string;
  readonly advice: readonly string[];
  /** Structured facts for `--json` and for tables. */
  readonly data: Readonly<Record<string, unknown>>;
}

export interface SessionInfo {
  readonly pid: number;
  readonly user: string | null;
  readonly application: string;
  readonly client: string | null;
  readonly state: string | null;
  readonly ageMs: number;
  readonly query: string;
}

export interface UsageRow {
  readonly application: string;
  readonly state: string;
  readonly count: number;
}

export interface DoctorOptions {
  readonly url: string;
  /** Idle sessions older than this are reported (default 10 minutes). */
  readonly idleThresholdMs?: number;
  /** With `killIdle`, terminate exactly the reported idle sessions. */
  readonly killIdle?: boolean;
  readonly yes?: boolean;
  readonly instances?: number;
  readonly poolSize?: number;
}

export interface DoctorReport {
  readonly url: string;
  readonly checks: readonly CheckResult[];
  readonly critical: number;
  readonly warnings: number;
  readonly usage: readonly UsageRow[];
  readonly idleInTransaction: readonly SessionInfo[];
  readonly idle: readonly SessionInfo[];
  /** pids terminated by `--kill-idle --yes`. */
  readonly terminated: readonly number[];
  readonly pooler: PoolerDetection | null;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1']);

function isLocal(host: string): boolean {
  return LOOPBACK.has(host) || host.startsWith('/') || host.startsWith('127.');
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function pass(id: CheckId, title: string, detail: string, data: Record<string, unknown> = {}, advice: string[] = []): CheckResult {
  return { id, title, ok: true, severity: null, detail, advice, data };
}

function fail(id: CheckId, title: string, severity: 'critical' | 'warning', detail: string, advice: string[], data: Record<string, unknown> = {}): CheckResult {
  return { id, title, ok: false, severity, detail, advice, data };
}

// pg keeps the socket on client.connection.stream; not in its typings.
function clientUsesTls(c: pg.Client): boolean {
  const stream = (c as unknown as { connection?: { stream?: net.Socket } }).connection?.stream;
  return stream instanceof tls.TLSSocket;
}

interface ServerFacts {
  version: string;
  versionNum: number;
  maxConnections: number;
  superuserReserved: number;
  reserved: number;
}

async function serverFacts(c: pg.Client): Promise<ServerFacts> {
  const { rows } = await c.query<{ name: string; setting: string }>(
    `select name, setting from pg_settings
      where name in ('server_version', 'server_version_num', 'max_connections', 'superuser_reserved_connections', 'reserved_connections')`,
  );
  const get = (n: string): string => rows.find((r) => r.name === n)?.setting ?? '';
  return {
    version: get('server_version'),
    versionNum: Number(get('server_version_num')),
    maxConnections: Number(get('max_connections')),
    superuserReserved: Number(get('superuser_reserved_connections') || 0),
    // reserved_connections exists from PostgreSQL 16; absent means 0.
    reserved: Number(get('reserved_connections') || 0),
  };
}

const SESSION_COLUMNS = `pid, usename as "user", coalesce(nullif(application_name, ''), '(none)') as application,
  client_addr::text as client, state,
  (extract(epoch from clock_timestamp() - state_change) * 1000)::float8 as age_ms, left(query, 200) as query`;

function toSession(r: Record<string, unknown>): SessionInfo {
  return {
    pid: Number(r['pid']),
    user: (r['user'] as string | null) ?? null,
    application: String(r['application']),
    client: (r['client'] as string | null) ?? null,
    state: (r['state'] as string | null) ?? null,
    ageMs: Number(r['age_ms']),
    query: String(r['query'] ?? ''),
  };
}

function tlsCheck(t: ParsedTarget, clientTls: boolean, serverView: { ssl: boolean; version: string | null; cipher: string | null } | null, pooler: PoolerDetection | null): CheckResult {
  const title = 'TLS';
  const data = { sslmode: t.sslmode, sslmodeExplicit: t.sslmodeExplicit, sslrootcert: t.sslrootcert ?? null, clientTls, server: serverView };
  const pooled = pooler !== null && pooler.kind !== 'none';
  const serverNote = serverView
    ? pooled
      ? ` The server sees the pooler's link ${serverView.ssl ? `over ${serverView.version}` : 'in plain text'} (pg_stat_ssl).`
      : ` pg_stat_ssl: ${serverView.ssl ? `${serverView.version}, ${serverView.cipher}` : 'no TLS'}.`
    : '';
  const verifyAdvice = `Use sslmode=verify-full with sslrootcert=/path/to/ca.pem (or sslrootcert=system for a public CA) so the client checks the certificate and the host name.`;
  if (!clientTls) {
    const local = isLocal(t.host);
    return fail(
      'tls',
      title,
      local ? 'warning' : 'critical',
      `Not in use (sslmode=${t.sslmode}${t.sslmodeExplicit ? '' : ', the default'}): passwords and data cross the network in plain text${local ? ' (loopback host, so only this machine sees them)' : ''}.${serverNote}`,
      t.sslmode === 'disable' ? ['Remove sslmode=disable.', verifyAdvice] : ['Enable ssl on the server (ssl = on, ssl_cert_file, ssl_key_file).', verifyAdvice],
      data,
    );
  }
  const proto = serverView?.ssl && !pooled ? ` (${serverView.version}, ${serverView.cipher})` : '';
  if (t.sslmode === 'verify-full') {
    return pass('tls', title, `In use${proto}; the certificate chain and host name are verified (sslmode=verify-full${t.sslrootcert ? `, sslrootcert=${t.sslrootcert}` : ''}).${pooled ? serverNote : ''}`, data);
  }
  if (t.sslmode === 'verify-ca') {
    return fail('tls', title, 'warning', `In use${proto}; the certificate chain is verified but not the host name (sslmode=verify-ca).${pooled ? serverNote : ''}`, [verifyAdvice], data);
  }
  return fail(
    'tls',
    title,
    'warning',
    `In use${proto} but certificates are NOT verified (sslmode=${t.sslmode}${t.sslmodeExplicit ? '' : ', the default'}): anyone in the path can impersonate the server.${pooled ? serverNote : ''}`,
    [verifyAdvice],
    data,
  );
}

export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const target = parseTarget(options.url);
  const checks: CheckResult[] = [];
  const idleThreshold = options.idleThresholdMs ?? 10 * 60_000;
  const started = Date.now();
  let client: pg.Client;
  try {
    client = await connectClient(target);
  } catch (err) {
    const msg = errText(err);
    const advice = [`Check host, port, user, password and database in the URL; try: psql "${target.redacted}"`];
    if (/self[- ]signed|unable to verify|certificate/i.test(msg)) advice.unshift('The server certificate did not verify: point sslrootcert at the CA that signed it, or fix the host name in the URL to match the certificate.');
    if (/does not support SSL/i.test(msg)) advice.unshift(`The server has TLS off; sslmode=${target.sslmode} requires it. Enable ssl on the server.`);
    checks.push(fail('connection', 'Connection', 'critical', `Cannot connect to ${target.host}:${target.port}/${target.database} as ${target.user}: ${msg}`, advice));
    return { url: target.redacted, checks, critical: 1, warnings: 0, usage: [], idleInTransaction: [], idle: [], terminated: [], pooler: null };
  }
  try {
    checks.push(pass('connection', 'Connection', `Connected to ${target.host}:${target.port}/${target.database} as ${target.user} in ${Date.now() - started} ms.`));

    const pooler = await detectPooler(target, client);
    const clientTls = clientUsesTls(client);
    let serverView: { ssl: boolean; version: string | null; cipher: string | null } | null = null;
    try {
      const r = await client.query<{ ssl: boolean; version: string | null; cipher: string | null }>(
        'select ssl, version, cipher from pg_stat_ssl where pid = pg_backend_pid()',
      );
      serverView = r.rows[0] ?? null;
    } catch {
      serverView = null;
    }
    checks.push(tlsCheck(target, clientTls, serverView, pooler));

    const facts = await serverFacts(client);
    const limit = facts.maxConnections - facts.superuserReserved - facts.reserved;
    const serverData = { ...facts, availableToNonSuperusers: limit };
    const major = Math.floor(facts.versionNum / 10000);
    const serverDetail = `PostgreSQL ${facts.version}; max_connections ${facts.maxConnections}, superuser_reserved_connections ${facts.superuserReserved}, reserved_connections ${facts.reserved}${facts.versionNum < 160000 ? ' (n/a before 16)' : ''}: ${limit} for ordinary roles.`;
    if (major > 0 && major < 13) {
      checks.push(fail('server', 'Server', 'warning', serverDetail + ` PostgreSQL ${major} is out of community support.`, ['Plan an upgrade to a supported major version (13 or later).'], serverData));
    } else {
      checks.push(pass('server', 'Server', serverDetail, serverData));
    }

    // Usage: client backends only (not autovacuum, walsender, background workers), not this session.
    const usageRes = await client.query<{ application: string; state: string | null; count: string }>(
      `select coalesce(nullif(application_name, ''), '(none)') as application, state, count(*)::text as count
         from pg_stat_activity
        where backend_type = 'client backend' and pid <> pg_backend_pid()
        group by 1, 2 order by 3 desc, 1, 2`,
    );
    const usage: UsageRow[] = usageRes.rows.map((r) => ({ application: r.application, state: r.state ?? '(not visible)', count: Number(r.count) }));
    const used = usage.reduce((s, u) => s + u.count, 0) + 1; // + this doctor's own session
    const pct = limit > 0 ? Math.round((used / limit) * 100) : 100;
    const hidden = usage.some((u) => u.state === '(not visible)');
    const usageDetail = `${used} of ${limit} connections in use (${pct}%, counting this check)${hidden ? '; some sessions belong to other roles and their state is hidden (grant pg_read_all_stats to see it)' : ''}.`;
    const usageData = { used, limit, percent: pct, rows: usage };
    if (pct >= 90) {
      checks.push(fail('usage', 'Usage', 'critical', usageDetail, ['New connections will soon be refused ("too many clients already" / "remaining connection slots are reserved"). Lower app pool sizes (see `sluice budget`) or put a pooler in front.'], usageData));
    } else if (pct >= 75) {
      checks.push(fail('usage', 'Usage', 'warning', usageDetail, ['A rolling deploy or a burst may exhaust the rest; plan pools with `sluice budget`.'], usageData));
    } else {
      checks.push(pass('usage', 'Usage', usageDetail, usageData));
    }

    const iit = await client.query(
      `select ${SESSION_COLUMNS} from pg_stat_activity
        where backend_type = 'client backend' and pid <> pg_backend_pid() and state like 'idle in transaction%'
        order by state_change`,
    );
    const idleInTransaction = iit.rows.map(toSession);
    if (idleInTransaction.length === 0) {
      checks.push(pass('idle-in-transaction', 'Idle in transaction', 'No sessions idle in transaction.'));
    } else {
      const oldest = Math.max(...idleInTransaction.map((s) => s.ageMs));
      checks.push(
        fail(
          'idle-in-transaction',
          'Idle in transaction',
          oldest >= 5 * 60_000 ? 'critical' : 'warning',
          `${idleInTransaction.length} session(s) idle in transaction, oldest for ${formatDuration(oldest)}: they hold locks and a backend, and stop vacuum from cleaning up.`,
          [
            'Find the code path that opens a transaction and waits (missing COMMIT/ROLLBACK or client.release() in an error path).',
            "Set idle_in_transaction_session_timeout (e.g. ALTER ROLE app SET idle_in_transaction_session_timeout = '60s').",
            'To end one now: select pg_terminate_backend(<pid>);',
          ],
          { sessions: idleInTransaction },
        ),
      );
    }

    const idleRes = await client.query(
      `select ${SESSION_COLUMNS} from pg_stat_activity
        where backend_type = 'client backend' and pid <> pg_backend_pid() and state = 'idle'
          and clock_timestamp() - state_change > $1::float8 * interval '1 millisecond'
        order by state_change`,
      [idleThreshold],
    );
    const idle = idleRes.rows.map(toSession);
    const terminated: number[] = [];
    const thr = formatDuration(idleThreshold);
    if (options.killIdle && options.yes && idle.length > 0) {
      // Re-check the condition at kill time: a session that woke up since we listed it is spared.
      const r = await client.query<{ pid: number; terminated: boolean }>(
        `select pid, pg_terminate_backend(pid) as terminated from pg_stat_activity
          where pid = any($1::int[]) and backend_type = 'client backend' and state = 'idle'
            and clock_timestamp() - state_change > $2::float8 * interval '1 millisecond'`,
        [idle.map((s) => s.pid), idleThreshold],
      );
      for (const row of r.rows) if (row.terminated) terminated.push(Number(row.pid));
      const failed = idle.filter((s) => !terminated.includes(s.pid));
      if (failed.length > 0) {
        checks.push(
          fail('idle', 'Idle connections', 'warning', `Terminated ${terminated.length} of ${idle.length} idle connection(s) older than ${thr}; ${failed.length} were not (woke up, or not permitted).`, ['Terminating other roles\' sessions needs superuser or membership in pg_signal_backend.'], { thresholdMs: idleThreshold, sessions: idle, terminated }),
        );
      } else {
        checks.push(pass('idle', 'Idle connections', `Terminated ${terminated.length} idle connection(s) older than ${thr}: pids ${terminated.join(', ')}.`, { thresholdMs: idleThreshold, sessions: idle, terminated }));
      }
    } else if (idle.length === 0) {
      checks.push(pass('idle', 'Idle connections', `No idle connections older than ${thr}.`, { thresholdMs: idleThreshold, sessions: [] }));
    } else if (options.killIdle) {
      checks.push(
        fail('idle', 'Idle connections', 'warning', `${idle.length} idle connection(s) older than ${thr}; would terminate pids ${idle.map((s) => s.pid).join(', ')} (dry run).`, ['Re-run with --yes to terminate exactly these sessions.'], { thresholdMs: idleThreshold, sessions: idle, dryRun: true }),
      );
    } else {
      checks.push(
        fail(
          'idle',
          'Idle connections',
          'warning',
          `${idle.length} idle connection(s) older than ${thr}: held open by app pools but doing nothing.`,
          ['Give app pools an idle timeout (node-postgres idleTimeoutMillis, postgres.js idle_timeout), or a pooler server_idle_timeout.', `To end them now: sluice doctor URL --kill-idle ${thr.replace(/ /g, '')} --yes (without --yes it only lists them)`],
          { thresholdMs: idleThreshold, sessions: idle },
        ),
      );
    }

    const consequences = poolerConsequences(pooler);
    const poolerName = pooler.kind === 'none' ? 'None detected' : pooler.kind === 'unknown' ? 'an unidentified pooler' : pooler.version ?? pooler.kind;
    const poolerDetail =
      pooler.kind === 'none' ? consequences.lines.join(' ') : `${poolerName}${pooler.poolMode ? `, pool_mode=${pooler.poolMode}` : ''}. ${consequences.lines.join(' ')}`;
    const poolerData = { kind: pooler.kind, version: pooler.version, poolMode: pooler.poolMode, evidence: pooler.evidence, config: pooler.config };
    if (consequences.warn) {
      const advice =
        pooler.kind === 'pgbouncer'
          ? ['Set max_prepared_statements (e.g. 200) in pgbouncer.ini, or switch to Sluice, whose transaction mode keeps prepared statements and pins sessions that need it.']
          : pooler.poolMode === 'statement'
            ? ['Use transaction mode unless every query is a single autocommit statement.']
            : ['Disable prepared statements in the driver, or use a pooler that emulates them (Sluice).'];
      checks.push(fail('pooler', 'Pooler', 'warning', poolerDetail, advice, poolerData));
    } else {
      checks.push(pass('pooler', 'Pooler', poolerDetail, poolerData));
    }

    if (options.instances !== undefined && options.poolSize !== undefined) {
      const demand = options.instances * options.poolSize;
      const maxClient = Number(pooler.config['max_client_conn'] ?? NaN);
      const viaPooler = pooler.kind === 'pgbouncer' || pooler.kind === 'sluice';
      const budgetData = { instances: options.instances, poolSize: options.poolSize, demand, limit: viaPooler && Number.isFinite(maxClient) ? maxClient : limit, against: viaPooler && Number.isFinite(maxClient) ? 'max_client_conn' : 'max_connections' };
      const suggestion = `sluice budget --from "${target.redacted}" --env app:instances=${options.instances}${viaPooler ? ` --pooler ${pooler.kind}` : ''}`;
      if (viaPooler && Number.isFinite(maxClient)) {
        if (demand > maxClient) {
          checks.push(fail('budget', 'Budget', 'critical', `${options.instances} instances × pool ${options.poolSize} = ${demand} client connections, over the pooler's max_client_conn ${maxClient} by ${demand - maxClient}.`, [`Raise max_client_conn to at least ${demand}, or lower the pool size to ${Math.max(1, Math.floor(maxClient / options.instances))}.`], budgetData));
        } else {
          checks.push(pass('budget', 'Budget', `${options.instances} × ${options.poolSize} = ${demand} client connections fit the pooler's max_client_conn ${maxClient}.`, budgetData));
        }
      } else {
        const others = usage.filter((u) => u.application !== 'sluice doctor').reduce((s, u) => s + u.count, 0);
        if (demand > limit) {
          const fitting = Math.floor(limit / options.instances);
          checks.push(
            fail('budget', 'Budget', 'critical', `${options.instances} instances × pool ${options.poolSize} = ${demand} connections, over the ${limit} available to ordinary roles by ${demand - limit}.`, [fitting >= 1 ? `Lower the pool size to ${fitting} per instance (before leaving room for deploys and humans), or put a pooler in front.` : 'Fewer instances than connections is impossible here: put a pooler in front.', `Plan it: ${suggestion}`], budgetData),
          );
        } else if (demand + others > limit) {
          checks.push(fail('budget', 'Budget', 'warning', `${demand} connections fit the ${limit} available, but not next to the ${others} already open by others (${demand + others} > ${limit}).`, [`Plan every environment together: ${suggestion} --env …`], budgetData));
        } else {
          checks.push(pass('budget', 'Budget', `${options.instances} × ${options.poolSize} = ${demand} of the ${limit} connections available to ordinary roles.`, budgetData));
        }
      }
    }

    const critical = checks.filter((c) => !c.ok && c.severity === 'critical').length;
    const warnings = checks.filter((c) => !c.ok && c.severity === 'warning').length;
    return { url: target.redacted, checks, critical, warnings, usage, idleInTransaction, idle, terminated, pooler };
  } finally {
    await client.end().catch(() => undefined);
  }
}
