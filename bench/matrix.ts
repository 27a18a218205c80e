// The main benchmark: pgbench on direct, PgBouncer and Sluice, interleaved,
// over workloads × protocols × client counts × pool modes.
import { fmt, markdownTable } from './report.js';
import { median } from './lib.js';
import { runPgbench, type Protocol, type RunResult, type Workload } from './pgbench.js';
import type { PoolMode, Pooler, PoolerKind } from './targets.js';

export type TargetName = 'direct' | PoolerKind;

export interface Cell {
  mode: PoolMode;
  workload: Workload;
  protocol: Protocol;
  clients: number;
}

export interface MatrixSelection {
  modes: readonly PoolMode[];
  workloads: readonly Workload[];
  protocols: readonly Protocol[];
  clients: readonly number[];
  /** Given on the command line: take the lists literally, without the default trimming. */
  explicitProtocols: boolean;
  explicitClients: boolean;
  poolSize: number;
}

/** Same pgbench invocation, whatever the target: direct runs are shared between modes. */
export const workKey = (c: Omit<Cell, 'mode'>): string => `${c.workload}/${c.protocol}/${c.clients}`;
export const cellKey = (c: Cell): string => `${c.mode}/${workKey(c)}`;

/**
 * The default matrix, trimmed so that 3 repetitions fit well under 30 minutes
 * on 2 cores: TPC-B runs every protocol at 50 clients only; churn runs
 * simple select-only at 10 and 50 clients; session mode runs only where
 * clients ≤ pool size (pgbench never disconnects, so more would wait forever),
 * except churn, where every transaction disconnects.
 */
export function buildMatrix(sel: MatrixSelection): { cells: Cell[]; skipped: string[] } {
  const cells: Cell[] = [];
  const skipped = new Set<string>();
  for (const mode of sel.modes) {
    for (const workload of sel.workloads) {
      for (const protocol of sel.protocols) {
        for (const clients of sel.clients) {
          if (workload === 'tpcb' && protocol !== 'simple' && clients !== 50 && !sel.explicitClients && !sel.explicitProtocols) continue;
          if (workload === 'churn' && !sel.explicitClients && clients !== 10 && clients !== 50) continue;
          if (workload === 'churn' && !sel.explicitProtocols && protocol !== 'simple') continue;
          if (mode === 'session' && workload !== 'churn' && clients > sel.poolSize) {
            skipped.add(
              `session mode with more than default_pool_size=${sel.poolSize} clients (non-churn) is not run: pgbench keeps its connections, so the extra clients would wait for a server forever`,
            );
            continue;
          }
          cells.push({ mode, workload, protocol, clients });
        }
      }
    }
  }
  return { cells, skipped: [...skipped] };
}

export interface RunRecord extends RunResult {
  target: TargetName;
  mode: PoolMode | null;
  work: string;
  rep: number;
}

export interface TargetSummary {
  runs: number;
  failures: number;
  error?: string;
  tps?: number;
  avgMs?: number;
  p99Ms?: number;
  cpuUsPerTx?: number;
  rssKb?: number;
  command: string;
}

export interface CellSummary extends Cell {
  key: string;
  direct?: TargetSummary;
  pgbouncer?: TargetSummary;
  sluice?: TargetSummary;
  sluiceOverPgbouncer?: number;
  sluiceOverDirect?: number;
}

export interface MatrixContext {
  pgPort: number;
  poolers: ReadonlyMap<string, Pooler>; // key `${kind}-${mode}`
  targets: readonly TargetName[];
  duration: number;
  reps: number;
  workDir: string;
  /** Direct cells above this client count are skipped (max_connections). */
  maxDirectClients: number;
  log: (line: string) => void;
}

/**
 * pgbench's -T clock includes connecting, and forking 1000 direct backends on
 * a busy 2-core box can take longer than the whole run; so 500+ client cells
 * run a fixed number of transactions per client instead (tps still excludes
 * the connection phase).
 */
export function runLength(workload: Workload, clients: number, duration: number): { duration: number; transactions?: number } {
  if (clients < 500) return { duration };
  return { duration, transactions: workload === 'tpcb' ? 10 : 40 };
}

interface PlannedRun {
  target: TargetName;
  mode: PoolMode | null;
  cell: Omit<Cell, 'mode'>;
}

