// Logging in to PostgreSQL as a pool's user: the password comes from the
// [databases] entry, else from auth_file (plaintext or md5 hash), else from
// SCRAM keys recovered from a client's SCRAM login (pass-through).
import type { Config, DatabaseEntry } from '../config/types.js';
import { createServerLogin } from '../auth/server_login.js';
import type { ScramKeys } from '../protocol/scram.js';
import type { ServerTarget } from './server_conn.js';

/**
 * What Sluice learnt at client login, by user name: SCRAM keys recovered from a
 * client's proof, and md5 hashes fetched by auth_query (enough for md5 servers).
 */
export class PassthroughKeys {
  private readonly keys = new Map<string, ScramKeys>();
  private readonly secrets = new Map<string, string>();
  remember(user: string, keys: ScramKeys): void {
    this.keys.set(user, keys);
  }
  get(user: string): ScramKeys | undefined {
    return this.keys.get(user);
  }
  rememberSecret(user: string, secret: string): void {
    this.secrets.set(user, secret);
  }
  secret(user: string): string | undefined {
    return this.secrets.get(user);
  }
}

export function serverAuthFactory(getConfig: () => Config, passthrough: PassthroughKeys) {
  return (db: DatabaseEntry, serverUser: string): ServerTarget['auth'] =>
    () => {
      const config = getConfig();
      const stored = db.password || config.userlist.get(serverUser)?.secret || passthrough.secret(serverUser) || '';
      // A SCRAM secret cannot answer PostgreSQL by itself; only the client's proof unlocks it.
      const password = stored && !stored.startsWith('SCRAM-SHA-256$') ? stored : undefined;
      const login = createServerLogin({ user: serverUser, password, scramKeys: password ? undefined : passthrough.get(serverUser) });
      return (body: Buffer) => {
        const step = login.onAuthRequest(body);
        if (step.error) {
          const hint = password === undefined && !passthrough.get(serverUser) ? ' (no password configured for this user in [databases] or auth_file)' : '';
          return { error: step.error + hint };
        }
        return step.send ? { send: step.send } : {};
      };
    };
}
