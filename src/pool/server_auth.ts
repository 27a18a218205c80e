// Answers PostgreSQL's authentication requests when Sluice logs in as a pool's
// user. Passwords come from the [databases] entry, else from auth_file.
import { createHash } from 'node:crypto';
import type { Config, DatabaseEntry } from '../config/types.js';
import type { ServerTarget } from './server_conn.js';

function passwordMessage(password: string): Buffer {
  const body = Buffer.from(password + '\0', 'utf8');
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = 0x70; // 'p'
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

function md5hex(data: Buffer | string): string {
  return createHash('md5').update(data).digest('hex');
}

export function serverAuthFactory(getConfig: () => Config) {
  return (db: DatabaseEntry, serverUser: string): ServerTarget['auth'] => {
    return (body: Buffer) => {
      const config = getConfig();
      const secret = db.password || config.userlist.get(serverUser)?.secret || '';
      const code = body.readInt32BE(0);
      if (code === 3) {
        if (!secret || secret.startsWith('md5') || secret.startsWith('SCRAM-SHA-256$')) {
          return { error: `server asked for a cleartext password for user "${serverUser}", but none is configured` };
        }
        return { send: passwordMessage(secret) };
      }
      if (code === 5) {
        if (!secret || secret.startsWith('SCRAM-SHA-256$')) return { error: `server asked for an md5 password for user "${serverUser}", but none is configured` };
        const salt = body.subarray(4, 8);
        const inner = /^md5[0-9a-f]{32}$/.test(secret) ? secret.slice(3) : md5hex(secret + serverUser);
        return { send: passwordMessage('md5' + md5hex(Buffer.concat([Buffer.from(inner), salt]))) };
      }
      return { error: `server requested an authentication method (${code}) this build cannot answer` };
    };
  };
}