export async function runMatrix(cells: readonly Cell[], ctx: MatrixContext): Promise<RunRecord[]> {
  // Group cells by their pgbench invocation; each group runs all its targets back to back.
  const groups = new Map<string, PlannedRun[]>();
  for (const c of cells) {
    const work = { workload: c.workload, protocol: c.protocol, clients: c.clients };
    const k = workKey(work);
    let g = groups.get(k);
    if (!g) {
      g = [];
      groups.set(k, g);
      if (ctx.targets.includes('direct') && c.clients <= ctx.maxDirectClients) g.push({ target: 'direct', mode: null, cell: work });
    }
    for (const kind of ['pgbouncer', 'sluice'] as const) {
      if (ctx.targets.includes(kind) && ctx.poolers.has(`${kind}-${c.mode}`)) g.push({ target: kind, mode: c.mode, cell: work });
    }
  }
  const total = [...groups.values()].reduce((n, g) => n + g.length, 0) * ctx.reps;
  const records: RunRecord[] = [];
  const started = Date.now();
  let done = 0;
  let gi = 0;
  for (let rep = 0; rep < ctx.reps; rep++) {
    gi = 0;
    for (const [work, group] of groups) {
      // Rotate the order per group and repetition so drift hits every target alike.
      const shift = (gi++ + rep) % group.length;
      const order = [...group.slice(shift), ...group.slice(0, shift)];
      for (const run of order) {
        const pooler = run.mode ? ctx.poolers.get(`${run.target}-${run.mode}`) : undefined;
        if (pooler && !pooler.alive) {
          ctx.log(`  ${pooler.name} is not running (${pooler.exitReason}); restarting it`);
          await pooler.restart().catch((err: unknown) => ctx.log(`  restart failed: ${err instanceof Error ? err.message : String(err)}`));
        }
        const port = pooler ? pooler.port : ctx.pgPort;
        const tag = `${run.target}-${run.mode ?? 'direct'}-${work.replace(/\//g, '_')}-r${rep}`;
        const res = await runPgbench({ ...run.cell, ...runLength(run.cell.workload, run.cell.clients, ctx.duration) }, port, ctx.workDir, tag, pooler?.pid);
        records.push({ ...res, target: run.target, mode: run.mode, work, rep });
        done++;
        const eta = ((Date.now() - started) / done) * (total - done);
        const label = `${run.mode ?? 'direct'} ${run.cell.workload} -M ${run.cell.protocol} -c ${run.cell.clients}`;
        const what = res.ok
          ? `${fmt.tps(res.tps)} tps, avg ${fmt.ms(res.avgMs)} ms, p99 ${fmt.ms(res.p99Ms)} ms` +
            (res.cpuUsPerTx !== undefined ? `, ${fmt.us(res.cpuUsPerTx)} µs CPU/tx, RSS ${fmt.mb(res.rssKb)} MB` : '')
          : `FAILED: ${res.error}`;
        ctx.log(`[${done}/${total}, rep ${rep + 1}/${ctx.reps}, ~${Math.ceil(eta / 1000)} s left] ${label} ${run.target}: ${what}`);
        if (pooler && !res.ok && /timed out/.test(res.error ?? '')) {
          // A hung pooler would fail every later cell too; start it afresh.
          ctx.log(`  restarting ${pooler.name} after the timeout`);
          await pooler.restart().catch((err: unknown) => ctx.log(`  restart failed: ${err instanceof Error ? err.message : String(err)}`));
        }
        // Let PostgreSQL reap the backends of the previous run.
        await new Promise((r) => setTimeout(r, run.cell.clients >= 200 ? 500 : 150));
      }
    }
  }
  return records;
}

function summarise(runs: readonly RunRecord[]): TargetSummary | undefined {
  if (runs.length === 0) return undefined;
  const ok = runs.filter((r) => r.ok);
  const failed = runs.filter((r) => !r.ok);
  const pick = (f: (r: RunRecord) => number | undefined) => median(ok.map(f).filter((v): v is number => v !== undefined));
  return {
    runs: runs.length,
    failures: failed.length,
    ...(failed[0]?.error ? { error: failed[0].error } : {}),
    tps: pick((r) => r.tps),
    avgMs: pick((r) => r.avgMs),
    p99Ms: pick((r) => r.p99Ms),
    cpuUsPerTx: pick((r) => r.cpuUsPerTx),
    rssKb: pick((r) => r.rssKb),
    command: runs[0]!.command,
  };
}

