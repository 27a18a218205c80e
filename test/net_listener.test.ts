// Connections accepted as bare handles (no net.Socket): the listener hands
// them over only while asked to, and a Wire over a bare handle keeps every
// promise a net.Socket made: bytes whole and in order, addresses, end of
// stream, errors, the half-close after the last bytes, and close.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import pg from 'pg';
import { acceptBareHandles } from '../src/net/listener.js';
import { Wire, type AcceptedHandle } from '../src/net/wire.js';
import { Recorder, collect } from './harness/streams.js';
import { waitFor } from './harness/wait.js';
import { startPostgres } from './harness/postgres.js';
import { startSluice } from './harness/sluice.js';
import { loggedInSession, frame } from './harness/wire.js';

/** A listener whose connections go bare while `bare.on` is true. */
async function bareListener(): Promise<{ port: number; bare: { on: boolean }; handles: AcceptedHandle[]; sockets: net.Socket[]; close(): void }> {
  const sockets: net.Socket[] = [];
  const handles: AcceptedHandle[] = [];
  const bare = { on: true };
  const server = net.createServer((s) => sockets.push(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  assert.equal(
    acceptBareHandles(server, () => bare.on, (h) => handles.push(h)),
    true,
    'this Node.js lets Sluice accept bare handles',
  );
  return { port: (server.address() as net.AddressInfo).port, bare, handles, sockets, close: () => server.close() };
}

/** A connected pair whose near side is a Wire over a bare handle. */
async function barePair(farOptions: { allowHalfOpen?: boolean } = {}): Promise<{ far: net.Socket; wire: Wire; sink: Recorder; port: number; done(): void }> {
  const l = await bareListener();
  const far = net.connect({ port: l.port, host: '127.0.0.1', ...farOptions });
  await once(far, 'connect');
  await waitFor(() => l.handles.length === 1, 'the bare handle');
  l.close();
  const sink = new Recorder();
  const wire = Wire.overHandle(l.handles[0], sink);
  return {
    far,
    wire,
    sink,
    port: l.port,
    done() {
      wire.destroy();
      far.destroy();
    },
  };
}

test('the listener hands connections over bare only while asked; otherwise they arrive as net.Sockets', async () => {
  const l = await bareListener();
  const a = net.connect(l.port, '127.0.0.1');
  await waitFor(() => l.handles.length === 1, 'a bare handle');
  assert.equal(l.sockets.length, 0);
  l.bare.on = false;
  const b = net.connect(l.port, '127.0.0.1');
  await waitFor(() => l.sockets.length === 1, 'a net.Socket');
  assert.equal(l.handles.length, 1);
  const wire = Wire.overHandle(l.handles[0], new Recorder());
  wire.destroy();
  a.destroy();
  b.destroy();
  l.sockets[0].destroy();
  l.close();
});

test('a bare Wire: bytes whole and in order both ways; both addresses come from the handle', async () => {
  const { far, wire, sink, port, done } = await barePair();
  try {
    assert.equal(wire.fast, true);
    assert.equal(wire.socket, null);
    assert.deepEqual(wire.remote, { address: '127.0.0.1', port: far.localPort });
    assert.deepEqual(wire.local, { address: '127.0.0.1', port });

    const inbound = randomBytes(4 * 1024 * 1024);
    for (let i = 0; i < inbound.length; i += 10_007) far.write(inbound.subarray(i, i + 10_007));
    await waitFor(() => sink.bytes === inbound.length, 'all inbound bytes');
    assert.equal(sink.digest(), createHash('sha256').update(inbound).digest('hex'));

    const got = collect(far);
    const outbound = randomBytes(4 * 1024 * 1024);
    for (let i = 0; i < outbound.length; i += 9_973) wire.write(outbound.subarray(i, i + 9_973));
    await waitFor(() => got.bytes() === outbound.length, 'all outbound bytes');
    assert.equal(got.digest(), createHash('sha256').update(outbound).digest('hex'));
  } finally {
    done();
  }
});

test('a bare Wire holds what arrives while paused and delivers it in order on resume', async () => {
  const { far, wire, sink, done } = await barePair();
  try {
    wire.pause();
    const data = randomBytes(1024 * 1024);
    far.write(data);
    await waitFor(() => wire.readStopped, 'reading to stop at the hold limit');
    assert.equal(sink.bytes, 0);
    wire.resume();
    await waitFor(() => sink.bytes === data.length, 'everything after resume');
    assert.equal(sink.digest(), createHash('sha256').update(data).digest('hex'));
  } finally {
    done();
  }
});

test('end of stream from the peer closes a bare Wire, with no error', async () => {
  const { far, wire, sink, done } = await barePair();
  try {
    far.end();
    await waitFor(() => sink.closes === 1, 'the close');
    assert.deepEqual(sink.errors, []);
    assert.equal(wire.destroyed, true);
    assert.equal(wire.write(Buffer.from('late')), false, 'a closed Wire refuses writes');
  } finally {
    done();
  }
});

test('end of stream while paused waits behind the held bytes: resume delivers them all, then the close', async () => {
  const { far, wire, sink, done } = await barePair();
  try {
    wire.pause();
    const data = randomBytes(32 * 1024);
    far.end(data);
    await waitFor(() => wire.endIsPending, 'the end of stream, held');
    assert.equal(sink.bytes, 0);
    assert.equal(sink.closes, 0, 'no close while bytes before it are undelivered');
    const order: string[] = [];
    const onData = sink.onWireData.bind(sink);
    sink.onWireData = (c: Buffer) => {
      onData(c);
      if (order.at(-1) !== 'data') order.push('data');
    };
    sink.onWireClose = () => void order.push('close');
    wire.resume();
    await waitFor(() => order.at(-1) === 'close', 'the close after the data');
    assert.deepEqual(order, ['data', 'close']);
    assert.equal(sink.bytes, data.length);
    assert.equal(sink.digest(), createHash('sha256').update(data).digest('hex'));
    assert.deepEqual(sink.errors, []);
  } finally {
    done();
  }
});

test('a reset from the peer is an error, then one close', async () => {
  const { far, sink, done } = await barePair();
  try {
    far.resetAndDestroy();
    await waitFor(() => sink.closes === 1, 'the close');
    assert.equal(sink.errors.length, 1);
    assert.match(sink.errors[0], /^read ECONNRESET$/);
  } finally {
    done();
  }
});

test('a failed write is reported from the event loop, error first, never from inside the call', async () => {
  const { wire, sink, done } = await barePair();
  try {
    const order: string[] = [];
    sink.onWireError = (err: Error) => void order.push(`error: ${err.message}`);
    sink.onWireClose = () => void order.push('close');
    wire.fail(-32, 'write'); // what a write into a reset connection gets: EPIPE
    assert.deepEqual(order, [], 'nothing is reported synchronously');
    assert.equal(wire.destroyed, true);
    assert.equal(wire.write(Buffer.from('x')), false, 'writes are refused at once');
    await waitFor(() => order.length === 2, 'the error and the close');
    assert.deepEqual(order, ['error: write EPIPE', 'close']);
  } finally {
    done();
  }
});

test('end() sends the corked bytes and the last one, then half-closes; the Wire closes when the peer ends too', async () => {
  const { far, wire, sink, done } = await barePair({ allowHalfOpen: true });
  try {
    const got = collect(far);
    wire.cork();
    wire.write(Buffer.from('first '));
    wire.write(Buffer.from('second'));
    wire.end(Buffer.from(' last'));
    await once(far, 'end');
    assert.equal(got.bytes(), 'first second last'.length);
    // The peer (allowHalfOpen) keeps its side open: the Wire must wait for it.
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    assert.equal(sink.closes, 0, 'still open until the peer ends');
    assert.equal(wire.write(Buffer.from('late')), false, 'nothing is written after the half-close');
    far.end();
    await waitFor(() => sink.closes === 1, 'the close after the peer ends');
    assert.deepEqual(sink.errors, []);
  } finally {
    done();
  }
});

test('destroy() closes at once: the peer sees the connection end, the owner hears one close', async () => {
  const { far, wire, sink, done } = await barePair();
  try {
    wire.write(Buffer.from('bye'));
    const got = collect(far);
    wire.destroy();
    await once(far, 'end');
    assert.equal(got.bytes(), 3, 'bytes the kernel took are still delivered');
    await waitFor(() => sink.closes === 1, 'the close');
    wire.destroy();
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    assert.equal(sink.closes, 1, 'a second destroy() reports nothing');
  } finally {
    done();
  }
});

test('after ownerDone() the Wire still writes and closes, and the owner hears no close or error', async () => {
  const { far, wire, sink, done } = await barePair();
  try {
    wire.ownerDone();
    wire.write(Buffer.from('bye'));
    const got = collect(far);
    wire.destroy();
    await once(far, 'close');
    assert.equal(got.bytes(), 3, 'bytes the kernel took are still delivered');
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    assert.equal(wire.destroyed, true);
    assert.equal(sink.closes, 0, 'no close reported to an owner that is done');
    assert.deepEqual(sink.errors, []);
  } finally {
    done();
  }
});

test('Sluice with client TLS off: clients have no net.Socket; SHOW CLIENTS shows both addresses; Terminate closes at once', async () => {
  const pgsrv = await startPostgres();
  const sluice = await startSluice({ pg: pgsrv, settings: { pool_mode: 'transaction' } });
  try {
    const c = new pg.Client({ connectionString: sluice.url() });
    await c.connect();
    assert.equal((await c.query('select 7 as n')).rows[0].n, 7);
    const client = [...sluice.app.clients][0];
    assert.equal(client.socket, null, 'accepted as a bare handle');
    assert.equal(client.wire.fast, true);
    const stream = (c as unknown as { connection: { stream: net.Socket } }).connection.stream;
    assert.equal(client.remotePort, stream.localPort);

    const admin = new pg.Client({ connectionString: sluice.url('pgbouncer') });
    await admin.connect();
    const rows = (await admin.query('SHOW CLIENTS')).rows;
    const row = rows.find((r) => r.database === 'postgres');
    assert.ok(row, 'the pg client in SHOW CLIENTS');
    assert.equal(row.addr, '127.0.0.1');
    assert.equal(row.port, stream.localPort);
    assert.equal(row.local_addr, '127.0.0.1');
    assert.equal(row.local_port, sluice.port);
    await admin.end();

    const closed = once(stream, 'close');
    await c.end();
    await closed;
    await waitFor(() => sluice.app.clients.size === 0, 'the clients to be forgotten');
    assert.equal(client.closeReason, 'client sent Terminate');

    // Terminate alone (the peer keeps its socket open): closed at once, not half-closed with a timer.
    const { socket } = await loggedInSession(sluice.port);
    await waitFor(() => sluice.app.clients.size === 1, 'the raw client');
    const raw = [...sluice.app.clients][0];
    socket.write(frame('X', Buffer.alloc(0)));
    await waitFor(() => raw.state === 'closed', 'Terminate to be handled');
    assert.equal(raw.wire.destroyed, true, 'the connection is closed as Terminate is handled');
    socket.destroy();
  } finally {
    await sluice.stop();
    await pgsrv.stop();
  }
});
