// MessageReader framing: every split offset, 1-byte chunks and random chunkings
// must yield the same frames and the same forwarded bytes, with whole messages
// handed out as views (no copy) and forward runs coalesced per chunk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageReader, Verdict, inspectTable, int32At, PG_MAX_MESSAGE, type FrameSink } from '../src/protocol/framer.js';
import { ProtocolError, ProtocolErrorCode } from '../src/protocol/errors.js';

// ---------------------------------------------------------------- helpers

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function frame(type: string, body: Buffer | string): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const out = Buffer.alloc(5 + b.length);
  out[0] = type.charCodeAt(0);
  out.writeInt32BE(4 + b.length, 1);
  b.copy(out, 5);
  return out;
}

function filled(n: number, seed: number): Buffer {
  const rnd = mulberry32(seed);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (rnd() * 256) | 0;
  return b;
}

/** A buffer on its own ArrayBuffer (never Node's shared pool), so `.buffer` identity means something. */
function ownBuffer(src: Buffer): Buffer {
  const b = Buffer.from(new ArrayBuffer(src.length));
  src.copy(b);
  return b;
}

interface Msg {
  type: number;
  offset: number; // absolute offset in the stream
  bytes: Buffer;
}

// Server-ish inspect table: small control messages are read whole; 'D', 'd', 'T', '2' stream.
const INSPECT_TYPES = 'ZESCK1n';
const INSPECT = inspectTable(INSPECT_TYPES);

function buildStream(): { input: Buffer; msgs: Msg[] } {
  const parts: Buffer[] = [
    frame('S', 'client_encoding\0UTF8\0'),
    frame('K', Buffer.from([0, 0, 0x30, 0x39, 1, 2, 3, 4])),
    frame('Z', 'I'),
    frame('1', Buffer.alloc(0)), // ParseComplete: inspected, empty body
    frame('2', Buffer.alloc(0)), // BindComplete: streamed, empty body
    frame('T', Buffer.concat([Buffer.from([0, 1]), Buffer.from('a\0'), Buffer.alloc(18, 0)])),
    frame('D', filled(70_000, 1)), // a big DataRow, streamed
    frame('D', Buffer.from([0, 1, 0, 0, 0, 1, 0x41])),
    frame('D', Buffer.from([0, 1, 0, 0, 0, 2, 0x42, 0x43])),
    frame('C', 'SELECT 3\0'),
    frame('Z', 'T'),
    frame('E', 'SERROR\0VERROR\0C42601\0Msyntax error at or near "x"\0\0'),
    frame('Z', 'E'),
    frame('G', Buffer.from([0, 0, 0])),
    frame('d', filled(70_000, 2)), // CopyData, streamed
    frame('d', filled(3, 3)),
    frame('c', Buffer.alloc(0)),
    frame('C', 'COPY 2\0'),
    frame('n', Buffer.alloc(0)),
    frame('S', 'application_name\0' + 'x'.repeat(300) + '\0'),
    frame('D', filled(12, 4)),
    frame('Z', 'I'),
  ];
  const msgs: Msg[] = [];
  let off = 0;
  for (const p of parts) {
    msgs.push({ type: p[0], offset: off, bytes: p });
    off += p.length;
  }
  return { input: ownBuffer(Buffer.concat(parts)), msgs };
}

const { input: INPUT, msgs: MSGS } = buildStream();
const N = INPUT.length;

interface FwdView {
  abs: number; // absolute offset in the stream, -1 when the bytes are a copy
  bytes: Buffer;
}

interface FrameRec {
  type: number;
  data: Buffer;
  start: number;
  end: number;
  abs: number; // absolute offset of data[start] when a view of a chunk, else -1
}

/** A chunk registry: maps a view back to its absolute offset in the stream. */
class Chunks {
  private readonly bases = new Map<ArrayBufferLike, number>();
  constructor(readonly chunks: Buffer[], readonly starts: number[]) {
    for (let i = 0; i < chunks.length; i++) {
      const c = chunks[i];
      const base = starts[i] - c.byteOffset;
      const prev = this.bases.get(c.buffer);
      if (prev !== undefined) assert.equal(prev, base, 'chunks sharing an ArrayBuffer must be views of one stream');
      this.bases.set(c.buffer, base);
    }
  }
  locate(buf: Buffer, start = 0): number {
    const base = this.bases.get(buf.buffer);
    return base === undefined ? -1 : base + buf.byteOffset + start;
  }
  chunkIndexOf(abs: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= abs) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}

