// Error classes of the auth layer. Codes are stable; messages are for humans.

export type AuthErrorCode =
  | 'SLUICE_AUTH_HBA_PARSE'
  | 'SLUICE_AUTH_TLS_CONFIG'
  | 'SLUICE_AUTH_BAD_ARGUMENT';

export class AuthError extends Error {
  override readonly name = 'AuthError';
  constructor(
    readonly code: AuthErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  static is(err: unknown): err is AuthError {
    return err instanceof AuthError;
  }
}

/** A pg_hba-style file error that names its file and line. */
export class HbaParseError extends AuthError {
  constructor(
    readonly file: string,
    readonly line: number,
    detail: string,
  ) {
    super('SLUICE_AUTH_HBA_PARSE', `${file}:${line}: ${detail}`);
  }
}
