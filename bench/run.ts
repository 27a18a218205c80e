// `npm run bench`: Sluice next to PgBouncer and direct PostgreSQL connections.
// See HELP below and docs/benchmarks.md. A script, not a test: it asserts nothing.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fdLimits, killAllNow, which } from './lib.js';
import { buildMatrix, renderMatrix, runMatrix, summariseCells, type CellSummary, type RunRecord, type TargetName } from './matrix.js';
import type { Protocol, Workload } from './pgbench.js';
import { idleLimitReason, runIdle, type IdleResult } from './idle.js';
import { runLatency, type LatencySummary } from './latency.js';
import { runFloor, type FloorSummary } from './floor.js';
import { runInstructions, valgrindAvailable, VALGRIND_MISSING, type InstructionTarget } from './instructions.js';
import { commandLine, describeMachine, fmt, machineLines, markdownTable, RESULTS_DIR, writeMarkdownSection, type Machine } from './report.js';
import { PGBOUNCER_MISSING, Pooler, SLUICE_MAIN, initPgbench, pgbouncerPath, startCluster, type PoolMode, type PoolerKind, type ClusterSetup } from './targets.js';

const HELP = `npm run bench [-- options]

Runs pgbench against direct PostgreSQL, PgBouncer and Sluice, interleaved, and
prints one table (tps, avg/p99 latency, pooler CPU µs per transaction, RSS,
Sluice/PgBouncer and Sluice/direct ratios). JSON goes to bench/results/, the
table to BENCHMARKS.md (full runs only, unless --md).

  --quick                 short run: -T 2, 1 repetition, scale 1, no 1000-client cells
  --idle                  idle scale instead: 10,000 idle clients (and 50,000 if the fd limit allows)
  --latency               latency instead: 1 client, 10,000 SELECT 1, -M extended
  --floor                 the Node.js floor instead: login-only churn and select-only through
                          PgBouncer, Sluice and a minimal Node.js server, CPU split into user
                          and system time
  --instructions          instructions instead: user-space instructions per transaction of
                          PgBouncer, Sluice and the Node.js floor under valgrind (callgrind),
                          login-only churn, churn (-C -S) and select-only; steady on a noisy machine
  --only LIST             workloads: select-only,tpcb,churn
  --mode LIST             pool modes: transaction,session
  --clients LIST          client counts, e.g. 50,200 (taken literally)
  --protocol LIST         simple,extended,prepared (taken literally)
  --targets LIST          direct,pgbouncer,sluice
  --reps N                repetitions per cell (median reported); default 3, quick 1
  --duration S            pgbench -T seconds; default 5, quick 2
  --scale N               pgbench -i scale; default 10, quick 1
  --pool-size N           default_pool_size for both poolers; default 20
  --idle-clients N        idle clients for --idle; default 10000
  --sluice-node-args STR  extra node flags for the Sluice process, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
  --sluice-main FILE      run another build of Sluice (its dist/src/cli/main.js), e.g. a baseline checkout
  --sluice-label TEXT     how to name that build in the output (e.g. "commit abc123, clean checkout")
  --md / --no-md          force / suppress rewriting BENCHMARKS.md
  --keep                  keep the temporary directory (configs, logs)
`;

function list<T extends string>(value: string | undefined, allowed: readonly T[], fallback: readonly T[], flag: string): T[] {
  if (!value) return [...fallback];
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const i of items) if (!allowed.includes(i as T)) throw new Error(`${flag}: "${i}" is not one of ${allowed.join(', ')}`);
  return items as T[];
}

