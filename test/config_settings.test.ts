import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildConfig } from '../src/config/load.js';
import { SETTING_SPECS, defaultSettings, formatSetting, parseSetting } from '../src/config/settings.js';
import { ConfigError } from '../src/config/errors.js';
import { settingRows } from '../src/config/format.js';

const spec = (key: string) => {
  const s = SETTING_SPECS.get(key);
  assert.ok(s, key);
  return s;
};

test('PgBouncer defaults, durations in ms', () => {
  const s = defaultSettings();
  assert.equal(s.listen_port, 6432);
  assert.equal(s.listen_addr, '');
  assert.equal(s.unix_socket_dir, '/tmp');
  assert.equal(s.unix_socket_mode, 0o777);
  assert.equal(s.pool_mode, 'session');
  assert.equal(s.default_pool_size, 20);
  assert.equal(s.max_client_conn, 100);
  assert.equal(s.auth_type, 'md5');
  assert.equal(s.server_reset_query, 'DISCARD ALL');
  assert.equal(s.server_check_query, '<empty>');
  assert.equal(s.query_wait_timeout, 120_000);
  assert.equal(s.server_lifetime, 3_600_000);
  assert.equal(s.server_idle_timeout, 600_000);
  assert.equal(s.client_login_timeout, 60_000);
  assert.equal(s.reserve_pool_timeout, 5_000);
  assert.equal(s.cancel_wait_timeout, 10_000);
  assert.equal(s.stats_period, 60_000);
  assert.equal(s.dns_max_ttl, 15_000);
  assert.equal(s.max_packet_size, 2147483647);
  assert.equal(s.pkt_buf, 4096);
  assert.equal(s.max_prepared_statements, 200);
  assert.equal(s.tcp_keepalive, true);
  assert.equal(s.log_connections, true);
  assert.equal(s.server_tls_sslmode, 'prefer');
  assert.equal(s.client_tls_sslmode, 'disable');
  assert.deepEqual(s.track_extra_parameters, ['IntervalStyle']);
  assert.deepEqual(s.admin_users, []);
  // Sluice keys
  assert.equal(s.http_listen, '');
  assert.equal(s.pin_policy, 'pin');
  assert.equal(s.max_ready_wait, 10_000);
  assert.equal(s.budget_threshold, 0.8);
  assert.ok(Object.isFrozen(s));
});

test('every Settings key has a supported spec with a description', () => {
  const keys = Object.keys(defaultSettings());
  assert.ok(keys.length === 83, String(keys.length));
  for (const k of keys) {
    const s = spec(k);
    assert.equal(s.supported, true, k);
    assert.ok(s.description.length > 10, k);
  }
  for (const s of SETTING_SPECS.values()) {
    if (!s.supported) assert.ok(!keys.includes(s.key));
  }
  assert.equal(spec('listen_port').reloadable, false);
  assert.equal(spec('pool_mode').reloadable, true);
  assert.equal(spec('http_listen').sluice, true);
  assert.equal(spec('disable_pqexec').supported, false);
});

test('booleans accept 1/0 yes/no on/off true/false', () => {
  const b = spec('server_round_robin');
  for (const t of ['1', 'yes', 'on', 'true', 'TRUE', 'On']) assert.equal(parseSetting(b, t), true, t);
  for (const f of ['0', 'no', 'off', 'false']) assert.equal(parseSetting(b, f), false, f);
  assert.throws(() => parseSetting(b, '2'), /not a boolean/);
});

test('durations: seconds, decimals, to ms; rejects units and negatives', () => {
  const d = spec('query_timeout');
  assert.equal(parseSetting(d, '30'), 30_000);
  assert.equal(parseSetting(d, '0.5'), 500);
  assert.equal(parseSetting(d, '2.25'), 2250);
  assert.equal(parseSetting(d, '.1'), 100);
  assert.equal(parseSetting(d, '0.0001'), 1); // never rounds a set timeout down to "disabled"
  assert.equal(parseSetting(d, '0'), 0);
  assert.throws(() => parseSetting(d, '30s'), /not a duration in seconds/);
  assert.throws(() => parseSetting(d, '-1'), /not a duration/);
  assert.equal(formatSetting(d, 2250), '2.25');
  assert.equal(formatSetting(d, 120_000), '120');
});

test('sizes, file modes, lists, enums, addresses', () => {
  assert.equal(parseSetting(spec('pkt_buf'), '8192'), 8192);
  assert.equal(parseSetting(spec('max_packet_size'), '16MB'), 16 * 1024 * 1024);
  assert.equal(parseSetting(spec('max_packet_size'), '64kB'), 65536);
  assert.throws(() => parseSetting(spec('max_packet_size'), '16 parsecs'), /not a size/);
  assert.equal(parseSetting(spec('unix_socket_mode'), '0700'), 0o700);
  assert.equal(formatSetting(spec('unix_socket_mode'), 0o700), '0700');
  assert.deepEqual(parseSetting(spec('admin_users'), ' a, b ,,c '), ['a', 'b', 'c']);
  assert.equal(parseSetting(spec('auth_type'), 'SCRAM-SHA-256'), 'scram-sha-256');
  assert.equal(parseSetting(spec('http_listen'), '127.0.0.1:9127'), '127.0.0.1:9127');
  assert.equal(parseSetting(spec('http_listen'), '[::1]:9127'), '[::1]:9127');
  assert.throws(() => parseSetting(spec('http_listen'), '9127'), /not host:port/);
  assert.throws(() => parseSetting(spec('budget_threshold'), '1.5'), /above the maximum 1/);
  assert.throws(() => parseSetting(spec('listen_port'), '70000'), /above the maximum 65535/);
  assert.throws(() => parseSetting(spec('client_tls_protocols'), 'tlsv1.4'), /not one of/);
  assert.equal(parseSetting(spec('client_tls_protocols'), 'tlsv1.2,tlsv1.3'), 'tlsv1.2,tlsv1.3');
});

test('invalid setting: message names file, line, key and allowed values', () => {
  assert.throws(
    () => buildConfig({ settings: { pool_mode: 'sesion' }, file: 'pgbouncer.ini' }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.message, 'pgbouncer.ini: pool_mode = "sesion" is not one of session, transaction, statement');
      assert.equal(err.key, 'pool_mode');
      assert.equal(err.code, 'SLUICE_CONFIG_INVALID');
      return true;
    },
  );
});

test('settingRows renders PgBouncer units and covers every key', () => {
  const cfg = buildConfig({ settings: { query_wait_timeout: '2.5', tcp_keepalive: false, syslog_ident: 'x' } });
  const rows = settingRows(cfg);
  assert.equal(rows.length, SETTING_SPECS.size);
  const row = (k: string) => rows.find((r) => r.key === k);
  assert.deepEqual(row('query_wait_timeout'), { key: 'query_wait_timeout', value: '2.5', default: '120', changeable: true });
  assert.equal(row('tcp_keepalive')?.value, '0');
  assert.equal(row('listen_port')?.changeable, false);
  assert.equal(row('syslog_ident')?.value, 'x');
  assert.equal(row('server_lifetime')?.value, '3600');
  const keys = rows.map((r) => r.key);
  assert.deepEqual(keys, [...keys].sort());
});
