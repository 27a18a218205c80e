// client_auth ↔ server_login: the two state machines talking to each other.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createClientAuth, type ClientAuth, type ClientAuthMethod, type ClientAuthResult } from '../src/auth/client_auth.js';
import { createServerLogin, type ServerLogin, type ServerLoginOptions } from '../src/auth/server_login.js';
import { md5StoredSecret } from '../src/protocol/md5.js';
import { buildScramSecret, formatScramSecret, parseScramSecret, scramKeysFromSalted, scramSaltedPassword } from '../src/protocol/scram.js';

interface Outcome {
  server: ClientAuthResult | undefined;
  loginError?: string;
  loginDone: boolean;
  codes: number[];
}

/** Pipes client_auth's 'R' messages into server_login and its 'p' answers back. */
function exchange(auth: ClientAuth, login: ServerLogin): Outcome {
  const codes: number[] = [];
  let queue = auth.start();
  let loginError: string | undefined;
  for (let rounds = 0; rounds < 10 && queue.length > 0; rounds++) {
    const next: Buffer[] = [];
    for (const msg of queue) {
      assert.equal(msg[0], 0x52);
      assert.equal(msg.readInt32BE(1), msg.length - 1);
      const body = msg.subarray(5);
      codes.push(body.readInt32BE(0));
      const step = login.onAuthRequest(body);
      if (step.error) {
        loginError = step.error;
        return { server: auth.result, loginError, loginDone: login.done, codes };
      }
      if (step.send) {
        assert.equal(step.send[0], 0x70);
        assert.equal(step.send.readInt32BE(1), step.send.length - 1);
        const r = auth.onMessage(step.send[0]!, step.send.subarray(5));
        next.push(...r.send);
      }
    }
    queue = next;
  }
  return { server: auth.result, loginDone: login.done, codes };
}

const user = 'alice';
const password = 'correct horse';
const secrets = {
  plaintext: password,
  md5: md5StoredSecret(password, user),
  scram: formatScramSecret(buildScramSecret(password)),
};
const methods: ClientAuthMethod[] = ['plain', 'md5', 'scram-sha-256'];

for (const method of methods) {
  for (const [kind, secret] of Object.entries(secrets)) {
    // PostgreSQL's matrix: SCRAM cannot use an md5 secret; md5 with a SCRAM secret upgrades to SCRAM.
    const possible = !(method === 'scram-sha-256' && kind === 'md5');
    test(`${method} with a ${kind} secret: ${possible ? 'succeeds' : 'fails like a wrong password'}`, () => {
      const out = exchange(createClientAuth({ method, user, secret }), createServerLogin({ user, password }));
      if (possible) {
        assert.deepEqual(out.server?.ok, true, JSON.stringify(out));
        assert.equal(out.loginDone, true);
        assert.equal(out.loginError, undefined);
        if (method === 'md5' && kind === 'scram') assert.deepEqual(out.codes.slice(0, 1), [10]);
      } else {
        assert.deepEqual(out.server, { ok: false, sqlstate: '28P01', message: `password authentication failed for user "${user}"` });
      }
    });
    test(`${method} with a ${kind} secret: wrong password and unknown user give the same error`, () => {
      const wrong = exchange(createClientAuth({ method, user, secret }), createServerLogin({ user, password: 'nope' }));
      const unknown = exchange(createClientAuth({ method, user, secret: undefined }), createServerLogin({ user, password }));
      const expected = { ok: false, sqlstate: '28P01', message: `password authentication failed for user "${user}"` };
      assert.deepEqual(wrong.server, expected);
      assert.deepEqual(unknown.server, expected);
      assert.equal(wrong.loginDone || unknown.loginDone, false);
      // Same message sequence from the server, so the unknown user is not given away by the protocol.
      if (!(method === 'md5' && kind === 'scram')) assert.deepEqual(wrong.codes, unknown.codes);
    });
  }
}

