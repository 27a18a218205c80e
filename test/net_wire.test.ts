// The Wire drives plain sockets through their libuv handle: these tests hold it
// to what net.Socket guaranteed before: bytes whole and in order, pause and
// backpressure that bound memory, end-of-stream and close, and TLS untouched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { Wire } from '../src/net/wire.js';
import { now } from '../src/net/clock.js';
import { Recorder, collect, payload } from './harness/streams.js';
import { waitFor } from './harness/wait.js';
import { generateCerts } from './harness/certs.js';
import { startPostgres } from './harness/postgres.js';
import { startSluice } from './harness/sluice.js';
import { loggedInSession, frame, cstr } from './harness/wire.js';
import { run } from './harness/processes.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

/** A connected loopback pair: `near` is the accepted side, `far` the connecting one. */
async function socketPair(): Promise<{ near: net.Socket; far: net.Socket; done(): void }> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const far = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const [[near]] = await Promise.all([accepted, once(far, 'connect')]);
  server.close();
  return {
    near,
    far,
    done() {
      near.destroy();
      far.destroy();
    },
  };
}

/** A loopback pair whose `near` side is driven by an accelerated Wire. */
async function acceleratedPair(): Promise<{ near: net.Socket; far: net.Socket; wire: Wire; sink: Recorder; done(): void }> {
  const pair = await socketPair();
  const sink = new Recorder();
  const wire = new Wire(pair.near, sink);
  wire.accelerate();
  assert.equal(wire.fast, true, 'a connected plain socket should be accelerated');
  return { ...pair, wire, sink };
}

test('a plain TCP socket is driven through its handle; bytes arrive whole and in order both ways', async () => {
  const { far, wire, sink, done } = await acceleratedPair();
  try {

    const inbound = payload(4 * 1024 * 1024);
    for (const c of inbound.chunks) far.write(c);
    await waitFor(() => sink.bytes === 4 * 1024 * 1024, 'all inbound bytes');
    assert.equal(sink.digest(), inbound.digest);

    const got = collect(far);
    const outbound = payload(4 * 1024 * 1024);
    for (const c of outbound.chunks) wire.write(c);
    await waitFor(() => got.bytes() === 4 * 1024 * 1024, 'all outbound bytes');
    assert.equal(got.digest(), outbound.digest);
  } finally {
    done();
  }
});

test('inside a read callback the clock is read once; a sink that throws still ends the callback', async () => {
  const { far, wire, done } = await acceleratedPair();
  try {
    const seen: Array<{ first: number; later: number; live: number }> = [];
    let throwNext = false;
    (wire as unknown as { sink: Recorder }).sink.onWireData = () => {
      const first = now();
      const deadline = performance.now() + 1000;
      while (Date.now() <= first && performance.now() < deadline); // the clock moves on
      seen.push({ first, later: now(), live: Date.now() });
      if (throwNext) throw new Error('sink failure');
    };
    far.write('a');
    await waitFor(() => seen.length === 1, 'the first read');
    assert.equal(seen[0]!.later, seen[0]!.first, 'one reading per read callback');
    assert.ok(seen[0]!.live > seen[0]!.first, 'while the live clock moved on');
    throwNext = true;
    assert.throws(() => wire.onChunk(Buffer.from('b')), /sink failure/);
    const after = now();
    const deadline = performance.now() + 1000;
    while (Date.now() <= after && performance.now() < deadline);
    assert.ok(now() > after, 'after a failed callback the clock is live again');
  } finally {
    done();
  }
});

