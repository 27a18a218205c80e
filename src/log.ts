// One structured logger for the process. Secrets never reach it: connection
// strings and passwords are redacted by key.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(options: { file?: string; verbose?: number; level?: string } = {}): Logger {
  const level = options.level ?? process.env.SLUICE_LOG_LEVEL ?? (options.verbose && options.verbose > 0 ? 'debug' : 'info');
  const destination = options.file ? pino.destination({ dest: options.file, mkdir: true, sync: false }) : pino.destination(1);
  return pino(
    {
      name: 'sluice',
      level,
      redact: { paths: ['password', '*.password', 'secret', '*.secret', 'url', '*.url'], censor: '[redacted]' },
    },
    destination,
  );
}

/** A logger that drops everything: the default in tests and library use. */
export const silentLogger: Logger = pino({ level: 'silent' });
