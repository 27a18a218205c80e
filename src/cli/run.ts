// Running the pooler from the command line: with a config file, or in front of
// an embedded PostgreSQL when none is given. Signals follow PgBouncer.
import path from 'node:path';
import { Sluice } from '../app.js';
import { loadConfig, buildConfig } from '../config/index.js';
import type { Config } from '../config/types.js';
import { createLogger } from '../log.js';
import { PgCluster } from '../embedded/cluster.js';
import { findPgBinaries } from '../embedded/binaries.js';
import { writeFileSync, unlinkSync } from 'node:fs';

/**
 * Installs PgBouncer's signal meanings before Sluice starts (so an early signal
 * is never fatal by default), then resolves with the exit code once it stopped.
 */
async function handleSignals(
  starting: Promise<Sluice>,
  reload: (() => Config) | null,
  onStopped: () => Promise<void> = async () => {},
): Promise<number> {
  let ready: Sluice | null = null;
  const early: NodeJS.Signals[] = [];
  const buffer = (sig: NodeJS.Signals) => () => void early.push(sig);
  const buffered = (['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const).map((sig) => {
    const h = buffer(sig);
    process.on(sig, h);
    return [sig, h] as const;
  });
  ready = await starting;
  for (const [sig, h] of buffered) process.off(sig, h);
  const app = ready;
  const done = new Promise<number>((resolve) => {
    let stopping = false;
    const finish = async (mode: 'immediate' | 'wait-for-clients' | 'wait-for-servers') => {
      if (stopping && mode !== 'immediate') return;
      stopping = true;
      await app.stop(mode);
      await onStopped();
      resolve(0);
    };
    let terms = 0;
    process.on('SIGTERM', () => {
      terms++;
      app.log.info({ signal: 'SIGTERM', count: terms }, terms === 1 ? 'waiting for clients to finish, then exiting' : 'exiting now');
      void finish(terms === 1 ? 'wait-for-clients' : 'immediate');
    });
    process.on('SIGINT', () => {
      app.log.info({ signal: 'SIGINT' }, 'waiting for servers to be released, then exiting');
      void finish(stopping ? 'immediate' : 'wait-for-servers');
    });
    process.on('SIGQUIT', () => void finish('immediate'));
    app.onShutdownRequest = (mode) => void finish(mode);
    process.on('SIGHUP', () => {
      if (!reload) return;
      try {
        app.reload(reload());
        app.log.info('configuration reloaded');
      } catch (err) {
        app.log.error({ err: err instanceof Error ? err.message : String(err) }, 'reload failed; keeping the old configuration');
      }
    });
    process.on('SIGUSR1', () => app.pause());
    process.on('SIGUSR2', () => app.resume());
  });
  for (const sig of early) process.emit(sig, sig);
  return done;
}

export async function runPooler(file: string): Promise<number> {
  const config = loadConfig(file);
  const log = createLogger({ file: config.settings.logfile || undefined, verbose: config.settings.verbose });
  for (const w of config.warnings) log.warn({ file: w.file, line: w.line, key: w.key }, w.message);
  const starting = Sluice.start(config, { logger: log, configFile: file, loadConfig: () => loadConfig(file) });
  if (config.settings.pidfile) writeFileSync(config.settings.pidfile, `${process.pid}\n`);
  return handleSignals(starting, () => loadConfig(file), async () => {
    if (config.settings.pidfile) {
      try {
        unlinkSync(config.settings.pidfile);
      } catch {
        // already gone
      }
    }
  });
}

export async function runEmbedded(options: { dataDir: string; port: number }): Promise<number> {
  const log = createLogger({});
  const binaries = findPgBinaries({ preferEmbedded: true });
  const cluster = new PgCluster({ dir: options.dataDir, binaries, conf: { fsync: 'on', synchronous_commit: 'on', full_page_writes: 'on' } });
  log.info({ dir: path.relative(process.cwd(), options.dataDir) || '.', binaries: binaries.source }, 'starting embedded PostgreSQL');
  if (cluster.relocatedFrom) {
    log.warn({ requested: cluster.relocatedFrom, using: cluster.dir }, 'the PostgreSQL OS user cannot reach the requested data folder; using another');
  }
  await cluster.start();
  const config = buildConfig({
    settings: { listen_addr: '127.0.0.1', listen_port: options.port, unix_socket_dir: '', auth_type: 'trust', pool_mode: 'transaction', admin_users: 'postgres' },
    databases: { '*': `host=127.0.0.1 port=${cluster.port}` },
  });
  const starting = Sluice.start(config, { logger: log });
  const app = await starting;
  process.stdout.write(
    `\nSluice is pooling an embedded PostgreSQL (data in ${cluster.dir}).\n` +
      `  DATABASE_URL=postgres://postgres@127.0.0.1:${app.port}/postgres\n` +
      `  psql "postgres://postgres@127.0.0.1:${app.port}/postgres"\n` +
      `Press Ctrl-C to stop both.\n\n`,
  );
  return handleSignals(starting, null, async () => {
    await cluster.stop('fast');
    log.info('embedded PostgreSQL stopped');
  });
}