function positiveInt(value: string | undefined, fallback: number, flag: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag} wants a positive integer, got "${value}"`);
  return n;
}

const argv = process.argv.slice(2);
const { values: flags } = parseArgs({
  args: argv,
  options: {
    quick: { type: 'boolean' },
    idle: { type: 'boolean' },
    latency: { type: 'boolean' },
    floor: { type: 'boolean' },
    instructions: { type: 'boolean' },
    only: { type: 'string' },
    mode: { type: 'string' },
    clients: { type: 'string' },
    protocol: { type: 'string' },
    targets: { type: 'string' },
    reps: { type: 'string' },
    duration: { type: 'string' },
    scale: { type: 'string' },
    'pool-size': { type: 'string' },
    'idle-clients': { type: 'string' },
    'sluice-node-args': { type: 'string' },
    'sluice-main': { type: 'string' },
    'sluice-label': { type: 'string' },
    md: { type: 'boolean' },
    'no-md': { type: 'boolean' },
    keep: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});

const sluiceMain = flags['sluice-main'] ? path.resolve(flags['sluice-main']) : SLUICE_MAIN;
const log = (line: string) => process.stderr.write(line + '\n');
const out = (text: string) => process.stdout.write(text + '\n');

// Everything we start is tracked; Ctrl-C and crashes stop it all.
const cleanups: (() => Promise<void>)[] = [];
let workDir = '';
let cleaning = false;
async function cleanup(): Promise<void> {
  if (cleaning) return;
  cleaning = true;
  for (const c of cleanups.reverse()) await c().catch(() => {});
  killAllNow();
  if (workDir && !flags.keep) rmSync(workDir, { recursive: true, force: true });
  else if (workDir) log(`kept ${workDir}`);
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    log(`\n${sig}: stopping PostgreSQL, PgBouncer and Sluice…`);
    // pgbench, the poolers and the load generator go at once; PostgreSQL gets a fast shutdown.
    killAllNow();
    void cleanup().finally(() => process.exit(130));
  });
}
process.once('exit', () => killAllNow());

const now = new Date();
const stamp = now.toISOString().replace(/[:.]/g, '-');
const dateText = now.toISOString().replace('T', ' ').slice(0, 16) + ' UTC';

function writeJson(kind: string, data: unknown): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${stamp}${kind ? '-' + kind : ''}.json`);
  writeFileSync(file, JSON.stringify(data, null, 2) + '\n');
  return file;
}

async function setup(maxConnections: number): Promise<{ setup: ClusterSetup; machine: Machine; pgbouncer: string | null }> {
  if (!which('pgbench')) throw new Error('pgbench is not installed (Debian: apt-get install -y postgresql-client)');
  if (!existsSync(sluiceMain)) throw new Error(`${sluiceMain} is missing: run npm run build first`);
  workDir = mkdtempSync(path.join(os.tmpdir(), 'sluice-bench-'));
  chmodSync(workDir, 0o755); // PostgreSQL and PgBouncer run as the postgres OS user when we are root
  const pgbouncer = pgbouncerPath();
  if (!pgbouncer) log(PGBOUNCER_MISSING);
  const s = await startCluster(workDir, maxConnections);
  cleanups.push(() => s.cluster.stop('fast'));
  const machine = describeMachine(s.cluster.binaries.postgres, pgbouncer, flags['sluice-main'] ? sluiceMain : undefined);
  if (flags['sluice-label']) machine.sluiceCommit = `${flags['sluice-label']} (${sluiceMain})`;
  log(`PostgreSQL on port ${s.cluster.port} (fsync=off, synchronous_commit=off, full_page_writes=off, autovacuum=off, max_connections=${s.maxConnections}) in ${workDir}`);
  return { setup: s, machine, pgbouncer };
}

async function startPooler(kind: PoolerKind, mode: PoolMode, pgPort: number, poolSize: number, notes: string[]): Promise<Pooler | null> {
  const nodeArgs = flags['sluice-node-args']?.split(/\s+/).filter(Boolean);
  const p = new Pooler({ kind, mode, dir: workDir, pgPort, poolSize, maxClientConn: 2000, nodeArgs: kind === 'sluice' ? nodeArgs : undefined, sluiceMain });
  try {
    await p.start();
    cleanups.push(() => p.stop());
    log(`${p.name} on port ${p.port} (pid ${p.pid})`);
    return p;
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    notes.push(`${p.name} did not start, so its cells are missing: ${msg.split('\n')[0]}`);
    log(msg);
    return null;
  }
}

/** PgBouncer (when installed) and Sluice in transaction mode, for the single-mode runs. */
async function startTransactionPoolers(pgPort: number, poolSize: number, pgbouncer: string | null, notes: string[]): Promise<Pooler[]> {
  if (!pgbouncer) notes.push(PGBOUNCER_MISSING);
  const poolers: Pooler[] = [];
  for (const kind of ['pgbouncer', 'sluice'] as const) {
    if (kind === 'pgbouncer' && !pgbouncer) continue;
    const p = await startPooler(kind, 'transaction', pgPort, poolSize, notes);
    if (p) poolers.push(p);
  }
  return poolers;
}

