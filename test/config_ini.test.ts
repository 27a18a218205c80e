import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../src/config/errors.js';
import { parseIni, readIni, unquote } from '../src/config/ini.js';

/** test/fixtures/config, found from dist/test/ at run time. */
const FIXTURES = fileURLToPath(new URL('../../test/fixtures/config/', import.meta.url));

/** Write files into a fresh temp dir; returns the dir. */
function tempFiles(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-config-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

test('sections, comments, trimming and quoted keys', () => {
  const doc = parseIni(
    [
      '; comment',
      '# another',
      '[pgbouncer]',
      '  listen_port   =   6432  ',
      'logfile = /var/log/a;b#c.log',
      '[databases]',
      '"my ""odd"" db" = host=x',
      'empty =',
    ].join('\n'),
    'x.ini',
  );
  assert.deepEqual(
    doc.entries.map((e) => [e.section, e.key, e.value, e.line]),
    [
      ['pgbouncer', 'listen_port', '6432', 4],
      ['pgbouncer', 'logfile', '/var/log/a;b#c.log', 5],
      ['databases', 'my "odd" db', 'host=x', 7],
      ['databases', 'empty', '', 8],
    ],
  );
});

test('CRLF line endings and a BOM keep line numbers right', () => {
  const doc = parseIni('\ufeff[pgbouncer]\r\n\r\nlisten_port = 1\r\n', 'w.ini');
  assert.equal(doc.entries[0]!.line, 3);
  assert.equal(doc.entries[0]!.value, '1');
});

test('unknown section warns and its keys are skipped', () => {
  const doc = parseIni('[pgbouncer]\na = 1\n[pgbouncr]\nb = 2\n[users]\nc = pool_mode=session\n', 'u.ini');
  assert.deepEqual(doc.entries.map((e) => e.key), ['a', 'c']);
  assert.equal(doc.warnings.length, 1);
  assert.equal(doc.warnings[0]!.line, 3);
  assert.match(doc.warnings[0]!.message, /unknown section \[pgbouncr\]/);
});

test('syntax errors name file and line', () => {
  const cases: [string, number, RegExp][] = [
    ['[pgbouncer\n', 1, /no closing "\]"/],
    ['[pgbouncer]\nlisten_port 6432\n', 2, /expected "key = value"/],
    ['listen_port = 1\n', 1, /outside any section/],
    ['[databases]\nmy db = host=x\n', 2, /quote it/],
    ['[databases]\n"open = x\n', 2, /unterminated quoted key/],
    ['[pgbouncer]\n%inclde x.ini\n', 2, /unknown directive/],
  ];
  for (const [text, line, re] of cases) {
    assert.throws(
      () => parseIni(text, 'bad.ini'),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError, String(err));
        assert.equal(err.code, 'SLUICE_CONFIG_INVALID');
        assert.equal(err.file, 'bad.ini');
        assert.equal(err.line, line);
        assert.ok(err.message.startsWith(`bad.ini:${line}: `), err.message);
        assert.match(err.message, re);
        return true;
      },
    );
  }
});

test('%include is read in place, relative to the including file, section carries over', () => {
  const doc = readIni(join(FIXTURES, 'pgbouncer.ini'));
  const analytics = doc.entries.find((e) => e.key === 'analytics');
  assert.ok(analytics);
  assert.equal(analytics.section, 'databases'); // inherited from the including file
  assert.match(analytics.file, /conf\.d\/pools\.ini$/);
  assert.equal(analytics.line, 2);
  const etl = doc.entries.find((e) => e.key === 'etl');
  assert.equal(etl?.section, 'users');
  assert.equal(doc.files.length, 2);
  // after the include, the main file switches back with its own header
  assert.equal(doc.entries.find((e) => e.key === 'listen_port')?.section, 'pgbouncer');
});

test('%include cycle is detected and names the chain', () => {
  assert.throws(
    () => readIni(join(FIXTURES, 'cycle', 'a.ini')),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /%include cycle: .*a\.ini -> .*b\.ini -> .*a\.ini/);
      assert.match(err.file, /b\.ini$/);
      assert.equal(err.line, 2);
      assert.equal(err.key, '%include');
      return true;
    },
  );
});

test('%include depth is bounded', () => {
  assert.throws(() => readIni(join(FIXTURES, 'deep', 'd0.ini')), /nesting deeper than 10 levels/);
  // a shorter chain from the middle is fine
  const doc = readIni(join(FIXTURES, 'deep', 'd5.ini'));
  assert.equal(doc.entries[0]!.value, '7001');
  assert.throws(() => readIni(join(FIXTURES, 'deep', 'd5.ini'), { maxIncludeDepth: 3 }), /deeper than 3/);
});

test('%include of a missing file names the including line', () => {
  const dir = tempFiles({ 'main.ini': '[pgbouncer]\n\n%include nope.ini\n' });
  assert.throws(
    () => readIni(join(dir, 'main.ini')),
    (err: unknown) => err instanceof ConfigError && err.line === 3 && /nope\.ini.*no such file/.test(err.message),
  );
});

test('unquote strips one pair of matching quotes only', () => {
  assert.equal(unquote('"DISCARD ALL"'), 'DISCARD ALL');
  assert.equal(unquote("'a ''b'''"), "a 'b'");
  assert.equal(unquote('"a" and "b"'), '"a" and "b"');
  assert.equal(unquote('plain'), 'plain');
  assert.equal(unquote('"'), '"');
});
