// One socket's byte pipe, driven through its libuv handle on the hot path.
//
// Node's net.Socket puts a Readable and a Writable between every read and
// write: a push() into a buffered stream, a WriteWrap through Writable's state
// machine, and a process.nextTick per write. Profiles put that at about 10 µs
// of CPU per pooled transaction, more than the rest of Sluice. Once a plain
// TCP or Unix socket is past login, a Wire reads by taking over the handle's
// onread and writes with the handle's writeBuffer, which are what net.Socket
// itself calls underneath. Everything else (connect, TLS, errors, end of
// stream, close) stays with net.Socket: reads of zero or fewer bytes go to its
// own onread, so it still sees EOF and errors. The Wire listens to the
// socket once for its owner (data, drain, error, close) with shared functions,
// not closures per connection: idle clients are most clients.
//
// TLS sockets, and any socket whose handle does not look like a libuv stream,
// keep using the stream API through the same methods.
//
// A client accepted while client TLS is off never gets a net.Socket at all
// (Wire.overHandle): the Wire then also handles end of stream, errors, the
// half-close and the close itself. That saves the Socket, its two stream
// states and their listeners per client: about a third of the CPU Sluice
// spends on a short-lived connection, and over a kilobyte per idle client.
import { Buffer } from 'node:buffer'; // the global Buffer is a getter: a call per use on the hot path
import type net from 'node:net';
import tls from 'node:tls';
import { getSystemErrorName } from 'node:util';
import { readBegins, readEnds } from './clock.js';

/** The parts of a libuv stream handle (TCPWrap, PipeWrap) that a Wire uses. */
interface StreamHandle {
  onread: (this: StreamHandle, arrayBuffer: ArrayBuffer) => unknown;
  reading: boolean;
  readonly writeQueueSize: number;
  readStart(): number;
  readStop(): number;
  useUserBuffer(buffer: Uint8Array): void;
  writeBuffer(req: WriteRequest, data: Buffer): number;
  shutdown(req: ShutdownRequest): number;
  close(callback?: () => void): void;
  setNoDelay?(on: boolean): number;
  getpeername?(out: Record<string, unknown>): number;
  getsockname?(out: Record<string, unknown>): number;
}

/** A client connection's libuv handle as net.Server's listening handle hands it over (TCPWrap or PipeWrap). */
export type AcceptedHandle = object;

interface ShutdownRequest {
  oncomplete: (this: ShutdownRequest, status: number) => void;
  handle: StreamHandle;
  wire: Wire;
}

interface WriteRequest {
  oncomplete: (this: WriteRequest, status: number) => void;
  wire: Wire | null;
  buffer: Buffer | null;
}

interface StreamWrapBinding {
  WriteWrap: new () => WriteRequest;
  ShutdownWrap: new () => ShutdownRequest;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}

/** Node's own stream binding (what lib/net.js uses); null when this Node.js does not offer it. */
const binding: StreamWrapBinding | null = (() => {
  try {
    const b = (process as unknown as { binding(name: string): StreamWrapBinding }).binding('stream_wrap');
    return typeof b.WriteWrap === 'function' && typeof b.ShutdownWrap === 'function' && b.streamBaseState instanceof Int32Array ? b : null;
  } catch {
    return null;
  }
})();

/** Node's TCP handle class, to tell an accepted TCP connection from a Unix-socket one. */
const TcpHandle: (new () => object) | null = (() => {
  try {
    const t = (process as unknown as { binding(name: string): { TCP?: new () => object } }).binding('tcp_wrap').TCP;
    return typeof t === 'function' ? t : null;
  } catch {
    return null;
  }
})();

// Where the binding leaves each read's byte count (or error), looked up once, not per read.
const streamState = binding?.streamBaseState ?? new Int32Array(1);
const READ_RESULT = binding?.kReadBytesOrError ?? 0;
const LAST_WRITE_ASYNC = binding?.kLastWriteWasAsync ?? 0;

let spareRequest: WriteRequest | null = null;
const readBuffer = Buffer.allocUnsafeSlow(64 * 1024);
// Read once: on a Buffer, .buffer and .byteOffset are prototype getters that
// optimized code does not inline (two getter calls per read, 1.4k instructions
// per pooled transaction).
const readArrayBuffer = readBuffer.buffer;
const readOffset = readBuffer.byteOffset;
/** The first `n` bytes just read, for TypedArray#set: cheaper per read than Buffer#copy's checks. */
const readView = (n: number): Uint8Array => new Uint8Array(readArrayBuffer, readOffset, n);

