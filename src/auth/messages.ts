// The authentication messages of the PostgreSQL protocol, built as Buffers.
// Backend: 'R' Int32 len Int32 code [payload]. Frontend: 'p' Int32 len payload.
// Kept here (not in src/protocol's message writers) so auth has no dependency
// on the hot-path codec; they are built once per login.
import { Buffer } from 'node:buffer';

export const AUTH_OK = 0;
export const AUTH_CLEARTEXT = 3;
export const AUTH_MD5 = 5;
export const AUTH_SASL = 10;
export const AUTH_SASL_CONTINUE = 11;
export const AUTH_SASL_FINAL = 12;

/** 'p': PasswordMessage, SASLInitialResponse and SASLResponse all use it. */
export const PASSWORD_MESSAGE_TYPE = 0x70;

function backendAuth(code: number, payload?: Buffer): Buffer {
  const plen = payload ? payload.length : 0;
  const b = Buffer.allocUnsafe(1 + 4 + 4 + plen);
  b[0] = 0x52; // 'R'
  b.writeInt32BE(4 + 4 + plen, 1);
  b.writeInt32BE(code, 5);
  if (payload) payload.copy(b, 9);
  return b;
}

const AUTH_OK_MESSAGE = backendAuth(AUTH_OK);
const AUTH_CLEARTEXT_MESSAGE = backendAuth(AUTH_CLEARTEXT);

export function authenticationOk(): Buffer {
  return Buffer.from(AUTH_OK_MESSAGE);
}
export function authenticationCleartextPassword(): Buffer {
  return Buffer.from(AUTH_CLEARTEXT_MESSAGE);
}
export function authenticationMD5Password(salt: Buffer): Buffer {
  if (salt.length !== 4) throw new TypeError('md5 salt must be 4 bytes');
  return backendAuth(AUTH_MD5, salt);
}
/** AuthenticationSASL: mechanism names, each NUL-terminated, then an empty name. */
export function authenticationSASL(mechanisms: readonly string[]): Buffer {
  return backendAuth(AUTH_SASL, Buffer.from(mechanisms.map((m) => m + '\0').join('') + '\0', 'utf8'));
}
export function authenticationSASLContinue(data: string | Buffer): Buffer {
  return backendAuth(AUTH_SASL_CONTINUE, Buffer.from(data));
}
export function authenticationSASLFinal(data: string | Buffer): Buffer {
  return backendAuth(AUTH_SASL_FINAL, Buffer.from(data));
}

function frontendP(payload: Buffer): Buffer {
  const b = Buffer.allocUnsafe(1 + 4 + payload.length);
  b[0] = PASSWORD_MESSAGE_TYPE;
  b.writeInt32BE(4 + payload.length, 1);
  payload.copy(b, 5);
  return b;
}

/** PasswordMessage: a NUL-terminated password (cleartext or md5 wire form). */
export function passwordMessage(password: string | Buffer): Buffer {
  const pw = Buffer.from(password);
  return frontendP(Buffer.concat([pw, Buffer.from([0])]));
}

/** SASLInitialResponse: mechanism name, Int32 length of data, data. */
export function saslInitialResponse(mechanism: string, data: string | Buffer): Buffer {
  const mech = Buffer.from(mechanism + '\0', 'utf8');
  const d = Buffer.from(data);
  const len = Buffer.allocUnsafe(4);
  len.writeInt32BE(d.length, 0);
  return frontendP(Buffer.concat([mech, len, d]));
}

/** SASLResponse: raw data. */
export function saslResponse(data: string | Buffer): Buffer {
  return frontendP(Buffer.from(data));
}