async function matrixMain(): Promise<void> {
  const quick = !!flags.quick;
  const explicitClients = !!flags.clients;
  const clients = flags.clients
    ? flags.clients.split(',').map((c) => positiveInt(c.trim(), 0, '--clients'))
    : quick
      ? [10, 50, 200]
      : [10, 50, 200, 1000];
  const poolSize = positiveInt(flags['pool-size'], 20, '--pool-size');
  const sel = {
    modes: list<PoolMode>(flags.mode, ['transaction', 'session'], ['transaction', 'session'], '--mode'),
    workloads: list<Workload>(flags.only, ['select-only', 'tpcb', 'churn'], ['select-only', 'tpcb', 'churn'], '--only'),
    protocols: list<Protocol>(flags.protocol, ['simple', 'extended', 'prepared'], ['simple', 'extended', 'prepared'], '--protocol'),
    clients,
    explicitProtocols: !!flags.protocol,
    explicitClients,
    poolSize,
  };
  let targets = list<TargetName>(flags.targets, ['direct', 'pgbouncer', 'sluice'], ['direct', 'pgbouncer', 'sluice'], '--targets');
  const reps = positiveInt(flags.reps, quick ? 1 : 3, '--reps');
  const duration = positiveInt(flags.duration, quick ? 2 : 5, '--duration');
  const scale = positiveInt(flags.scale, quick ? 1 : 10, '--scale');
  const subset = !!(flags.only || flags.mode || flags.clients || flags.protocol || flags.targets || flags.reps || flags.duration || flags.scale || flags['pool-size'] || flags['sluice-node-args'] || flags['sluice-main']);
  const { cells, skipped } = buildMatrix(sel);
  if (cells.length === 0) throw new Error(`no cells selected${skipped.length ? ': ' + skipped.join('; ') : ''}`);
  const notes: string[] = [...skipped];

  const maxClients = Math.max(...cells.map((c) => c.clients));
  const want = targets.includes('direct') ? Math.max(300, maxClients + 4 * poolSize + 40) : 4 * poolSize + 50;
  const { setup: s, machine, pgbouncer } = await setup(want);
  const pgPort = s.cluster.port;
  // Leave room for the server connections the idle poolers hold.
  const maxDirectClients = s.maxConnections - 4 * poolSize - 10;
  if (s.directLimitNote) notes.push(s.directLimitNote);
  if (targets.includes('direct') && cells.some((c) => c.clients > maxDirectClients)) notes.push(`direct cells above ${maxDirectClients} clients are not run (max_connections=${s.maxConnections})`);
  if (!pgbouncer && targets.includes('pgbouncer')) {
    notes.push(PGBOUNCER_MISSING);
    targets = targets.filter((t) => t !== 'pgbouncer');
  }
  log(`pgbench -i -s ${scale} …`);
  const initMs = await initPgbench(pgPort, scale);
  log(`initialised in ${(initMs / 1000).toFixed(1)} s`);

  const poolers = new Map<string, Pooler>();
  for (const mode of sel.modes) {
    if (!cells.some((c) => c.mode === mode)) continue;
    for (const kind of ['pgbouncer', 'sluice'] as const) {
      if (!targets.includes(kind)) continue;
      const p = await startPooler(kind, mode, pgPort, poolSize, notes);
      if (p) poolers.set(p.name, p);
    }
  }

  const t0 = Date.now();
  const records = await runMatrix(cells, { pgPort, poolers, targets, duration, reps, workDir, maxDirectClients, log });
  const elapsed = (Date.now() - t0) / 1000;
  for (const p of poolers.values()) if (p.restarts) notes.push(`${p.name} was restarted ${p.restarts} time(s) during the run (crash or hang); see the failures above`);

  const summaries = summariseCells(cells, records);
  const { table, notes: failures } = renderMatrix(summaries);
  const command = commandLine(argv);
  const settings =
    `pgbench -n -T ${duration} -j 2 (at 500+ clients -t 40 per client, TPC-B -t 10, since -T includes connecting), scale ${scale}, ${reps} run(s) per cell, medians; ` +
    `both poolers: default_pool_size=${poolSize}, max_client_conn=2000, auth_type=trust, server_tls_sslmode=disable, log_connections/log_disconnections off; ` +
    `PostgreSQL: fsync=off, synchronous_commit=off, full_page_writes=off, autovacuum=off, shared_buffers=256MB, max_connections=${s.maxConnections}. ` +
    `Targets run interleaved (order rotated per cell and repetition); direct figures are shared by the transaction and session rows of the same test. ` +
    `CPU µs/tx = pooler process utime+stime (from /proc/<pid>/stat) over the run ÷ transactions; RSS = VmRSS after the run; p99 from pgbench per-transaction logs.`;
  const headline = headlineLines(summaries);
  const allNotes = [...failures.map((f, i) => `[${i + 1}] ${f}`), ...notes];

  out('');
  out(`Sluice benchmark — ${dateText} — ${command} (${(elapsed / 60).toFixed(1)} min of pgbench)`);
  for (const l of machineLines(machine)) out(l);
  out('PostgreSQL runs with fsync=off (a throw-away cluster): figures are for the pooler path, not durability.');
  out('');
  out(table);
  out('');
  for (const l of headline) out(l);
  if (allNotes.length) out('\nNotes:\n' + allNotes.map((n) => `- ${n}`).join('\n'));

  const file = writeJson('', { kind: 'matrix', date: now.toISOString(), command, machine, settings, selection: sel, reps, duration, scale, notes: allNotes, cells: summaries, runs: records });
  out(`\nJSON: ${path.relative(process.cwd(), file)}`);

  const writeMd = flags['no-md'] ? false : (flags.md ?? (!quick && !subset));
  if (writeMd) {
    writeMarkdownSection(
      'matrix',
      [
        '## Throughput, latency, CPU and memory',
        '',
        `Measured ${dateText} with \`${command}\` (${(elapsed / 60).toFixed(1)} min of pgbench).`,
        '',
        ...machineLines(machine),
        `- Settings: ${settings}`,
        '',
        '**PostgreSQL ran with fsync off**: these figures compare pooler paths, not durable commits.',
        '',
        table,
        '',
        'Columns: d = direct, P = PgBouncer, S = Sluice. S/PgB and S/direct are tps ratios (shown only when both sides succeeded in every run).',
        '',
        ...headline,
        ...(allNotes.length ? ['', 'Notes:', '', ...allNotes.map((n) => `- ${n}`)] : []),
      ].join('\n'),
    );
    out(`BENCHMARKS.md updated`);
  } else {
    out(`BENCHMARKS.md not touched (${quick ? '--quick' : 'a subset'} run; pass --md to write it)`);
  }
}

