// What a client connection needs from the running pooler. The app implements
// it; keeping it an interface keeps src/client free of listeners and config loading.
import type { DatabaseEntry, Settings, UserEntry } from '../config/types.js';
import type { ErrorFields } from '../protocol/messages.js';
import type { Pool } from '../pool/pool.js';
import type { ServerConn } from '../pool/server_conn.js';
import type { ClientConn } from './client_conn.js';

export interface ClientContext {
  settings(): Settings;
  /** The [users] entry for a user name (per-user timeouts), if the config has one. */
  userEntry(name: string): UserEntry | undefined;
  /** Client limits checked once the user and database are known; returns the refusal, if any. */
  admit(client: ClientConn): ErrorFields | null;
  /** Runs client authentication; ends with one client.authDone(null), or the error to send. */
  authenticate(client: ClientConn): void;
  tlsRequired(client: ClientConn): boolean;
  /** Present when client TLS is configured: takes over the socket after an SSLRequest (direct = bytes of a direct TLS handshake). */
  tlsUpgrade?: (client: ClientConn, direct: Buffer | null) => void;
  /** The CN of a verified client certificate. */
  verifiedCommonName?: (socket: import('node:tls').TLSSocket) => string | undefined;
  findDatabase(name: string): DatabaseEntry | undefined;
  poolFor(db: DatabaseEntry, user: string): Pool;
  registerCancel(client: ClientConn): number;
  cancel(pid: number, key: Buffer): void;
  forwardCancel(server: ServerConn): void;
  isAdminDatabase(name: string): boolean;
  startAdmin(client: ClientConn): void;
  adminQuery?: (client: ClientConn, type: number, data: Buffer, start: number, end: number) => void;
  /** Global prepared statements (transaction/statement mode). */
  readonly statements: import('../session/prepared.js').StatementRegistry;
  /** Logs a pin once per client and reason. */
  logPin?: (client: ClientConn, reason: string) => void;
  /** An error Sluice itself sent to a client (log_pooler_errors). */
  onPoolerError?: (client: ClientConn, f: ErrorFields) => void;
  /** The client is gone: drop it from registries and counts. */
  forget(client: ClientConn, reason: string, isError: boolean): void;
}
