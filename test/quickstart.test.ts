// The README's quick start, on a fresh clone: `npm ci && npm start` brings up
// Sluice in front of an embedded PostgreSQL, psql works through it, and Ctrl-C
// stops both. (The second command, `npm ci && npm test`, is what CI runs on a
// fresh clone.)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../src/embedded/cluster.js';
import { run } from './harness/processes.js';

const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

test('README quick start on a fresh clone: npm ci && npm start, psql through it, Ctrl-C stops both', { timeout: 600_000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-clone-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync('git', ['clone', '--quiet', repo, dir]);
  const readme = readFileSync(path.join(dir, 'README.md'), 'utf8');
  const quick = /## Quick start\s+```sh\n([\s\S]*?)```/.exec(readme);
  assert.ok(quick, 'README has a Quick start block');
  const lines = quick[1].trim().split('\n').map((l) => l.replace(/\s+#.*$/, '').trim());
  assert.equal(lines.length, 2, 'exactly two command lines');
  assert.equal(lines[1], 'npm ci && npm test');
  const port = await freePort();
  const child = spawn('sh', ['-c', lines[0]], {
    cwd: dir,
    env: { ...process.env, SLUICE_PORT: String(port), SLUICE_DATA: path.join(dir, '.sluice') },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const deadline = Date.now() + 420_000;
    while (!out.includes('DATABASE_URL=') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
    assert.match(out, /DATABASE_URL=postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres/, out.slice(-2000));
    const url = /DATABASE_URL=(\S+)/.exec(out)![1];
    const r = await run('psql', [url, '-XAtc', 'select 40 + 2']);
    assert.equal(r.stdout.trim(), '42', r.stderr);
  } finally {
    // Ctrl-C goes to the whole foreground process group (which may already be gone after a failure).
    try {
      process.kill(-child.pid!, 'SIGINT');
    } catch {
      // nothing left to stop
    }
  }
  const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 60_000))]);
  assert.notEqual(code, 'hung', 'Ctrl-C must stop Sluice and PostgreSQL');
  const dataDir = /data in (\S+?)\)/.exec(out)?.[1] ?? path.join(dir, '.sluice');
  assert.ok(!existsSync(path.join(dataDir, 'data', 'postmaster.pid')), `PostgreSQL stopped cleanly (${dataDir})`);
});