/** The figures the targets are read from. */
function headlineLines(summaries: readonly CellSummary[]): string[] {
  const lines: string[] = [];
  for (const c of summaries) {
    if (c.mode !== 'transaction' || c.workload !== 'select-only' || c.protocol !== 'simple' || (c.clients !== 50 && c.clients !== 200)) continue;
    lines.push(
      `- Transaction mode, select-only, -M simple, ${c.clients} clients: Sluice/PgBouncer ${fmt.ratio(c.sluiceOverPgbouncer)}, Sluice/direct ${fmt.ratio(c.sluiceOverDirect)}; ` +
        `CPU per transaction PgBouncer ${fmt.us(c.pgbouncer?.cpuUsPerTx)} µs, Sluice ${fmt.us(c.sluice?.cpuUsPerTx)} µs; ` +
        `p99 PgBouncer ${fmt.ms(c.pgbouncer?.p99Ms)} ms, Sluice ${fmt.ms(c.sluice?.p99Ms)} ms`,
    );
  }
  for (const c of summaries) {
    if (c.mode !== 'transaction' || c.workload !== 'churn') continue;
    lines.push(`- Connection churn (-C), transaction mode, ${c.clients} clients: Sluice/PgBouncer ${fmt.ratio(c.sluiceOverPgbouncer)}`);
  }
  return lines.length ? ['Headline (issue 9 targets):', '', ...lines] : [];
}