/** Cuts as views of INPUT (zero-copy chunking). */
function viewChunks(cuts: number[]): Chunks {
  const chunks: Buffer[] = [];
  const starts: number[] = [];
  let prev = 0;
  for (const c of [...cuts, N]) {
    if (c > prev) {
      chunks.push(INPUT.subarray(prev, c));
      starts.push(prev);
      prev = c;
    }
  }
  return new Chunks(chunks, starts);
}

/** Cuts as copies, each chunk on its own ArrayBuffer. */
function copiedChunks(cuts: number[]): Chunks {
  const chunks: Buffer[] = [];
  const starts: number[] = [];
  let prev = 0;
  for (const c of [...cuts, N]) {
    if (c > prev) {
      chunks.push(ownBuffer(INPUT.subarray(prev, c)));
      starts.push(prev);
      prev = c;
    }
  }
  return new Chunks(chunks, starts);
}

type Policy = (type: number, acceptedIndex: number) => Verdict;

class RecordingSink implements FrameSink {
  frames: FrameRec[] = []; // frames accepted (not stopped)
  stops: FrameRec[] = [];
  fwd: FwdView[] = [];
  errors: ProtocolError[] = [];
  reader!: MessageReader;
  constructor(
    private readonly chunks: Chunks,
    private readonly policy: Policy,
  ) {}
  onFrame(type: number, data: Buffer, start: number, end: number): Verdict {
    const rec: FrameRec = { type, data, start, end, abs: this.chunks.locate(data, start) };
    const v = this.policy(type, this.frames.length);
    if (v === Verdict.Stop) this.stops.push(rec);
    else this.frames.push(rec);
    return v;
  }
  onForward(bytes: Buffer): void {
    assert.ok(bytes.length > 0, 'onForward with no bytes');
    this.fwd.push({ abs: this.chunks.locate(bytes), bytes });
  }
  onProtocolError(err: ProtocolError): void {
    this.errors.push(err);
  }
}

const forwardAll: Policy = () => Verdict.Forward;
const CONSUMED_TYPES = new Set(['S', 'd', '2', 'E'].map((c) => c.charCodeAt(0)));
const consumeSome: Policy = (type) => (CONSUMED_TYPES.has(type) ? Verdict.Consumed : Verdict.Forward);

function run(chunks: Chunks, policy: Policy, maxPacketSize = 1 << 20): RecordingSink {
  const sink = new RecordingSink(chunks, policy);
  const reader = new MessageReader(sink, INSPECT, maxPacketSize);
  sink.reader = reader;
  for (const c of chunks.chunks) reader.push(c);
  assert.equal(reader.midMessage, false, 'reader must end between messages');
  return sink;
}

/** Expected forwarded ranges of INPUT given which message types are consumed. */
function forwardedSegments(consumed: Set<number>): Array<[number, number]> {
  const segs: Array<[number, number]> = [];
  for (const m of MSGS) {
    if (consumed.has(m.type)) continue;
    const last = segs[segs.length - 1];
    if (last && last[1] === m.offset) last[1] = m.offset + m.bytes.length;
    else segs.push([m.offset, m.offset + m.bytes.length]);
  }
  return segs;
}