test('unknown-user SCRAM uses a stable fake salt per user', () => {
  const salts = [0, 1].map(() => {
    const auth = createClientAuth({ method: 'scram-sha-256', user: 'ghost', secret: undefined });
    auth.start();
    const login = createServerLogin({ user: 'ghost', password: 'x' });
    const first = login.onAuthRequest(Buffer.from([0, 0, 0, 10, ...Buffer.from('SCRAM-SHA-256\0\0')]));
    const r = auth.onMessage(0x70, first.send!.subarray(5));
    return /s=([^,]+)/.exec(r.send[0]!.subarray(9).toString())![1];
  });
  assert.equal(salts[0], salts[1]);
});

test('SCRAM against a stored secret returns pass-through keys that log in to a server with that secret', () => {
  const secret = formatScramSecret(buildScramSecret(password));
  const front = exchange(createClientAuth({ method: 'scram-sha-256', user, secret }), createServerLogin({ user, password }));
  assert.ok(front.server?.ok && front.server.scramKeys);
  const parsed = parseScramSecret(secret)!;
  const expected = scramKeysFromSalted(scramSaltedPassword(password, parsed.salt, parsed.iterations));
  assert.deepEqual(front.server.scramKeys.clientKey, expected.clientKey);
  assert.deepEqual(front.server.scramKeys.serverKey, expected.serverKey);
  // Backend with the same secret: the keys alone are enough, both ways.
  const back = exchange(createClientAuth({ method: 'scram-sha-256', user, secret }), createServerLogin({ user, scramKeys: front.server.scramKeys }));
  assert.equal(back.server?.ok, true);
  assert.equal(back.loginDone, true);
  // Backend whose secret has another salt: the server rejects us (and we could not verify it).
  const other = formatScramSecret(buildScramSecret(password));
  const mismatch = exchange(createClientAuth({ method: 'scram-sha-256', user, secret: other }), createServerLogin({ user, scramKeys: front.server.scramKeys }));
  assert.equal(mismatch.server?.ok, false);
});

test('server_login refuses a server that cannot prove it knows the secret', () => {
  // An impostor holding a different secret: client_auth fails us, but even if it claimed success
  // the SASLFinal signature would not verify.
  const impostorSecret = formatScramSecret(buildScramSecret('other password'));
  const out = exchange(createClientAuth({ method: 'scram-sha-256', user, secret: impostorSecret }), createServerLogin({ user, password }));
  assert.equal(out.server?.ok, false);
  const login = createServerLogin({ user, password });
  login.onAuthRequest(Buffer.from([0, 0, 0, 10, ...Buffer.from('SCRAM-SHA-256\0\0')]));
  assert.match(login.onAuthRequest(Buffer.from([0, 0, 0, 0])).error ?? '', /early/);
});

test('a non-ASCII password works in every method (SASLprep on both sides)', () => {
  const pw = 'p\u00E4ss\u2168w\u00A0rd';
  for (const method of methods) {
    for (const secret of [pw, md5StoredSecret(pw, user), formatScramSecret(buildScramSecret(pw))]) {
      const out = exchange(createClientAuth({ method, user, secret }), createServerLogin({ user, password: pw }));
      if (method === 'scram-sha-256' && secret.startsWith('md5')) continue;
      assert.equal(out.server?.ok, true, `${method} ${secret}`);
    }
  }
  // SASLprep makes equivalent spellings equal for SCRAM: U+2168 ≡ "IX", U+00A0 ≡ " ".
  const out = exchange(
    createClientAuth({ method: 'scram-sha-256', user, secret: formatScramSecret(buildScramSecret(pw)) }),
    createServerLogin({ user, password: 'p\u00E4ssIXw rd' }),
  );
  assert.equal(out.server?.ok, true);
});

test('server_login with an md5 stored hash answers md5 requests', () => {
  const out = exchange(createClientAuth({ method: 'md5', user, secret: password }), createServerLogin({ user, password: md5StoredSecret(password, user) }));
  assert.equal(out.server?.ok, true);
  const clear = exchange(createClientAuth({ method: 'plain', user, secret: password }), createServerLogin({ user, password: md5StoredSecret(password, user) }));
  assert.match(clear.loginError ?? '', /cleartext/);
});

