// Errors a client can get from the pool layer: a stable code for logs and
// tests, and the SQLSTATE PostgreSQL/PgBouncer use for the same condition.

export class PoolError extends Error {
  readonly code: string;
  readonly sqlstate: string;
  /** A ready-made ErrorResponse from the server, forwarded verbatim when present. */
  readonly serverMessage: Buffer | undefined;
  constructor(code: string, sqlstate: string, message: string, serverMessage?: Buffer) {
    super(message);
    this.name = 'PoolError';
    this.code = code;
    this.sqlstate = sqlstate;
    this.serverMessage = serverMessage;
  }
  static is(value: unknown): value is PoolError {
    return value instanceof PoolError;
  }
}

export const PoolErrorCode = Object.freeze({
  QueryWaitTimeout: 'SLUICE_QUERY_WAIT_TIMEOUT',
  ConnectTimeout: 'SLUICE_SERVER_CONNECT_TIMEOUT',
  LoginFailed: 'SLUICE_SERVER_LOGIN_FAILED',
  ServerUnavailable: 'SLUICE_SERVER_UNAVAILABLE',
  Paused: 'SLUICE_POOL_PAUSED',
  Disabled: 'SLUICE_DATABASE_DISABLED',
  Shutdown: 'SLUICE_SHUTTING_DOWN',
});