function checkForwarded(sink: RecordingSink, consumed: Set<number>, ctx: string): void {
  const segs = forwardedSegments(consumed);
  let si = 0;
  let pos = segs.length ? segs[0][0] : 0;
  const settle = () => {
    while (si < segs.length && pos === segs[si][1]) {
      si++;
      if (si < segs.length) pos = segs[si][0];
    }
  };
  for (const f of sink.fwd) {
    assert.ok(si < segs.length, `${ctx}: more bytes forwarded than expected`);
    if (f.abs >= 0) {
      // A zero-copy view: it must sit exactly at the cursor, inside one segment.
      assert.equal(f.abs, pos, `${ctx}: forwarded view at ${f.abs}, expected ${pos}`);
      assert.ok(pos + f.bytes.length <= segs[si][1], `${ctx}: forwarded view crosses a consumed message`);
      pos += f.bytes.length;
      settle();
    } else {
      // A copy (a message that was split across chunks): compare the bytes.
      let k = 0;
      while (k < f.bytes.length) {
        assert.ok(si < segs.length, `${ctx}: copy runs past the expected bytes`);
        const n = Math.min(f.bytes.length - k, segs[si][1] - pos);
        assert.ok(f.bytes.subarray(k, k + n).equals(INPUT.subarray(pos, pos + n)), `${ctx}: forwarded copy differs at ${pos}`);
        k += n;
        pos += n;
        settle();
      }
    }
  }
  assert.equal(si, segs.length, `${ctx}: forwarded bytes stop short (segment ${si} of ${segs.length}, at ${pos})`);
}

function checkFrames(sink: RecordingSink, chunks: Chunks, ctx: string): void {
  assert.equal(sink.errors.length, 0, `${ctx}: unexpected protocol error ${sink.errors[0]?.message}`);
  assert.deepEqual(
    sink.frames.map((f) => String.fromCharCode(f.type)).join(''),
    MSGS.map((m) => String.fromCharCode(m.type)).join(''),
    `${ctx}: frame type sequence`,
  );
  for (let i = 0; i < MSGS.length; i++) {
    const m = MSGS[i];
    const f = sink.frames[i];
    const seen = f.data.subarray(f.start, f.end);
    const ci = chunks.chunkIndexOf(m.offset);
    const whole = m.offset + m.bytes.length <= chunks.starts[ci] + chunks.chunks[ci].length;
    if (INSPECT[m.type]) {
      assert.ok(seen.equals(m.bytes), `${ctx}: inspected frame #${i} ${String.fromCharCode(m.type)} not seen whole`);
    } else {
      assert.ok(seen.length >= 5 && seen.length <= m.bytes.length, `${ctx}: streamed frame #${i} view of ${seen.length} bytes`);
      assert.ok(seen.equals(m.bytes.subarray(0, seen.length)), `${ctx}: streamed frame #${i} is not a prefix of the message`);
    }
    if (whole) {
      // No copy: a view of the chunk it arrived in, at the message's position.
      const chunk = chunks.chunks[ci];
      assert.ok(f.data.buffer === chunk.buffer, `${ctx}: frame #${i} is a copy, not a view of its chunk`);
      assert.equal(f.abs, m.offset, `${ctx}: frame #${i} view at the wrong offset`);
      assert.equal(f.end - f.start, m.bytes.length, `${ctx}: frame #${i} view length`);
    }
  }
}

/** Each run of consecutive forwarded messages wholly inside one chunk is written by ONE onForward call. */
function checkCoalesced(sink: RecordingSink, chunks: Chunks, consumed: Set<number>, ctx: string): void {
  // Views come in stream order: binary-search the last one starting at or before a.
  const views = sink.fwd.filter((f) => f.abs >= 0).map((f) => [f.abs, f.abs + f.bytes.length] as const);
  const covered = (a: number, b: number) => {
    let lo = 0;
    let hi = views.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (views[mid][0] <= a) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found >= 0 && views[found][1] >= b;
  };
  let runStart = -1;
  let runEnd = -1;
  let runChunk = -1;
  const close = () => {
    if (runStart >= 0) assert.ok(covered(runStart, runEnd), `${ctx}: forward run [${runStart}, ${runEnd}) not written in one call`);
    runStart = -1;
  };
  for (const m of MSGS) {
    const ci = chunks.chunkIndexOf(m.offset);
    const whole = m.offset + m.bytes.length <= chunks.starts[ci] + chunks.chunks[ci].length;
    if (!whole || consumed.has(m.type)) {
      close();
      continue;
    }
    if (runStart >= 0 && runChunk === ci && runEnd === m.offset) runEnd = m.offset + m.bytes.length;
    else {
      close();
      runStart = m.offset;
      runEnd = m.offset + m.bytes.length;
      runChunk = ci;
    }
  }
  close();
}

