// One pgbench run against one target, with per-transaction logs for p99
// and the pooler's CPU time and RSS read from /proc around it.
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { cpuSeconds, percentileSorted, rssKb, runCapture } from './lib.js';
import { DB, USER } from './targets.js';

export type Workload = 'select-only' | 'tpcb' | 'churn';
export type Protocol = 'simple' | 'extended' | 'prepared';

export interface RunSpec {
  workload: Workload;
  protocol: Protocol;
  clients: number;
  /** -T seconds, or -t transactions per client when `transactions` is set. */
  duration: number;
  transactions?: number;
  /** A custom script file instead of the built-in ones. */
  scriptFile?: string;
}

export interface RunResult {
  ok: boolean;
  error?: string;
  command: string;
  tps: number;
  transactions: number;
  avgMs: number;
  p50Ms: number;
  p99Ms: number;
  /** Pooler CPU (user + system) per transaction, µs; absent for direct. */
  cpuUsPerTx?: number;
  /** Pooler VmRSS right after the run, kB. */
  rssKb?: number;
  /** pgbench's "initial connection time" (not with -C). */
  connMs?: number;
  wallMs: number;
}

export function pgbenchArgs(spec: RunSpec, port: number, logPrefix: string): string[] {
  const args = ['-n', '-h', '127.0.0.1', '-p', String(port), '-U', USER];
  args.push('-c', String(spec.clients), '-j', String(Math.min(2, spec.clients)));
  if (spec.transactions) args.push('-t', String(spec.transactions));
  else args.push('-T', String(spec.duration));
  args.push('-M', spec.protocol);
  if (spec.scriptFile) args.push('-f', spec.scriptFile);
  else if (spec.workload === 'select-only' || spec.workload === 'churn') args.push('-S');
  if (spec.workload === 'churn') args.push('-C');
  args.push('-l', '--log-prefix', logPrefix);
  args.push(DB);
  return args;
}

/** The first line of pgbench's stderr that explains a failure. */
function firstError(stderr: string): string | undefined {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const line = lines.find((l) => /error|fatal|FATAL|ERROR|abort/i.test(l) && !/above results are incomplete/.test(l)) ?? lines[0];
  if (!line) return undefined;
  return line.length > 200 ? line.slice(0, 200) + '…' : line;
}

/** Latencies (µs) from pgbench's per-transaction logs: "client tx latency script epoch µs". */
function readLatencies(dir: string, base: string): Float64Array {
  const chunks: number[] = [];
  for (const f of readdirSync(dir)) {
    if (!f.startsWith(base + '.')) continue;
    const text = readFileSync(path.join(dir, f), 'utf8');
    let start = 0;
    while (start < text.length) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = text.length;
      // Third field; "skipped"/"failed" rows parse as NaN and are dropped.
      const s1 = text.indexOf(' ', start);
      const s2 = s1 < 0 ? -1 : text.indexOf(' ', s1 + 1);
      const s3 = s2 < 0 ? -1 : text.indexOf(' ', s2 + 1);
      if (s3 > 0 && s3 < end) {
        const v = Number(text.slice(s2 + 1, s3));
        if (Number.isFinite(v)) chunks.push(v);
      }
      start = end + 1;
    }
  }
  const out = Float64Array.from(chunks);
  out.sort();
  return out;
}

/**
 * Runs pgbench once. `poolerPid` is sampled for CPU before and after; the
 * ratio to the transaction count is the figure that stays stable on a busy box.
 */
export async function runPgbench(spec: RunSpec, port: number, workDir: string, tag: string, poolerPid?: number): Promise<RunResult> {
  const dir = path.join(workDir, 'pgbench-logs', tag);
  mkdirSync(dir, { recursive: true });
  const base = 'tx';
  const args = pgbenchArgs(spec, port, path.join(dir, base));
  // The command as one would rerun it by hand: without the temporary log prefix.
  const li = args.indexOf('--log-prefix');
  const command = `pgbench ${[...args.slice(0, li), ...args.slice(li + 2)].join(' ')}`;
  const cpuBefore = cpuSeconds(poolerPid);
  // Generous: 1000 clients take a while to connect, but a hang must not stall the run.
  const timeoutMs = spec.transactions ? 210_000 : spec.duration * 1000 + 45_000;
  const r = await runCapture('pgbench', args, { timeoutMs });
  const cpuAfter = cpuSeconds(poolerPid);
  const rss = rssKb(poolerPid);
  let lat: Float64Array;
  try {
    lat = readLatencies(dir, base);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const tps = Number(/^tps = ([\d.]+)/m.exec(r.stdout)?.[1] ?? NaN);
  const transactions = Number(/number of transactions actually processed: (\d+)/.exec(r.stdout)?.[1] ?? lat.length);
  let sum = 0;
  for (const v of lat) sum += v;
  const result: RunResult = {
    ok: r.code === 0 && !r.timedOut && Number.isFinite(tps),
    command,
    tps: Number.isFinite(tps) ? tps : 0,
    transactions,
    avgMs: lat.length ? sum / lat.length / 1000 : NaN,
    p50Ms: percentileSorted(lat, 50) / 1000,
    p99Ms: percentileSorted(lat, 99) / 1000,
    wallMs: r.ms,
  };
  const conn = Number(/initial connection time = ([\d.]+) ms/.exec(r.stdout)?.[1] ?? NaN);
  if (Number.isFinite(conn)) result.connMs = conn;
  if (!result.ok) {
    result.error = r.timedOut ? `timed out after ${Math.round(timeoutMs / 1000)} s` : (firstError(r.stderr) ?? `pgbench exited with code ${r.code} and no tps line: ${r.stdout.trim().split('\n').slice(-3).join(' | ')}`);
  }
  if (poolerPid !== undefined) {
    if (cpuBefore !== null && cpuAfter !== null && transactions > 0) result.cpuUsPerTx = ((cpuAfter - cpuBefore) * 1e6) / transactions;
    if (rss !== null) result.rssKb = rss;
    if (cpuAfter === null && result.ok) {
      result.ok = false;
      result.error = 'pooler process exited during the run';
    }
  }
  return result;
}
