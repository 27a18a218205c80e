import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseHba, matchHba, findHbaRule, loadHbaFile } from '../src/auth/hba.js';
import { HbaParseError } from '../src/auth/errors.js';

const sample = `
# TYPE  DATABASE        USER            ADDRESS                 METHOD
local   all             postgres                                peer
local   all             all                                     md5
hostssl app             alice,bob       10.0.0.0/8              cert
host    app             alice           10.1.0.0  255.255.0.0   reject
hostnossl all           all             192.168.1.0/24          password
host    "all"           carol           ::1/128                 scram-sha-256
host    sameuser        all             0.0.0.0/0               trust
host    all             +admins         0.0.0.0/0               trust
host    @dbs.txt        all             all                     trust
host    all             all             samehost                trust
host    all             all             2001:db8::/32           md5
host    all             all             all                     scram-sha-256 map=foo
`;

const base = { local: false, tls: false, address: '127.0.0.1', database: 'app', user: 'alice' };

test('parses the supported subset and warns about the rest', () => {
  const hba = parseHba(sample, 'hba.conf');
  assert.equal(hba.rules.length, 12);
  const w = hba.warnings.map((x) => `${x.line}: ${x.message}`);
  assert.ok(w.some((m) => m.startsWith('10:') && /group/.test(m)), w.join('\n'));
  assert.ok(w.some((m) => m.startsWith('11:') && /@file/.test(m)));
  assert.ok(w.some((m) => m.startsWith('12:') && /samehost/.test(m)));
  assert.ok(w.some((m) => m.startsWith('14:') && /map=foo/.test(m)));
});

test('first match wins; no match rejects', () => {
  const { rules } = parseHba(sample, 'hba.conf');
  assert.equal(matchHba(rules, { ...base, local: true, user: 'postgres' }), 'peer');
  assert.equal(matchHba(rules, { ...base, local: true }), 'md5');
  assert.equal(matchHba(rules, { ...base, tls: true, address: '10.1.2.3' }), 'cert');
  assert.equal(matchHba(rules, { ...base, tls: false, address: '10.1.2.3' }), 'reject');
  assert.equal(matchHba(rules, { ...base, tls: false, address: '10.2.2.3', user: 'bob' }), 'scram-sha-256');
  assert.equal(matchHba(rules, { ...base, address: '192.168.1.77', user: 'zed' }), 'password');
  assert.equal(matchHba(rules, { ...base, tls: true, address: '192.168.1.77', user: 'zed' }), 'scram-sha-256');
  // "all" quoted is a database literally named all
  assert.equal(matchHba(rules, { ...base, address: '::1', user: 'carol', database: 'all' }), 'scram-sha-256');
  assert.equal(findHbaRule(rules, { ...base, address: '::1', user: 'carol', database: 'all' })?.line, 8);
  assert.equal(findHbaRule(rules, { ...base, address: '::1', user: 'carol', database: 'app' })?.line, 14);
  assert.equal(matchHba(rules, { ...base, user: 'dave', database: 'dave' }), 'trust');
  // IPv4-mapped IPv6 addresses match IPv4 rules
  assert.equal(matchHba(rules, { ...base, address: '::ffff:10.1.2.3' }), 'reject');
  assert.equal(findHbaRule(rules, { ...base, address: '2001:db8:1::5', user: 'x' })?.line, 13);
  assert.equal(matchHba(parseHba('host all all 10.0.0.0/8 trust\n').rules, { ...base }), 'reject');
  assert.equal(matchHba([], base), 'reject');
});

test('replication connections only match the replication keyword', () => {
  const { rules } = parseHba('host all all all trust\nhost replication all all md5\n');
  assert.equal(matchHba(rules, { ...base, replication: true }), 'md5');
  assert.equal(matchHba(rules, base), 'trust');
});

test('errors name file and line', () => {
  const cases: [string, RegExp][] = [
    ['host all all 10.0.0.0/33 md5', /hba\.conf:3: invalid CIDR/],
    ['host all all 10.0.0.0 md5', /hba\.conf:3: invalid netmask/],
    ['host all all 10.0.0.0/8 ldap', /hba\.conf:3: unsupported authentication method "ldap"/],
    ['hostgssenc all all all md5', /hba\.conf:3: connection type "hostgssenc" is not supported/],
    ['host all all 999.0.0.1/8 md5', /hba\.conf:3: invalid IP address/],
    ['host all', /hba\.conf:3: missing user/],
    ['host all all', /hba\.conf:3: missing address/],
    ['host "all all 1.2.3.4/32 md5', /hba\.conf:3: unterminated/],
    ['host all all all peer', /hba\.conf:3: peer authentication is only supported on local/],
    ['include other.conf', /hba\.conf:3: "include" is not supported/],
  ];
  for (const [line, re] of cases) {
    assert.throws(() => parseHba(`# a\n\n${line}\n`, 'hba.conf'), (e: unknown) => e instanceof HbaParseError && e.code === 'SLUICE_AUTH_HBA_PARSE' && re.test(e.message), line);
  }
});

test('line continuation, tabs, comments and loading from disk', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-hba-'));
  try {
    const file = path.join(dir, 'hba.conf');
    writeFileSync(file, 'host\tall  alice,\\\n  bob 127.0.0.1/32 md5 # trailing\n');
    const hba = loadHbaFile(file);
    assert.equal(hba.rules.length, 1);
    assert.equal(matchHba(hba.rules, { ...base, user: 'bob' }), 'md5');
    assert.throws(() => loadHbaFile(path.join(dir, 'missing')), /cannot read/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
