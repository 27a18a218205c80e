// Instructions per transaction (`npm run bench -- --instructions`): each
// target runs under Valgrind's callgrind, which counts the user-space
// instructions the process executes. Unlike time, the count barely moves on a
// busy, shared, 2-core machine, so a change worth a few percent shows in one
// run. It is not time: cache misses and the kernel's side of each system call
// are not in it, so read it next to the timed runs, not instead of them.
//
// Method: each target runs in one process under callgrind with counting off;
// W warm-up transactions run uncounted (in two pgbench runs), then counting is switched on
// (callgrind_control) for N more, and off again. The total over N is what a
// warm transaction costs: start-up, JIT compilation of the first W and
// shutdown are left out.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../src/embedded/cluster.js';
import { spawnTracked, stopChild, waitForPort, which } from './lib.js';
import { runPgbench, type RunSpec } from './pgbench.js';
import { Pooler, poolerOsUser, type PoolerKind } from './targets.js';

const FLOOR_SERVER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'floor_server.js');

export type InstructionWorkload = 'login' | 'churn' | 'select-only';
export type InstructionTarget = PoolerKind | 'node-floor';

export const VALGRIND_MISSING = 'valgrind is not installed; --instructions needs it. Install it with: apt-get update && apt-get install -y valgrind';

export interface InstructionResult {
  workload: InstructionWorkload;
  target: InstructionTarget;
  ok: boolean;
  error?: string;
  /** User-space instructions per transaction: the counted total over N. */
  perTransaction?: number;
  warmup: number;
  measured: number;
  command: string;
}

const CLIENTS = 10;

export async function runInstructions(opts: {
  pgPort: number;
  targets: readonly InstructionTarget[];
  poolSize: number;
  warmup: number;
  measured: number;
  sluiceMain?: string;
  workDir: string;
  log: (s: string) => void;
}): Promise<InstructionResult[]> {
  const outDir = path.join(opts.workDir, 'callgrind');
  mkdirSync(outDir, { recursive: true });
  chmodSync(outDir, 0o777); // PgBouncer runs as the postgres OS user when we are root
  const noop = path.join(opts.workDir, 'noop.sql');
  writeFileSync(noop, '\\set a 1\n');
  const specs: Record<InstructionWorkload, Omit<RunSpec, 'transactions'>> = {
    login: { workload: 'churn', protocol: 'simple', clients: CLIENTS, duration: 0, scriptFile: noop },
    churn: { workload: 'churn', protocol: 'simple', clients: CLIENTS, duration: 0 },
    'select-only': { workload: 'select-only', protocol: 'simple', clients: CLIENTS, duration: 0 },
  };
  if (opts.measured % CLIENTS !== 0 || opts.warmup % (2 * CLIENTS) !== 0) throw new Error(`transaction counts must be multiples of ${CLIENTS} (warm-up: ${2 * CLIENTS})`);
  // A select-only transaction is cheap: four times as many of them, so that one late JIT compilation
  // (it lands in the counted window when V8's compiler thread falls behind under valgrind) weighs little.
  const scale: Record<InstructionWorkload, number> = { login: 1, churn: 1, 'select-only': 4 };
  const results: InstructionResult[] = [];
  for (const workload of ['login', 'churn', 'select-only'] as const) {
    for (const target of opts.targets) {
      // The floor's churn would be PostgreSQL's login under a forwarder: slow under valgrind, and no floor for a pooler.
      if (target === 'node-floor' && workload === 'churn') continue;
      const tag = `${target}-${workload}`;
      const prefix = path.join(outDir, tag);
      let command = '';
      let error: string | undefined;
      let total = 0;
      try {
        const instance = await startUnderCallgrind(target, workload, prefix, opts);
        try {
          // Two warm-up runs: a client's first transaction on a new connection takes paths the hot
          // functions were optimized without, so the next run's clients deoptimize them once. Left in the
          // counted run, that re-optimization added 15 % to select-only (V8's compiler thread is slow under valgrind).
          for (const half of [1, 2]) {
            const warm = await runPgbench({ ...specs[workload], transactions: (opts.warmup * scale[workload]) / CLIENTS / 2 }, instance.port, opts.workDir, `instructions-${tag}-warmup${half}`);
            if (!warm.ok) throw new Error(`warm-up: ${warm.error ?? 'pgbench failed'}`);
          }
          instance.count(true);
          const ran = await runPgbench({ ...specs[workload], transactions: (opts.measured * scale[workload]) / CLIENTS }, instance.port, opts.workDir, `instructions-${tag}`);
          instance.count(false);
          command = ran.command;
          if (!ran.ok) throw new Error(ran.error ?? 'pgbench failed');
        } finally {
          await instance.stop();
        }
        total = instructionsIn(outDir, path.basename(prefix));
      } catch (err) {
        error = err instanceof Error ? err.message.split('\n')[0] : String(err);
      }
      const result: InstructionResult = { workload, target, ok: !error, warmup: opts.warmup * scale[workload], measured: opts.measured * scale[workload], command };
      if (error) result.error = error;
      else result.perTransaction = total / (opts.measured * scale[workload]);
      results.push(result);
      opts.log(`[instructions] ${workload} ${target}: ${result.ok ? `${Math.round(result.perTransaction!)} per transaction` : `FAILED: ${error}`}`);
    }
  }
  return results;
}

