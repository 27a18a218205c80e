import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildConfig, loadConfig } from '../src/config/load.js';
import { ConfigError } from '../src/config/errors.js';

/** test/fixtures/config, found from dist/test/ at run time. */
const FIXTURES = fileURLToPath(new URL('../../test/fixtures/config/', import.meta.url));

/** Write files into a fresh temp dir; returns the dir. */
function tempFiles(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-config-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

const fixture = join(FIXTURES, 'pgbouncer.ini');

test('loads the realistic fixture', () => {
  const cfg = loadConfig(fixture);
  const s = cfg.settings;
  assert.equal(cfg.file, fixture);
  assert.equal(s.listen_addr, '127.0.0.1,::1');
  assert.equal(s.listen_port, 6543);
  assert.equal(s.unix_socket_dir, '');
  assert.equal(s.auth_type, 'scram-sha-256');
  assert.deepEqual(s.admin_users, ['admin', 'ops']);
  assert.equal(s.pool_mode, 'transaction');
  assert.equal(s.server_reset_query, 'DISCARD ALL'); // outer quotes removed
  assert.equal(s.query_wait_timeout, 30_500);
  assert.equal(s.server_idle_timeout, 300_000);
  assert.deepEqual(s.ignore_startup_parameters, ['extra_float_digits', 'options']);
  assert.equal(s.max_prepared_statements, 500);
  assert.equal(s.log_connections, false);
  assert.equal(s.unix_socket_mode, 0o700);
  assert.equal(s.max_packet_size, 64 * 1024 * 1024);
  assert.equal(s.application_name_add_host, true);
  assert.equal(s.http_listen, '127.0.0.1:9127');
  assert.equal(s.max_ready_wait, 2500);
  assert.equal(s.default_pool_size, 25);
  assert.equal(s.server_check_delay, 30_000); // untouched default

  assert.deepEqual([...cfg.databases.keys()], ['appdb', 'reporting', 'weird "db"', 'legacy', '*', 'analytics']);
  const app = cfg.databases.get('appdb')!;
  assert.equal(app.port, 5433);
  assert.equal(app.dbname, 'app_production');
  assert.equal(app.connect_query, 'SET search_path = app, public');
  assert.equal(app.line, 6);
  const rep = cfg.databases.get('reporting')!;
  assert.equal(rep.password, "p@ss 'word'");
  assert.equal(rep.pool_mode, 'session');
  assert.equal(rep.load_balance_hosts, 'disable');
  const legacy = cfg.databases.get('legacy')!;
  assert.equal(legacy.reserve_pool_size, 3);
  assert.equal(legacy.pin_policy, 'error');
  assert.equal(legacy.server_lifetime, 90_500);
  assert.match(cfg.databases.get('analytics')!.file, /conf\.d\/pools\.ini$/);

  assert.deepEqual([...cfg.users.keys()], ['etl', 'report_ro', 'batch']);
  assert.equal(cfg.users.get('batch')!.query_timeout, 600_000);
  assert.equal(cfg.users.get('batch')!.pin_policy, 'allow');
  assert.equal(cfg.users.get('etl')!.pool_mode, 'statement');

  assert.equal(cfg.peers.get(1)!.host, '/tmp/sluice-1');
  assert.equal(cfg.peers.get(2)!.port, 6432);

  assert.equal(cfg.userlist.size, 5);
  assert.equal(cfg.userlist.get('quo"ted')!.secret, 'pa"ss');
  assert.equal(cfg.userlist.get('app')!.kind, 'scram-sha-256');
  assert.equal(cfg.otherSettings.get('syslog_ident'), 'sluice');
  assert.equal(cfg.files.length, 3);
  assert.match(cfg.files[2]!, /userlist\.txt$/);
});

test('fixture warnings: unsupported key set, md5 secret under scram', () => {
  const cfg = loadConfig(fixture);
  const msgs = cfg.warnings.map((w) => `${w.line}:${w.key}:${w.message}`);
  assert.ok(msgs.some((m) => /^37:syslog_ident:syslog_ident is not supported by Sluice yet/.test(m)), msgs.join('\n'));
  // peer_id = 0 equals the default: no noise
  assert.ok(!msgs.some((m) => m.includes('peer_id')), msgs.join('\n'));
  assert.ok(msgs.some((m) => /^2:admin:.*md5 secret.*scram-sha-256/.test(m)), msgs.join('\n'));
});

test('unknown key warns with file, line, key and a suggestion', () => {
  const dir = tempFiles({ 'p.ini': '[pgbouncer]\nlisten_addr = *\nauth_type = trust\n\nmax_client_con = 10\n' });
  const cfg = loadConfig(join(dir, 'p.ini'));
  const w = cfg.warnings.find((x) => x.key === 'max_client_con');
  assert.ok(w);
  assert.equal(w.line, 5);
  assert.match(w.file, /p\.ini$/);
  assert.match(w.message, /did you mean max_client_conn\?/);
  assert.equal(cfg.settings.max_client_conn, 100);
});

test('every error path names file:line and key', () => {
  const cases: [string, number, string, RegExp][] = [
    ['[pgbouncer]\n\npool_mode = sesion\n', 3, 'pool_mode', /pool_mode = "sesion" is not one of session, transaction, statement/],
    ['[pgbouncer]\nlisten_port = 70000\n', 2, 'listen_port', /above the maximum 65535/],
    ['[pgbouncer]\nquery_timeout = 5m\n', 2, 'query_timeout', /not a duration in seconds/],
    ['[pgbouncer]\ntcp_keepalive = maybe\n', 2, 'tcp_keepalive', /not a boolean/],
    ['[pgbouncer]\npeer_id = 99999\n', 2, 'peer_id', /above the maximum 16383/],
    ['[pgbouncer]\nlisten_addr = *\n[databases]\napp = pool_mode=sesion\n', 4, 'pool_mode', /\[databases\] app: pool_mode = "sesion" is not one of session, transaction, statement/],
    ['[pgbouncer]\nlisten_addr = *\n[users]\nbob = pool_size=x\n', 4, 'pool_size', /\[users\] bob: pool_size = "x" is not an integer/],
    ['[pgbouncer]\nlisten_addr = *\nauth_file = missing.txt\n', 3, 'auth_file', /auth_file = "missing.txt" cannot be read/],
    ['[pgbouncer]\nlisten_addr = *\nauth_type = hba\n', 3, 'auth_type', /needs auth_hba_file/],
    ['[pgbouncer]\nlisten_addr = *\nclient_tls_sslmode = require\n', 3, 'client_tls_sslmode', /needs client_tls_key_file and client_tls_cert_file/],
    ['[pgbouncer]\nlisten_addr =\nunix_socket_dir =\n', 2, 'listen_addr', /no client could connect/],
  ];
  for (const [text, line, key, re] of cases) {
    const dir = tempFiles({ 'pgbouncer.ini': text });
    const file = join(dir, 'pgbouncer.ini');
    assert.throws(
      () => loadConfig(file),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError, String(err));
        assert.equal(err.file, file, text);
        assert.equal(err.line, line, text);
        assert.equal(err.key, key, text);
        assert.ok(err.message.startsWith(`${file}:${line}: `), err.message);
        assert.match(err.message, re);
        return true;
      },
    );
  }
});

