// Client side of logging in to PostgreSQL: answer the server's Authentication*
// requests. No sockets: feed the body of each 'R' message, write what comes back.
//
// Pass-through: with `scramKeys` (ClientKey + ServerKey recovered from a client's
// SCRAM proof, see client_auth.ts) and no password, we can prove ourselves and
// verify the server without knowing the password. This works only when the
// server's stored secret has the same salt and iteration count as the secret the
// keys came from, i.e. the userlist secret was copied from pg_authid.rolpassword.
import { Buffer } from 'node:buffer';
import { timingSafeEqual } from 'node:crypto';
import { isMd5Secret, md5SaltedFromStored, md5StoredSecret } from '../protocol/md5.js';
import {
  SCRAM_SHA_256,
  buildClientFinalMessage,
  buildClientFirstMessage,
  parseServerFinalMessage,
  parseServerFirstMessage,
  scramAuthMessage,
  scramClientProof,
  scramKeysFromSalted,
  scramNonce,
  scramSaltedPassword,
  scramServerSignature,
  type ScramKeys,
} from '../protocol/scram.js';
import {
  AUTH_CLEARTEXT,
  AUTH_MD5,
  AUTH_OK,
  AUTH_SASL,
  AUTH_SASL_CONTINUE,
  AUTH_SASL_FINAL,
  passwordMessage,
  saslInitialResponse,
  saslResponse,
} from './messages.js';

export interface ServerLoginOptions {
  readonly user: string;
  /** Plaintext password, or an 'md5…' stored hash (usable only for md5 requests). */
  readonly password?: string;
  /** Pass-through keys from a client's SCRAM login (used when `password` is absent). */
  readonly scramKeys?: ScramKeys;
  /** Upper bound on the server's iteration count (PBKDF2 blocks the event loop). Default 1,000,000. */
  readonly maxIterations?: number;
}

export interface ServerLoginStep {
  /** A 'p' message to write to the server. */
  readonly send?: Buffer;
  /** Login cannot continue: close the server connection and report this. */
  readonly error?: string;
  /** AuthenticationOk arrived (and, for SCRAM, the server proved itself). */
  readonly done?: boolean;
}

export interface ServerLogin {
  /** Feed the body of an 'R' (Authentication*) message, without the 5-byte header. */
  onAuthRequest(body: Buffer): ServerLoginStep;
  readonly done: boolean;
}

const MAX_SASL_LIST = 1024;

