import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildClientFinalMessage,
  buildScramSecret,
  decodeBase64Strict,
  formatScramSecret,
  parseClientFinalMessage,
  parseClientFirstMessage,
  parseScramSecret,
  parseServerFinalMessage,
  parseServerFirstMessage,
  scramAuthMessage,
  scramClientProof,
  scramKeysFromSalted,
  scramSaltedPassword,
  scramServerSignature,
} from '../src/protocol/scram.js';
import { saslprepPassword } from '../src/protocol/saslprep.js';
import { md5SaltedPassword, md5StoredSecret, isMd5Secret } from '../src/protocol/md5.js';

// RFC 7677 section 3.
const RFC = {
  password: 'pencil',
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal: 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

test('SCRAM-SHA-256 reproduces the RFC 7677 test vector', () => {
  const first = parseClientFirstMessage(Buffer.from(RFC.clientFirst), 'user');
  assert.ok(first.ok);
  assert.equal(first.value.clientNonce, 'rOprNGfwEbeRWgbNEkqO');
  assert.equal(first.value.gs2Header, 'n,,');
  const sf = parseServerFirstMessage(Buffer.from(RFC.serverFirst), first.value.clientNonce);
  assert.ok(sf.ok);
  assert.equal(sf.value.iterations, 4096);
  const keys = scramKeysFromSalted(scramSaltedPassword(RFC.password, sf.value.salt, sf.value.iterations));
  const fin = buildClientFinalMessage('n,,', sf.value.nonce, Buffer.alloc(32));
  const authMessage = scramAuthMessage(first.value.bare, RFC.serverFirst, fin.withoutProof);
  const proof = scramClientProof(keys.clientKey, authMessage);
  assert.equal(`${fin.withoutProof},p=${proof.toString('base64')}`, RFC.clientFinal);
  assert.equal(`v=${scramServerSignature(keys.serverKey, authMessage).toString('base64')}`, RFC.serverFinal);

  const cf = parseClientFinalMessage(Buffer.from(RFC.clientFinal), { gs2Header: 'n,,', nonce: sf.value.nonce });
  assert.ok(cf.ok);
  assert.deepEqual(cf.value.proof, proof);
  const sfin = parseServerFinalMessage(Buffer.from(RFC.serverFinal));
  assert.ok(sfin.ok && 'verifier' in sfin.value);
});

test('stored secrets round-trip and reject malformed text', () => {
  const s = buildScramSecret('pencil', { salt: Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'), iterations: 4096 });
  const text = formatScramSecret(s);
  assert.match(text, /^SCRAM-SHA-256\$4096:W22ZaJ0SNY7soEsUEjb6gQ==\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}$/);
  const back = parseScramSecret(text);
  assert.ok(back);
  assert.deepEqual(back.storedKey, s.storedKey);
  for (const bad of [
    'SCRAM-SHA-256$0:W22ZaJ0SNY7soEsUEjb6gQ==$' + s.storedKey.toString('base64') + ':' + s.serverKey.toString('base64'),
    'SCRAM-SHA-256$4096:!!!$' + s.storedKey.toString('base64') + ':' + s.serverKey.toString('base64'),
    'SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$' + s.storedKey.toString('base64'),
    'SCRAM-SHA-256$99999999999:W22ZaJ0SNY7soEsUEjb6gQ==$' + s.storedKey.toString('base64') + ':' + s.serverKey.toString('base64'),
    'SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ=$' + s.storedKey.toString('base64') + ':' + s.serverKey.toString('base64'),
    'md5abc',
  ]) {
    assert.equal(parseScramSecret(bad), null, bad);
  }
});

test('strict base64', () => {
  assert.deepEqual(decodeBase64Strict('QQ=='), Buffer.from('A'));
  assert.equal(decodeBase64Strict('QR=='), null); // non-canonical trailing bits
  assert.equal(decodeBase64Strict('QQ'), null);
  assert.equal(decodeBase64Strict('Q Q=='), null);
  assert.equal(decodeBase64Strict('QQ==QQ=='), null);
});

test('client-first-message: gs2 header rules', () => {
  const p = (s: string, user = 'alice') => parseClientFirstMessage(Buffer.from(s), user);
  assert.ok(p('n,,n=,r=abc').ok);
  assert.ok(p('y,,n=alice,r=abc').ok);
  const withAuthz = p('n,a=alice,n=,r=abc');
  assert.ok(withAuthz.ok && withAuthz.value.gs2Header === 'n,a=alice,');
  assert.match(String((p('n,a=bob,n=,r=abc') as { error: string }).error), /authorization identity/);
  assert.match(String((p('p=tls-server-end-point,,n=,r=abc') as { error: string }).error), /channel binding/);
  assert.equal(p('n,,m=x,n=,r=abc').ok, false);
  assert.equal(p('n,,n=,r=ab,c').ok, false);
  assert.equal(p('n,,n=,r=').ok, false);
  const loose = p('n,,n=a=b,r=abc'); // n= is ignored, as in PostgreSQL
  assert.ok(loose.ok && loose.value.username === 'a=b');
  assert.equal(p('n,,n=,r=' + 'x'.repeat(300)).ok, false);
  assert.equal(p('x,,n=,r=abc').ok, false);
  assert.equal(parseClientFirstMessage(Buffer.from([0x6e, 0x2c, 0x2c, 0xff]), 'a').ok, false);
});

test('client-final-message: channel binding, nonce and proof checks', () => {
  const proof = Buffer.alloc(32, 7).toString('base64');
  const exp = { gs2Header: 'n,,', nonce: 'abcDEF' };
  const p = (s: string, e = exp) => parseClientFinalMessage(Buffer.from(s), e);
  assert.ok(p(`c=biws,r=abcDEF,p=${proof}`).ok);
  assert.equal(p(`c=eSws,r=abcDEF,p=${proof}`).ok, false); // y,, while the header was n,,
  assert.ok(p(`c=eSws,r=abcDEF,p=${proof}`, { gs2Header: 'y,,', nonce: 'abcDEF' }).ok);
  assert.equal(p(`c=biws,r=abcDEX,p=${proof}`).ok, false);
  assert.equal(p(`c=biws,r=abcDEF,p=${Buffer.alloc(31).toString('base64')}`).ok, false);
  assert.equal(p(`c=biws,r=abcDEF,p=${proof.slice(0, -2)}!=`).ok, false);
  assert.equal(p(`c=biws,p=${proof},r=abcDEF`).ok, false);
  assert.equal(p(`c=biws,r=abcDEF`).ok, false);
});

test('md5 hashing matches PostgreSQL', () => {
  // 'md5' || md5('pencil' || 'user'), as stored in pg_authid.
  assert.equal(md5StoredSecret('pencil', 'user'), 'md520c46e3762c864548e296b33c3406aa9');
  assert.ok(isMd5Secret(md5StoredSecret('x', 'y')));
  assert.equal(isMd5Secret('md520C46E3762C864548E296B33C3406AA9'), false);
  assert.equal(isMd5Secret('md520c46e3762c864548e296b33c3406aa'), false);
  // Wire form: 'md5' || md5(hex || salt bytes).
  assert.equal(md5SaltedPassword('pencil', 'user', Buffer.from([1, 2, 3, 4])), 'md54376eb6913b38f9aaff38dc7cf19ca76');
});

test('SASLprep: non-ASCII is normalised, ASCII and invalid UTF-8 are kept raw', () => {
  // U+00A0 (non-ASCII space) maps to ' ', U+00AD (soft hyphen) maps to nothing, U+2168 NFKC → "IX".
  assert.deepEqual(saslprepPassword('a\u00A0b\u00ADc\u2168'), Buffer.from('a bcIX'));
  assert.deepEqual(saslprepPassword('plain\u0007ascii'), Buffer.from('plain\u0007ascii'));
  const bad = Buffer.from([0x61, 0xff, 0x62]);
  assert.deepEqual(saslprepPassword(bad), bad);
  // Prohibited (U+0007 with non-ASCII present): raw bytes.
  assert.deepEqual(saslprepPassword('é\u0007'), Buffer.from('é\u0007'));
  // A SCRAM secret built from two equivalent spellings is the same.
  const salt = Buffer.alloc(16, 1);
  assert.deepEqual(buildScramSecret('\u2168', { salt }).storedKey, buildScramSecret('IX', { salt }).storedKey);
});
