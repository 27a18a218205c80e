// PostgreSQL md5 password hashing.
// Stored form (pg_authid, userlist.txt): 'md5' + md5(password + user).
// Wire form (PasswordMessage answering AuthenticationMD5Password):
//   'md5' + md5(md5hex(password + user) + salt), where salt is 4 raw bytes.
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';

/** Length of 'md5' + 32 lowercase hex digits. */
export const MD5_PASSWORD_LENGTH = 35;

const MD5_HASH_RE = /^md5[0-9a-f]{32}$/;

function md5Hex(...parts: (Buffer | string)[]): string {
  const h = createHash('md5');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/** True when `secret` is a stored md5 hash (PostgreSQL's rule: 'md5' + exactly 32 lowercase hex digits). */
export function isMd5Secret(secret: string): boolean {
  return secret.length === MD5_PASSWORD_LENGTH && MD5_HASH_RE.test(secret);
}

/** The stored form: `'md5' + md5(password + user)`. Password and user are hashed as UTF-8 bytes. */
export function md5StoredSecret(password: string | Buffer, user: string): string {
  return 'md5' + md5Hex(password, user);
}

/**
 * The wire form sent in a PasswordMessage: `'md5' + md5(md5hex(password + user) + salt)`.
 * @example md5SaltedFromStored(md5StoredSecret('pw', 'alice'), Buffer.from([1, 2, 3, 4]))
 */
export function md5SaltedFromStored(stored: string, salt: Buffer): string {
  if (!isMd5Secret(stored)) throw new TypeError('stored md5 secret must be "md5" + 32 lowercase hex digits');
  if (salt.length !== 4) throw new TypeError('md5 salt must be 4 bytes');
  return 'md5' + md5Hex(stored.slice(3), salt);
}

/** Convenience: the wire form straight from a plaintext password. */
export function md5SaltedPassword(password: string | Buffer, user: string, salt: Buffer): string {
  return md5SaltedFromStored(md5StoredSecret(password, user), salt);
}