async function idleMain(): Promise<void> {
  const quick = !!flags.quick;
  const n = positiveInt(flags['idle-clients'], quick ? 2000 : 10_000, '--idle-clients');
  const poolSize = positiveInt(flags['pool-size'], 20, '--pool-size');
  const { setup: s, machine, pgbouncer } = await setup(4 * poolSize + 50);
  const { psql } = await import('./targets.js');
  await psql(s.cluster.port, 'postgres', 'CREATE DATABASE bench');
  const { soft, hard } = fdLimits();
  log(`open-file limit: soft ${soft}, hard ${hard} (children get the hard limit)`);
  const results: IdleResult[] = [];
  const notes: string[] = [];
  const sizes = flags['idle-clients'] ? [n] : [n, 50_000];
  let run = 0;
  for (const size of sizes) {
    const why = idleLimitReason(size);
    if (why) {
      const text =
        `${size.toLocaleString('en-US')} idle clients not tried: ${why}` +
        (size > 28_000 ? '; beyond ~25,000 the load generator also spreads over several loopback source addresses, since one address has 28,232 ephemeral ports (32768–60999)' : '');
      notes.push(text);
      log(text);
      continue;
    }
    for (const kind of ['sluice', 'pgbouncer'] as const) {
      if (kind === 'pgbouncer' && !pgbouncer) {
        if (size === sizes[0]) notes.push(PGBOUNCER_MISSING);
        continue;
      }
      log(`idle: ${size} clients through ${kind}…`);
      try {
        results.push(await runIdle(kind, size, { dir: workDir, pgPort: s.cluster.port, poolSize, nodeArgs: flags['sluice-node-args']?.split(/\s+/).filter(Boolean), sluiceMain, run: run++, log }));
      } catch (err) {
        results.push({ pooler: kind, clients: size, ok: false, error: err instanceof Error ? err.message.split('\n')[0] : String(err) });
      }
    }
  }
  const command = commandLine(argv);
  const table = markdownTable(
    ['pooler', 'clients', 'ready', 'time to accept all', 'conn/s', 'RSS before MB', 'RSS after MB', 'RSS per client', 'result'],
    results.map((r) => [
      r.pooler === 'sluice' ? 'Sluice' : 'PgBouncer',
      r.clients.toLocaleString('en-US'),
      r.ready !== undefined ? r.ready.toLocaleString('en-US') : '–',
      r.acceptMs !== undefined ? `${(r.acceptMs / 1000).toFixed(2)} s` : '–',
      r.acceptMs && r.ready ? Math.round(r.ready / (r.acceptMs / 1000)).toLocaleString('en-US') : '–',
      fmt.mb(r.rssBeforeKb),
      fmt.mb(r.rssAfterKb),
      r.bytesPerClient !== undefined ? `${(r.bytesPerClient / 1024).toFixed(2)} kB` : '–',
      r.ok ? 'ok' + (r.lost ? ` (${r.lost} dropped while idle)` : '') : `FAIL: ${r.error}`,
    ]),
    [false, true, true, true, true, true, true, true, false],
  );
  out('');
  out(`Idle scale — ${dateText} — ${command}`);
  for (const l of machineLines(machine)) out(l);
  out('');
  out(table);
  if (notes.length) out('\nNotes:\n' + notes.map((x) => `- ${x}`).join('\n'));
  const file = writeJson('idle', { kind: 'idle', date: now.toISOString(), command, machine, fdLimits: { soft, hard }, results, notes });
  out(`\nJSON: ${path.relative(process.cwd(), file)}`);
  const writeMd = flags['no-md'] ? false : (flags.md ?? !quick);
  if (writeMd) {
    writeMarkdownSection(
      'idle',
      [
        '## Idle clients',
        '',
        `Measured ${dateText} with \`${command}\`: a separate Node.js process opens raw sockets on loopback, ` +
          'sends a StartupMessage on each and reads until ReadyForQuery (200 handshakes in flight), then holds them idle. ' +
          'RSS per client = (pooler VmRSS 2 s after the last ReadyForQuery − VmRSS before) ÷ clients. Transaction mode, auth_type=trust.',
        '',
        ...machineLines(machine),
        `- Open-file limit: soft ${soft}, hard ${hard}`,
        '',
        table,
        ...(notes.length ? ['', ...notes.map((x) => `- ${x}`)] : []),
      ].join('\n'),
    );
    out('BENCHMARKS.md updated');
  }
}