test('trust, any, reject, cert and peer', () => {
  const trust = createClientAuth({ method: 'trust', user, secret: '' });
  assert.equal(trust.start()[0]!.readInt32BE(5), 0);
  assert.deepEqual(trust.result, { ok: true });
  const trustUnknown = createClientAuth({ method: 'trust', user, secret: undefined });
  assert.deepEqual(trustUnknown.start(), []);
  assert.equal(trustUnknown.result?.ok, false);
  const any = createClientAuth({ method: 'any', user, secret: undefined });
  any.start();
  assert.deepEqual(any.result, { ok: true });
  const reject = createClientAuth({ method: 'reject', user, secret: password });
  assert.deepEqual(reject.start(), []);
  assert.equal(reject.result?.ok === false && reject.result.sqlstate, '28000');
  const certOk = createClientAuth({ method: 'cert', user, secret: undefined, certCommonName: user });
  assert.equal(certOk.start().length, 1);
  assert.equal(certOk.result?.ok, true);
  const certBad = createClientAuth({ method: 'cert', user, secret: undefined, certCommonName: 'mallory' });
  certBad.start();
  assert.equal(certBad.result?.ok, false);
  const certNone = createClientAuth({ method: 'cert', user, secret: undefined });
  certNone.start();
  assert.equal(certNone.result?.ok, false);
  const peer = createClientAuth({ method: 'peer', user, secret: undefined, peerUser: user });
  peer.start();
  assert.equal(peer.result?.ok, true);
});

test('protocol errors: wrong message type, bad packets, messages after the end', () => {
  const a = createClientAuth({ method: 'plain', user, secret: password });
  a.start();
  assert.equal(a.onMessage(0x51, Buffer.from('select 1\0')).result?.ok === false && a.result?.ok === false, true);
  assert.equal((a.result as { sqlstate: string }).sqlstate, '08P01');
  const b = createClientAuth({ method: 'plain', user, secret: password });
  b.start();
  assert.equal((b.onMessage(0x70, Buffer.from('no terminator')).result as { sqlstate: string }).sqlstate, '08P01');
  const c = createClientAuth({ method: 'plain', user, secret: password });
  c.start();
  assert.equal((c.onMessage(0x70, Buffer.from('\0')).result as { sqlstate: string }).sqlstate, '28P01'); // empty password
  const d = createClientAuth({ method: 'md5', user, secret: password });
  d.start();
  assert.equal((d.onMessage(0x70, Buffer.from('md5short\0')).result as { sqlstate: string }).sqlstate, '28P01');
  assert.equal(d.onMessage(0x70, Buffer.from('x\0')).result?.ok, false);
  const e = createClientAuth({ method: 'scram-sha-256', user, secret: password });
  e.start();
  assert.match((e.onMessage(0x70, Buffer.from('SCRAM-SHA-1\0\0\0\0\0')).result as { message: string }).message, /mechanism/);
});

test('ClientAuth.result and ServerLogin.done are plain data properties, set as the exchange goes', () => {
  // A getter that is a new closure per object made V8 keep every login (and the
  // client connection it reaches) through young-generation collections: under
  // connection churn each connection was promoted to the old generation.
  const auth = createClientAuth({ method: 'trust', user: 'u', secret: undefined, requireKnownUser: false });
  const before = Object.getOwnPropertyDescriptor(auth, 'result');
  assert.ok(before && 'value' in before && before.get === undefined, 'result is a data property');
  assert.equal(auth.result, undefined);
  auth.start();
  assert.deepEqual(auth.result, { ok: true });

  const login = createServerLogin({ user: 'u', password: 'p' });
  const done = Object.getOwnPropertyDescriptor(login, 'done');
  assert.ok(done && 'value' in done && done.get === undefined, 'done is a data property');
  assert.equal(login.done, false);
  const ok = Buffer.alloc(4); // AuthenticationOk: code 0
  assert.deepEqual(login.onAuthRequest(ok), { done: true });
  assert.equal(login.done, true);
});
