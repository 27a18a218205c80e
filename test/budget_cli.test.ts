// `sluice budget` end to end: the README example pinned byte for byte, the
// infeasible path, JSON, bad flags, and --from against a real PostgreSQL.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { main } from '../src/cli/budget.js';
import { startPostgres } from './harness/postgres.js';

const fixtures = new URL('../../test/fixtures/budget/', import.meta.url);
const fixture = (name: string): string => readFileSync(new URL(name, fixtures), 'utf8');

async function budget(argv: string[], isTTY = false): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (d) => (stdout += d));
  err.on('data', (d) => (stderr += d));
  const code = await main(argv, { stdout: out, stderr: err, isTTY });
  return { code, stdout, stderr };
}

const readmeArgs = fixture('readme-example.args').trim().split(/\s+/);

test('README example: exact output, and docs/budget.md quotes it verbatim', async () => {
  const r = await budget(readmeArgs);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, fixture('readme-example.txt'));
  const doc = readFileSync(new URL('../../docs/budget.md', import.meta.url), 'utf8');
  assert.ok(doc.includes('$ sluice budget ' + readmeArgs.join(' ')), 'docs/budget.md shows the command');
  assert.ok(doc.includes(r.stdout), 'docs/budget.md shows the current output');
});

test('README example without a pooler: exit 1, says by how much and what to change', async () => {
  const r = await budget(['--max-connections', '25', '--reserve', '2', '--surge', '1', '--env', 'prod:serverless=50,weight=3', '--env', 'staging:instances=1', '--env', 'ci:fixed=2']);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, fixture('readme-example-no-pooler.txt'));
  assert.match(r.stderr, /short by 34/);
  assert.match(r.stderr, /--pooler sluice/);
});

test('terminal output is box-drawn, piped output is not', async () => {
  const tty = await budget(readmeArgs, true);
  assert.match(tty.stdout, /┌─/);
  assert.doesNotMatch(fixture('readme-example.txt'), /[┌│└]/);
});

test('--json: the plan for machines', async () => {
  const r = await budget([...readmeArgs, '--json']);
  assert.equal(r.code, 0);
  const j = JSON.parse(r.stdout) as { ok: boolean; plan: { allocated: number; available: number; environments: { name: string; serverConnections: number; settings: { prismaUrl: { connection_limit: number } } }[]; poolerSettings: { max_client_conn: number } } };
  assert.equal(j.ok, true);
  assert.equal(j.plan.available, 20);
  assert.equal(j.plan.allocated, 20);
  assert.deepEqual(j.plan.environments.map((e) => [e.name, e.serverConnections]), [['prod', 14], ['staging', 4], ['ci', 2]]);
  assert.equal(j.plan.environments[0]?.settings.prismaUrl.connection_limit, 1);
  assert.equal(j.plan.poolerSettings.max_client_conn, 58);
  const bad = await budget(['--max-connections', '5', '--env', 'a:instances=9', '--json']);
  assert.equal(bad.code, 1);
  const e = JSON.parse(bad.stdout) as { ok: boolean; error: { code: string; shortBy: number } };
  assert.deepEqual([e.ok, e.error.code, e.error.shortBy], [false, 'SLUICE_BUDGET_INFEASIBLE', 7]);
});

test('bad usage exits 2 with a message', async () => {
  for (const argv of [
    ['--env', 'a:instances=2'],
    ['--max-connections', '10'],
    ['--max-connections', '10', '--env', 'a:instances=2,colour=red'],
    ['--max-connections', '10', '--env', 'a'],
    ['--max-connections', '10', '--env', 'a:fixed=2,serverless=3'],
    ['--max-connections', '10', '--env', 'a:instances=2', '--surge', '150%'],
    ['--max-connections', '10', '--env', 'a:instances=2', '--timeout', '5'],
    ['--max-connections', 'ten', '--env', 'a:instances=2'],
    ['--max-connections', '10', '--env', 'a:instances=2', '--pooler', 'odyssey'],
  ]) {
    const r = await budget(argv);
    assert.equal(r.code, 2, argv.join(' '));
    assert.match(r.stderr, /^sluice budget: /, argv.join(' '));
  }
});

test('--from reads the limits from a live server', async () => {
  const pgsrv = await startPostgres({ conf: { max_connections: 40, superuser_reserved_connections: 2 } });
  after(() => pgsrv.stop());
  const r = await budget(['--from', pgsrv.url(), '--env', 'app:instances=2', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { plan: { maxConnections: number; superuserReservedConnections: number; reservedConnections: number; available: number } };
  assert.deepEqual([j.plan.maxConnections, j.plan.superuserReservedConnections, j.plan.reservedConnections, j.plan.available], [40, 2, 0, 38]);
  const down = await budget(['--from', 'postgres://nobody@127.0.0.1:1/x', '--env', 'app:instances=2']);
  assert.equal(down.code, 2);
  assert.match(down.stderr, /cannot read limits/);
});
