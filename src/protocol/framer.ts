// Incremental framing of regular protocol messages (type byte + Int32 length).
//
// Hot path rules: whole messages are handed out as views of the chunk they
// arrived in; consecutive forwarded messages are coalesced into one view so the
// caller writes once per chunk; only a message split across chunks is copied,
// and only when the sink must read its body ("inspected" types). Other split
// messages (DataRow, CopyData…) stream through without being buffered, so a
// huge row never lives in memory whole. Lengths are checked before allocation.
import { Buffer } from 'node:buffer';
import { ProtocolError, ProtocolErrorCode } from './errors.js';

/** What the sink did with a frame. */
export const enum Verdict {
  /** Pass the bytes on verbatim (coalesced with neighbours). */
  Forward = 0,
  /** The sink handled it; drop the bytes. */
  Consumed = 1,
  /** Do not consume this frame now; keep it and everything after it until resume(). */
  Stop = 2,
}

export interface FrameSink {
  /**
   * One message, at data[start, end) including its 5-byte header. For types not
   * in the inspect table the view may hold only a prefix of a message that is
   * still arriving: read the type only.
   */
  onFrame(type: number, data: Buffer, start: number, end: number): Verdict;
  /** Bytes to pass on, in order. */
  onForward(bytes: Buffer): void;
  onProtocolError(err: ProtocolError): void;
}

const HEADER = 5;
/** PostgreSQL's largest message (MaxAllocSize - 1). */
export const PG_MAX_MESSAGE = 0x3fffffff;
/**
 * First buffer for a split inspected message. A message is buffered in memory
 * proportional to the bytes that actually arrived (growing by doubling up to its
 * declared length), so a peer cannot make us allocate max_packet_size (2 GB by
 * default) by sending a 5-byte header.
 */
const INITIAL_CAPACITY = 64 * 1024;
const enum State {
  Header,
  Buffered,
  Stream,
}

/** Builds an inspect table from message type characters. */
export function inspectTable(types: string): Uint8Array {
  const table = new Uint8Array(256);
  for (let i = 0; i < types.length; i++) table[types.charCodeAt(i)] = 1;
  return table;
}

export class MessageReader {
  maxPacketSize: number;
  private state = State.Header;
  // Only a header split across chunks needs this; most connections never allocate it.
  private hdrBuf: Buffer | null = null;
  private hdrFill = 0;
  private msg: Buffer | null = null; // a split inspected message being assembled (capacity <= msgTotal)
  private msgTotal = 0;
  private msgFill = 0;
  private msgType = 0;
  private streamLeft = 0; // bytes of a streamed message still to come
  private streamSkip = false;
  private stash: Buffer[] | null = null; // chunks kept by a Stop verdict, in order (views, never concatenated)
  private stopped = false;
  private failed = false;
  // The forward run inside the chunk being processed.
  private cur: Buffer | null = null;
  private runStart = -1;
  private runEnd = -1;

  constructor(
    private readonly sink: FrameSink,
    private inspect: Uint8Array,
    maxPacketSize: number,
  ) {
    // PostgreSQL itself refuses messages of 1 GB or more; a larger max_packet_size cannot be honoured.
    this.maxPacketSize = Math.min(maxPacketSize, PG_MAX_MESSAGE);
  }

  /** Changes the largest message accepted (capped like the constructor's); takes effect from the next message header. */
  setMaxPacketSize(n: number): void {
    this.maxPacketSize = Math.min(n, PG_MAX_MESSAGE);
  }