test('pause holds what arrives, stops reading past the hold limit, and resume delivers it all in order', async () => {
  const { far, wire, sink, done } = await acceleratedPair();
  try {
    wire.pause();
    const total = 16 * 1024 * 1024;
    const data = payload(total);
    for (const c of data.chunks) far.write(c);
    // Past the hold limit the Wire stops reading: what it holds stays bounded, the kernel buffers the rest.
    await waitFor(() => wire.readStopped, 'reading to stop at the hold limit');
    assert.ok(wire.bytesHeld <= 2 * 64 * 1024, `held ${wire.bytesHeld} bytes: at most the limit and one more read`);
    assert.equal(sink.bytes, 0, 'nothing is delivered while paused');
    wire.resume();
    await waitFor(() => sink.bytes === total, 'everything after resume', 20_000);
    assert.equal(sink.digest(), data.digest);
    assert.equal(wire.readStopped, false);
  } finally {
    done();
  }
});

test('end of stream while paused waits behind the held bytes; resume delivers them, then the socket closes', async () => {
  const { near, far, wire, sink, done } = await acceleratedPair();
  try {
    wire.pause();
    const data = randomBytes(32 * 1024);
    let closed = false;
    near.on('close', () => (closed = true));
    far.end(data);
    await waitFor(() => wire.endIsPending, 'the end of stream, held');
    assert.equal(sink.bytes, 0);
    assert.equal(closed, false, 'the socket stays open while bytes before the end are undelivered');
    wire.resume();
    await waitFor(() => closed, 'the close after resume');
    assert.equal(sink.bytes, data.length, 'every held byte was delivered before the close');
    assert.equal(sink.digest(), createHash('sha256').update(data).digest('hex'));
  } finally {
    done();
  }
});

