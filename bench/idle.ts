// Idle scale: N client connections held open through a pooler from a separate
// load-generator process. Reports RSS per client and the time to accept them all.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fdLimits, rssKb, sleep, spawnTracked, stopChild } from './lib.js';
import { DB, USER, Pooler, type PoolerKind } from './targets.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const LOADER = path.join(here, 'idle_client.js');

export interface IdleResult {
  pooler: PoolerKind;
  clients: number;
  ok: boolean;
  error?: string;
  ready?: number;
  failed?: number;
  acceptMs?: number;
  rssBeforeKb?: number;
  rssAfterKb?: number;
  bytesPerClient?: number;
  /** Connections the pooler closed while they sat idle. */
  lost?: number;
}

/**
 * Loopback source addresses for one run: fresh ones per run (the last run's
 * ports sit in TIME_WAIT), and one per ~25,000 clients (28,232 ephemeral ports each).
 */
function sourceAddrs(run: number, n: number): string {
  const count = Math.ceil(n / 25_000);
  return Array.from({ length: count }, (_, i) => `127.0.${1 + run}.${1 + i}`).join(',');
}

/** Why N idle clients cannot be tried here, or null if they can. */
export function idleLimitReason(n: number): string | null {
  const { hard } = fdLimits();
  // Both the pooler and the load generator need one fd per client, plus some.
  const need = n + 200;
  if (hard < need) return `the hard open-file limit (ulimit -Hn) is ${hard}, below the ${need} descriptors each of the pooler and the load generator needs`;
  return null;
}

export async function runIdle(kind: PoolerKind, n: number, opts: { dir: string; pgPort: number; poolSize: number; nodeArgs?: readonly string[]; sluiceMain?: string; run: number; log: (s: string) => void }): Promise<IdleResult> {
  const limit = idleLimitReason(n);
  if (limit) return { pooler: kind, clients: n, ok: false, error: `not run: ${limit}` };
  const pooler = new Pooler({ kind, mode: 'transaction', dir: opts.dir, pgPort: opts.pgPort, poolSize: opts.poolSize, maxClientConn: n + 100, nodeArgs: opts.nodeArgs, sluiceMain: opts.sluiceMain });
  await pooler.start();
  try {
    await sleep(1000); // let startup garbage settle before the baseline
    const before = rssKb(pooler.pid) ?? NaN;
    const { hard } = fdLimits();
    const loader = spawnTracked('sh', ['-c', `ulimit -n ${hard} 2>/dev/null; exec "$0" "$@"`, process.execPath, LOADER, String(pooler.port), String(n), '200', USER, DB, sourceAddrs(opts.run, n)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const lines: string[] = [];
    let partial = '';
    let waiter: (() => void) | null = null;
    loader.stdout!.on('data', (d: Buffer) => {
      partial += d.toString();
      let i: number;
      while ((i = partial.indexOf('\n')) >= 0) {
        lines.push(partial.slice(0, i));
        partial = partial.slice(i + 1);
        waiter?.();
      }
    });
    const nextLine = async (timeoutMs: number): Promise<string> => {
      const deadline = Date.now() + timeoutMs;
      while (lines.length === 0) {
        if (loader.exitCode !== null) throw new Error(`load generator exited with code ${loader.exitCode}`);
        if (Date.now() > deadline) throw new Error(`load generator gave no answer within ${timeoutMs / 1000} s`);
        await new Promise<void>((r) => {
          waiter = r;
          setTimeout(r, 200);
        });
      }
      return lines.shift()!;
    };
    try {
      const first = JSON.parse(await nextLine(300_000)) as { ready: number; failed: number; ms: number; firstError: string };
      opts.log(`  ${kind}: ${first.ready} of ${n} clients ready in ${(first.ms / 1000).toFixed(2)} s${first.failed ? `, ${first.failed} failed (${first.firstError})` : ''}`);
      await sleep(2000); // let allocation settle before reading RSS
      const after = rssKb(pooler.pid) ?? NaN;
      loader.stdin!.end();
      const second = JSON.parse(await nextLine(30_000).catch(() => '{}')) as { lost?: number };
      const res: IdleResult = {
        pooler: kind,
        clients: n,
        ok: first.failed === 0 && pooler.alive,
        ready: first.ready,
        failed: first.failed,
        acceptMs: first.ms,
        rssBeforeKb: before,
        rssAfterKb: after,
        bytesPerClient: first.ready > 0 ? ((after - before) * 1024) / first.ready : undefined,
        lost: second.lost,
      };
      if (first.failed) res.error = `${first.failed} connections failed: ${first.firstError}`;
      if (!pooler.alive) res.error = `${pooler.name} ${pooler.exitReason} during the test`;
      return res;
    } finally {
      await stopChild(loader, 'SIGKILL');
    }
  } finally {
    await pooler.stop();
  }
}
