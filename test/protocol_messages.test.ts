// messages.ts builders round-trip through the readers Sluice uses on the wire
// (MessageReader, StartupReader) and the small body parsers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AUTH_OK,
  SYNC,
  FLUSH,
  TERMINATE,
  SSL_NO,
  SSL_YES,
  readyForQuery,
  errorResponse,
  noticeResponse,
  parameterStatus,
  welcome,
  negotiateProtocolVersion,
  query,
  startupMessage,
  cancelRequest,
  sslRequest,
  parseErrorBody,
  parseParameterStatus,
  readCString,
} from '../src/protocol/messages.js';
import { MessageReader, Verdict, inspectTable } from '../src/protocol/framer.js';
import { StartupReader, parseStartupPacket, SSL_REQUEST_CODE, CANCEL_REQUEST_CODE } from '../src/protocol/startup.js';
import type { ProtocolError } from '../src/protocol/errors.js';

interface Seen {
  type: string;
  data: Buffer;
  start: number;
  end: number;
}

/** Frames `bytes` (byte by byte and whole) and checks both ways agree; returns the frames of the whole feed. */
function frames(bytes: Buffer, inspect = 'RSHXZENvKQ'): Seen[] {
  const runs: Seen[][] = [];
  for (const step of [bytes.length, 1, 3]) {
    const seen: Seen[] = [];
    const errors: ProtocolError[] = [];
    const out: Buffer[] = [];
    const reader = new MessageReader(
      {
        onFrame(type, data, start, end) {
          seen.push({ type: String.fromCharCode(type), data: Buffer.from(data.subarray(start, end)), start: 0, end: end - start });
          return Verdict.Forward;
        },
        onForward(b) {
          out.push(Buffer.from(b));
        },
        onProtocolError(err) {
          errors.push(err);
        },
      },
      inspectTable(inspect),
      1 << 20,
    );
    for (let p = 0; p < bytes.length; p += step) reader.push(bytes.subarray(p, p + step));
    assert.deepEqual(errors, []);
    assert.equal(reader.midMessage, false, 'builder output ends mid-message: its length word is wrong');
    assert.ok(Buffer.concat(out).equals(bytes));
    runs.push(seen);
  }
  assert.deepEqual(runs[1], runs[0]);
  assert.deepEqual(runs[2], runs[0]);
  return runs[0];
}

function only(bytes: Buffer, type: string): Seen {
  const f = frames(bytes);
  assert.equal(f.length, 1);
  assert.equal(f[0].type, type);
  assert.equal(f[0].data.readInt32BE(1), bytes.length - 1, 'length word counts itself and the body');
  return f[0];
}

test('constant messages have the documented layout', () => {
  assert.deepEqual([...AUTH_OK], [0x52, 0, 0, 0, 8, 0, 0, 0, 0]);
  assert.deepEqual([...SYNC], [0x53, 0, 0, 0, 4]);
  assert.deepEqual([...FLUSH], [0x48, 0, 0, 0, 4]);
  assert.deepEqual([...TERMINATE], [0x58, 0, 0, 0, 4]);
  assert.deepEqual([...SSL_NO], [0x4e]);
  assert.deepEqual([...SSL_YES], [0x53]);
  for (const s of ['I', 'T', 'E'] as const) {
    const z = readyForQuery(s);
    assert.deepEqual([...z], [0x5a, 0, 0, 0, 5, s.charCodeAt(0)]);
    only(z, 'Z');
  }
  assert.deepEqual([...readyForQuery()], [0x5a, 0, 0, 0, 5, 0x49]);
  // A stream of them frames into exactly these messages.
  const all = Buffer.concat([AUTH_OK, SYNC, FLUSH, readyForQuery('T'), TERMINATE]);
  assert.deepEqual(frames(all).map((f) => f.type), ['R', 'S', 'H', 'Z', 'X']);
});

test('errorResponse / noticeResponse round-trip through parseErrorBody', () => {
  const cases = [
    { code: '53300', message: 'too many connections for role "app"' },
    { severity: 'FATAL' as const, code: '08P01', message: 'invalid message length', detail: 'length was -1', hint: 'Check the client driver.' },
    { code: '42601', message: 'syntax error at or near "é"', hint: 'unicode ✓' },
  ];
  for (const f of cases) {
    const e = only(errorResponse(f), 'E');
    const m = parseErrorBody(e.data, 5, e.end);
    assert.equal(m.get('S'), f.severity ?? 'ERROR');
    assert.equal(m.get('V'), f.severity ?? 'ERROR');
    assert.equal(m.get('C'), f.code);
    assert.equal(m.get('M'), f.message);
    assert.equal(m.get('D'), f.detail);
    assert.equal(m.get('H'), f.hint);
    assert.equal(m.size, 4 + (f.detail ? 1 : 0) + (f.hint ? 1 : 0));
    assert.equal(e.data[e.end - 1], 0, 'fields end with a terminator');

    const n = only(noticeResponse(f), 'N');
    const nm = parseErrorBody(n.data, 5, n.end);
    assert.equal(nm.get('S'), f.severity ?? 'NOTICE');
    assert.equal(nm.get('M'), f.message);
  }
});