export function createServerLogin(options: ServerLoginOptions): ServerLogin {
  const { user, password, scramKeys } = options;
  const maxIterations = options.maxIterations ?? 1_000_000;
  const passwordIsMd5 = password !== undefined && isMd5Secret(password);
  let state: 'start' | 'sasl-first-sent' | 'sasl-final-sent' | 'sasl-verified' | 'done' | 'failed' = 'start';
  let clientNonce = '';
  let clientFirstBare = '';
  let expectedServerSignature: Buffer | undefined;

  const error = (msg: string): ServerLoginStep => {
    state = 'failed';
    return { error: msg };
  };

  function onSasl(payload: Buffer): ServerLoginStep {
    if (state !== 'start') return error('unexpected AuthenticationSASL');
    if (payload.length > MAX_SASL_LIST) return error('AuthenticationSASL mechanism list too long');
    const mechanisms = payload.toString('utf8').split('\0').filter((m) => m.length > 0);
    if (!mechanisms.includes(SCRAM_SHA_256)) {
      return error(`server offers SASL mechanisms ${mechanisms.join(', ') || '(none)'}; only ${SCRAM_SHA_256} is supported`);
    }
    if (password === undefined && !scramKeys) return error(`server requested SCRAM authentication for user "${user}", but no password is configured`);
    if (password !== undefined && passwordIsMd5 && !scramKeys) {
      return error(`server requested SCRAM authentication for user "${user}", but only an md5 hash of the password is known`);
    }
    clientNonce = scramNonce();
    // No channel binding: 'n,,' (we never select SCRAM-SHA-256-PLUS).
    const first = buildClientFirstMessage(clientNonce);
    clientFirstBare = first.bare;
    state = 'sasl-first-sent';
    return { send: saslInitialResponse(SCRAM_SHA_256, first.message) };
  }

  function onSaslContinue(payload: Buffer): ServerLoginStep {
    if (state !== 'sasl-first-sent') return error('unexpected AuthenticationSASLContinue');
    const parsed = parseServerFirstMessage(payload, clientNonce);
    if (!parsed.ok) return error(`invalid SCRAM server-first-message: ${parsed.error}`);
    const sf = parsed.value;
    let keys: ScramKeys;
    if (password !== undefined && !passwordIsMd5) {
      if (sf.iterations > maxIterations) return error(`server asks for ${sf.iterations} SCRAM iterations (max ${maxIterations})`);
      keys = scramKeysFromSalted(scramSaltedPassword(password, sf.salt, sf.iterations));
    } else if (scramKeys) {
      keys = scramKeys;
    } else {
      return error('no credentials for SCRAM');
    }
    const final = buildClientFinalMessage('n,,', sf.nonce, Buffer.alloc(32));
    const authMessage = scramAuthMessage(clientFirstBare, sf.raw, final.withoutProof);
    const proof = scramClientProof(keys.clientKey, authMessage);
    expectedServerSignature = scramServerSignature(keys.serverKey, authMessage);
    state = 'sasl-final-sent';
    return { send: saslResponse(`${final.withoutProof},p=${proof.toString('base64')}`) };
  }

  function onSaslFinal(payload: Buffer): ServerLoginStep {
    if (state !== 'sasl-final-sent') return error('unexpected AuthenticationSASLFinal');
    const parsed = parseServerFinalMessage(payload);
    if (!parsed.ok) return error(`invalid SCRAM server-final-message: ${parsed.error}`);
    if ('serverError' in parsed.value) return error(`SCRAM authentication failed: ${parsed.value.serverError}`);
    if (!timingSafeEqual(parsed.value.verifier, expectedServerSignature!)) {
      return error('SCRAM server signature is invalid: the server does not know the secret (or the pass-through secret differs)');
    }
    state = 'sasl-verified';
    return {};
  }

  // A plain property, not a getter: see the note on ClientAuth.result in client_auth.ts.
  const login: { done: boolean } & Omit<ServerLogin, 'done'> = {
    done: false,
    onAuthRequest(body: Buffer): ServerLoginStep {
      if (state === 'failed' || state === 'done') return error('authentication request after login finished');
      if (body.length < 4) return error('malformed authentication request');
      const code = body.readInt32BE(0);
      const payload = body.subarray(4);
      switch (code) {
        case AUTH_OK:
          // A server that skips SCRAM's final step has not proved it knows the secret.
          if (state === 'sasl-first-sent' || state === 'sasl-final-sent') return error('server ended SCRAM authentication early');
          state = 'done';
          login.done = true;
          return { done: true };
        case AUTH_CLEARTEXT:
          if (state !== 'start') return error('unexpected AuthenticationCleartextPassword');
          if (password === undefined || passwordIsMd5) return error(`server requested a cleartext password for user "${user}", but no plaintext password is configured`);
          return { send: passwordMessage(password) };
        case AUTH_MD5: {
          if (state !== 'start') return error('unexpected AuthenticationMD5Password');
          if (payload.length !== 4) return error('malformed AuthenticationMD5Password');
          if (password === undefined) return error(`server requested md5 authentication for user "${user}", but no password is configured (SCRAM pass-through needs a SCRAM secret on the server)`);
          const stored = passwordIsMd5 ? password : md5StoredSecret(password, user);
          return { send: passwordMessage(md5SaltedFromStored(stored, payload)) };
        }
        case AUTH_SASL:
          return onSasl(payload);
        case AUTH_SASL_CONTINUE:
          return onSaslContinue(payload);
        case AUTH_SASL_FINAL:
          return onSaslFinal(payload);
        default:
          return error(`unsupported authentication request ${code}`);
      }
    },
  };
  return login;
}
