// SCRAM-SHA-256 (RFC 5802 / RFC 7677) as PostgreSQL uses it.
// Pure functions over strings and Buffers. Every parser is bounded and returns
// a ParseResult: malformed input from the network is an error value, never a throw.
import { Buffer } from 'node:buffer';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { saslprepPassword } from './saslprep.js';

export const SCRAM_SHA_256 = 'SCRAM-SHA-256';
/** PostgreSQL's default `scram_iterations`. */
export const SCRAM_DEFAULT_ITERATIONS = 4096;
/** PostgreSQL's salt length for generated secrets. */
export const SCRAM_DEFAULT_SALT_LENGTH = 16;
/** Raw nonce bytes we generate (same as PostgreSQL: 18 bytes → 24 base64 chars). */
export const SCRAM_NONCE_BYTES = 18;

// Bounds on anything read from the network. Generous for real clients
// (libpq/JDBC/npgsql nonces are 24–32 chars), tight for an attacker.
export const SCRAM_MAX_MESSAGE = 2048;
export const SCRAM_MAX_NONCE = 256;
export const SCRAM_MAX_USERNAME = 512;
export const SCRAM_MAX_AUTHZID = 512;
export const SCRAM_MAX_SALT_B64 = 256;
/** Upper bound on iterations accepted from a secret or a server (PostgreSQL's own limit is INT_MAX). */
export const SCRAM_MAX_ITERATIONS = 0x7fffffff;
const PROOF_B64_LENGTH = 44; // base64 of 32 bytes

export type ParseResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

function fail<T>(error: string): ParseResult<T> {
  return { ok: false, error };
}
function ok<T>(value: T): ParseResult<T> {
  return { ok: true, value };
}

