// Graceful shutdown: on SIGTERM stop taking new work, let in-flight work
// finish (bounded), then end the pool. Readiness turns 503 as soon as it starts.
import type { SluicePool } from './pool.js';
import { defaultLogger, type KitLogger } from './logger.js';

export interface ShutdownOptions {
  /** Signals to handle. Default `['SIGTERM', 'SIGINT']`. @example installShutdown(pool, { signals: ['SIGTERM'] }) */
  readonly signals?: readonly NodeJS.Signals[];
  /** Runs first: stop accepting requests here (e.g. `() => app.close()`). @example installShutdown(pool, { stopAccepting: () => server.close() }) */
  readonly stopAccepting?: () => unknown;
  /** Bound on waiting for checked-out clients. Default 10000. @example installShutdown(pool, { drainTimeoutMillis: 25_000 }) */
  readonly drainTimeoutMillis?: number;
  /** Call `process.exit()` when done (exit code 0, or 1 if draining timed out). Default true. @example installShutdown(pool, { exit: false }) */
  readonly exit?: boolean;
  readonly logger?: KitLogger;
}

export interface ShutdownHandle {
  /** Run the shutdown now (idempotent). Resolves `true` when the pool drained in time. */
  shutdown(reason?: string): Promise<boolean>;
  /** Remove the signal listeners. */
  uninstall(): void;
}

/**
 * @example
 * const app = Fastify();
 * installShutdown(pool, { stopAccepting: () => app.close() });
 */
export function installShutdown(pool: SluicePool, options: ShutdownOptions = {}): ShutdownHandle {
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const logger = options.logger ?? defaultLogger();
  let running: Promise<boolean> | undefined;
  const shutdown = (reason = 'shutdown requested'): Promise<boolean> => {
    running ??= (async () => {
      logger.info({ pool: pool.name, reason }, 'shutting down: no new work, draining the pool');
      pool.beginClose();
      let ok = true;
      try {
        await options.stopAccepting?.();
      } catch (err) {
        ok = false;
        logger.error({ err: { message: (err as Error).message } }, 'stopAccepting failed');
      }
      const drained = await pool.drain(options.drainTimeoutMillis ?? 10_000);
      ok &&= drained;
      logger.info({ pool: pool.name, drained }, 'pool ended');
      if (options.exit ?? true) process.exit(ok ? 0 : 1);
      return ok;
    })();
    return running;
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    void shutdown(signal);
  };
  for (const s of signals) process.on(s, onSignal);
  return {
    shutdown,
    uninstall() {
      for (const s of signals) process.removeListener(s, onSignal);
    },
  };
}
