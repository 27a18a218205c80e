// Hostile input before authentication: malformed SASL messages must always end
// in a structured failure (never a throw, never success).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { createClientAuth, type ClientAuthStep } from '../src/auth/client_auth.js';
import { saslInitialResponse, saslResponse } from '../src/auth/messages.js';
import { buildScramSecret, formatScramSecret } from '../src/protocol/scram.js';

const user = 'alice';
const secrets = [undefined, 'pw', formatScramSecret(buildScramSecret('pw'))];

function bodyOf(msg: Buffer): Buffer {
  return msg.subarray(5);
}

function pick<T>(xs: readonly T[]): T {
  return xs[randomInt(xs.length)]!;
}

const b64 = (n: number) => randomBytes(n).toString('base64');
const pieces = [
  'n', 'y', 'p', ',', ',,', '=', '=2C', '=3D', '=ZZ', 'a=', 'a=alice', 'a=bob', 'n=', 'n=alice', 'r=', 'm=x', 'c=', 'p=',
  'biws', 'eSws', 'cD10bHMtc2VydmVyLWVuZC1wb2ludCws', '\0', '\xff', 'é', ' ', '!!', '====',
];

function randomClientFirst(): Buffer {
  switch (randomInt(8)) {
    case 0:
      return randomBytes(randomInt(0, 64));
    case 1:
      return Buffer.from(`n,,n=,r=${'x'.repeat(randomInt(200, 5000))}`); // huge nonce
    case 2:
      return Buffer.from(`${pick(['n', 'y', 'p=tls-unique', 'q', ''])},${pick(['', 'a=alice', 'a=bob', 'a=', 'a=x=y'])},n=${pick(['', 'alice', 'a,b', '=2', '=3D'])},r=${pick(['', 'abc', 'a,b', b64(18), '\x7f'])}`);
    case 3:
      return Buffer.from(`n,,n=,r=${b64(18)}`).subarray(0, randomInt(0, 30)); // truncated
    case 4:
      return Buffer.from(Array.from({ length: randomInt(1, 12) }, () => pick(pieces)).join(''), 'latin1');
    case 5:
      return Buffer.alloc(randomInt(2049, 70000), 0x41);
    case 6:
      return Buffer.from(`n,,n=,r=abc,${Array.from({ length: randomInt(1, 100) }, () => 'x=1').join(',')}`);
    default:
      return Buffer.from(`n,,n=${'é'.repeat(randomInt(100, 400))},r=abc`);
  }
}

function randomClientFinal(nonce: string, valid: string): Buffer {
  const proof = b64(32);
  switch (randomInt(9)) {
    case 0:
      return randomBytes(randomInt(0, 120));
    case 1:
      return Buffer.from(`c=${pick(['biws', 'eSws', 'cCws', '', '!!!', 'biw', 'biws='])},r=${nonce},p=${proof}`);
    case 2:
      return Buffer.from(`c=biws,r=${pick([nonce + 'x', nonce.slice(1), '', 'x'.repeat(10000)])},p=${proof}`);
    case 3:
      return Buffer.from(`c=biws,r=${nonce},p=${pick([b64(31), b64(33), proof.slice(0, -1) + '!', '', proof + 'A', b64(3000)])}`);
    case 4:
      return Buffer.from(valid.slice(0, randomInt(0, valid.length)));
    case 5:
      return Buffer.from(`c=biws,r=${nonce},${pick(['', 'x=1,', 'p=AA==,', ',', 'zz'])}p=${proof}`);
    case 6:
      return Buffer.from(`r=${nonce},c=biws,p=${proof}`);
    case 7:
      return Buffer.concat([Buffer.from(valid), randomBytes(randomInt(1, 10))]);
    default:
      return Buffer.from(Array.from({ length: randomInt(1, 12) }, () => pick(pieces)).join(''), 'latin1');
  }
}

function assertFailure(step: ClientAuthStep, what: string): void {
  assert.ok(step.result, `${what}: expected a result`);
  assert.equal(step.result.ok, false, what);
  if (!step.result.ok) assert.ok(['08P01', '28P01', '28000'].includes(step.result.sqlstate));
}

test('fuzz: malformed SASLInitialResponse framing and client-first-message', () => {
  for (let i = 0; i < 3000; i++) {
    const auth = createClientAuth({ method: 'scram-sha-256', user, secret: pick(secrets) });
    auth.start();
    const kind = randomInt(4);
    let body: Buffer;
    if (kind === 0) body = randomBytes(randomInt(0, 40)); // garbage framing
    else if (kind === 1) {
      const good = bodyOf(saslInitialResponse('SCRAM-SHA-256', randomClientFirst()));
      body = Buffer.from(good);
      body.writeInt32BE(pick([-1, 0, 0x7fffffff, -0x80000000, good.length]), 14); // lying length
    } else body = bodyOf(saslInitialResponse(pick(['SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS', 'PLAIN', '']), randomClientFirst()));
    let step: ClientAuthStep;
    try {
      step = auth.onMessage(0x70, body);
    } catch (err) {
      assert.fail(`threw on ${JSON.stringify(body.toString('latin1').slice(0, 80))}: ${(err as Error).stack}`);
    }
    // A message that happens to be valid continues the exchange; anything else ends it.
    if (step.result) assertFailure(step, 'client-first');
  }
});

test('fuzz: malformed client-final-message after a valid client-first', () => {
  for (let i = 0; i < 3000; i++) {
    const auth = createClientAuth({ method: 'scram-sha-256', user, secret: pick(secrets) });
    auth.start();
    const cnonce = b64(18);
    const s1 = auth.onMessage(0x70, bodyOf(saslInitialResponse('SCRAM-SHA-256', `n,,n=,r=${cnonce}`)));
    assert.equal(s1.result, undefined);
    const serverFirst = bodyOf(s1.send[0]!).subarray(4).toString();
    const nonce = /^r=([^,]+)/.exec(serverFirst)![1]!;
    const valid = `c=biws,r=${nonce},p=${b64(32)}`;
    const body = bodyOf(saslResponse(randomClientFinal(nonce, valid)));
    let step: ClientAuthStep;
    try {
      step = auth.onMessage(0x70, body);
    } catch (err) {
      assert.fail(`threw on ${JSON.stringify(body.toString('latin1').slice(0, 80))}: ${(err as Error).stack}`);
    }
    assertFailure(step, 'client-final');
    // And nothing further is accepted.
    assert.equal(auth.onMessage(0x70, Buffer.from(valid)).result?.ok, false);
  }
});

test('fuzz: cleartext and md5 password packets', () => {
  for (let i = 0; i < 2000; i++) {
    const auth = createClientAuth({ method: pick(['plain', 'md5'] as const), user, secret: pick(secrets) });
    auth.start();
    const body = pick([randomBytes(randomInt(0, 50)), Buffer.alloc(randomInt(1000, 70000), 0x61), Buffer.from('md5' + 'f'.repeat(32) + '\0'), Buffer.alloc(0)]);
    const step = auth.onMessage(pick([0x70, 0x70, 0x51, 0]), body);
    assertFailure(step, 'password');
  }
});