/** One event-loop turn: a resume()'s delivery (process.nextTick) has run by then. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('held bytes never reach an owner after destroy(): not on a later resume(), nor after its close', async () => {
  const { far, wire, sink, done } = await acceleratedPair();
  try {
    wire.pause();
    far.write(randomBytes(5000));
    await waitFor(() => wire.bytesHeld === 5000, 'the bytes, held');
    wire.destroy();
    await waitFor(() => sink.closes === 1, 'the close');
    assert.equal(wire.bytesHeld, 0, 'the close drops what was held');
    wire.resume();
    await nextTurn();
    assert.equal(sink.bytes, 0, 'nothing delivered after the close');
    assert.equal(wire.pendingBytes, 0, 'a closed Wire has nothing pending (a number, not undefined)');
  } finally {
    done();
  }
});

test('an owner that destroys the Wire while held chunks are delivered gets no more of them', async () => {
  const { near, far, done } = await socketPair();
  let delivered = 0;
  const wire: Wire = new Wire(near, { onWireData: () => (delivered++, wire.destroy()), onWireDrain() {}, onWireError() {}, onWireClose() {} });
  wire.accelerate();
  try {
    wire.pause();
    for (let i = 0; i < 20; i++) {
      far.write(randomBytes(1000));
      await waitFor(() => wire.bytesHeld === (i + 1) * 1000, 'each write held as its own chunk');
    }
    wire.resume();
    await nextTurn();
    assert.equal(delivered, 1, 'the first chunk only: the owner closed the connection on it');
  } finally {
    done();
  }
});

test('write() reports backpressure when the peer does not read, and drain follows once it does', async () => {
  const { far, wire, sink, done } = await acceleratedPair();
  try {
    far.pause();
    const hash = createHash('sha256');
    let written = 0;
    let accepted = true;
    while (accepted && written < 256 * 1024 * 1024) {
      const c = randomBytes(64 * 1024);
      hash.update(c);
      written += c.length;
      accepted = wire.write(c);
    }
    assert.equal(accepted, false, `write() never reported backpressure after ${written} bytes`);
    assert.ok(wire.pendingBytes > 0, 'bytes are pending in the write queue');
    const got = collect(far);
    far.resume();
    await waitFor(() => sink.drains === 1, 'a drain once the peer reads');
    await waitFor(() => got.bytes() === written, 'all written bytes at the peer');
    assert.equal(got.digest(), hash.digest('hex'));
    assert.equal(wire.pendingBytes, 0);
  } finally {
    done();
  }
});

test('end() sends corked writes before the half-close; end of stream still closes the socket', async () => {
  const { near, far, wire, done } = await acceleratedPair();
  try {
    const got = collect(far);
    wire.cork();
    wire.write(Buffer.from('first '));
    wire.write(Buffer.from('second'));
    wire.end(Buffer.from(' last'));
    await once(far, 'end');
    assert.equal(got.bytes(), 'first second last'.length);
    far.end();
    await once(near, 'close');
  } finally {
    done();
  }
});

test('a peer that goes away is seen by net.Socket in fast mode: close fires', async () => {
  const { near, far, wire, sink, done } = await acceleratedPair();
  try {
    const closed = once(near, 'close');
    far.destroy();
    await closed;
    assert.equal(sink.closes, 1, 'the owner hears of the close');
    assert.equal(wire.write(Buffer.from('x')), false, 'writing to a closed socket reports failure');
  } finally {
    done();
  }
});

test('TLS sockets stay on the stream API and still carry bytes', async () => {
  const certs = generateCerts();
  const server = tls.createServer({ cert: readFileSync(certs.serverCert), key: readFileSync(certs.serverKey) });
  try {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const accepted = once(server, 'secureConnection') as Promise<[tls.TLSSocket]>;
    const far = tls.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', ca: readFileSync(certs.caCert), servername: 'localhost' });
    const [[near]] = await Promise.all([accepted, once(far, 'secureConnect')]);
    const sink = new Recorder();
    const wire = new Wire(near, sink);
    wire.accelerate();
    assert.equal(wire.fast, false);
    const data = payload(256 * 1024);
    for (const c of data.chunks) far.write(c);
    await waitFor(() => sink.bytes === 256 * 1024, 'all bytes over TLS');
    assert.equal(sink.digest(), data.digest);
    const got = collect(far);
    wire.write(Buffer.from('hello'));
    await waitFor(() => got.bytes() === 5, 'the reply over TLS');
    near.destroy();
    far.destroy();
  } finally {
    server.close();
    certs.cleanup();
  }
});

test('through Sluice, a client that stops reading a huge result pauses its server, and gets every row once it reads', async () => {
  const pg = await startPostgres();
  const sluice = await startSluice({ pg, settings: { pool_mode: 'transaction' } });
  try {
    const { socket } = await loggedInSession(sluice.port);
    socket.removeAllListeners('data');
    socket.pause();
    // About 160 MB of rows: far more than any buffer between PostgreSQL and the client.
    const rows = 20_000;
    socket.write(frame('Q', cstr(`SELECT repeat('x', 8000) FROM generate_series(1, ${rows})`)));
    const client = [...sluice.app.clients][0];
    await waitFor(() => client.server !== null && client.server.wire.isPaused, 'the server to be paused');
    // Bounded: the client's queue stays near the high-water mark, not the result size.
    assert.ok(client.wire.pendingBytes < 4 * 1024 * 1024, `client write queue holds ${client.wire.pendingBytes} bytes`);
    let dataRows = 0;
    let buf: Buffer = Buffer.alloc(0);
    const done = new Promise<void>((resolve) => {
      socket.on('data', (chunk: Buffer) => {
        buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
        let pos = 0;
        while (buf.length - pos >= 5) {
          const len = buf.readInt32BE(pos + 1);
          if (buf.length - pos < len + 1) break;
          const type = buf[pos];
          if (type === 0x44) dataRows++;
          if (type === 0x5a) resolve();
          pos += len + 1;
        }
        buf = buf.subarray(pos);
      });
    });
    socket.resume();
    await Promise.race([done, new Promise((_, reject) => setTimeout(() => reject(new Error(`only ${dataRows} rows in 60 s`)), 60_000).unref())]);
    assert.equal(dataRows, rows);
    socket.destroy();
  } finally {
    await sluice.stop();
    await pg.stop();
  }
});

test('Unix sockets on both sides are accelerated too: pgbench through Sluice over Unix sockets, to PostgreSQL over its socket', async () => {
  const pgsrv = await startPostgres();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-wire-'));
  const sluice = await startSluice({
    pg: pgsrv,
    settings: { pool_mode: 'transaction', default_pool_size: 4, unix_socket_dir: dir },
    databases: { postgres: `host=${pgsrv.cluster.socketDir} port=${pgsrv.port} dbname=postgres` },
  });
  try {
    const script = path.join(dir, 'select1.sql');
    writeFileSync(script, 'select 1;\n');
    const r = await run('pgbench', ['-n', '-c', '20', '-j', '2', '-t', '200', '-f', script, '-h', dir, '-p', String(sluice.port), '-U', 'postgres', 'postgres'], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /number of transactions actually processed: 4000\/4000/);
    const servers = [...[...sluice.app.pooler.pools.values()][0].servers];
    assert.ok(servers.length > 0);
    assert.ok(servers.every((s) => s.isUnixSocket && s.wire.fast), 'Unix-socket server connections are driven through their handle');
    const c = new pg.Client({ host: dir, port: sluice.port, user: 'postgres', database: 'postgres' });
    await c.connect();
    try {
      assert.equal((await c.query('select 42 as n')).rows[0].n, 42);
      const client = [...sluice.app.clients][0];
      assert.equal(client.wire.fast, true, 'a Unix-socket client is driven through its handle');
      assert.equal(client.socket, null, 'accepted as a bare handle');
      assert.equal(client.isUnix, true);
      assert.equal(client.remoteAddress, 'unix');
    } finally {
      await c.end();
    }
  } finally {
    await sluice.stop();
    await pgsrv.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a client that leaves mid-result while backpressure pauses its server: the server is dropped and the pool serves the next client', async () => {
  const pgsrv = await startPostgres();
  const sluice = await startSluice({ pg: pgsrv, settings: { pool_mode: 'transaction', default_pool_size: 1 } });
  try {
    const { socket } = await loggedInSession(sluice.port);
    socket.removeAllListeners('data');
    socket.pause();
    socket.write(frame('Q', cstr(`begin; SELECT repeat('x', 8000) FROM generate_series(1, 20000)`)));
    const client = [...sluice.app.clients][0];
    await waitFor(() => client.server !== null && client.server.wire.isPaused, 'the server to be paused by the silent client');
    socket.destroy();
    // Mid-query, the server's state is unknown: it is closed, and a new one serves the next client.
    const c = new pg.Client({ connectionString: sluice.url(), connectionTimeoutMillis: 10_000 });
    await c.connect();
    try {
      const r = await c.query('select now() = statement_timestamp() as fresh');
      assert.equal(r.rows[0].fresh, true, 'not inside the departed client transaction');
    } finally {
      await c.end();
    }
  } finally {
    await sluice.stop();
    await pgsrv.stop();
  }
});

test('a server left paused by its last client still runs the rollback when that client leaves inside a transaction', async () => {
  const pgsrv = await startPostgres();
  const sluice = await startSluice({ pg: pgsrv, settings: { pool_mode: 'transaction', default_pool_size: 1 } });
  try {
    const { socket, msgs } = await loggedInSession(sluice.port);
    socket.write(frame('Q', cstr('begin; select 1')));
    await msgs.until((m) => m.type === 'Z' && m.body[0] === 0x54 /* T: inside the transaction */);
    const server = [...sluice.app.clients][0].server!;
    // What backpressure leaves behind when the last forwarded chunk filled the client's queue.
    server.wire.pause();
    socket.destroy();
    const c = new pg.Client({ connectionString: sluice.url(), connectionTimeoutMillis: 10_000 });
    await c.connect();
    try {
      const r = await Promise.race([
        c.query('select now() = statement_timestamp() as fresh'),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the next client was not served within 10 s')), 10_000).unref()),
      ]);
      assert.equal(r.rows[0].fresh, true, 'not inside the departed client transaction');
    } finally {
      await c.end();
    }
  } finally {
    await sluice.stop();
    await pgsrv.stop();
  }
});