/** Pending write bytes above which write() reports backpressure (net.Socket's default highWaterMark). */
const HIGH_WATER = 16 * 1024;
/** Bytes held while paused before reading from the kernel stops (then TCP flow control takes over). */
const HOLD_LIMIT = 64 * 1024;
/** libuv's end-of-stream read result. */
const UV_EOF = -4095;

/** True when this Node.js lets a Wire drive handles itself (Wire.overHandle, accelerate). */
export const handlesSupported = binding !== null;

export interface WireSink {
  onWireData(chunk: Buffer): void;
  /** A write() that returned false has been flushed. */
  onWireDrain(): void;
  onWireError(err: Error): void;
  onWireClose(): void;
}

export class Wire {
  private handle: StreamHandle | null = null;
  /** Driven without a net.Socket (see overHandle); `socket` is null then. */
  private bare = false;
  /** A bare handle has been closed or is closing. */
  private closed = false;
  /** @internal What fail() reports once a bare handle is closed. */
  failure: Error | null = null;
  private paused = false;
  /** Chunks read while paused; delivered in order on resume(). */
  private held: Buffer[] | null = null;
  private heldBytes = 0;
  /** Reading from the kernel is stopped (held data reached HOLD_LIMIT). */
  private stopped = false;
  private needDrain = false;
  private corked: Buffer[] | null = null;
  /**
   * End of stream that arrived while paused: like a paused net.Socket, it is
   * acted on only after resume() has delivered everything held before it, so
   * a client that sends a query and Terminate and closes while it waits for a
   * server still has its query run.
   */
  private endPending = false;
  /** An accelerated socket's own onread (net.js), to which end of stream is handed. */
  private streamOnRead: ((this: StreamHandle, arrayBuffer: ArrayBuffer) => unknown) | null = null;
  /** Bare: the peer's end of stream has been acted on. */
  private eof = false;
  /** Bare: end() has asked for the half-close; writes are refused from then on. */
  private ending = false;
  /** Bare: the half-close is done (every write before it was sent). */
  private ended = false;
  /** The owner is done with the connection (see ownerDone). */
  private unheard = false;

  /** The net.Socket underneath; null for a Wire made by overHandle. */
  socket: net.Socket | null;

  constructor(
    socket: net.Socket | null,
    private readonly sink: WireSink,
    accepted: AcceptedHandle | null = null,
  ) {
    this.socket = socket;
    if (socket) {
      this.listen(socket);
      return;
    }
    const h = accepted as StreamHandle;
    this.handle = h;
    this.bare = true;
    (h as unknown as Record<symbol, Wire>)[kWire] = this;
    h.setNoDelay?.(true);
    h.useUserBuffer(readBuffer);
    h.onread = onBareRead;
    h.reading = true;
    const err = h.readStart();
    if (err !== 0) this.fail(err, 'read');
  }

  /**
   * Drives an accepted connection's handle from the first byte, with no
   * net.Socket: the caller took the handle from the listening server (see
   * src/net/listener.ts). Only for connections that will never need TLS.
   */
  static overHandle(accepted: AcceptedHandle, sink: WireSink): Wire {
    return new Wire(null, sink, accepted);
  }

  /** True once the handle is driven directly. */
  get fast(): boolean {
    return this.handle !== null;
  }

  /** The socket is closed or closing: nothing more can be written. */
  get destroyed(): boolean {
    return this.bare ? this.closed : this.socket!.destroyed;
  }

  /** Bytes written but not yet taken by the kernel. */
  get pendingBytes(): number {
    if (this.handle === null) return this.socket!.writableLength;
    return this.destroyed ? 0 : (this.handle.writeQueueSize ?? 0); // a closed handle has no queue
  }

  get isPaused(): boolean {
    return this.handle ? this.paused : this.socket!.isPaused();
  }

  /** A Unix-domain connection (known without a system call for a bare handle: pipes have no peer name). */
  get unixDomain(): boolean {
    if (!this.bare) return this.socket!.remoteAddress === undefined;
    return TcpHandle ? !(this.handle instanceof TcpHandle) : typeof this.handle!.getpeername !== 'function';
  }

