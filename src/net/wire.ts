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
import type net from 'node:net';
import tls from 'node:tls';

/** The parts of a libuv stream handle (TCPWrap, PipeWrap) that a Wire uses. */
interface StreamHandle {
  onread: (this: StreamHandle, arrayBuffer: ArrayBuffer) => unknown;
  reading: boolean;
  readonly writeQueueSize: number;
  readStart(): number;
  readStop(): number;
  useUserBuffer(buffer: Uint8Array): void;
  writeBuffer(req: WriteRequest, data: Buffer): number;
}

interface WriteRequest {
  oncomplete: (this: WriteRequest, status: number) => void;
  wire: Wire | null;
  buffer: Buffer | null;
}

interface StreamWrapBinding {
  WriteWrap: new () => WriteRequest;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}

/** Node's own stream binding (what lib/net.js uses); null when this Node.js does not offer it. */
const binding: StreamWrapBinding | null = (() => {
  try {
    const b = (process as unknown as { binding(name: string): StreamWrapBinding }).binding('stream_wrap');
    return typeof b.WriteWrap === 'function' && b.streamBaseState instanceof Int32Array ? b : null;
  } catch {
    return null;
  }
})();

let spareRequest: WriteRequest | null = null;
const readBuffer = Buffer.allocUnsafeSlow(64 * 1024);

/** Pending write bytes above which write() reports backpressure (net.Socket's default highWaterMark). */
const HIGH_WATER = 16 * 1024;
/** Bytes held while paused before reading from the kernel stops (then TCP flow control takes over). */
const HOLD_LIMIT = 64 * 1024;

export interface WireSink {
  onWireData(chunk: Buffer): void;
  /** A write() that returned false has been flushed. */
  onWireDrain(): void;
  onWireError(err: Error): void;
  onWireClose(): void;
}

export class Wire {
  private handle: StreamHandle | null = null;
  private paused = false;
  /** Chunks read while paused; delivered in order on resume(). */
  private held: Buffer[] | null = null;
  private heldBytes = 0;
  /** Reading from the kernel is stopped (held data reached HOLD_LIMIT). */
  private stopped = false;
  private needDrain = false;
  private corked: Buffer[] | null = null;

  constructor(
    public socket: net.Socket,
    private readonly sink: WireSink,
  ) {
    this.listen(socket);
  }

  /** True once the handle is driven directly. */
  get fast(): boolean {
    return this.handle !== null;
  }

  /** Bytes written but not yet taken by the kernel. */
  get pendingBytes(): number {
    return this.handle ? this.handle.writeQueueSize : this.socket.writableLength;
  }

  get isPaused(): boolean {
    return this.handle ? this.paused : this.socket.isPaused();
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
    if (this.handle) throw new Error('Wire.replace() after accelerate(): TLS must be negotiated before login');
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
    const s = this.socket;
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
    const { streamBaseState, kReadBytesOrError } = binding;
    const streamOnRead = h.onread;
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const wire = this;
    // Reads land in one shared buffer (no 64 KiB allocation per read) and are
    // copied out at their real size, since frames and pending writes keep views.
    h.useUserBuffer(readBuffer);
    h.onread = function (this: StreamHandle, arrayBuffer: ArrayBuffer) {
      const n = streamBaseState[kReadBytesOrError];
      if (n > 0) {
        const chunk = Buffer.allocUnsafe(n);
        readBuffer.copy(chunk, 0, 0, n);
        wire.onChunk(chunk);
        return;
      }
      return streamOnRead.call(this, arrayBuffer);
    };
    this.handle = h;
  }

  /** @internal */
  onChunk(chunk: Buffer): void {
    if (!this.paused) {
      this.sink.onWireData(chunk);
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
    if (h === null) return this.socket.write(data);
    // destroy() detaches the handle at once; a closing handle must not be written to.
    if ((this.socket as unknown as { _handle: StreamHandle | null })._handle !== h) return false;
    const b = binding!;
    // A write the kernel takes whole never touches the request object, so one
    // spare serves them all; only a write left pending keeps it.
    const req = spareRequest ?? new b.WriteWrap();
    spareRequest = null;
    const err = h.writeBuffer(req, data);
    if (err !== 0) {
      spareRequest = req;
      this.socket.destroy(new Error(`write failed (libuv error ${err})`));
      return false;
    }
    if (b.streamBaseState[b.kLastWriteWasAsync] === 0) {
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
    this.socket.end();
  }

  /**
   * Stops delivering data. Bytes that keep arriving are held (up to HOLD_LIMIT,
   * then the kernel is no longer read), so a short pause costs no system call.
   */
  pause(): void {
    if (this.handle === null) {
      this.socket.pause();
      return;
    }
    this.paused = true;
  }

  resume(): void {
    if (this.handle === null) {
      this.socket.resume();
      return;
    }
    if (!this.paused) return;
    this.paused = false;
    if (this.stopped) {
      this.stopped = false;
      const h = this.handle;
      h.reading = true;
      h.readStart();
    }
    // Deliver held bytes on the next tick: callers resume in the middle of state changes.
    if (this.held) process.nextTick(deliverHeld, this);
  }

  /** @internal */
  deliverHeld(): void {
    while (this.held && !this.paused) {
      const chunks = this.held;
      this.held = null;
      this.heldBytes = 0;
      for (let i = 0; i < chunks.length; i++) {
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
    if (this.needDrain && this.handle!.writeQueueSize === 0 && !this.socket.destroyed) {
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
  wireOf(this).owner.onWireClose();
}

function deliverHeld(wire: Wire): void {
  wire.deliverHeld();
}

function afterAsyncWrite(this: WriteRequest, status: number): void {
  const wire = this.wire;
  this.buffer = null;
  if (!wire) return;
  if (status < 0) {
    if (!wire.socket.destroyed) wire.socket.destroy(new Error(`write failed (libuv error ${status})`));
    return;
  }
  wire.afterWrite();
}