async function latencyMain(): Promise<void> {
  const quick = !!flags.quick;
  const reps = positiveInt(flags.reps, quick ? 1 : 3, '--reps');
  const transactions = quick ? 2000 : 10_000;
  const poolSize = positiveInt(flags['pool-size'], 20, '--pool-size');
  const { setup: s, machine, pgbouncer } = await setup(4 * poolSize + 50);
  const { psql } = await import('./targets.js');
  await psql(s.cluster.port, 'postgres', 'CREATE DATABASE bench');
  const notes: string[] = [];
  const poolers = await startTransactionPoolers(s.cluster.port, poolSize, pgbouncer, notes);
  const { runs, summary } = await runLatency({ pgPort: s.cluster.port, poolers, reps, transactions, workDir, log });
  const us = (v: number | undefined) => (v === undefined ? '–' : `${v.toFixed(0)} µs`);
  const name = (t: TargetName) => (t === 'direct' ? 'direct' : t === 'sluice' ? 'Sluice' : 'PgBouncer');
  const table = markdownTable(
    ['target', 'p50', 'p99', 'avg', 'added p50', 'added p99', 'pooler CPU µs/tx', 'result'],
    summary.map((r: LatencySummary) => [
      name(r.target),
      us(r.p50Us),
      us(r.p99Us),
      us(r.avgUs),
      r.addedP50Us !== undefined ? `${r.addedP50Us >= 0 ? '+' : ''}${r.addedP50Us.toFixed(0)} µs` : '–',
      r.addedP99Us !== undefined ? `${r.addedP99Us >= 0 ? '+' : ''}${r.addedP99Us.toFixed(0)} µs` : '–',
      fmt.us(r.cpuUsPerTx),
      r.ok ? 'ok' : `FAIL: ${r.error}`,
    ]),
    [false, true, true, true, true, true, true, false],
  );
  const how = `pgbench -n -c 1 -j 1 -t ${transactions} -M extended -f select1.sql (SELECT 1) with per-transaction logs, after 1,000 unrecorded warm-up transactions per target; ${reps} run(s) per target, interleaved, medians; transaction mode; latency resolution 1 µs`;
  publish({
    kind: 'latency',
    machine,
    title: 'Latency overhead',
    heading: 'Added latency',
    how,
    after: '"added" = target − direct. PostgreSQL fsync=off.',
    table,
    notes,
    data: { summary, runs },
  });
}

async function floorMain(): Promise<void> {
  const quick = !!flags.quick;
  const reps = positiveInt(flags.reps, quick ? 1 : 3, '--reps');
  const duration = positiveInt(flags.duration, quick ? 2 : 5, '--duration');
  const poolSize = positiveInt(flags['pool-size'], 20, '--pool-size');
  // The proxy's connections and the servers both poolers hold.
  const { setup: s, machine, pgbouncer } = await setup(3 * poolSize + 50);
  await initPgbench(s.cluster.port, 1);
  const notes: string[] = [];
  const poolers = await startTransactionPoolers(s.cluster.port, poolSize, pgbouncer, notes);
  const { runs, summary } = await runFloor({ pgPort: s.cluster.port, poolers, reps, duration, poolSize, workDir, log });
  const name = (t: FloorSummary['target']) => (t === 'node-floor' ? 'Node.js floor' : t === 'sluice' ? 'Sluice' : 'PgBouncer');
  const table = markdownTable(
    ['workload', 'target', 'tps', 'user µs/tx', 'system µs/tx', 'result'],
    summary.map((r) => [
      r.workload,
      name(r.target),
      r.tps === undefined ? '–' : r.tps.toFixed(0),
      fmt.us(r.userUsPerTx),
      fmt.us(r.systemUsPerTx),
      r.ok ? 'ok' : `FAIL: ${r.error}`,
    ]),
    [false, false, true, true, true, false],
  );
  const how =
    `pgbench -n -j 2 -T ${duration}, after one unrecorded 2 s run per target; ${reps} run(s) per target, interleaved, medians; ` +
    'login-churn = -C -c 50 with a script of only \\set (connect, log in, Terminate); ' +
    `select-only = -S -c ${poolSize}, as many clients as the pool has servers; PgBouncer and Sluice in transaction mode with default_pool_size=${poolSize}; ` +
    'the Node.js floor is bench/floor_server.ts on raw libuv handles: canned login replies for login-churn, ' +
    'a byte forwarder with one PostgreSQL connection per client for select-only; user and system time of the whole process from /proc/<pid>/stat';
  publish({ kind: 'floor', machine, title: 'Node.js floor', heading: 'Against the Node.js floor', how, table, notes, data: { summary, runs } });
}