  /** The peer's address: the socket's, or asked of the bare handle (undefined for Unix sockets). */
  get remote(): { address: string | undefined; port: number | undefined } {
    if (!this.bare) return { address: this.socket!.remoteAddress, port: this.socket!.remotePort };
    return this.endpoint('getpeername');
  }

  /** Our own end's address, asked only when shown (SHOW CLIENTS). */
  get local(): { address: string | undefined; port: number | undefined } {
    if (!this.bare) return { address: this.socket!.localAddress, port: this.socket!.localPort };
    return this.endpoint('getsockname');
  }

  private endpoint(which: 'getpeername' | 'getsockname'): { address: string | undefined; port: number | undefined } {
    const h = this.handle!;
    const out: { address?: string; port?: number } = {};
    if (this.closed || typeof h[which] !== 'function' || h[which]!(out) !== 0) return { address: undefined, port: undefined };
    return { address: out.address, port: out.port };
  }

  /** Bytes read while paused, waiting for resume(). */
  get bytesHeld(): number {
    return this.heldBytes;
  }

  /** Reading from the kernel stopped because a pause held HOLD_LIMIT bytes. */
  get readStopped(): boolean {
    return this.stopped;
  }

  /**
   * Moves to another socket (a TLS upgrade, which happens before login, so
   * before accelerate()); the caller has removed the old socket's listeners.
   * An accelerated handle reads into the shared buffer for good, so it cannot
   * be handed back to the stream API.
   */
  replace(socket: net.Socket): void {
    if (this.handle) throw new Error('Wire.replace() after accelerate() or on a bare handle: TLS must be negotiated before login, on a net.Socket');
    this.socket = socket;
    this.listen(socket);
  }

  private listen(socket: net.Socket): void {
    (socket as unknown as Record<symbol, Wire>)[kWire] = this;
    socket.on('data', onSocketData);
    socket.on('drain', onSocketDrain);
    socket.on('error', onSocketError);
    socket.on('close', onSocketClose);
  }

  /**
   * Starts driving the handle directly when that is safe: a connected plain
   * socket with nothing buffered in its streams. Otherwise stays on the stream
   * API (correct, just slower). Idempotent.
   */
  accelerate(): void {
    if (this.handle || !binding || this.corked || this.paused) return;
    const s = this.socket!;
    const h = (s as unknown as { _handle?: StreamHandle })._handle;
    if (
      !h ||
      s instanceof tls.TLSSocket ||
      s.connecting ||
      s.destroyed ||
      s.writableLength > 0 ||
      s.writableCorked > 0 ||
      s.readableLength > 0 ||
      s.isPaused() ||
      !h.reading ||
      typeof h.writeBuffer !== 'function' ||
      typeof h.onread !== 'function'
    )
      return;
    const streamOnRead = h.onread;
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const wire = this;
    // Reads land in one shared buffer (no 64 KiB allocation per read) and are
    // copied out at their real size, since frames and pending writes keep views.
    h.useUserBuffer(readBuffer);
    h.onread = function (this: StreamHandle, arrayBuffer: ArrayBuffer) {
      const n = streamState[READ_RESULT];
      if (n > 0) {
        const chunk = Buffer.allocUnsafe(n);
        chunk.set(readView(n));
        wire.onChunk(chunk);
        return;
      }
      if (n === UV_EOF && wire.paused) {
        wire.endPending = true;
        return;
      }
      return streamOnRead.call(this, arrayBuffer);
    };
    this.streamOnRead = streamOnRead;
    this.handle = h;
  }

  /** @internal */
  onChunk(chunk: Buffer): void {
    if (!this.paused) {
      readBegins();
      try {
        this.sink.onWireData(chunk);
      } finally {
        readEnds();
      }
      return;
    }
    (this.held ??= []).push(chunk);
    this.heldBytes += chunk.length;
    if (this.heldBytes >= HOLD_LIMIT) this.stopReading();
  }

