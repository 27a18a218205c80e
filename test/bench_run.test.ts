// `npm run bench` itself, in its smallest form: one cell, one repetition, one
// second. Timings are never asserted (they are the benchmark's to report);
// what is checked is that the command sets everything up on its own, runs
// every target, prints the table, writes the JSON and leaves BENCHMARKS.md
// alone, and that a bad option is refused with a clear message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './harness/processes.js';
import { PGBOUNCER_MISSING, pgbouncerPath } from '../bench/targets.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const runJs = join(root, 'dist', 'bench', 'run.js');

test('a one-cell quick bench runs direct, PgBouncer (when installed) and Sluice, prints the table and writes its JSON, BENCHMARKS.md untouched', { timeout: 180_000 }, async () => {
  const benchmarksBefore = readFileSync(join(root, 'BENCHMARKS.md'), 'utf8');
  const args = ['--quick', '--only', 'select-only', '--protocol', 'simple', '--mode', 'transaction', '--clients', '10', '--reps', '1', '--duration', '1'];
  const r = await run(process.execPath, [runJs, ...args], { timeoutMs: 170_000 });
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const row = r.stdout.split('\n').find((l) => /^\| transaction \| select-only \| simple \|\s+10 \|/.test(l));
  assert.ok(row, `a table row for the cell:\n${r.stdout}`);
  const [direct, pgb, sluice] = row.split('|').slice(5, 8).map((c) => c.trim());
  assert.match(direct!, /^\d+$/);
  assert.match(sluice!, /^\d+$/);
  const haveBouncer = pgbouncerPath() !== null;
  if (haveBouncer) assert.match(pgb!, /^\d+$/);
  else assert.ok(r.stdout.includes(PGBOUNCER_MISSING) || r.stderr.includes(PGBOUNCER_MISSING), 'says how to install PgBouncer');
  assert.match(r.stdout, /fsync=off/, 'says PostgreSQL runs without fsync');

  const jsonPath = /JSON: (\S+\.json)/.exec(r.stdout)?.[1];
  assert.ok(jsonPath, 'names its JSON file');
  try {
    const results = JSON.parse(readFileSync(join(root, jsonPath), 'utf8'));
    assert.equal(results.kind, 'matrix');
    assert.equal(results.cells.length, 1);
    const cell = results.cells[0];
    assert.equal(cell.key, 'transaction/select-only/simple/10');
    for (const target of haveBouncer ? ['direct', 'pgbouncer', 'sluice'] : ['direct', 'sluice']) {
      assert.equal(cell[target].failures, 0, `${target} ran without failures`);
      assert.ok(cell[target].tps > 0, `${target} has a tps`);
    }
    assert.ok(cell.sluice.cpuUsPerTx > 0 && cell.sluice.rssKb > 0, 'the pooler CPU per transaction and RSS are measured');
  } finally {
    rmSync(join(root, jsonPath), { force: true });
  }
  assert.equal(readFileSync(join(root, 'BENCHMARKS.md'), 'utf8'), benchmarksBefore, 'a quick run does not rewrite BENCHMARKS.md');
});

test('bench options are checked before anything starts', async () => {
  const r = await run(process.execPath, [runJs, '--reps', '0'], { timeoutMs: 30_000 });
  assert.notEqual(r.code, 0);
  assert.match(r.stdout + r.stderr, /--reps wants a positive integer, got "0"/);
  const w = await run(process.execPath, [runJs, '--only', 'select-only,nonsense'], { timeoutMs: 30_000 });
  assert.notEqual(w.code, 0);
  assert.match(w.stdout + w.stderr, /--only: "nonsense" is not one of select-only, tpcb, churn/);
});