test('missing main file', () => {
  assert.throws(() => loadConfig('/nonexistent/pgbouncer.ini'), (err: unknown) => err instanceof ConfigError && /no such file/.test(err.message));
});

test('auth_file is resolved relative to the ini file, not the cwd', () => {
  const dir = tempFiles({ 'p.ini': '[pgbouncer]\nlisten_addr = *\nauth_file = users.txt\n', 'users.txt': '"u" "p"\n' });
  const cfg = loadConfig(join(dir, 'p.ini'));
  assert.equal(cfg.userlist.get('u')!.secret, 'p');
  assert.equal(cfg.settings.auth_file, 'users.txt'); // kept as written
});

test('auth_file missing under auth_type = any is only a warning', () => {
  const cfg = buildConfig({ settings: { auth_type: 'any', auth_file: '/nonexistent/u.txt' }, databases: { d: 'user=x' } });
  assert.ok(cfg.warnings.some((w) => w.key === 'auth_file' && /cannot be read/.test(w.message)));
  assert.equal(cfg.userlist.size, 0);
});

test('buildConfig: records, number/boolean values, userlistText', () => {
  const cfg = buildConfig({
    settings: { pool_mode: 'transaction', listen_port: 7432, query_wait_timeout: 5, server_round_robin: true },
    databases: { app: 'host=127.0.0.1 dbname=app_db' },
    users: { alice: 'pool_mode=session' },
    userlistText: '"alice" "pw"\n',
  });
  assert.equal(cfg.file, '');
  assert.equal(cfg.settings.listen_port, 7432);
  assert.equal(cfg.settings.query_wait_timeout, 5000); // numbers are in file units (seconds)
  assert.equal(cfg.settings.server_round_robin, true);
  assert.equal(cfg.databases.get('app')!.dbname, 'app_db');
  assert.equal(cfg.databases.get('app')!.file, '<memory>');
  assert.equal(cfg.users.get('alice')!.pool_mode, 'session');
  assert.equal(cfg.userlist.get('alice')!.secret, 'pw');
  assert.deepEqual(cfg.warnings, []);
  assert.equal(buildConfig().settings.listen_port, 6432);
});

