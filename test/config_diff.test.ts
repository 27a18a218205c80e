import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildConfig } from '../src/config/load.js';
import { diffConfig } from '../src/config/diff.js';

const base = {
  settings: { pool_mode: 'transaction', listen_port: 6432, auth_type: 'md5', auth_file: 'u.txt' },
  databases: { app: 'host=db1 password=old user=u', gone: 'host=x' },
  users: { bob: 'pool_size=2' },
  userlistText: '"bob" "secret1"\n"carol" "x"\n',
};

test('identical configs have no changes', () => {
  assert.deepEqual(diffConfig(buildConfig(base), buildConfig(base)), []);
});

test('settings, databases, users and userlist changes; reloadable flags; no secrets', () => {
  const next = buildConfig({
    settings: { ...base.settings, pool_mode: 'session', listen_port: 7000, query_wait_timeout: 2.5, syslog_ident: 'x' },
    databases: { app: 'host=db2 password=new user=u', added: 'host=y' },
    users: { bob: 'pool_size=3' },
    userlistText: '"bob" "secret2"\n"dave" "y"\n',
  });
  const changes = diffConfig(buildConfig(base), next);
  const find = (section: string, key: string) => changes.find((c) => c.section === section && c.key === key);

  assert.deepEqual(find('pgbouncer', 'pool_mode'), { section: 'pgbouncer', key: 'pool_mode', old: 'transaction', new: 'session', reloadable: true });
  assert.deepEqual(find('pgbouncer', 'listen_port'), { section: 'pgbouncer', key: 'listen_port', old: '6432', new: '7000', reloadable: false });
  assert.equal(find('pgbouncer', 'query_wait_timeout')?.new, '2.5');
  assert.deepEqual(find('pgbouncer', 'syslog_ident'), { section: 'pgbouncer', key: 'syslog_ident', old: undefined, new: 'x', reloadable: true });

  assert.equal(find('databases', 'app')?.old, 'host=db1 user=u password=***');
  assert.equal(find('databases', 'app')?.new, 'host=db2 user=u password=***');
  assert.equal(find('databases', 'gone')?.new, undefined);
  assert.equal(find('databases', 'added')?.old, undefined);
  assert.equal(find('users', 'bob')?.new, 'pool_size=3');

  assert.ok(find('userlist', 'bob'));
  assert.equal(find('userlist', 'carol')?.new, undefined);
  assert.equal(find('userlist', 'dave')?.old, undefined);
  const text = JSON.stringify(changes);
  for (const secret of ['secret1', 'secret2', '=old', '=new']) assert.ok(!text.includes(secret), secret);

  // settings first, alphabetical
  const settingKeys = changes.filter((c) => c.section === 'pgbouncer').map((c) => c.key);
  assert.deepEqual(settingKeys, [...settingKeys].sort());
  assert.equal(changes[0]!.section, 'pgbouncer');
});

test('a password-only change is still reported', () => {
  const a = buildConfig({ databases: { app: 'user=u password=one' }, userlistText: '' , settings: { auth_type: 'trust' } });
  const b = buildConfig({ databases: { app: 'user=u password=two' }, userlistText: '', settings: { auth_type: 'trust' } });
  const changes = diffConfig(a, b);
  assert.equal(changes.length, 1);
  assert.equal(changes[0]!.key, 'app');
});
