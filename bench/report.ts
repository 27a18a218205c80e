// Rendering: the machine description, text tables, and BENCHMARKS.md sections.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Repository root: dist/bench/ is two levels below it. */
export const REPO_ROOT = path.resolve(here, '..', '..');
export const BENCHMARKS_MD = path.join(REPO_ROOT, 'BENCHMARKS.md');
export const RESULTS_DIR = path.join(REPO_ROOT, 'bench', 'results');

export interface Machine {
  nproc: number;
  cpuModel: string;
  memGiB: number;
  node: string;
  postgres: string;
  pgbench: string;
  pgbouncer: string | null;
  sluiceCommit: string;
  loadAvg: string;
}

function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? (r.stdout.split('\n')[0] ?? '').trim() : '';
}

export function describeMachine(postgresBin: string, pgbouncerBin: string | null, sluiceMain?: string): Machine {
  let cpuModel = 'unknown';
  try {
    cpuModel = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpuModel;
  } catch {
    // not Linux
  }
  let commit = 'unknown';
  // A build given with --sluice-main: describe the checkout it lives in.
  const root = sluiceMain ? path.resolve(path.dirname(sluiceMain), '..', '..', '..') : REPO_ROOT;
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    if (dirty) commit += ' + uncommitted changes in src/';
    commit = `commit ${commit}`;
  } catch {
    // not a git checkout
  }
  if (sluiceMain) commit = `${commit === 'unknown' ? '' : commit + ', '}build ${sluiceMain}`;
  return {
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    cpuModel,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    postgres: firstLine(postgresBin, ['--version']),
    pgbench: firstLine('pgbench', ['--version']),
    pgbouncer: pgbouncerBin ? firstLine(pgbouncerBin, ['--version']) : null,
    sluiceCommit: commit,
    loadAvg: os.loadavg().map((l) => l.toFixed(2)).join(' '),
  };
}

export function machineLines(m: Machine): string[] {
  return [
    `- Machine: ${m.nproc} CPUs (${m.cpuModel}), ${m.memGiB} GiB RAM; load average at start ${m.loadAvg}`,
    `- Software: Node.js ${m.node}; ${m.postgres}; ${m.pgbench}; ${m.pgbouncer ?? 'PgBouncer not installed'}`,
    `- Sluice: ${m.sluiceCommit}`,
  ];
}

/** The command line as the user would type it again. */
export function commandLine(argv: readonly string[]): string {
  const quoted = argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`));
  if (process.env.npm_lifecycle_event === 'bench') return `npm run bench${quoted.length ? ' -- ' + quoted.join(' ') : ''}`;
  return `node dist/bench/run.js${quoted.length ? ' ' + quoted.join(' ') : ''}`;
}

/** A Markdown table whose columns are padded, so it also reads well on a terminal. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[], rightAlign: readonly boolean[] = []): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const cell = (s: string, i: number) => (rightAlign[i] ? s.padStart(widths[i]!) : s.padEnd(widths[i]!));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => cell(c, i)).join(' | ')} |`;
  const sep = `|${widths.map((w, i) => (rightAlign[i] ? '-'.repeat(w + 1) + ':' : '-'.repeat(w + 2))).join('|')}|`;
  return [line(header), sep, ...rows.map(line)].join('\n');
}

export const fmt = {
  tps: (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '–' : v >= 100 ? Math.round(v).toString() : v.toFixed(1)),
  ratio: (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(2)),
  ms: (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '–' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3)),
  us: (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '–' : v >= 100 ? v.toFixed(0) : v.toFixed(1)),
  mb: (kb: number | undefined) => (kb === undefined || !Number.isFinite(kb) ? '–' : (kb / 1024).toFixed(1)),
};

const TEMPLATE = `# Benchmarks

Sluice next to PgBouncer and direct connections, measured with \`npm run bench\`
(see [docs/benchmarks.md](docs/benchmarks.md) for what each figure means and how
to measure one cell while optimising). The sections between the \`bench:\`
markers are rewritten by the benchmark; everything else is kept.

<!-- bench:matrix -->
<!-- /bench:matrix -->

<!-- bench:idle -->
<!-- /bench:idle -->

<!-- bench:latency -->
<!-- /bench:latency -->

<!-- bench:floor -->
<!-- /bench:floor -->

<!-- bench:instructions -->
<!-- /bench:instructions -->

## Performance work

What each change bought, in figures (CPU µs per transaction and tps,
transaction mode, select-only, from \`npm run bench -- --only select-only --mode transaction --clients 50,200\`).

| change | Sluice CPU µs/tx | Sluice/PgBouncer tps (50 / 200 clients) |
|---|---:|---:|
`;

/** Replaces one marked section of BENCHMARKS.md, creating the file from the template if needed. */
export function writeMarkdownSection(section: 'matrix' | 'idle' | 'latency' | 'floor' | 'instructions', body: string): void {
  let text = existsSync(BENCHMARKS_MD) ? readFileSync(BENCHMARKS_MD, 'utf8') : TEMPLATE;
  const open = `<!-- bench:${section} -->`;
  const close = `<!-- /bench:${section} -->`;
  const a = text.indexOf(open);
  const b = text.indexOf(close);
  const block = `${open}\n${body.trim()}\n${close}`;
  if (a >= 0 && b > a) text = text.slice(0, a) + block + text.slice(b + close.length);
  else text = text.trimEnd() + `\n\n${block}\n`;
  writeFileSync(BENCHMARKS_MD, text);
}
