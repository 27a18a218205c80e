// The young-generation cap: it turns on above the threshold of connected
// clients, off at half of it, V8 honours it at run time, and the pooler counts
// every accepted and every closed client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { buildConfig } from '../src/config/index.js';
import { Sluice } from '../src/app.js';
import { clientClosed, clientOpened, youngGenerationCapped, YOUNG_GENERATION_CAP_ABOVE } from '../src/memory.js';
import { waitFor } from './harness/wait.js';

test('the cap turns on above the threshold and off at half of it', () => {
  const base = youngGenerationCapped();
  assert.equal(base, false, 'no clients, no cap');
  for (let i = 0; i < YOUNG_GENERATION_CAP_ABOVE; i++) clientOpened();
  assert.equal(youngGenerationCapped(), false, 'at the threshold growth is still allowed');
  clientOpened();
  assert.equal(youngGenerationCapped(), true, 'one above the threshold stops growth');
  for (let i = 0; i < YOUNG_GENERATION_CAP_ABOVE / 2; i++) clientClosed();
  assert.equal(youngGenerationCapped(), true, 'a little below the threshold the cap holds (no flapping)');
  clientClosed();
  assert.equal(youngGenerationCapped(), false, 'at half the threshold growth is allowed again');
  for (let i = 0; i < YOUNG_GENERATION_CAP_ABOVE / 2; i++) clientClosed();
});

/**
 * In a fresh Node.js process: a small burst of surviving objects, then a large
 * one, with the cap on or off from the start. Returns the young generation's
 * size after each burst. A fresh process, because V8 learns from earlier
 * bursts in the same heap (pretenuring) and the young generation only grows.
 */
function youngGenerationAfterBursts(capped: boolean): { small: number; large: number } {
  const memory = new URL('../src/memory.js', import.meta.url).href;
  const script = `
    import { execFileSync } from 'node:child_process';
    import { clientOpened, YOUNG_GENERATION_CAP_ABOVE } from ${JSON.stringify(memory)};
    const size = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
    class Survivor { constructor(next) { this.next = next; this.a = 0; this.b = 0; this.c = 0; this.d = 0; this.e = 0; this.f = 0; this.g = 0; this.h = 0; } }
    const burst = (n) => { let head = null; for (let i = 0; i < n; i++) head = new Survivor(head); return head; };
    if (${capped}) for (let i = 0; i <= YOUNG_GENERATION_CAP_ABOVE; i++) clientOpened();
    const small = burst(20000);
    const afterSmall = size();
    const large = burst(500000);
    console.log(JSON.stringify({ small: afterSmall, large: size(), kept: small !== null && large !== null }));
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  return JSON.parse(out) as { small: number; large: number };
}

test('V8 stops growing the young generation while capped, and grows it otherwise', () => {
  const free = youngGenerationAfterBursts(false);
  assert.ok(free.large > free.small, `uncapped, a large burst of surviving objects grows the young generation (${free.small} -> ${free.large} bytes)`);
  const capped = youngGenerationAfterBursts(true);
  assert.equal(capped.large, capped.small, `capped, the young generation keeps its ${capped.small} bytes through the large burst`);
});

test('Sluice counts accepted and closed clients toward the cap', async () => {
  const config = buildConfig({
    settings: { listen_addr: '127.0.0.1', listen_port: 0, unix_socket_dir: '', auth_type: 'trust', max_client_conn: 2000 },
    // No server is ever needed: these clients never send a startup packet.
    databases: { '*': 'host=127.0.0.1 port=1' },
  });
  const app = await Sluice.start(config);
  const sockets: net.Socket[] = [];
  try {
    while (sockets.length <= YOUNG_GENERATION_CAP_ABOVE) {
      const s = net.connect(app.port, '127.0.0.1');
      s.on('error', () => {});
      sockets.push(s);
      await once(s, 'connect');
    }
    await waitFor(() => youngGenerationCapped(), 'the cap to turn on once the pooler holds more clients than the threshold');
    for (const s of sockets) s.destroy();
    // Every close counted (not only enough of them to lift the cap), so no other test starts from a skewed count.
    await waitFor(() => app.clients.size === 0, 'the clients to be gone');
    assert.equal(youngGenerationCapped(), false, 'the cap is off once the clients have gone');
  } finally {
    for (const s of sockets) s.destroy();
    await app.stop();
  }
});
