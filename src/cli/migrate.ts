// `sluice migrate`: apply SQL migrations from a directory, safely from many
// instances at once. Exit codes: 0 applied or nothing to do, 1 failure, 2 usage.
import path from 'node:path';
import { createPool } from '../kit/pool.js';
import { migrate } from '../kit/migrate.js';
import { isSluiceKitError } from '../kit/errors.js';
import type { KitLogger } from '../kit/logger.js';

const USAGE = `usage: sluice migrate [--url <postgres-url>] [--dir <directory>] [--table <name>] [--lock-wait-ms <ms>]

Applies NNN_name.sql files from --dir (default ./migrations) in numeric order,
each in its own transaction, recording them in --table (default sluice_migrations).
The URL defaults to DATABASE_URL. Safe to run from every instance at once.`;

interface Parsed {
  url?: string;
  dir: string;
  table?: string;
  lockWaitMillis?: number;
  help: boolean;
}

function parse(argv: string[]): Parsed | string {
  const out: Parsed = { dir: 'migrations', help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case '-h':
      case '--help':
        out.help = true;
        break;
      case '--url': {
        const v = value();
        if (!v) return '--url needs a value';
        out.url = v;
        break;
      }
      case '--dir': {
        const v = value();
        if (!v) return '--dir needs a value';
        out.dir = v;
        break;
      }
      case '--table': {
        const v = value();
        if (!v) return '--table needs a value';
        out.table = v;
        break;
      }
      case '--lock-wait-ms': {
        const v = Number(value());
        if (!Number.isFinite(v) || v <= 0) return '--lock-wait-ms needs a positive number';
        out.lockWaitMillis = v;
        break;
      }
      default:
        return `unknown argument ${arg}`;
    }
  }
  return out;
}

/** Lines for humans on stdout/stderr; the kit's structured logs stay quiet. */
function cliLogger(): KitLogger {
  return {
    info: (f, m) => {
      const id = (f as { migration?: string }).migration;
      if (id) process.stdout.write(`applied ${id}\n`);
      else if (m) process.stdout.write(`${m}\n`);
    },
    warn: (f, m) => process.stderr.write(`warning: ${m} ${JSON.stringify(f)}\n`),
    error: (f, m) => process.stderr.write(`error: ${m} ${JSON.stringify(f)}\n`),
  };
}

/** Entry point of `sluice migrate`; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const parsed = parse(argv);
  if (typeof parsed === 'string') {
    process.stderr.write(`sluice migrate: ${parsed}\n${USAGE}\n`);
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const url = parsed.url ?? process.env.DATABASE_URL;
  if (!url) {
    process.stderr.write(`sluice migrate: no database: pass --url or set DATABASE_URL\n`);
    return 2;
  }
  const logger = cliLogger();
  let pool;
  try {
    pool = createPool({ connectionString: url, max: 1, applicationName: 'sluice-migrate', leakDetectionMillis: 0, idleInTransactionTimeoutMillis: 0, acquireTimeoutMillis: 15_000, logger });
  } catch (err) {
    process.stderr.write(`sluice migrate: ${(err as Error).message}\n`);
    return 1;
  }
  const dir = path.resolve(parsed.dir);
  try {
    const result = await migrate(pool, dir, {
      ...(parsed.table ? { table: parsed.table } : {}),
      ...(parsed.lockWaitMillis ? { lockWaitMillis: parsed.lockWaitMillis } : {}),
      logger,
    });
    process.stdout.write(`sluice migrate: ${result.applied.length} applied, ${result.alreadyApplied.length} already applied\n`);
    return 0;
  } catch (err) {
    const code = isSluiceKitError(err) ? `${err.code}: ` : '';
    process.stderr.write(`sluice migrate: ${code}${(err as Error).message}\n`);
    return 1;
  } finally {
    await pool.end().catch(() => {});
  }
}
