#!/usr/bin/env node
// The `sluice` command.
//   sluice [FILE | --config FILE]   run the pooler (no file: embedded PostgreSQL)
//   sluice check FILE               validate a config and print warnings
//   sluice budget …  sluice doctor …  sluice migrate …
import path from 'node:path';
import { parseArgs } from 'node:util';
import { VERSION } from '../version.js';

const SUBCOMMANDS: Record<string, () => Promise<{ main(argv: string[]): Promise<number> }>> = {
  budget: () => import('./budget.js'),
  doctor: () => import('./doctor.js'),
  migrate: () => import('./migrate.js'),
  check: () => import('./check.js'),
};

const USAGE = `sluice ${VERSION} — a PostgreSQL connection pooler

Usage:
  sluice [pgbouncer.ini]          run the pooler with a PgBouncer-format config;
                                  with no file, start an embedded PostgreSQL and
                                  pool it on 127.0.0.1:6432
  sluice --config FILE            same as the positional form
  sluice check FILE               validate a config file
  sluice budget --help            plan a connection budget
  sluice doctor [DATABASE_URL]    check a live database against the checklist
  sluice migrate --help           run SQL migrations safely
  sluice --version
`;

async function main(argv: string[]): Promise<number> {
  const sub = argv[0];
  if (sub && SUBCOMMANDS[sub]) {
    const mod = await SUBCOMMANDS[sub]();
    return mod.main(argv.slice(1));
  }
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'V' },
      data: { type: 'string' },
      port: { type: 'string' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`sluice ${VERSION}\n`);
    return 0;
  }
  const file = values.config ?? positionals[0];
  const { runPooler, runEmbedded } = await import('./run.js');
  if (file) return runPooler(path.resolve(file));
  return runEmbedded({
    dataDir: path.resolve(values.data ?? process.env.SLUICE_DATA ?? '.sluice'),
    port: Number(values.port ?? process.env.SLUICE_PORT ?? 6432),
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`sluice: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
