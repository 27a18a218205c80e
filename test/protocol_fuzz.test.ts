// Bounded, seeded fuzzing of both readers against a tiny reference model.
// MessageReader must never throw, must deliver exactly the frames the model
// finds (with matching declared lengths), or report exactly one protocol error
// and stop. StartupReader may only throw ProtocolError.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageReader, Verdict, inspectTable, PG_MAX_MESSAGE } from '../src/protocol/framer.js';
import { StartupReader, parseStartupPacket, SSL_REQUEST_CODE, CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE } from '../src/protocol/startup.js';
import { ProtocolError, ProtocolErrorCode } from '../src/protocol/errors.js';

class Rng {
  private a: number;
  constructor(seed: number) {
    this.a = seed >>> 0;
  }
  next(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

const ITERATIONS = 20_000;
const TYPES = 'ZESCKDdTQPBHXpRNvn123Gc';
const INSPECT_STR = 'ZESCKQPBHXpRNv1';
const INSPECT = inspectTable(INSPECT_STR);

function message(rng: Rng): Buffer {
  const body = rng.bytes(rng.pick([0, 0, 1, 4, rng.int(40), rng.int(300)]));
  const out = Buffer.alloc(5 + body.length);
  out[0] = rng.pick([...TYPES]).charCodeAt(0);
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

const WEIRD_LENGTHS = [-1, -2147483648, 0, 1, 3, 4, 5, 0x7fffffff, 0x10000, 65, 1001, 1 << 24];

function regularInput(rng: Rng): Buffer {
  switch (rng.int(5)) {
    case 0:
      return rng.bytes(rng.int(200));
    case 1: {
      // Valid messages, then one length word mutated.
      const msgs = Array.from({ length: rng.range(1, 8) }, () => message(rng));
      const victim = msgs[rng.int(msgs.length)];
      const len = victim.readInt32BE(1);
      victim.writeInt32BE(rng.next() < 0.5 ? rng.pick(WEIRD_LENGTHS) : len + rng.range(-6, 6), 1);
      return Buffer.concat(msgs);
    }
    case 2: {
      // Valid messages truncated anywhere.
      const all = Buffer.concat(Array.from({ length: rng.range(1, 8) }, () => message(rng)));
      return all.subarray(0, rng.int(all.length + 1));
    }
    case 3: {
      // Valid messages with random bytes flipped.
      const all = Buffer.concat(Array.from({ length: rng.range(1, 6) }, () => message(rng)));
      for (let i = rng.range(1, 3); i > 0; i--) all[rng.int(all.length)] = rng.int(256);
      return all;
    }
    default:
      // Valid messages followed by garbage.
      return Buffer.concat([...Array.from({ length: rng.range(0, 4) }, () => message(rng)), rng.bytes(rng.int(30))]);
  }
}

interface ModelFrame {
  type: number;
  offset: number;
  length: number; // the declared length word
  complete: boolean;
}

/** The reference: walk the whole input at once. */
function model(input: Buffer, max: number): { frames: ModelFrame[]; error: string | null } {
  const frames: ModelFrame[] = [];
  let pos = 0;
  for (;;) {
    if (input.length - pos < 5) return { frames, error: null };
    const length = input.readInt32BE(pos + 1);
    if (length < 4) return { frames, error: ProtocolErrorCode.BadLength };
    if (length > max) return { frames, error: ProtocolErrorCode.TooLarge };
    const complete = input.length - pos >= length + 1;
    frames.push({ type: input[pos], offset: pos, length, complete });
    if (!complete) return { frames, error: null };
    pos += length + 1;
  }
}

function chunk(rng: Rng, input: Buffer): Buffer[] {
  const out: Buffer[] = [];
  const mode = rng.int(3);
  let p = 0;
  while (p < input.length) {
    const n = mode === 0 ? 1 : mode === 1 ? rng.range(1, 7) : rng.range(1, 120);
    out.push(input.subarray(p, p + n));
    p += n;
  }
  if (rng.next() < 0.1) out.splice(rng.int(out.length + 1), 0, Buffer.alloc(0)); // an empty chunk now and then
  return out;
}

test(`MessageReader fuzz: ${ITERATIONS} seeded inputs match the reference model`, () => {
  let errorsSeen = 0;
  let framesSeen = 0;
  let stopsSeen = 0;
  for (let iter = 0; iter < ITERATIONS; iter++) {
    const rng = new Rng(iter * 2654435761 + 1);
    const input = regularInput(rng);
    const max = rng.pick([64, 1000, 0x7fffffff]);
    const expected = model(input, Math.min(max, PG_MAX_MESSAGE));
    const ctx = `iteration ${iter} (input ${input.toString('hex').slice(0, 80)}…, max ${max})`;

    const accepted: Array<{ type: number; bytes: Buffer }> = [];
    const forwarded: Buffer[] = [];
    const errors: ProtocolError[] = [];
    const stoppedAt = new Set<number>();
    const verdicts: Verdict[] = [];
    const reader = new MessageReader(
      {
        onFrame(type, data, start, end) {
          const idx = accepted.length;
          if (!stoppedAt.has(idx) && rng.next() < 0.15) {
            stoppedAt.add(idx);
            return Verdict.Stop;
          }
          const v = rng.next() < 0.3 ? Verdict.Consumed : Verdict.Forward;
          verdicts.push(v);
          accepted.push({ type, bytes: Buffer.from(data.subarray(start, end)) });
          return v;
        },
        onForward(bytes) {
          assert.ok(errors.length === 0, `${ctx}: forwarded after the protocol error`);
          forwarded.push(Buffer.from(bytes));
        },
        onProtocolError(err) {
          errors.push(err);
        },
      },
      INSPECT,
      max,
    );
    try {
      for (const c of chunk(rng, input)) {
        reader.push(c);
        if (reader.isStopped && rng.next() < 0.5) reader.resume();
      }
      for (let guard = 0; reader.isStopped; guard++) {
        assert.ok(guard <= input.length + 1, `${ctx}: resume() loops without progress`);
        reader.resume();
      }
    } catch (e) {
      if (e instanceof assert.AssertionError) throw e;
      assert.fail(`${ctx}: MessageReader threw ${String(e)}`);
    }
    stopsSeen += stoppedAt.size;

    // Errors: exactly the model's, at most once.
    if (expected.error) {
      errorsSeen++;
      assert.equal(errors.length, 1, `${ctx}: expected one protocol error`);
      assert.equal(errors[0].code, expected.error, ctx);
      assert.equal(errors[0].sqlstate, '08P01', ctx);
    } else assert.equal(errors.length, 0, `${ctx}: unexpected ${errors[0]?.code}`);

    // Frames: every complete frame, plus a partial one only when it streams.
    const want = expected.frames.filter((f) => f.complete || !INSPECT[f.type]);
    assert.equal(accepted.length, want.length, `${ctx}: frame count`);
    framesSeen += want.length;
    const expectFwd: Buffer[] = [];
    for (let i = 0; i < want.length; i++) {
      const w = want[i];
      const got = accepted[i];
      assert.equal(got.type, w.type, `${ctx}: frame ${i} type`);
      assert.ok(got.bytes.length >= 5, `${ctx}: frame ${i} without its header`);
      assert.equal(got.bytes.readInt32BE(1), w.length, `${ctx}: frame ${i} declared length`);
      if (INSPECT[w.type]) assert.equal(got.bytes.length, w.length + 1, `${ctx}: inspected frame ${i} not whole`);
      assert.ok(got.bytes.equals(input.subarray(w.offset, w.offset + got.bytes.length)), `${ctx}: frame ${i} bytes`);
      if (verdicts[i] === Verdict.Forward) expectFwd.push(input.subarray(w.offset, w.complete ? w.offset + w.length + 1 : input.length));
    }
    assert.ok(Buffer.concat(forwarded).equals(Buffer.concat(expectFwd)), `${ctx}: forwarded bytes`);
    const partial = expected.frames.some((f) => !f.complete);
    const used = expected.frames.reduce((n, f) => (f.complete ? n + f.length + 1 : n), 0);
    if (!expected.error) assert.equal(reader.midMessage, partial || input.length > used, `${ctx}: midMessage`);
  }
  // The generators reach every outcome.
  assert.ok(errorsSeen > ITERATIONS / 10, `only ${errorsSeen} inputs hit a protocol error`);
  assert.ok(framesSeen > ITERATIONS, `only ${framesSeen} frames`);
  assert.ok(stopsSeen > ITERATIONS / 10, `only ${stopsSeen} stops`);
});

// ---------------------------------------------------------------- startup

function startupInput(rng: Rng): Buffer {
  const kind = rng.int(6);
  if (kind === 0) return rng.bytes(rng.int(40));
  let bytes: Buffer;
  if (kind === 1) {
    const kv: string[] = [];
    for (let i = rng.int(4); i > 0; i--) kv.push(rng.pick(['user', 'database', '_pq_.x', 'options', '']), rng.pick(['u', '', 'é', 'x'.repeat(rng.int(50))]));
    const body = Buffer.from(kv.map((s) => s + '\0').join('') + (rng.next() < 0.8 ? '\0' : ''), 'utf8');
    bytes = Buffer.alloc(8 + body.length);
    bytes.writeInt32BE(rng.pick([(3 << 16) | rng.int(4), (2 << 16) | 0, (4 << 16) | 0, rng.int(0x7fffffff)]), 4);
    body.copy(bytes, 8);
  } else if (kind === 2) {
    bytes = Buffer.alloc(8);
    bytes.writeInt32BE(rng.pick([SSL_REQUEST_CODE, GSSENC_REQUEST_CODE]), 4);
  } else {
    bytes = Buffer.alloc(12 + rng.pick([0, 1, 3, 4, 32, 256, 257, rng.int(300)]));
    bytes.writeInt32BE(CANCEL_REQUEST_CODE, 4);
    bytes.writeInt32BE(rng.int(100000), 8);
  }
  bytes.writeInt32BE(bytes.length, 0);
  // Mutate: a wrong length word, a flipped byte, truncation, trailing bytes.
  const m = rng.int(5);
  if (m === 0) bytes.writeInt32BE(rng.pick([-1, 0, 7, 8, 9, 10_000, 10_001, 0x7fffffff, bytes.length + rng.range(-3, 3)]), 0);
  else if (m === 1 && bytes.length) bytes[rng.int(bytes.length)] = rng.int(256);
  else if (m === 2) bytes = bytes.subarray(0, rng.int(bytes.length + 1));
  else if (m === 3) bytes = Buffer.concat([bytes, rng.bytes(rng.range(1, 20))]);
  return bytes;
}

test(`StartupReader fuzz: ${ITERATIONS} seeded inputs throw only ProtocolError and agree with parseStartupPacket`, () => {
  let packets = 0;
  let refused = 0;
  let pending = 0;
  for (let iter = 0; iter < ITERATIONS; iter++) {
    const rng = new Rng(iter * 40503 + 7);
    const input = startupInput(rng);
    const ctx = `iteration ${iter} (input ${input.toString('hex').slice(0, 100)})`;
    const reader = new StartupReader();
    let result: ReturnType<StartupReader['push']> = null;
    let thrown: unknown = null;
    let fed = 0;
    for (const c of chunk(rng, input)) {
      try {
        result = reader.push(c);
      } catch (e) {
        thrown = e;
      }
      fed += c.length;
      if (result || thrown) break;
    }
    if (thrown) {
      assert.ok(thrown instanceof ProtocolError, `${ctx}: threw ${String(thrown)}`);
      assert.equal(thrown.code, ProtocolErrorCode.BadStartup, ctx);
      assert.match(thrown.sqlstate, /^(08P01|0A000|28000)$/, ctx);
      refused++;
      continue;
    }
    if (!result) {
      // Not enough bytes: the declared length (if any) is sane and larger than what came.
      if (input.length >= 4) {
        const len = input.readInt32BE(0);
        assert.ok(len >= 8 && len <= 10_000 && len > input.length, `${ctx}: waiting for more with length ${len}`);
      }
      pending++;
      continue;
    }
    packets++;
    const len = input.readInt32BE(0);
    // Same packet as parsing the whole thing at once; the rest is everything after it.
    assert.deepEqual(result.packet, parseStartupPacket(input.subarray(0, len)), ctx);
    assert.ok(Buffer.concat([input.subarray(0, len), result.rest]).equals(input.subarray(0, fed)), `${ctx}: rest`);
    if (result.packet.kind === 'startup') assert.ok(result.packet.params.get('user'), ctx);
  }
  assert.ok(packets > ITERATIONS / 10 && refused > ITERATIONS / 10 && pending > ITERATIONS / 50, `${packets} packets, ${refused} refused, ${pending} pending`);
});

test('parseStartupPacket fuzz: any buffer either parses or throws ProtocolError', () => {
  const rng = new Rng(99);
  for (let iter = 0; iter < ITERATIONS; iter++) {
    const b = rng.next() < 0.5 ? rng.bytes(rng.int(30)) : startupInput(rng);
    try {
      parseStartupPacket(b);
    } catch (e) {
      assert.ok(e instanceof ProtocolError, `iteration ${iter}: ${b.toString('hex')} threw ${String(e)}`);
    }
  }
});