  /** Changes which message types are read whole; takes effect from the next message header. */
  setInspect(table: Uint8Array): void {
    this.inspect = table;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** True while a message is partly received (useful to refuse a release mid-message). */
  get midMessage(): boolean {
    return this.state !== State.Header || this.hdrFill > 0;
  }

  push(chunk: Buffer): void {
    if (this.failed) return;
    if (this.stopped) {
      if (chunk.length) (this.stash ??= []).push(chunk);
      return;
    }
    this.process(chunk);
  }

  /** Continue after a Stop verdict. */
  resume(): void {
    if (!this.stopped || this.failed) return;
    this.stopped = false;
    const pending = this.stash;
    this.stash = null;
    if (!pending) return;
    // Feed the kept chunks as they came; if a frame stops us again, keep the rest.
    for (let i = 0; i < pending.length && !this.failed; i++) {
      if (this.stopped) (this.stash ??= []).push(pending[i]);
      else this.process(pending[i]);
    }
  }

  /** Write out the forward run gathered so far; sinks call this before writing their own bytes. */
  flush(): void {
    if (this.runStart >= 0 && this.cur) {
      const cur = this.cur;
      // Often the run is the whole chunk (a complete result): hand it on as is, with no view to make.
      const view = this.runStart === 0 && this.runEnd === cur.length ? cur : cur.subarray(this.runStart, this.runEnd);
      this.runStart = -1;
      this.sink.onForward(view);
    }
  }

  private extend(start: number, end: number): void {
    if (this.runStart < 0) this.runStart = start;
    this.runEnd = end;
  }

  private fail(err: ProtocolError): void {
    this.flush();
    this.cur = null;
    this.failed = true;
    this.stash = null;
    this.msg = null;
    this.sink.onProtocolError(err);
  }

  private checkLength(type: number, length: number): boolean {
    if (length < 4) {
      this.fail(new ProtocolError(ProtocolErrorCode.BadLength, `invalid message length ${length} for message type ${printable(type)}`));
      return false;
    }
    if (length > this.maxPacketSize) {
      this.fail(
        new ProtocolError(
          ProtocolErrorCode.TooLarge,
          `message of ${length} bytes exceeds max_packet_size (${this.maxPacketSize})`,
          '08P01',
        ),
      );
      return false;
    }
    return true;
  }

  /** Stops with `first` (the stopped frame's bytes) and buf[pos..) kept for resume(). */
  private stopAt(first: Buffer | null, buf: Buffer, pos: number): void {
    this.stopped = true;
    const kept: Buffer[] = [];
    if (first) kept.push(first);
    if (pos < buf.length) kept.push(pos === 0 ? buf : buf.subarray(pos));
    this.stash = kept;
    this.cur = null;
  }

  /** Makes room for `need` bytes of the message being assembled (need <= msgTotal). */
  private grow(need: number): Buffer {
    const old = this.msg as Buffer;
    const next = Buffer.allocUnsafe(Math.min(this.msgTotal, Math.max(need, old.length * 2)));
    old.copy(next, 0, 0, this.msgFill);
    this.msg = next;
    return next;
  }

  private process(buf: Buffer): void {
    this.cur = buf;
    this.runStart = -1;
    const len = buf.length;
    let pos = 0;
    while (pos < len && !this.failed) {
      if (this.state === State.Stream) {
        const n = Math.min(this.streamLeft, len - pos);
        if (!this.streamSkip) this.extend(pos, pos + n);
        pos += n;
        this.streamLeft -= n;
        if (this.streamLeft === 0) this.state = State.Header;
        continue;
      }
      if (this.state === State.Buffered) {
        let msg = this.msg as Buffer;
        const n = Math.min(this.msgTotal - this.msgFill, len - pos);
        if (this.msgFill + n > msg.length) msg = this.grow(this.msgFill + n);
        buf.copy(msg, this.msgFill, pos, pos + n);
        this.msgFill += n;
        pos += n;
        if (this.msgFill === this.msgTotal && this.deliverBuffered(buf, pos)) return;
        continue;
      }
      // State.Header
      if (this.hdrFill === 0 && len - pos >= HEADER) {
        const type = buf[pos];
        const length = int32At(buf, pos + 1);
        if (!this.checkLength(type, length)) return;
        const total = length + 1;
        if (len - pos >= total) {
          const verdict = this.sink.onFrame(type, buf, pos, pos + total);
          if (verdict === Verdict.Forward) this.extend(pos, pos + total);
          else if (verdict === Verdict.Stop) {
            this.flush();
            this.stopAt(null, buf, pos);
            return;
          } else this.flush();
          pos += total;
          continue;
        }
        // Split message with its header in this chunk.
        if (this.inspect[type]) {
          this.flush();
          this.msg = Buffer.allocUnsafe(Math.min(total, Math.max(len - pos, INITIAL_CAPACITY)));
          this.msgTotal = total;
          this.msgType = type;
          buf.copy(this.msg, 0, pos, len);
          this.msgFill = len - pos;
          this.state = State.Buffered;
          pos = len;
          continue;
        }
        const verdict = this.sink.onFrame(type, buf, pos, len);
        if (verdict === Verdict.Stop) {
          this.flush();
          this.stopAt(null, buf, pos);
          return;
        }
        this.streamSkip = verdict === Verdict.Consumed;
        if (this.streamSkip) this.flush();
        else this.extend(pos, len);
        this.streamLeft = total - (len - pos);
        this.state = State.Stream;
        pos = len;
        continue;
      }
      // Header split across chunks: gather it byte-wise (at most 4 copies).
      this.flush();
      const n = Math.min(HEADER - this.hdrFill, len - pos);
      const hdr = (this.hdrBuf ??= Buffer.alloc(HEADER));
      buf.copy(hdr, this.hdrFill, pos, pos + n);
      this.hdrFill += n;
      pos += n;
      if (this.hdrFill < HEADER) continue;
      this.hdrFill = 0;
      const type = hdr[0];
      const length = int32At(hdr, 1);
      if (!this.checkLength(type, length)) return;
      const total = length + 1;
      if (this.inspect[type] || total === HEADER) {
        this.msg = Buffer.allocUnsafe(Math.min(total, INITIAL_CAPACITY));
        this.msgTotal = total;
        this.msgType = type;
        hdr.copy(this.msg, 0);
        this.msgFill = HEADER;
        this.state = State.Buffered;
        if (total === HEADER && this.deliverBuffered(buf, pos)) return;
        continue;
      }
      const header = Buffer.from(hdr);
      const verdict = this.sink.onFrame(type, header, 0, HEADER);
      if (verdict === Verdict.Stop) {
        this.stopAt(header, buf, pos);
        return;
      }
      this.streamSkip = verdict === Verdict.Consumed;
      if (!this.streamSkip) this.sink.onForward(header);
      this.streamLeft = total - HEADER;
      this.state = this.streamLeft > 0 ? State.Stream : State.Header;
    }
    this.flush();
    this.cur = null;
  }

  /** Hands a completed buffered message to the sink; returns true when processing must stop. */
  private deliverBuffered(buf: Buffer, pos: number): boolean {
    const msg = this.msg as Buffer;
    this.msg = null;
    this.state = State.Header;
    this.flush();
    const verdict = this.sink.onFrame(this.msgType, msg, 0, msg.length);
    if (verdict === Verdict.Forward) this.sink.onForward(msg);
    else if (verdict === Verdict.Stop) {
      this.stopAt(msg, buf, pos);
      return true;
    }
    return false;
  }
}

/**
 * The big-endian Int32 at `at`; the caller has checked the 4 bytes are there.
 * Buffer#readInt32BE is not inlined and checks its arguments again: a call per message.
 */
export function int32At(buf: Uint8Array, at: number): number {
  return (buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!;
}

export function printable(type: number): string {
  return type >= 0x20 && type < 0x7f ? `'${String.fromCharCode(type)}'` : `0x${type.toString(16).padStart(2, '0')}`;
}
