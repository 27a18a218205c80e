import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseUserlist } from '../src/config/load.js';
import { parseScramSecret, secretKind } from '../src/config/userlist.js';
import { ConfigError } from '../src/config/errors.js';

const SCRAM =
  'SCRAM-SHA-256$4096:c2x1aWNlLXRlc3Qtc2FsdA==$rWgH0z/poR/8QbBw6MYs71cmNXD7xoQx/g/LycJPOaQ=:CKnjHTGJedaCvPpBav/GjghdegtmmOobdmEJsYjyvCc=';

test('plain, md5 and SCRAM secrets, "" escapes, comments, trailing text', () => {
  const text = [
    ';; comment',
    '# also a comment',
    '"alice" "md545f2603610af569b6155c45067268c6b"',
    `"bob" "${SCRAM}"`,
    '"say ""hi""" "p""w"" x"',
    '   "carol"   "plain pw"  anything after is ignored',
    '"empty" ""',
    '',
  ].join('\n');
  const { users, warnings } = parseUserlist(text, 'userlist.txt');
  assert.deepEqual(warnings, []);
  assert.equal(users.size, 5);
  assert.equal(users.get('alice')!.kind, 'md5');
  assert.equal(users.get('bob')!.kind, 'scram-sha-256');
  assert.equal(users.get('bob')!.secret, SCRAM);
  assert.equal(users.get('say "hi"')!.secret, 'p"w" x');
  assert.equal(users.get('carol')!.secret, 'plain pw');
  assert.equal(users.get('carol')!.line, 6);
  assert.equal(users.get('empty')!.secret, '');
  assert.equal(users.get('empty')!.kind, 'plain');
  assert.ok(Object.isFrozen(users.get('alice')));
});

test('later lines win for duplicate users', () => {
  const { users } = parseUserlist('"a" "1"\n"a" "2"\n', 'u');
  assert.equal(users.get('a')!.secret, '2');
});

test('broken lines throw with file:line', () => {
  const cases: [string, number, RegExp][] = [
    ['"ok" "x"\nbob "x"\n', 2, /both fields in double quotes/],
    ['"bob\n', 1, /no closing double quote/],
    ['"bob"\n', 1, /expected a secret/],
    ['"bob" "open\n', 1, /expected a secret/],
  ];
  for (const [text, line, re] of cases) {
    assert.throws(
      () => parseUserlist(text, 'userlist.txt'),
      (err: unknown) => err instanceof ConfigError && err.line === line && err.message.startsWith(`userlist.txt:${line}: `) && re.test(err.message),
      text,
    );
  }
});

test('malformed hashes warn and count as plain text', () => {
  const { users, warnings } = parseUserlist('"a" "SCRAM-SHA-256$4096:abc"\n"b" "md5zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"\n', 'u');
  assert.equal(users.get('a')!.kind, 'plain');
  assert.equal(users.get('b')!.kind, 'plain');
  assert.equal(warnings.length, 2);
  assert.match(warnings[0]!.message, /malformed SCRAM secret/);
  assert.equal(warnings[1]!.line, 2);
});

test('parseScramSecret decodes the parts', () => {
  const s = parseScramSecret(SCRAM);
  assert.ok(s);
  assert.equal(s.iterations, 4096);
  assert.equal(s.salt.toString(), 'sluice-test-salt');
  assert.equal(s.storedKey.length, 32);
  assert.equal(s.serverKey.length, 32);
  assert.equal(parseScramSecret('SCRAM-SHA-256$0:c2FsdA==$a:b'), undefined);
  assert.equal(secretKind('md5' + 'A'.repeat(32)), 'md5');
  assert.equal(secretKind('hunter2'), 'plain');
});