function checkAll(chunks: Chunks, ctx: string): void {
  for (const [name, policy, consumed] of [
    ['forward-all', forwardAll, new Set<number>()],
    ['consume-some', consumeSome, CONSUMED_TYPES],
  ] as const) {
    const sink = run(chunks, policy);
    const c = `${ctx} ${name}`;
    checkFrames(sink, chunks, c);
    checkForwarded(sink, consumed, c);
    checkCoalesced(sink, chunks, consumed, c);
  }
}

// ---------------------------------------------------------------- tests

test('the stream fits in one chunk: one onForward call, a view of the input', () => {
  const chunks = viewChunks([]);
  const sink = run(chunks, forwardAll);
  checkFrames(sink, chunks, 'one chunk');
  assert.equal(sink.fwd.length, 1);
  assert.ok(sink.fwd[0].bytes.buffer === INPUT.buffer);
  assert.equal(sink.fwd[0].abs, 0);
  assert.equal(sink.fwd[0].bytes.length, N);
  // Every frame is a view of the input.
  for (const f of sink.frames) assert.ok(f.data.buffer === INPUT.buffer);
});

test('the consume sink drops exactly the consumed messages and writes each run once', () => {
  const chunks = viewChunks([]);
  const sink = run(chunks, consumeSome);
  checkForwarded(sink, CONSUMED_TYPES, 'one chunk consume');
  assert.equal(sink.fwd.length, forwardedSegments(CONSUMED_TYPES).length);
  const total = sink.fwd.reduce((n, f) => n + f.bytes.length, 0);
  const dropped = MSGS.filter((m) => CONSUMED_TYPES.has(m.type)).reduce((n, m) => n + m.bytes.length, 0);
  assert.equal(total, N - dropped);
});

test('split into two chunks at every byte offset', () => {
  for (let k = 1; k < N; k++) checkAll(viewChunks([k]), `split@${k}`);
});

test('split into two chunks on separate ArrayBuffers near every message boundary', () => {
  for (const m of MSGS) {
    for (let d = -6; d <= 6; d++) {
      const k = m.offset + d;
      if (k > 0 && k < N) checkAll(copiedChunks([k]), `copied split@${k}`);
    }
  }
});

test('1-byte chunks', () => {
  const cuts: number[] = [];
  for (let k = 1; k < N; k++) cuts.push(k);
  checkAll(viewChunks(cuts), '1-byte');
});

test('random chunkings (seeded)', () => {
  for (let seed = 1; seed <= 150; seed++) {
    const rnd = mulberry32(seed);
    const maxChunk = [3, 17, 200, 5000, 80_000][seed % 5];
    const cuts: number[] = [];
    let p = 0;
    for (;;) {
      p += 1 + Math.floor(rnd() * maxChunk);
      if (p >= N) break;
      cuts.push(p);
    }
    // Own ArrayBuffer per chunk when chunks are big (identity then names the chunk).
    checkAll(maxChunk >= 200 && seed % 2 ? copiedChunks(cuts) : viewChunks(cuts), `seed ${seed}`);
  }
});

// ---------------------------------------------------------------- Stop / resume

const STOP_AT = new Set(
  MSGS.map((m, i) => [m, i] as const)
    .filter(([m]) => 'ZDd1E2'.includes(String.fromCharCode(m.type)))
    .map(([, i]) => i),
);