/** Errors thrown by the non-network helpers (bad arguments from our own code or config). */
export class ScramError extends Error {
  override readonly name = 'ScramError';
  constructor(
    readonly code: 'SLUICE_AUTH_SCRAM_SECRET' | 'SLUICE_AUTH_SCRAM_ARGUMENT',
    message: string,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------- crypto

export function sha256(data: Buffer | string): Buffer {
  return createHash('sha256').update(data).digest();
}

export function hmacSha256(key: Buffer, data: Buffer | string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

export function xorBuffers(a: Buffer, b: Buffer): Buffer {
  if (a.length !== b.length) throw new ScramError('SLUICE_AUTH_SCRAM_ARGUMENT', 'xor of buffers of different lengths');
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/** Hi(SASLprep(password), salt, i) = PBKDF2-HMAC-SHA-256 with a 32-byte output. */
export function scramSaltedPassword(password: string | Buffer, salt: Buffer, iterations: number): Buffer {
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > SCRAM_MAX_ITERATIONS) {
    throw new ScramError('SLUICE_AUTH_SCRAM_ARGUMENT', `invalid SCRAM iteration count ${iterations}`);
  }
  return pbkdf2Sync(saslprepPassword(password), salt, iterations, 32, 'sha256');
}

export interface ScramKeys {
  /** HMAC(SaltedPassword, "Client Key"): what a client needs to prove itself. */
  readonly clientKey: Buffer;
  /** HMAC(SaltedPassword, "Server Key"): what a client needs to verify the server. */
  readonly serverKey: Buffer;
}

export function scramKeysFromSalted(salted: Buffer): ScramKeys & { storedKey: Buffer } {
  const clientKey = hmacSha256(salted, 'Client Key');
  return { clientKey, serverKey: hmacSha256(salted, 'Server Key'), storedKey: sha256(clientKey) };
}

/** ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage). */
export function scramClientProof(clientKey: Buffer, authMessage: string): Buffer {
  return xorBuffers(clientKey, hmacSha256(sha256(clientKey), authMessage));
}

/** ServerSignature = HMAC(ServerKey, AuthMessage). */
export function scramServerSignature(serverKey: Buffer, authMessage: string): Buffer {
  return hmacSha256(serverKey, authMessage);
}

export function scramAuthMessage(clientFirstBare: string, serverFirst: string, clientFinalWithoutProof: string): string {
  return `${clientFirstBare},${serverFirst},${clientFinalWithoutProof}`;
}

export function scramNonce(): string {
  return randomBytes(SCRAM_NONCE_BYTES).toString('base64');
}

// ---------------------------------------------------------------- base64

const B64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict base64 (canonical padding, no whitespace). Returns null when invalid. */
export function decodeBase64Strict(s: string, maxLength = SCRAM_MAX_MESSAGE): Buffer | null {
  if (s.length > maxLength || !B64_RE.test(s)) return null;
  const b = Buffer.from(s, 'base64');
  // Reject non-canonical trailing bits ("QR==" decodes like "QQ==").
  return b.toString('base64') === s ? b : null;
}

// ---------------------------------------------------------------- stored secrets

export interface ScramSecret {
  readonly iterations: number;
  readonly salt: Buffer;
  readonly storedKey: Buffer;
  readonly serverKey: Buffer;
}

const SECRET_RE = /^SCRAM-SHA-256\$(\d{1,10}):([A-Za-z0-9+/=]{1,256})\$([A-Za-z0-9+/=]{44}):([A-Za-z0-9+/=]{44})$/;

/** True when `secret` looks like a SCRAM secret (parse it to know whether it is valid). */
export function isScramSecret(secret: string): boolean {
  return secret.startsWith('SCRAM-SHA-256$');
}

/** Parses `SCRAM-SHA-256$<iter>:<b64 salt>$<b64 StoredKey>:<b64 ServerKey>`; null when malformed. */
export function parseScramSecret(secret: string): ScramSecret | null {
  if (secret.length > 512) return null;
  const m = SECRET_RE.exec(secret);
  if (!m) return null;
  const iterations = Number(m[1]);
  if (!Number.isSafeInteger(iterations) || iterations < 1 || iterations > SCRAM_MAX_ITERATIONS) return null;
  const salt = decodeBase64Strict(m[2]!);
  const storedKey = decodeBase64Strict(m[3]!);
  const serverKey = decodeBase64Strict(m[4]!);
  if (!salt || salt.length === 0 || !storedKey || storedKey.length !== 32 || !serverKey || serverKey.length !== 32) return null;
  return Object.freeze({ iterations, salt, storedKey, serverKey });
}

export function formatScramSecret(s: ScramSecret): string {
  return `SCRAM-SHA-256$${s.iterations}:${s.salt.toString('base64')}$${s.storedKey.toString('base64')}:${s.serverKey.toString('base64')}`;
}

/**
 * Derives a stored secret from a password, as `CREATE ROLE … PASSWORD` does with
 * password_encryption = scram-sha-256.
 * @example formatScramSecret(buildScramSecret('secret', { iterations: 4096 }))
 */
export function buildScramSecret(password: string | Buffer, opts: { salt?: Buffer; iterations?: number } = {}): ScramSecret {
  const salt = opts.salt ?? randomBytes(SCRAM_DEFAULT_SALT_LENGTH);
  const iterations = opts.iterations ?? SCRAM_DEFAULT_ITERATIONS;
  const keys = scramKeysFromSalted(scramSaltedPassword(password, salt, iterations));
  return Object.freeze({ iterations, salt, storedKey: keys.storedKey, serverKey: keys.serverKey });
}

// ---------------------------------------------------------------- message text

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** Bytes → string: bounded, valid UTF-8, no NUL. */
function decodeMessage(data: Buffer, what: string): ParseResult<string> {
  if (data.length === 0) return fail(`empty ${what}`);
  if (data.length > SCRAM_MAX_MESSAGE) return fail(`${what} too long (${data.length} bytes, max ${SCRAM_MAX_MESSAGE})`);
  if (data.includes(0)) return fail(`${what} contains a NUL byte`);
  try {
    return ok(utf8Strict.decode(data));
  } catch {
    return fail(`${what} is not valid UTF-8`);
  }
}

/** printable = %x21-2B / %x2D-7E (any visible ASCII but ','). */
function isPrintableNonce(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e || c === 0x2c) return false;
  }
  return true;
}

/** saslname: '=' only as "=2C" or "=3D"; returns the decoded name or null. */
function decodeSaslname(s: string): string | null {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === ',') return null;
    if (ch === '=') {
      const esc = s.slice(i + 1, i + 3);
      if (esc === '2C') out += ',';
      else if (esc === '3D') out += '=';
      else return null;
      i += 2;
    } else out += ch;
  }
  return out;
}