test('parseErrorBody stays inside [start, end)', () => {
  const e = errorResponse({ code: '57P01', message: 'terminating connection' });
  // Embedded in a larger chunk with bytes after it that look like more fields.
  const chunk = Buffer.concat([Buffer.from('xx'), e, Buffer.from('Mspoof\0Cxxxxx\0\0')]);
  const m = parseErrorBody(chunk, 2 + 5, 2 + e.length);
  assert.equal(m.get('M'), 'terminating connection');
  assert.equal(m.get('C'), '57P01');
  // Cut the body mid-field: the partial field is not reported and nothing past `end` is read.
  const cut = parseErrorBody(chunk, 2 + 5, 2 + e.length - 5);
  assert.equal(cut.get('M'), undefined);
  assert.equal(cut.get('C'), '57P01');
  assert.equal(parseErrorBody(Buffer.from([0]), 0, 1).size, 0);
});

test('parameterStatus round-trips through parseParameterStatus', () => {
  for (const [k, v] of [
    ['client_encoding', 'UTF8'],
    ['application_name', ''],
    ['TimeZone', 'Europe/Zürich'],
    ['search_path', '"$user", public'],
  ]) {
    const s = only(parameterStatus(k, v), 'S');
    assert.deepEqual(parseParameterStatus(s.data, 5, s.end), [k, v]);
  }
  // Missing NULs within the bounds → null (even if a NUL follows past `end`).
  const b = Buffer.from('abc\0def\0');
  assert.equal(parseParameterStatus(b, 0, 7), null);
  assert.equal(parseParameterStatus(b, 0, 3), null);
  assert.deepEqual(parseParameterStatus(b, 0, 8), ['abc', 'def']);
});

test('negotiateProtocolVersion has the documented layout', () => {
  const v = only(negotiateProtocolVersion(2, ['_pq_.compression', '_pq_.x']), 'v');
  assert.equal(v.data.readInt32BE(5), 2, 'newest minor version');
  assert.equal(v.data.readInt32BE(9), 2, 'count of unrecognized options');
  let pos = 13;
  const names: string[] = [];
  for (let i = 0; i < 2; i++) {
    const r = readCString(v.data, pos, v.end);
    assert.ok(r);
    names.push(r[0]);
    pos = r[1];
  }
  assert.deepEqual(names, ['_pq_.compression', '_pq_.x']);
  assert.equal(pos, v.end, 'nothing after the option names');
  const none = only(negotiateProtocolVersion(0, []), 'v');
  assert.equal(none.end, 13);
  assert.equal(none.data.readInt32BE(9), 0);
});

test('welcome: the ParameterStatus bytes given, then BackendKeyData with the pid and a 4- or 32-byte key, then ReadyForQuery(I)', () => {
  const statuses = Buffer.concat([parameterStatus('server_version', '15.4'), parameterStatus('TimeZone', 'UTC')]);
  for (const key of [Buffer.from([1, 2, 3, 4]), Buffer.alloc(32, 0xab)]) {
    const f = frames(welcome(statuses, 123456, key));
    assert.deepEqual(f.map((m) => m.type), ['S', 'S', 'K', 'Z']);
    assert.deepEqual(parseParameterStatus(f[1].data, 5, f[1].end), ['TimeZone', 'UTC']);
    const k = f[2];
    assert.equal(k.end, 9 + key.length);
    assert.equal(k.data.readInt32BE(1), 8 + key.length, 'length word counts itself, the pid and the key');
    assert.equal(k.data.readInt32BE(5), 123456);
    assert.ok(k.data.subarray(9, k.end).equals(key));
    assert.equal(String.fromCharCode(f[3].data[5]), 'I');
  }
  assert.deepEqual(frames(welcome(Buffer.alloc(0), 7, Buffer.from([9, 9, 9, 9]))).map((m) => m.type), ['K', 'Z'], 'no statuses');
});

test('query builds a NUL-terminated Query message', () => {
  const q = only(query('SELECT $$é$$'), 'Q');
  assert.deepEqual(readCString(q.data, 5, q.end), ['SELECT $$é$$', q.end]);
});

test('startupMessage, cancelRequest, sslRequest round-trip through the startup readers', () => {
  const params = { user: 'alice', database: 'app', application_name: 'sluice', _pq_x: 'no' };
  for (const minor of [0, 2]) {
    const bytes = startupMessage(params, minor);
    assert.equal(bytes.readInt32BE(0), bytes.length);
    const p = parseStartupPacket(bytes);
    assert.ok(p.kind === 'startup');
    assert.equal(p.major, 3);
    assert.equal(p.minor, minor);
    assert.deepEqual(Object.fromEntries(p.params), params);
    // And through the incremental reader, byte by byte.
    const reader = new StartupReader();
    let got = null;
    for (let i = 0; i < bytes.length; i++) got = reader.push(bytes.subarray(i, i + 1));
    assert.ok(got && got.packet.kind === 'startup' && got.packet.params.get('user') === 'alice');
  }
  for (const key of [Buffer.from([9, 8, 7, 6]), Buffer.alloc(32, 5)]) {
    const c = cancelRequest(77, key);
    assert.equal(c.readInt32BE(0), c.length);
    assert.equal(c.readInt32BE(4), CANCEL_REQUEST_CODE);
    const p = parseStartupPacket(c);
    assert.ok(p.kind === 'cancel' && p.pid === 77 && p.key.equals(key));
  }
  const s = sslRequest();
  assert.equal(s.readInt32BE(4), SSL_REQUEST_CODE);
  assert.deepEqual(parseStartupPacket(s), { kind: 'ssl' });
});

test('readCString respects its bounds', () => {
  const b = Buffer.from('ab\0cd\0');
  assert.deepEqual(readCString(b, 0, 6), ['ab', 3]);
  assert.deepEqual(readCString(b, 3, 6), ['cd', 6]);
  assert.equal(readCString(b, 3, 5), null);
  assert.equal(readCString(b, 6, 6), null);
});
