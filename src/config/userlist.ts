// userlist.txt (auth_file): one user per line, `"name" "secret"`, both in
// double quotes with `""` for a literal quote; the rest of the line is
// ignored; lines starting with `;` (or `#`) are comments.

import { Buffer } from 'node:buffer';
import { ConfigError } from './errors.js';
import { FrozenMap } from './freeze.js';
import type { ConfigWarning, SecretKind, UserSecret } from './types.js';

export interface ParsedUserlist {
  readonly users: ReadonlyMap<string, UserSecret>;
  readonly warnings: readonly ConfigWarning[];
}

export interface ScramSecret {
  readonly iterations: number;
  readonly salt: Buffer;
  readonly storedKey: Buffer;
  readonly serverKey: Buffer;
}

const B64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Split `SCRAM-SHA-256$<iter>:<salt>$<storedkey>:<serverkey>`; undefined when malformed. */
export function parseScramSecret(secret: string): ScramSecret | undefined {
  const m = /^SCRAM-SHA-256\$(\d+):([^$:]+)\$([^$:]+):([^$:]+)$/.exec(secret);
  if (!m) return undefined;
  const iterations = Number(m[1]);
  if (!Number.isSafeInteger(iterations) || iterations < 1) return undefined;
  if (![m[2], m[3], m[4]].every((s) => B64.test(s!))) return undefined;
  const salt = Buffer.from(m[2]!, 'base64');
  const storedKey = Buffer.from(m[3]!, 'base64');
  const serverKey = Buffer.from(m[4]!, 'base64');
  if (salt.length === 0 || storedKey.length !== 32 || serverKey.length !== 32) return undefined;
  return { iterations, salt, storedKey, serverKey };
}

/** What PgBouncer would take the secret for: md5 hash, SCRAM secret, or a plain password. */
export function secretKind(secret: string): SecretKind {
  if (/^md5[0-9a-fA-F]{32}$/.test(secret)) return 'md5';
  if (parseScramSecret(secret)) return 'scram-sha-256';
  return 'plain';
}

/** Read one `"..."` field starting at `text[p] === '"'`; returns the value and the index after it. */
function readQuoted(text: string, p: number): { value: string; end: number } | undefined {
  let value = '';
  for (let i = p + 1; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '"') {
      if (text[i + 1] === '"') {
        value += '"';
        i++;
        continue;
      }
      return { value, end: i + 1 };
    }
    value += ch;
  }
  return undefined;
}

/**
 * Parse userlist.txt text. Throws ConfigError (file:line) on a broken line;
 * warns about secrets that look like hashes but are malformed (PgBouncer
 * would silently use them as plain-text passwords).
 */
export function parseUserlist(text: string, file: string): ParsedUserlist {
  const users = new Map<string, UserSecret>();
  const warnings: ConfigWarning[] = [];
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lines = text.split(/\r?\n|\r/);
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    const s = lines[i]!.trimStart();
    if (s === '' || s[0] === ';' || s[0] === '#') continue;
    if (s[0] !== '"') {
      throw new ConfigError({ file, line }, 'broken auth file line: expected "user" "secret" with both fields in double quotes');
    }
    const user = readQuoted(s, 0);
    if (!user) throw new ConfigError({ file, line }, 'broken auth file line: the user name has no closing double quote');
    const open = s.indexOf('"', user.end); // PgBouncer skips whatever separates the fields
    const secret = open < 0 ? undefined : readQuoted(s, open);
    if (!secret) {
      throw new ConfigError({ file, line, key: user.value }, `broken auth file line for user ${JSON.stringify(user.value)}: expected a secret in double quotes`);
    }
    if (user.value === '') {
      warnings.push({ file, line, message: 'auth file line with an empty user name is ignored' });
      continue;
    }
    const kind = secretKind(secret.value);
    if (kind === 'plain' && secret.value.startsWith('SCRAM-SHA-256$')) {
      warnings.push({ file, line, key: user.value, message: `user ${JSON.stringify(user.value)}: malformed SCRAM secret (want SCRAM-SHA-256$<iterations>:<salt>$<storedkey>:<serverkey>); it will be treated as a plain-text password` });
    } else if (kind === 'plain' && /^md5[0-9a-zA-Z]{32}$/.test(secret.value)) {
      warnings.push({ file, line, key: user.value, message: `user ${JSON.stringify(user.value)}: "md5" secret with non-hex digits; it will be treated as a plain-text password` });
    }
    users.set(user.value, Object.freeze({ user: user.value, secret: secret.value, kind, file, line }));
  }
  return { users: new FrozenMap(users), warnings: Object.freeze(warnings) };
}