interface Instance {
  port: number;
  /** Switches callgrind's counting on or off. */
  count(on: boolean): void;
  stop(): Promise<void>;
}

/** callgrind_control talks to the process through files of its OS user, so it runs as that user. */
function controller(pid: number | undefined, owner: { uid: number; gid: number } | null): (on: boolean) => void {
  return (on) => {
    if (!pid) throw new Error('no process to control');
    const r = spawnSync('callgrind_control', ['-i', on ? 'on' : 'off', String(pid)], { encoding: 'utf8', timeout: 60_000, ...(owner ?? {}) });
    if (r.status !== 0) throw new Error(`callgrind_control -i ${on ? 'on' : 'off'} ${pid} failed: ${(r.stderr || r.stdout || '').trim().split('\n')[0]}`);
  };
}

async function startUnderCallgrind(
  target: InstructionTarget,
  workload: InstructionWorkload,
  prefix: string,
  opts: { pgPort: number; poolSize: number; sluiceMain?: string; workDir: string },
): Promise<Instance> {
  const valgrind = ['valgrind', '--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${prefix}.%p`];
  if (target !== 'node-floor') {
    const p = new Pooler({ kind: target, mode: 'transaction', dir: opts.workDir, pgPort: opts.pgPort, poolSize: opts.poolSize, maxClientConn: 2000, sluiceMain: opts.sluiceMain, wrapper: valgrind });
    await p.start();
    return { port: p.port, count: controller(p.pid, poolerOsUser(target)), stop: () => p.stop() };
  }
  const port = await freePort();
  const args = workload === 'login' ? ['login', String(port)] : ['proxy', String(port), String(opts.pgPort)];
  const child = spawnTracked(valgrind[0], [...valgrind.slice(1), process.execPath, FLOOR_SERVER, ...args], { stdio: ['ignore', 'ignore', 'ignore'] });
  await waitForPort(port, '127.0.0.1', 120_000, () => child.exitCode !== null);
  return { port, count: controller(child.pid, null), stop: () => stopChild(child, 'SIGINT', 120_000) };
}

/** The instruction total callgrind wrote for one run (every file of that run: one per process). */
function instructionsIn(dir: string, base: string): number {
  let total = 0;
  let files = 0;
  for (const f of readdirSync(dir)) {
    if (!f.startsWith(base + '.')) continue;
    const m = /^totals: (\d+)/m.exec(readFileSync(path.join(dir, f), 'utf8'));
    if (m) {
      total += Number(m[1]);
      files++;
    }
  }
  if (files === 0) throw new Error(`callgrind wrote no totals for ${base}`);
  return total;
}

export function valgrindAvailable(): boolean {
  return which('valgrind') !== null;
}
