// SASLprep (RFC 4013) of passwords, the way PostgreSQL applies it for SCRAM:
// - pure ASCII is used as is (PostgreSQL skips prep for it, even with control chars);
// - bytes that are not valid UTF-8, or a password that prep rejects (prohibited
//   or unassigned code points, bidi violations), are used as the raw bytes.
// Both sides of a SCRAM exchange must agree, so we mirror this exactly.
import { Buffer } from 'node:buffer';
import saslprepLib from '@mongodb-js/saslprep';

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

function isAscii(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i]! > 0x7f) return false;
  return true;
}

/** Returns the bytes to feed to PBKDF2 for `password` (a string is taken as UTF-8). */
export function saslprepPassword(password: string | Buffer): Buffer {
  const raw = typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
  if (isAscii(raw)) return raw;
  let text: string;
  try {
    text = utf8Strict.decode(raw);
  } catch {
    return raw; // not UTF-8: PostgreSQL uses the bytes unchanged
  }
  try {
    // PostgreSQL treats unassigned code points as prohibited (stored strings).
    const prepped = saslprepLib(text, { allowUnassigned: false });
    return Buffer.from(prepped, 'utf8');
  } catch {
    return raw; // prohibited output: PostgreSQL falls back to the raw password
  }
}