export function summariseCells(cells: readonly Cell[], records: readonly RunRecord[]): CellSummary[] {
  return cells.map((c) => {
    const work = workKey(c);
    const mine = (t: TargetName) => records.filter((r) => r.work === work && r.target === t && (t === 'direct' || r.mode === c.mode));
    const s: CellSummary = { ...c, key: cellKey(c), direct: summarise(mine('direct')), pgbouncer: summarise(mine('pgbouncer')), sluice: summarise(mine('sluice')) };
    const ok = (t?: TargetSummary) => (t && t.failures === 0 && t.tps ? t.tps : undefined);
    const st = ok(s.sluice);
    const pt = ok(s.pgbouncer);
    const dt = ok(s.direct);
    if (st && pt) s.sluiceOverPgbouncer = st / pt;
    if (st && dt) s.sluiceOverDirect = st / dt;
    return s;
  });
}

const WORKLOAD_LABEL: Record<Workload, string> = { 'select-only': 'select-only', tpcb: 'TPC-B', churn: 'churn -C -S' };

/** The one table: a row per cell, failures shown in place with a numbered note. */
export function renderMatrix(summaries: readonly CellSummary[]): { table: string; notes: string[] } {
  // One note per (target, mode, error), listing the cells it hit, so a systematic failure reads as one line.
  const groups: { key: string; target: string; mode: PoolMode; error: string; cells: string[]; failed: number; runs: number; command: string }[] = [];
  const noteFor = (target: string, c: CellSummary, t: TargetSummary): string => {
    const error = t.error ?? 'unknown error';
    const key = `${target}|${target === 'direct' ? '' : c.mode}|${error}`;
    let i = groups.findIndex((g) => g.key === key);
    if (i < 0) i = groups.push({ key, target, mode: c.mode, error, cells: [], failed: 0, runs: 0, command: t.command }) - 1;
    const g = groups[i]!;
    g.cells.push(`${WORKLOAD_LABEL[c.workload]} -M ${c.protocol} -c ${c.clients}`);
    g.failed += t.failures;
    g.runs += t.runs;
    return `[${i + 1}]`;
  };
  const tpsCell = (name: string, c: CellSummary, t?: TargetSummary) => {
    if (!t) return '–';
    if (t.failures > 0) return `FAIL${noteFor(name, c, t)}`;
    return fmt.tps(t.tps);
  };
  const trio = (f: (t: TargetSummary) => string, ...ts: (TargetSummary | undefined)[]) => ts.map((t) => (t && t.failures < t.runs ? f(t) : '–')).join(' / ');
  const header = ['mode', 'test', '-M', 'clients', 'direct tps', 'PgBouncer tps', 'Sluice tps', 'S/PgB', 'S/direct', 'avg ms d / P / S', 'p99 ms d / P / S', 'CPU µs/tx P / S', 'RSS MB P / S'];
  const rows = summaries.map((c) => [
    c.mode,
    WORKLOAD_LABEL[c.workload],
    c.protocol,
    String(c.clients),
    tpsCell('direct', c, c.direct),
    tpsCell('PgBouncer', c, c.pgbouncer),
    tpsCell('Sluice', c, c.sluice),
    fmt.ratio(c.sluiceOverPgbouncer),
    fmt.ratio(c.sluiceOverDirect),
    trio((t) => fmt.ms(t.avgMs), c.direct, c.pgbouncer, c.sluice),
    trio((t) => fmt.ms(t.p99Ms), c.direct, c.pgbouncer, c.sluice),
    trio((t) => fmt.us(t.cpuUsPerTx), c.pgbouncer, c.sluice),
    trio((t) => fmt.mb(t.rssKb), c.pgbouncer, c.sluice),
  ]);
  const right = header.map((_, i) => i >= 3);
  const notes = groups.map((g) => {
    const expected =
      g.target === 'PgBouncer' && g.mode === 'transaction' && /prepared statement/.test(g.error)
        ? ' (expected: PgBouncer 1.18 does not track protocol-level prepared statements in transaction mode)'
        : '';
    const where = g.target === 'direct' ? 'direct' : `${g.target}, ${g.mode} mode`;
    return `${where}: ${g.cells.join('; ')} — failed ${g.failed} of ${g.runs} runs${expected}: \`${g.error}\`. Example: \`${g.command}\``;
  });
  return { table: markdownTable(header, rows, right), notes };
}