  write(data: Buffer): boolean {
    if (this.corked) {
      this.corked.push(data);
      return true;
    }
    const h = this.handle;
    if (h === null) return this.socket!.write(data);
    // A closing or half-closed handle must not be written to (net.Socket's destroy() detaches it at once).
    if (this.bare ? this.closed || this.ending : (this.socket as unknown as { _handle: StreamHandle | null })._handle !== h) return false;
    const b = binding!;
    // A write the kernel takes whole never touches the request object, so one
    // spare serves them all; only a write left pending keeps it.
    const req = spareRequest ?? new b.WriteWrap();
    spareRequest = null;
    const err = h.writeBuffer(req, data);
    if (err !== 0) {
      spareRequest = req;
      this.fail(err, 'write');
      return false;
    }
    if (streamState[LAST_WRITE_ASYNC] === 0) {
      spareRequest = req;
      return true;
    }
    // libuv holds a pointer into `data` until the write completes.
    req.oncomplete = afterAsyncWrite;
    req.wire = this;
    req.buffer = data;
    if (h.writeQueueSize < HIGH_WATER) return true;
    this.needDrain = true;
    return false;
  }

  /** Gathers writes until uncork(), then sends them as one. */
  cork(): void {
    this.corked ??= [];
  }

  uncork(): void {
    const parts = this.corked;
    this.corked = null;
    if (parts && parts.length) this.write(parts.length === 1 ? parts[0] : Buffer.concat(parts));
  }

  /** Sends what is corked (and `last`), then half-closes; libuv orders the shutdown after pending writes. */
  end(last?: Buffer): void {
    this.uncork();
    if (last) this.write(last);
    if (!this.bare) {
      this.socket!.end();
      return;
    }
    if (this.closed || this.ending) return;
    this.ending = true;
    // Half-close after the pending writes, then wait for the peer's end (or
    // the owner's destroy()), as net.Socket does without allowHalfOpen.
    const req = new binding!.ShutdownWrap();
    req.oncomplete = afterBareShutdown;
    req.handle = this.handle!;
    req.wire = this;
    const err = this.handle!.shutdown(req);
    if (err !== 0) this.destroy();
  }

  /**
   * The owner has finished with this connection and needs no word of its
   * close (it may still write, end or destroy): a bare handle then closes
   * without a callback into JavaScript, one fewer per short-lived client, and
   * a failure is not reported either. Data, drain and a net.Socket's events
   * still arrive until the close; an owner that is done ignores them.
   */
  ownerDone(): void {
    this.unheard = true;
  }

  /**
   * Closes the connection now; bytes the kernel already took are still sent.
   * The owner hears onWireClose once the handle is closed, unless it said ownerDone().
   */
  destroy(): void {
    if (!this.bare) {
      this.socket!.destroy();
      return;
    }
    if (this.closed) return;
    this.closed = true;
    this.dropHeld();
    const h = this.handle!;
    h.reading = false;
    h.readStop();
    if (this.unheard) h.close();
    else h.close(onBareClosed);
  }

  /**
   * @internal A failed read, write or shutdown: the connection is closed at
   * once (later writes are refused), and the owner hears the error, then the
   * close, from the event loop (as net.Socket reports them), never from inside
   * the call that failed.
   */
  fail(status: number, op: string): void {
    if (this.destroyed) return;
    if (!this.bare) {
      this.socket!.destroy(new Error(`${op} failed (libuv error ${status})`));
      return;
    }
    this.failure = new Error(`${op} ${getSystemErrorName(status)}`);
    this.destroy();
  }

  /**
   * Stops delivering data. Bytes that keep arriving are held (up to HOLD_LIMIT,
   * then the kernel is no longer read), so a short pause costs no system call.
   */
  pause(): void {
    if (this.handle === null) {
      this.socket!.pause();
      return;
    }
    this.paused = true;
  }

  resume(): void {
    if (this.handle === null) {
      this.socket!.resume();
      return;
    }
    if (!this.paused || this.destroyed) return;
    this.paused = false;
    if (this.stopped && !this.endPending) {
      this.stopped = false;
      const h = this.handle;
      h.reading = true;
      h.readStart();
    }
    // Deliver held bytes on the next tick: callers resume in the middle of state changes.
    if (this.held || this.endPending) process.nextTick(deliverHeld, this);
  }