test('cross-field warnings', () => {
  const cfg = buildConfig({
    settings: { auth_type: 'any', min_pool_size: 30, max_db_connections: 10, max_db_client_connections: 5, auth_dbname: 'authdb' },
    databases: { nouser: 'host=x password=p' },
  });
  const text = cfg.warnings.map((w) => w.message).join('\n');
  assert.match(text, /min_pool_size \(30\) exceeds default_pool_size \(20\)/);
  assert.match(text, /max_db_client_connections is below max_db_connections/);
  assert.match(text, /auth_dbname = "authdb" is not defined/);
  assert.match(text, /auth_type = "any" needs user= on every database/);
  assert.match(text, /password= is only used together with user=/);
  const none = buildConfig({ settings: { auth_type: 'md5' } });
  assert.ok(none.warnings.some((w) => /no user can log in/.test(w.message)));
});

test('everything returned is deeply frozen', () => {
  const cfg = loadConfig(fixture);
  assert.ok(Object.isFrozen(cfg));
  assert.ok(Object.isFrozen(cfg.settings));
  assert.ok(Object.isFrozen(cfg.settings.admin_users));
  assert.ok(Object.isFrozen(cfg.databases.get('appdb')));
  assert.ok(Object.isFrozen(cfg.users.get('batch')));
  assert.ok(Object.isFrozen(cfg.userlist.get('app')));
  assert.ok(Object.isFrozen(cfg.warnings));
  assert.ok(Object.isFrozen(cfg.warnings[0]));
  assert.ok(Object.isFrozen(cfg.files));
  assert.throws(() => {
    (cfg.settings as { listen_port: number }).listen_port = 1;
  }, TypeError);
  assert.throws(() => (cfg.databases as Map<string, unknown>).set('x', {}), TypeError);
  assert.throws(() => (cfg.databases as Map<string, unknown>).delete('appdb'), TypeError);
  assert.throws(() => (cfg.userlist as Map<string, unknown>).clear(), TypeError);
  assert.throws(() => (cfg.settings.admin_users as string[]).push('x'), TypeError);
  assert.equal(cfg.databases.size, 6);
  assert.ok(cfg.databases instanceof Map);
});
