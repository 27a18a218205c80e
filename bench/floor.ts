// The Node.js floor (`npm run bench -- --floor`): PgBouncer and Sluice next to
// the least Node.js can do (bench/floor_server.ts), with each process's CPU
// split into user and system time. Two workloads:
//   - login-only churn: pgbench -C with a script that sends nothing, so each
//     "transaction" is a connect, a login and a Terminate;
//   - select-only with as many clients as the pool has servers: every client
//     of PgBouncer and Sluice finds a server, and the floor proxy (one
//     PostgreSQL connection per client) keeps as many backends busy.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../src/embedded/cluster.js';
import { cpuTimes, median, spawnTracked, stopChild, waitForPort } from './lib.js';
import { runPgbench, type RunSpec } from './pgbench.js';
import type { Pooler } from './targets.js';

const FLOOR_SERVER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'floor_server.js');

export type FloorWorkload = 'login-churn' | 'select-only';
export type FloorTarget = 'pgbouncer' | 'sluice' | 'node-floor';

export interface FloorRun {
  workload: FloorWorkload;
  target: FloorTarget;
  rep: number;
  ok: boolean;
  error?: string;
  tps: number;
  transactions: number;
  userUsPerTx?: number;
  systemUsPerTx?: number;
  command: string;
}

export interface FloorSummary {
  workload: FloorWorkload;
  target: FloorTarget;
  ok: boolean;
  error?: string;
  tps?: number;
  userUsPerTx?: number;
  systemUsPerTx?: number;
  command: string;
}

export async function runFloor(opts: {
  pgPort: number;
  poolers: readonly Pooler[];
  reps: number;
  duration: number;
  /** default_pool_size of both poolers: the select-only client count. */
  poolSize: number;
  workDir: string;
  log: (s: string) => void;
}): Promise<{ runs: FloorRun[]; summary: FloorSummary[] }> {
  const noop = path.join(opts.workDir, 'noop.sql');
  writeFileSync(noop, '\\set a 1\n');
  const floors: { workload: FloorWorkload; port: number; child: ReturnType<typeof spawnTracked> }[] = [];
  try {
    for (const workload of ['login-churn', 'select-only'] as const) {
      const port = await freePort();
      const args = workload === 'login-churn' ? ['login', String(port)] : ['proxy', String(port), String(opts.pgPort)];
      const child = spawnTracked(process.execPath, [FLOOR_SERVER, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
      floors.push({ workload, port, child });
      await waitForPort(port, '127.0.0.1', 10_000, () => child.exitCode !== null);
    }
    const specs: Record<FloorWorkload, RunSpec> = {
      'login-churn': { workload: 'churn', protocol: 'simple', clients: 50, duration: opts.duration, scriptFile: noop },
      'select-only': { workload: 'select-only', protocol: 'simple', clients: opts.poolSize, duration: opts.duration },
    };
    const runs: FloorRun[] = [];
    for (const workload of ['login-churn', 'select-only'] as const) {
      const floor = floors.find((f) => f.workload === workload)!;
      const targets: { name: FloorTarget; port: number; pid: number | undefined }[] = [
        ...opts.poolers.map((p) => ({ name: p.options.kind, port: p.port, pid: p.pid })),
        { name: 'node-floor', port: floor.port, pid: floor.child.pid },
      ];
      // One unrecorded run each: JIT compilation is not the steady state.
      for (const t of targets) await runPgbench({ ...specs[workload], duration: 2 }, t.port, opts.workDir, `floor-warmup-${t.name}`);
      for (let rep = 0; rep < opts.reps; rep++) {
        const shift = rep % targets.length;
        for (const t of [...targets.slice(shift), ...targets.slice(0, shift)]) {
          const before = cpuTimes(t.pid);
          const res = await runPgbench(specs[workload], t.port, opts.workDir, `floor-${workload}-${t.name}-${rep}`);
          const after = cpuTimes(t.pid);
          const run: FloorRun = { workload, target: t.name, rep, ok: res.ok, tps: res.tps, transactions: res.transactions, command: res.command };
          if (res.error) run.error = res.error;
          if (before && after && res.transactions > 0) {
            run.userUsPerTx = ((after.user - before.user) * 1e6) / res.transactions;
            run.systemUsPerTx = ((after.system - before.system) * 1e6) / res.transactions;
          } else if (res.ok) {
            run.ok = false;
            run.error = 'the process exited during the run';
          }
          runs.push(run);
          opts.log(
            `[floor rep ${rep + 1}/${opts.reps}] ${workload} ${t.name}: ` +
              (run.ok ? `${run.tps.toFixed(0)} tps, user ${run.userUsPerTx!.toFixed(1)} µs, system ${run.systemUsPerTx!.toFixed(1)} µs per tx` : `FAILED: ${run.error}`),
          );
        }
      }
    }
    const summary: FloorSummary[] = [];
    for (const workload of ['login-churn', 'select-only'] as const) {
      for (const target of [...opts.poolers.map((p) => p.options.kind), 'node-floor' as const]) {
        const mine = runs.filter((r) => r.workload === workload && r.target === target);
        const ok = mine.filter((r) => r.ok);
        const failed = mine.find((r) => !r.ok);
        summary.push({
          workload,
          target,
          ok: !failed,
          ...(failed ? { error: failed.error } : {}),
          tps: median(ok.map((r) => r.tps)),
          userUsPerTx: median(ok.map((r) => r.userUsPerTx!)),
          systemUsPerTx: median(ok.map((r) => r.systemUsPerTx!)),
          command: mine[0]?.command ?? '',
        });
      }
    }
    return { runs, summary };
  } finally {
    for (const f of floors) await stopChild(f.child);
  }
}