  /** @internal */
  deliverHeld(): void {
    if (this.destroyed) return this.dropHeld();
    while (this.held && !this.paused) {
      const chunks = this.held;
      this.held = null;
      this.heldBytes = 0;
      for (let i = 0; i < chunks.length; i++) {
        if (this.destroyed) return; // the owner closed the connection on what it was given
        if (this.paused) {
          // Paused again by what we delivered: keep the rest, in order, ahead of anything newer.
          const rest = chunks.slice(i);
          const newer = this.held as Buffer[] | null;
          this.held = newer ? rest.concat(newer) : rest;
          for (const c of rest) this.heldBytes += c.length;
          return;
        }
        this.sink.onWireData(chunks[i]);
      }
    }
    if (this.endPending && !this.paused && this.held === null) {
      this.endPending = false;
      this.onEnd();
    }
  }

  /** @internal Nothing held is delivered after a close: it would reach an owner that is done. */
  dropHeld(): void {
    this.held = null;
    this.heldBytes = 0;
    this.endPending = false;
  }

  /** @internal The peer's end of stream, or one that waited behind held bytes. */
  onEnd(): void {
    if (this.paused) {
      this.endPending = true;
      return;
    }
    if (!this.bare) {
      // Hand it to net.js as if it had just been read.
      streamState[READ_RESULT] = UV_EOF;
      this.streamOnRead!.call(this.handle!, undefined as unknown as ArrayBuffer); // net.js reads no buffer for an end
      return;
    }
    if (this.closed) return;
    // As net.Socket without allowHalfOpen: send what is pending, half-close, then close.
    this.eof = true;
    if (!this.ending) this.end();
    else if (this.ended) this.destroy();
  }

  /** @internal The half-close finished (status 0) or failed. */
  afterShutdown(status: number): void {
    this.ended = true;
    if (status < 0 || this.eof) this.destroy();
  }

  /** End of stream is waiting for resume() (tests, diagnostics). */
  get endIsPending(): boolean {
    return this.endPending;
  }

  private stopReading(): void {
    const h = this.handle!; // only an accelerated Wire holds bytes
    if (this.stopped) return;
    this.stopped = true;
    h.reading = false;
    h.readStop();
  }

  /** @internal */
  get owner(): WireSink {
    return this.sink;
  }

  /** @internal called when an async write completes (only accelerated Wires write that way) */
  afterWrite(): void {
    if (this.needDrain && this.handle!.writeQueueSize === 0 && !this.destroyed) {
      this.needDrain = false;
      this.sink.onWireDrain();
    }
  }
}

// The socket carries its Wire, so one listener function serves every socket.
const kWire = Symbol('sluice.wire');
const wireOf = (socket: net.Socket): Wire => (socket as unknown as Record<symbol, Wire>)[kWire];
function onSocketData(this: net.Socket, chunk: Buffer): void {
  wireOf(this).onChunk(chunk);
}
function onSocketDrain(this: net.Socket): void {
  wireOf(this).owner.onWireDrain();
}
function onSocketError(this: net.Socket, err: Error): void {
  wireOf(this).owner.onWireError(err);
}
function onSocketClose(this: net.Socket): void {
  const wire = wireOf(this);
  wire.dropHeld();
  wire.owner.onWireClose();
}

// A bare handle's reads: data, or end of stream (the peer closed), or an error.
function onBareRead(this: StreamHandle): void {
  const wire = (this as unknown as Record<symbol, Wire>)[kWire];
  const n = streamState[READ_RESULT];
  if (n > 0) {
    const chunk = Buffer.allocUnsafe(n);
    chunk.set(readView(n));
    wire.onChunk(chunk);
  } else if (n === UV_EOF) {
    wire.onEnd();
  } else if (n < 0) {
    wire.fail(n, 'read');
  }
}

function onBareClosed(this: StreamHandle): void {
  const wire = (this as unknown as Record<symbol, Wire>)[kWire];
  if (wire.failure) wire.owner.onWireError(wire.failure);
  wire.owner.onWireClose();
}

function afterBareShutdown(this: ShutdownRequest, status: number): void {
  this.wire.afterShutdown(status);
}

function deliverHeld(wire: Wire): void {
  wire.deliverHeld();
}

function afterAsyncWrite(this: WriteRequest, status: number): void {
  const wire = this.wire;
  this.buffer = null;
  if (!wire) return;
  if (status < 0) {
    wire.fail(status, 'write');
    return;
  }
  wire.afterWrite();
}
