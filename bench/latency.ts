// Latency overhead: one client, 10,000 `SELECT 1` in extended mode, per target;
// p50 and p99 from pgbench's per-transaction log, and what each pooler adds.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { median } from './lib.js';
import { runPgbench, type RunResult } from './pgbench.js';
import type { Pooler } from './targets.js';
import type { TargetName } from './matrix.js';

export interface LatencyRun extends RunResult {
  target: TargetName;
  rep: number;
}

export interface LatencySummary {
  target: TargetName;
  ok: boolean;
  error?: string;
  p50Us?: number;
  p99Us?: number;
  avgUs?: number;
  cpuUsPerTx?: number;
  addedP50Us?: number;
  addedP99Us?: number;
  command: string;
}

export async function runLatency(opts: {
  pgPort: number;
  poolers: readonly Pooler[];
  reps: number;
  transactions: number;
  workDir: string;
  log: (s: string) => void;
}): Promise<{ runs: LatencyRun[]; summary: LatencySummary[] }> {
  const script = path.join(opts.workDir, 'select1.sql');
  writeFileSync(script, 'SELECT 1;\n');
  const targets: { name: TargetName; pooler?: Pooler }[] = [{ name: 'direct' }, ...opts.poolers.map((p) => ({ name: p.options.kind, pooler: p }))];
  const runs: LatencyRun[] = [];
  // Warm-up, not recorded: JIT compilation and first connections are not the steady state.
  for (const t of targets) {
    await runPgbench(
      { workload: 'select-only', protocol: 'extended', clients: 1, duration: 0, transactions: 1000, scriptFile: script },
      t.pooler ? t.pooler.port : opts.pgPort,
      opts.workDir,
      `latency-warmup-${t.name}`,
    );
  }
  for (let rep = 0; rep < opts.reps; rep++) {
    const shift = rep % targets.length;
    for (const t of [...targets.slice(shift), ...targets.slice(0, shift)]) {
      const port = t.pooler ? t.pooler.port : opts.pgPort;
      const res = await runPgbench(
        { workload: 'select-only', protocol: 'extended', clients: 1, duration: 0, transactions: opts.transactions, scriptFile: script },
        port,
        opts.workDir,
        `latency-${t.name}-${rep}`,
        t.pooler?.pid,
      );
      runs.push({ ...res, target: t.name, rep });
      opts.log(
        `[latency rep ${rep + 1}/${opts.reps}] ${t.name}: ` +
          (res.ok ? `p50 ${(res.p50Ms * 1000).toFixed(0)} µs, p99 ${(res.p99Ms * 1000).toFixed(0)} µs, ${res.tps.toFixed(0)} tps` : `FAILED: ${res.error}`),
      );
    }
  }
  const summary = targets.map((t): LatencySummary => {
    const mine = runs.filter((r) => r.target === t.name);
    const ok = mine.filter((r) => r.ok);
    const failed = mine.find((r) => !r.ok);
    return {
      target: t.name,
      ok: !failed,
      ...(failed ? { error: failed.error } : {}),
      p50Us: median(ok.map((r) => r.p50Ms * 1000)),
      p99Us: median(ok.map((r) => r.p99Ms * 1000)),
      avgUs: median(ok.map((r) => r.avgMs * 1000)),
      cpuUsPerTx: median(ok.map((r) => r.cpuUsPerTx).filter((v): v is number => v !== undefined)),
      command: mine[0]!.command,
    };
  });
  const direct = summary.find((s) => s.target === 'direct');
  for (const s of summary) {
    if (s.target === 'direct' || !direct || direct.p50Us === undefined || s.p50Us === undefined) continue;
    s.addedP50Us = s.p50Us - direct.p50Us;
    s.addedP99Us = s.p99Us! - direct.p99Us!;
  }
  return { runs, summary };
}
