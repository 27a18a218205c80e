// Error classes of the kit. Each has a stable `code` so callers can branch on
// it without matching messages; `isSluiceKitError` is a brand check that works
// across duplicated module copies (hot reload, two installs).

const brand = Symbol.for('sluice.kit.error');

/** Base class of every error the kit throws. */
export class SluiceKitError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    Object.defineProperty(this, brand, { value: true });
  }
}

/** True for any kit error, even one created by another copy of this module. */
export function isSluiceKitError(err: unknown): err is SluiceKitError {
  return typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[brand] === true;
}

/** No connection could be handed out within `acquireTimeoutMillis`. */
export class AcquireTimeoutError extends SluiceKitError {
  readonly timeoutMillis: number;
  constructor(timeoutMillis: number, detail: string) {
    super(
      'SLUICE_ACQUIRE_TIMEOUT',
      `no database connection within ${timeoutMillis} ms (${detail}); raise max, shorten transactions, or look for leaked clients`,
    );
    this.timeoutMillis = timeoutMillis;
  }
}

/** The pool is shutting down or has ended and takes no new work. */
export class PoolClosingError extends SluiceKitError {
  constructor() {
    super('SLUICE_POOL_CLOSING', 'the pool is shutting down and takes no new work');
  }
}

/** Invalid kit configuration: a bad option value or an impossible budget. */
export class KitConfigError extends SluiceKitError {
  constructor(message: string) {
    super('SLUICE_KIT_CONFIG', message);
  }
}

/** TLS settings that cannot be honoured (unknown sslmode, missing CA file, …). */
export class TlsConfigError extends SluiceKitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SLUICE_TLS_CONFIG', message, options);
  }
}

/** withTransaction: a statement inside failed (its error caught or not awaited), so PostgreSQL rolled back instead of committing. */
export class TransactionAbortedError extends SluiceKitError {
  constructor() {
    super(
      'SLUICE_TX_ABORTED',
      'the transaction was rolled back, not committed: a statement inside it failed and its error was caught, or not awaited, in the callback',
    );
  }
}

/** A migration failed; the message names the file and the server's error. */
export class MigrationError extends SluiceKitError {
  readonly file: string | undefined;
  constructor(code: string, message: string, file?: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.file = file;
  }
}

/** Codes of `MigrationError`. */
export const MigrationErrorCodes = {
  failed: 'SLUICE_MIGRATION_FAILED',
  checksum: 'SLUICE_MIGRATION_CHECKSUM',
  missing: 'SLUICE_MIGRATION_MISSING',
  lockTimeout: 'SLUICE_MIGRATION_LOCK_TIMEOUT',
  badFile: 'SLUICE_MIGRATION_BAD_FILE',
} as const;
