// The kit logs through a small structured-logger interface that pino already
// satisfies, so applications can inject their own logger (or a test spy).
import { pino } from 'pino';

/** A structured logger: pino's shape, first argument an object of fields. */
export interface KitLogger {
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

let fallback: KitLogger | undefined;

/** The default logger: pino to stdout at `SLUICE_LOG_LEVEL` (default `info`), created on first use. */
export function defaultLogger(): KitLogger {
  fallback ??= pino({
    name: 'sluice-kit',
    level: process.env.SLUICE_LOG_LEVEL ?? 'info',
    redact: { paths: ['password', '*.password', 'connectionString', '*.connectionString'], censor: '[redacted]' },
  });
  return fallback;
}

/** A logger that drops everything. */
export const silentKitLogger: KitLogger = { warn() {}, error() {}, info() {} };
