// `sluice check FILE`: load and validate a config, print warnings; exit 1 on errors.
import { loadConfig } from '../config/index.js';

export async function main(argv: string[]): Promise<number> {
  const file = argv[0];
  if (!file) {
    process.stderr.write('usage: sluice check pgbouncer.ini\n');
    return 2;
  }
  try {
    const config = loadConfig(file);
    for (const w of config.warnings) process.stdout.write(`warning: ${w.file}:${w.line}: ${w.message}\n`);
    process.stdout.write(`${file}: ok (${config.databases.size} databases, ${config.users.size} users)\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