function runWithStops(chunks: Chunks, pushWhileStopped: boolean): RecordingSink {
  const stoppedAt = new Set<number>();
  const sink = new RecordingSink(chunks, (_type, idx) => {
    if (STOP_AT.has(idx) && !stoppedAt.has(idx)) {
      stoppedAt.add(idx);
      return Verdict.Stop;
    }
    return Verdict.Forward;
  });
  const reader = new MessageReader(sink, INSPECT, 1 << 20);
  const drain = () => {
    while (reader.isStopped) {
      const frames = sink.frames.length;
      reader.resume();
      assert.ok(sink.frames.length > frames || reader.isStopped || sink.errors.length, 'resume made no progress');
    }
  };
  for (const c of chunks.chunks) {
    if (reader.isStopped && pushWhileStopped) {
      const frames = sink.frames.length + sink.stops.length;
      const fwd = sink.fwd.length;
      reader.push(c);
      assert.equal(sink.frames.length + sink.stops.length, frames, 'push while stopped delivered a frame');
      assert.equal(sink.fwd.length, fwd, 'push while stopped forwarded bytes');
      assert.equal(reader.isStopped, true);
      continue;
    }
    drain();
    reader.push(c);
  }
  drain();
  assert.equal(stoppedAt.size, STOP_AT.size, 'every stop point was hit');
  return sink;
}

test('Verdict.Stop then resume(): nothing lost or duplicated at every split offset', () => {
  for (let k = 1; k < N; k++) {
    for (const pushWhileStopped of [true, false]) {
      const chunks = viewChunks([k]);
      const sink = runWithStops(chunks, pushWhileStopped);
      const ctx = `stop split@${k} ${pushWhileStopped ? 'push-while-stopped' : 'resume-first'}`;
      checkFrames(sink, chunks, ctx);
      checkForwarded(sink, new Set(), ctx);
      // The stopped frame is re-offered with the same type.
      for (const s of sink.stops) assert.ok('ZDd1E2'.includes(String.fromCharCode(s.type)));
    }
  }
});

test('Verdict.Stop then resume() with 1-byte and random chunks', () => {
  const cuts: number[] = [];
  for (let k = 1; k < N; k++) cuts.push(k);
  let chunks = viewChunks(cuts);
  let sink = runWithStops(chunks, true);
  checkFrames(sink, chunks, 'stop 1-byte');
  checkForwarded(sink, new Set(), 'stop 1-byte');
  for (let seed = 1; seed <= 60; seed++) {
    const rnd = mulberry32(seed * 7919);
    const rc: number[] = [];
    let p = 0;
    for (;;) {
      p += 1 + Math.floor(rnd() * [4, 300, 40_000][seed % 3]);
      if (p >= N) break;
      rc.push(p);
    }
    chunks = seed % 3 === 0 ? viewChunks(rc) : copiedChunks(rc);
    sink = runWithStops(chunks, seed % 2 === 0);
    checkFrames(sink, chunks, `stop seed ${seed}`);
    checkForwarded(sink, new Set(), `stop seed ${seed}`);
  }
});

test('Stop flushes the forward run before the stopped frame and resume keeps order', () => {
  const a = frame('D', 'aaaa');
  const z = frame('Z', 'I');
  const b = frame('D', 'bbbb');
  const input = ownBuffer(Buffer.concat([a, z, b]));
  const log: string[] = [];
  let stopped = false;
  const reader = new MessageReader(
    {
      onFrame(type) {
        log.push(`frame ${String.fromCharCode(type)}`);
        if (type === 0x5a && !stopped) {
          stopped = true;
          return Verdict.Stop;
        }
        return Verdict.Forward;
      },
      onForward(bytes) {
        log.push(`fwd ${bytes.toString('latin1').replace(/[^a-zA-Z]/g, '')}`);
      },
      onProtocolError(err) {
        log.push(`error ${err.code}`);
      },
    },
    INSPECT,
    1024,
  );
  reader.push(input);
  // The run before the stopped frame is written out; the stopped frame is not.
  assert.deepEqual(log, ['frame D', 'frame Z', 'fwd Daaaa']);
  assert.equal(reader.isStopped, true);
  const c = frame('C', 'x\0');
  reader.push(ownBuffer(c));
  assert.equal(log.length, 3);
  reader.resume();
  assert.equal(reader.isStopped, false);
  // The stopped frame is offered again, then the rest in order; the bytes forwarded
  // after resume are exactly Z, D, C (however the reader groups its writes).
  const after = log.slice(3);
  assert.deepEqual(after.filter((l) => l.startsWith('frame ')), ['frame Z', 'frame D', 'frame C']);
  const fwd = after.filter((l) => l.startsWith('fwd ')).map((l) => l.slice(4));
  assert.equal(fwd.join(''), 'ZIDbbbbCx');
  // Z and D arrived in one chunk: written in one call, not one per message.
  assert.equal(fwd[0], 'ZIDbbbb');
});

