// `sluice doctor` through Sluice: it must see the pooler (admin console
// SHOW VERSION / SHOW CONFIG, and backends shared between clients) and its mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runDoctor } from '../src/cli/doctor.js';
import { startPostgres } from './harness/postgres.js';
import { startSluice } from './harness/sluice.js';

test('through Sluice in transaction mode: shared backends reveal a transaction pooler', async (t) => {
  const pgsrv = await startPostgres();
  t.after(() => pgsrv.stop());
  const sluice = await startSluice({ pg: pgsrv, settings: { pool_mode: 'transaction', default_pool_size: 4 } });
  t.after(() => sluice.stop());
  const r = await runDoctor({ url: sluice.url() });
  assert.equal(r.checks.find((c) => c.id === 'connection')?.ok, true);
  assert.ok(r.pooler?.pidsShared || new Set(r.pooler?.pids).size > 1, JSON.stringify(r.pooler));
  assert.equal(r.pooler?.poolMode, 'transaction');
  assert.equal(r.pooler?.kind, 'sluice', JSON.stringify(r.pooler));
});

// Identity and session mode need the admin console (SHOW VERSION / SHOW CONFIG):
// a session-mode pooler behaves exactly like a direct connection otherwise.
for (const mode of ['transaction', 'session'] as const) {
  test(`identifies Sluice in ${mode} mode through the admin console`, async (t) => {
    const pgsrv = await startPostgres();
    t.after(() => pgsrv.stop());
    const sluice = await startSluice({ pg: pgsrv, settings: { pool_mode: mode, admin_users: 'postgres', default_pool_size: 4 } });
    t.after(() => sluice.stop());
    const r = await runDoctor({ url: sluice.url() });
    assert.equal(r.pooler?.kind, 'sluice', JSON.stringify(r.pooler));
    assert.match(r.pooler?.version ?? '', /^Sluice /);
    assert.equal(r.pooler?.poolMode, mode);
    const c = r.checks.find((x) => x.id === 'pooler');
    assert.match(c?.detail ?? '', new RegExp(`pool_mode=${mode}`));
    assert.match(c?.detail ?? '', mode === 'transaction' ? /prepared statements are emulated/ : /Session mode/);
  });
}

test('a direct connection is not mistaken for a pooler', async (t) => {
  const pgsrv = await startPostgres();
  t.after(() => pgsrv.stop());
  const r = await runDoctor({ url: pgsrv.url() });
  assert.equal(r.pooler?.kind, 'none');
  assert.equal(r.pooler?.pidsShared, false);
  assert.equal(new Set(r.pooler?.pids).size, 1);
  assert.equal(r.pooler?.admin.reachable, false);
});