function encodeSaslname(s: string): string {
  return s.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

/** An "x=value" attribute with a single ASCII letter name. */
function attr(part: string, name: string): string | null {
  return part.length >= 2 && part[0] === name && part[1] === '=' ? part.slice(2) : null;
}

function isExtension(part: string): boolean {
  return part.length >= 2 && /^[A-Za-z]=/.test(part);
}

// ---------------------------------------------------------------- client-first

export interface ClientFirstMessage {
  /** 'n': client does not support channel binding; 'y': it does but thinks we don't. */
  readonly cbindFlag: 'n' | 'y';
  readonly authzid: string | undefined;
  /** The gs2 header exactly as sent ("n,," / "y,," / "n,a=…,"); client-final's c= must repeat it. */
  readonly gs2Header: string;
  /** User name from n= (PostgreSQL ignores it and uses the startup user; so do we). */
  readonly username: string;
  readonly clientNonce: string;
  /** client-first-message-bare, part of AuthMessage. */
  readonly bare: string;
}

/**
 * Parses a client-first-message from SASLInitialResponse data.
 * `user` is the startup user: an authzid other than it is refused.
 */
export function parseClientFirstMessage(data: Buffer, user: string): ParseResult<ClientFirstMessage> {
  const dec = decodeMessage(data, 'client-first-message');
  if (!dec.ok) return dec;
  const s = dec.value;
  const flag = s[0];
  if (flag === 'p') return fail('client requires channel binding, but SCRAM-SHA-256-PLUS was not offered');
  if (flag !== 'n' && flag !== 'y') return fail('invalid gs2 channel-binding flag');
  if (s[1] !== ',') return fail('malformed gs2 header');
  const comma = s.indexOf(',', 2);
  if (comma < 0) return fail('malformed gs2 header');
  let authzid: string | undefined;
  if (comma > 2) {
    const raw = attr(s.slice(2, comma), 'a');
    if (raw === null || raw.length > SCRAM_MAX_AUTHZID) return fail('malformed authzid in gs2 header');
    const decoded = decodeSaslname(raw);
    if (decoded === null || decoded.length === 0) return fail('malformed authzid in gs2 header');
    if (decoded !== user) return fail('authorization identity differs from the user name');
    authzid = decoded;
  }
  const gs2Header = s.slice(0, comma + 1);
  const bare = s.slice(comma + 1);
  const parts = bare.split(',');
  if (parts.length > 32) return fail('too many attributes in client-first-message');
  if (attr(parts[0] ?? '', 'm') !== null) return fail('mandatory SCRAM extensions are not supported');
  const rawUser = attr(parts[0] ?? '', 'n');
  if (rawUser === null) return fail('expected username attribute "n"');
  if (Buffer.byteLength(rawUser) > SCRAM_MAX_USERNAME) return fail('username attribute too long');
  // PostgreSQL ignores n= (it uses the startup user) and does not validate its escapes; neither do we.
  const username = decodeSaslname(rawUser) ?? rawUser;
  const clientNonce = attr(parts[1] ?? '', 'r');
  if (clientNonce === null) return fail('expected nonce attribute "r"');
  if (clientNonce.length > SCRAM_MAX_NONCE) return fail('client nonce too long');
  if (!isPrintableNonce(clientNonce)) return fail('client nonce is empty or has invalid characters');
  for (let i = 2; i < parts.length; i++) if (!isExtension(parts[i]!)) return fail('malformed attribute in client-first-message');
  return ok({ cbindFlag: flag, authzid, gs2Header, username, clientNonce, bare });
}

/** Builds a client-first-message (no channel binding, empty n= like libpq: the server uses the startup user). */
export function buildClientFirstMessage(clientNonce: string, username = ''): { message: string; bare: string } {
  const bare = `n=${encodeSaslname(username)},r=${clientNonce}`;
  return { message: `n,,${bare}`, bare };
}

// ---------------------------------------------------------------- server-first

export interface ServerFirstMessage {
  readonly nonce: string;
  readonly salt: Buffer;
  readonly iterations: number;
  readonly raw: string;
}

export function buildServerFirstMessage(combinedNonce: string, salt: Buffer, iterations: number): string {
  return `r=${combinedNonce},s=${salt.toString('base64')},i=${iterations}`;
}

/** Parses server-first-message; the nonce must extend our client nonce. */
export function parseServerFirstMessage(data: Buffer, clientNonce: string): ParseResult<ServerFirstMessage> {
  const dec = decodeMessage(data, 'server-first-message');
  if (!dec.ok) return dec;
  const raw = dec.value;
  const parts = raw.split(',');
  if (parts.length > 32) return fail('too many attributes in server-first-message');
  if (attr(parts[0] ?? '', 'm') !== null) return fail('server requires an unsupported SCRAM extension');
  const nonce = attr(parts[0] ?? '', 'r');
  if (nonce === null || nonce.length > 2 * SCRAM_MAX_NONCE || !isPrintableNonce(nonce)) return fail('malformed server nonce');
  if (!nonce.startsWith(clientNonce) || nonce.length === clientNonce.length) return fail('server nonce does not extend the client nonce');
  const saltB64 = attr(parts[1] ?? '', 's');
  const salt = saltB64 === null ? null : decodeBase64Strict(saltB64, SCRAM_MAX_SALT_B64);
  if (!salt || salt.length === 0) return fail('malformed salt in server-first-message');
  const iter = attr(parts[2] ?? '', 'i');
  if (iter === null || !/^[1-9]\d{0,9}$/.test(iter)) return fail('malformed iteration count in server-first-message');
  const iterations = Number(iter);
  if (iterations > SCRAM_MAX_ITERATIONS) return fail('iteration count out of range');
  for (let i = 3; i < parts.length; i++) if (!isExtension(parts[i]!)) return fail('malformed attribute in server-first-message');
  return ok({ nonce, salt, iterations, raw });
}

// ---------------------------------------------------------------- client-final

export interface ClientFinalMessage {
  readonly nonce: string;
  readonly proof: Buffer;
  /** client-final-message-without-proof, part of AuthMessage. */
  readonly withoutProof: string;
}

/**
 * Parses client-final-message. `c=` must decode to exactly the gs2 header of the
 * client-first-message, `r=` must equal the combined nonce, `p=` must be 32 bytes.
 */
export function parseClientFinalMessage(
  data: Buffer,
  expected: { readonly gs2Header: string; readonly nonce: string },
): ParseResult<ClientFinalMessage> {
  const dec = decodeMessage(data, 'client-final-message');
  if (!dec.ok) return dec;
  const s = dec.value;
  const parts = s.split(',');
  if (parts.length < 3 || parts.length > 32) return fail('malformed client-final-message');
  const cb64 = attr(parts[0]!, 'c');
  if (cb64 === null) return fail('expected channel-binding attribute "c"');
  const cb = decodeBase64Strict(cb64, 4 * Math.ceil((SCRAM_MAX_AUTHZID + 8) / 3));
  if (!cb) return fail('malformed channel-binding data');
  // No channel binding is offered, so c= carries only the gs2 header, byte for byte.
  if (!cb.equals(Buffer.from(expected.gs2Header, 'utf8'))) return fail('channel binding does not match the gs2 header');
  const nonce = attr(parts[1]!, 'r');
  if (nonce === null) return fail('expected nonce attribute "r"');
  if (nonce !== expected.nonce) return fail('nonce does not match');
  for (let i = 2; i < parts.length - 1; i++) if (!isExtension(parts[i]!) || parts[i]![0] === 'p') return fail('malformed attribute in client-final-message');
  const proofB64 = attr(parts[parts.length - 1]!, 'p');
  if (proofB64 === null) return fail('expected proof attribute "p" at the end');
  if (proofB64.length !== PROOF_B64_LENGTH) return fail('client proof has the wrong length');
  const proof = decodeBase64Strict(proofB64, PROOF_B64_LENGTH);
  if (!proof || proof.length !== 32) return fail('malformed client proof');
  return ok({ nonce, proof, withoutProof: parts.slice(0, -1).join(',') });
}

export function buildClientFinalMessage(gs2Header: string, combinedNonce: string, proof: Buffer): { message: string; withoutProof: string } {
  const withoutProof = `c=${Buffer.from(gs2Header, 'utf8').toString('base64')},r=${combinedNonce}`;
  return { message: `${withoutProof},p=${proof.toString('base64')}`, withoutProof };
}

// ---------------------------------------------------------------- server-final

export function buildServerFinalMessage(serverSignature: Buffer): string {
  return `v=${serverSignature.toString('base64')}`;
}

export type ServerFinalMessage = { readonly verifier: Buffer } | { readonly serverError: string };

export function parseServerFinalMessage(data: Buffer): ParseResult<ServerFinalMessage> {
  const dec = decodeMessage(data, 'server-final-message');
  if (!dec.ok) return dec;
  const parts = dec.value.split(',');
  const e = attr(parts[0]!, 'e');
  if (e !== null) return ok({ serverError: e.slice(0, 200) });
  const v = attr(parts[0]!, 'v');
  const verifier = v === null ? null : decodeBase64Strict(v, PROOF_B64_LENGTH);
  if (!verifier || verifier.length !== 32) return fail('malformed server signature');
  return ok({ verifier });
}