async function instructionsMain(): Promise<void> {
  if (!valgrindAvailable()) throw new Error(VALGRIND_MISSING);
  const quick = !!flags.quick;
  // The warm-up must outlast JIT compilation: V8 is still optimizing login code after a few thousand logins.
  const warmup = quick ? 3000 : 15_000;
  const measured = quick ? 1000 : 5000;
  const poolSize = positiveInt(flags['pool-size'], 20, '--pool-size');
  const { setup: s, machine, pgbouncer } = await setup(3 * poolSize + 50);
  await initPgbench(s.cluster.port, 1);
  const notes: string[] = [];
  if (!pgbouncer) notes.push(PGBOUNCER_MISSING);
  const targets: InstructionTarget[] = [...(pgbouncer ? (['pgbouncer'] as const) : []), 'sluice', 'node-floor'];
  const results = await runInstructions({ pgPort: s.cluster.port, targets, poolSize, warmup, measured, sluiceMain, workDir, log });
  const name = (t: InstructionTarget) => (t === 'node-floor' ? 'Node.js floor' : t === 'sluice' ? 'Sluice' : 'PgBouncer');
  const table = markdownTable(
    ['workload', 'target', 'instructions/tx', 'result'],
    results.map((r) => [r.workload, name(r.target), r.perTransaction === undefined ? '–' : Math.round(r.perTransaction).toLocaleString('en-US'), r.ok ? 'ok' : `FAIL: ${r.error}`]),
    [false, false, true, false],
  );
  const how =
    `each target under valgrind --tool=callgrind (pgbench -c 10 -j 2 -t): ${warmup.toLocaleString('en-US')} transactions uncounted, then ${measured.toLocaleString('en-US')} counted ` +
    `(select-only: ${(4 * warmup).toLocaleString('en-US')} and ${(4 * measured).toLocaleString('en-US')}) ` +
    '(callgrind_control -i on/off); instructions/tx = the counted total over those transactions, every thread of the process, user space only (no kernel, no cache misses); ' +
    'login = -C with a script of only \\set (connect, log in, Terminate); churn = -C -S; select-only = -S; transaction mode, default_pool_size=' +
    `${poolSize}; the Node.js floor is bench/floor_server.ts (canned logins for login, a byte forwarder for select-only; none for churn, where it would measure PostgreSQL's logins)`;
  publish({ kind: 'instructions', machine, title: 'Instructions per transaction', heading: 'Instructions per transaction', how, table, notes, data: { results } });
}

/** Prints a run's table, writes its JSON, and (full runs, or --md) its BENCHMARKS.md section. */
function publish(r: {
  kind: 'latency' | 'floor' | 'instructions';
  machine: Machine;
  title: string;
  heading: string;
  how: string;
  after?: string;
  table: string;
  notes: string[];
  data: object;
}): void {
  const command = commandLine(argv);
  out('');
  out(`${r.title} — ${dateText} — ${command}`);
  for (const l of machineLines(r.machine)) out(l);
  out(`- ${r.how}`);
  out('');
  out(r.table);
  if (r.notes.length) out('\nNotes:\n' + r.notes.map((x) => `- ${x}`).join('\n'));
  const file = writeJson(r.kind, { kind: r.kind, date: now.toISOString(), command, machine: r.machine, how: r.how, ...r.data, notes: r.notes });
  out(`\nJSON: ${path.relative(process.cwd(), file)}`);
  const writeMd = flags['no-md'] ? false : (flags.md ?? !flags.quick);
  if (!writeMd) return;
  writeMarkdownSection(
    r.kind,
    [
      `## ${r.heading}`,
      '',
      `Measured ${dateText} with \`${command}\`: ${r.how}.${r.after ? ' ' + r.after : ''}`,
      '',
      ...machineLines(r.machine),
      '',
      r.table,
      ...(r.notes.length ? ['', ...r.notes.map((x) => `- ${x}`)] : []),
    ].join('\n'),
  );
  out('BENCHMARKS.md updated');
}

async function main(): Promise<number> {
  if (flags.help) {
    out(HELP);
    return 0;
  }
  if (flags.instructions) {
    await instructionsMain();
  } else if (flags.floor) {
    await floorMain();
  } else if (flags.idle || flags.latency) {
    if (flags.idle) {
      await idleMain();
      await cleanup();
      cleaning = false;
      cleanups.length = 0;
    }
    if (flags.latency) await latencyMain();
  } else {
    await matrixMain();
  }
  return 0;
}

main()
  .then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      log(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      process.exitCode = 1;
    },
  )
  .finally(() => cleanup());