// ---------------------------------------------------------------- lengths

function header(type: string, length: number): Buffer {
  const h = Buffer.alloc(5);
  h[0] = type.charCodeAt(0);
  h.writeInt32BE(length | 0, 1);
  return h;
}

function errorRun(chunks: Buffer[], maxPacketSize: number) {
  const frames: number[] = [];
  const fwd: Buffer[] = [];
  const errors: ProtocolError[] = [];
  const reader = new MessageReader(
    {
      onFrame(type) {
        frames.push(type);
        return Verdict.Forward;
      },
      onForward(bytes) {
        fwd.push(Buffer.from(bytes));
      },
      onProtocolError(err) {
        errors.push(err);
      },
    },
    INSPECT,
    maxPacketSize,
  );
  for (const c of chunks) reader.push(c);
  // Anything after the error is ignored, including a later resume().
  const after = { frames: frames.length, fwd: fwd.length };
  reader.push(frame('Z', 'I'));
  reader.push(frame('D', 'x'));
  reader.resume();
  assert.equal(frames.length, after.frames, 'a frame was delivered after the protocol error');
  assert.equal(fwd.length, after.fwd, 'bytes were forwarded after the protocol error');
  return { frames, fwd: Buffer.concat(fwd), errors };
}

test('bad lengths: negative, < 4, > maxPacketSize → one protocol error, nothing after', () => {
  const ok = Buffer.concat([frame('Z', 'I'), frame('D', 'abc')]);
  const cases: Array<[string, number, string]> = [
    ['Z', -1, ProtocolErrorCode.BadLength],
    ['D', -2147483648, ProtocolErrorCode.BadLength],
    ['Z', 0, ProtocolErrorCode.BadLength],
    ['D', 3, ProtocolErrorCode.BadLength],
    ['Z', 1025, ProtocolErrorCode.TooLarge],
    ['D', 1025, ProtocolErrorCode.TooLarge],
    ['E', 2147483647, ProtocolErrorCode.TooLarge],
    ['d', 2147483647, ProtocolErrorCode.TooLarge],
  ];
  for (const [type, length, code] of cases) {
    const bad = Buffer.concat([header(type, length), Buffer.alloc(16, 0x41)]);
    const stream = Buffer.concat([ok, bad]);
    const splits: Buffer[][] = [[stream]];
    for (let k = 1; k < stream.length; k++) splits.push([stream.subarray(0, k), stream.subarray(k)]);
    splits.push([...stream].map((b) => Buffer.from([b])));
    for (const chunks of splits) {
      const r = errorRun(chunks, 1024);
      const ctx = `${type} len ${length} in ${chunks.length} chunks`;
      assert.equal(r.errors.length, 1, ctx);
      assert.ok(r.errors[0] instanceof ProtocolError, ctx);
      assert.equal(r.errors[0].code, code, ctx);
      assert.equal(r.errors[0].sqlstate, '08P01', ctx);
      assert.match(r.errors[0].message, code === ProtocolErrorCode.TooLarge ? /exceeds max_packet_size \(1024\)/ : /invalid message length/, ctx);
      assert.match(r.errors[0].message, new RegExp(String(length)), ctx);
      // The good messages before the bad one went through; nothing of the bad one did.
      assert.deepEqual(r.frames, [0x5a, 0x44], ctx);
      assert.ok(r.fwd.equals(ok), ctx);
    }
  }
});

test('a declared length of 2^31-1 is refused before any allocation', () => {
  const before = process.memoryUsage().arrayBuffers;
  for (let i = 0; i < 200; i++) {
    for (const type of ['Q', 'Z', 'D']) {
      // Header complete in one chunk, and header split byte by byte.
      const h = header(type, 2147483647);
      const r1 = errorRun([h], 8192);
      const r2 = errorRun([...h].map((b) => Buffer.from([b])), 8192);
      assert.equal(r1.errors[0]?.code, ProtocolErrorCode.TooLarge);
      assert.equal(r2.errors[0]?.code, ProtocolErrorCode.TooLarge);
    }
  }
  assert.ok(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024);
});

test('a huge declared length within max_packet_size allocates only for the bytes received', () => {
  // PgBouncer's default max_packet_size is 2147483647 (capped at PostgreSQL's 1 GB limit): a client that declares ~1 GB
  // Query and sends 100 bytes must not make the pooler allocate 2 GB.
  const before = process.memoryUsage().arrayBuffers;
  const readers: MessageReader[] = [];
  for (const type of ['Q', 'E']) {
    for (let i = 0; i < 8; i++) {
      const sink: FrameSink = {
        onFrame: () => Verdict.Forward,
        onForward: () => {},
        onProtocolError: (e) => assert.fail(e.message),
      };
      const reader = new MessageReader(sink, inspectTable('QE'), 2147483647);
      reader.push(Buffer.concat([header(type, PG_MAX_MESSAGE), Buffer.alloc(100, 0x61)]));
      reader.push(Buffer.alloc(1000, 0x62));
      assert.equal(reader.midMessage, true);
      readers.push(reader); // keep them alive while measuring
    }
  }
  const grown = process.memoryUsage().arrayBuffers - before;
  assert.ok(grown < 256 * 1024 * 1024, `grew ${grown} bytes for 16 readers holding 1100 bytes each`);
  assert.equal(readers.length, 16);
});

test('a big inspected message split over many chunks is assembled exactly', () => {
  const body = filled(300_000, 9);
  body[body.length - 1] = 0;
  const msg = frame('E', body);
  const tail = frame('Z', 'I');
  const input = Buffer.concat([frame('Z', 'T'), msg, tail]);
  for (const step of [1000, 4096, 65_536, 70_001, 300_010]) {
    const seen: Buffer[] = [];
    const fwd: Buffer[] = [];
    const reader = new MessageReader(
      {
        onFrame(type, data, start, end) {
          seen.push(Buffer.from(data.subarray(start, end)));
          return Verdict.Forward;
        },
        onForward(b) {
          fwd.push(Buffer.from(b));
        },
        onProtocolError(e) {
          assert.fail(e.message);
        },
      },
      INSPECT,
      1 << 20,
    );
    for (let p = 0; p < input.length; p += step) reader.push(input.subarray(p, p + step));
    assert.equal(seen.length, 3);
    assert.ok(seen[1].equals(msg), `step ${step}`);
    assert.ok(seen[2].equals(tail));
    assert.ok(Buffer.concat(fwd).equals(input));
  }
});

test('midMessage is true exactly while a message is partly received', () => {
  const sink: FrameSink = { onFrame: () => Verdict.Forward, onForward: () => {}, onProtocolError: (e) => assert.fail(e.message) };
  const reader = new MessageReader(sink, INSPECT, 1 << 20);
  const z = frame('Z', 'I');
  const d = frame('D', filled(100, 5));
  assert.equal(reader.midMessage, false);
  reader.push(z.subarray(0, 2)); // split header
  assert.equal(reader.midMessage, true);
  reader.push(z.subarray(2, 5)); // header done, body pending (inspected)
  assert.equal(reader.midMessage, true);
  reader.push(z.subarray(5));
  assert.equal(reader.midMessage, false);
  reader.push(d.subarray(0, 50)); // streamed message, partly through
  assert.equal(reader.midMessage, true);
  reader.push(d.subarray(50));
  assert.equal(reader.midMessage, false);
});

test('int32At reads the same signed big-endian words as Buffer#readInt32BE', () => {
  const rnd = mulberry32(32);
  const buf = Buffer.alloc(4096);
  for (let i = 0; i < buf.length; i++) buf[i] = Math.floor(rnd() * 256);
  buf.set([0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff], 0);
  assert.equal(int32At(buf, 0), -2147483648);
  assert.equal(int32At(buf, 4), -1);
  assert.equal(int32At(buf, 8), 2147483647);
  for (let at = 0; at + 4 <= buf.length; at++) assert.equal(int32At(buf, at), buf.readInt32BE(at), `at ${at}`);
});
