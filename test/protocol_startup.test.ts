// Startup-phase packets: StartupReader assembly at every split offset and
// parseStartupPacket's verdict on good and malformed packets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  StartupReader,
  parseStartupPacket,
  SSL_REQUEST_CODE,
  GSSENC_REQUEST_CODE,
  CANCEL_REQUEST_CODE,
  MAX_STARTUP_PACKET,
  NEWEST_MINOR,
  type StartupPacket,
} from '../src/protocol/startup.js';
import { ProtocolError, ProtocolErrorCode } from '../src/protocol/errors.js';

// ---------------------------------------------------------------- builders (independent of messages.ts)

function packet(code: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const out = Buffer.alloc(8 + body.length);
  out.writeInt32BE(8 + body.length, 0);
  out.writeInt32BE(code | 0, 4);
  body.copy(out, 8);
  return out;
}

function pairs(...kv: string[]): Buffer {
  return Buffer.from(kv.map((s) => s + '\0').join('') + '\0', 'utf8');
}

const v3 = (minor: number) => (3 << 16) | minor;

function cancel(pid: number, key: Buffer): Buffer {
  const body = Buffer.alloc(4 + key.length);
  body.writeInt32BE(pid, 0);
  key.copy(body, 4);
  return packet(CANCEL_REQUEST_CODE, body);
}

function expectProtocolError(fn: () => unknown, fragment: RegExp, sqlstate = '08P01'): ProtocolError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ProtocolError, `expected a ProtocolError, got ${String(caught)}`);
  assert.equal(caught.code, ProtocolErrorCode.BadStartup);
  assert.equal(caught.sqlstate, sqlstate);
  assert.match(caught.message, fragment);
  return caught;
}

/** Feeds `bytes` split at `cuts`; returns the packet and the bytes after it. */
function feed(bytes: Buffer, cuts: number[]): { packet: StartupPacket; rest: Buffer } {
  const reader = new StartupReader();
  let prev = 0;
  let got: { packet: StartupPacket; rest: Buffer } | null = null;
  const ends = [...cuts, bytes.length];
  for (let i = 0; i < ends.length; i++) {
    const chunk = bytes.subarray(prev, ends[i]);
    prev = ends[i];
    if (got) {
      // Bytes after the packet belong to the caller; the reader is done with them.
      got = { packet: got.packet, rest: Buffer.concat([got.rest, chunk]) };
      continue;
    }
    got = reader.push(chunk);
  }
  assert.ok(got, `no packet from ${bytes.length} bytes cut at ${cuts.join(',')}`);
  return got;
}

// ---------------------------------------------------------------- good packets

const STARTUP_30 = packet(v3(0), pairs('user', 'alice', 'database', 'app', 'application_name', 'psql ✓', 'options', '-c search_path=x'));
const STARTUP_32 = packet(v3(2), pairs('user', 'bob', '_pq_.compression', 'on', 'database', 'db', '_pq_.other', '1'));
const KEY4 = Buffer.from([0xde, 0xad, 0xbe, 0xef]);
const KEY32 = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff));

const GOOD: Array<[string, Buffer, (p: StartupPacket) => void]> = [
  [
    'StartupMessage 3.0',
    STARTUP_30,
    (p) => {
      assert.equal(p.kind, 'startup');
      if (p.kind !== 'startup') return;
      assert.equal(p.major, 3);
      assert.equal(p.minor, 0);
      assert.deepEqual(
        [...p.params],
        [
          ['user', 'alice'],
          ['database', 'app'],
          ['application_name', 'psql ✓'],
          ['options', '-c search_path=x'],
        ],
      );
      assert.deepEqual(p.protocolOptions, []);
    },
  ],
  [
    'StartupMessage 3.2 with _pq_ options',
    STARTUP_32,
    (p) => {
      assert.equal(p.kind, 'startup');
      if (p.kind !== 'startup') return;
      assert.equal(p.minor, 2);
      assert.deepEqual(p.protocolOptions, ['_pq_.compression', '_pq_.other']);
      assert.deepEqual([...p.params], [['user', 'bob'], ['database', 'db']]);
      assert.equal(p.params.has('_pq_.compression'), false);
    },
  ],
  [
    'StartupMessage 3.9 (newer minor, negotiated down later)',
    packet(v3(9), pairs('user', 'u')),
    (p) => assert.ok(p.kind === 'startup' && p.minor === 9 && p.params.get('user') === 'u'),
  ],
  ['SSLRequest', packet(SSL_REQUEST_CODE), (p) => assert.deepEqual(p, { kind: 'ssl' })],
  ['GSSENCRequest', packet(GSSENC_REQUEST_CODE), (p) => assert.deepEqual(p, { kind: 'gssenc' })],
  [
    'CancelRequest, 4-byte key',
    cancel(4242, KEY4),
    (p) => {
      assert.equal(p.kind, 'cancel');
      if (p.kind !== 'cancel') return;
      assert.equal(p.pid, 4242);
      assert.ok(p.key.equals(KEY4));
    },
  ],
  [
    'CancelRequest, 32-byte key (protocol 3.2)',
    cancel(0x7fffffff, KEY32),
    (p) => {
      assert.equal(p.kind, 'cancel');
      if (p.kind !== 'cancel') return;
      assert.equal(p.pid, 0x7fffffff);
      assert.ok(p.key.equals(KEY32));
    },
  ],
  [
    'CancelRequest, 256-byte key (the maximum)',
    cancel(1, Buffer.alloc(256, 7)),
    (p) => assert.ok(p.kind === 'cancel' && p.key.length === 256),
  ],
];

test('good packets parse, whole and through StartupReader at every split offset', () => {
  const trailer = Buffer.from('Q\0\0\0\x0bSELECT 1\0');
  for (const [name, bytes, check] of GOOD) {
    check(parseStartupPacket(bytes));
    // Alone, with bytes after it, split at every offset (two chunks), and byte by byte.
    for (const tail of [Buffer.alloc(0), trailer]) {
      const all = Buffer.concat([bytes, tail]);
      const cutSets: number[][] = [[]];
      for (let k = 1; k < all.length; k++) cutSets.push([k]);
      cutSets.push(Array.from({ length: all.length - 1 }, (_, i) => i + 1));
      for (const cuts of cutSets) {
        const got = feed(all, cuts);
        check(got.packet);
        assert.ok(got.rest.equals(tail), `${name}: rest after the packet, cuts ${cuts.length}`);
      }
    }
  }
});

test('a cancel key is a copy: reusing the input buffer does not change it', () => {
  const bytes = cancel(7, KEY4);
  const p = parseStartupPacket(bytes);
  bytes.fill(0);
  assert.ok(p.kind === 'cancel' && p.key.equals(KEY4));
});

test('StartupReader returns null until the packet is complete, then the next packet starts fresh', () => {
  const reader = new StartupReader();
  const ssl = packet(SSL_REQUEST_CODE);
  assert.equal(reader.push(ssl.subarray(0, 3)), null);
  assert.equal(reader.push(ssl.subarray(3, 7)), null);
  const a = reader.push(ssl.subarray(7));
  assert.deepEqual(a?.packet, { kind: 'ssl' });
  assert.equal(a?.rest.length, 0);
  // After SSL is refused the client sends its StartupMessage on the same reader.
  assert.equal(reader.push(STARTUP_30.subarray(0, 10)), null);
  const b = reader.push(STARTUP_30.subarray(10));
  assert.ok(b && b.packet.kind === 'startup' && b.packet.params.get('user') === 'alice');
  // Two packets in one chunk: the second one is returned as rest, untouched.
  const both = Buffer.concat([ssl, STARTUP_32]);
  const c = new StartupReader().push(both);
  assert.deepEqual(c?.packet, { kind: 'ssl' });
  assert.ok(c?.rest.equals(STARTUP_32));
});

// ---------------------------------------------------------------- malformed packets

test('StartupReader refuses a bad length as soon as the length word is in', () => {
  for (const length of [-1, 0, 4, 7, MAX_STARTUP_PACKET + 1, 0x7fffffff]) {
    const head = Buffer.alloc(4);
    head.writeInt32BE(length, 0);
    // Split before the length is complete: nothing yet.
    const reader = new StartupReader();
    assert.equal(reader.push(head.subarray(0, 2)), null);
    const err = expectProtocolError(() => reader.push(head.subarray(2)), new RegExp(`invalid startup packet length ${length}`));
    assert.ok(err.message.length < 200);
  }
  // Exactly the maximum is accepted (and waits for the rest).
  const head = Buffer.alloc(8);
  head.writeInt32BE(MAX_STARTUP_PACKET, 0);
  head.writeInt32BE(v3(0), 4);
  assert.equal(new StartupReader().push(head), null);
});

test('malformed startup packets are ProtocolErrors with clear messages', () => {
  const cases: Array<[string, Buffer, RegExp, string?]> = [
    ['shorter than 8 bytes', Buffer.from([0, 0, 0, 7, 0, 3, 0]), /invalid startup packet length/],
    ['declared length differs from the packet', (() => { const b = packet(v3(0), pairs('user', 'u')); b.writeInt32BE(b.length + 3, 0); return b; })(), /invalid startup packet length/],
    ['missing terminator', packet(v3(0), Buffer.from('user\0alice\0')), /missing its terminator/],
    ['no parameters and no terminator', packet(v3(0)), /missing its terminator/],
    ['data after terminator', packet(v3(0), Buffer.from('user\0alice\0\0junk')), /data after terminator/],
    ['unterminated name', packet(v3(0), Buffer.from('user')), /unterminated name/],
    ['name without a value', packet(v3(0), Buffer.from('user\0')), /unterminated|missing/],
    ['unterminated value', packet(v3(0), Buffer.from('user\0alice')), /unterminated value/],
    ['major version 2', packet((2 << 16) | 0, pairs('user', 'u')), /unsupported frontend protocol 2\.0: server supports 3\.0 to 3\.2/, '0A000'],
    ['major version 4', packet((4 << 16) | 1, pairs('user', 'u')), /unsupported frontend protocol 4\.1/, '0A000'],
    ['no user', packet(v3(0), pairs('database', 'd')), /no PostgreSQL user name specified/, '28000'],
    ['empty user', packet(v3(0), pairs('user', '', 'database', 'd')), /no PostgreSQL user name specified/, '28000'],
    ['SSLRequest with a body', packet(SSL_REQUEST_CODE, Buffer.from([0, 0, 0, 0])), /SSL\/GSSENC request/],
    ['GSSENCRequest with a body', packet(GSSENC_REQUEST_CODE, Buffer.from([1])), /SSL\/GSSENC request/],
    ['CancelRequest without a key', packet(CANCEL_REQUEST_CODE, Buffer.from([0, 0, 0, 1])), /cancel request/],
    ['CancelRequest with a 257-byte key', cancel(1, Buffer.alloc(257)), /cancel request/],
  ];
  assert.equal(NEWEST_MINOR, 2);
  for (const [name, bytes, fragment, sqlstate] of cases) {
    try {
      expectProtocolError(() => parseStartupPacket(bytes), fragment, sqlstate);
    } catch (e) {
      throw new Error(`${name}: ${(e as Error).message}`);
    }
    // Through the reader too, whole and byte by byte (when the declared length is sane).
    const declared = bytes.length >= 4 ? bytes.readInt32BE(0) : 0;
    if (declared === bytes.length) {
      expectProtocolError(() => new StartupReader().push(bytes), fragment, sqlstate);
      const reader = new StartupReader();
      let thrown: unknown;
      for (let i = 0; i < bytes.length && !thrown; i++) {
        try {
          reader.push(bytes.subarray(i, i + 1));
        } catch (e) {
          thrown = e;
          // A bad length is refused as soon as the length word is in; anything else needs the whole packet.
          assert.equal(i, declared < 8 ? 3 : bytes.length - 1, `${name}: thrown at the wrong byte`);
        }
      }
      assert.ok(thrown instanceof ProtocolError, `${name}: byte-wise feed did not throw`);
    }
  }
});

// ---------------------------------------------------------------- remembered strings

function startupParams(...kv: string[]): ReadonlyMap<string, string> {
  const p = parseStartupPacket(packet(v3(0), pairs(...kv)));
  assert.equal(p.kind, 'startup');
  return (p as Extract<StartupPacket, { kind: 'startup' }>).params;
}

test('names and values seen before decode the same from the cache as the first time', () => {
  // Whether the second packet got the very same string objects cannot be seen from JavaScript;
  // this holds the cached path to the right text and order.
  const a = startupParams('user', 'alice', 'database', 'shop', 'application_name', 'web');
  const b = startupParams('user', 'alice', 'database', 'shop', 'application_name', 'web');
  for (const key of ['user', 'database', 'application_name']) assert.equal(b.get(key), a.get(key));
  assert.deepEqual([...b.entries()], [['user', 'alice'], ['database', 'shop'], ['application_name', 'web']]);
});

test('the cache limit: 64-byte values are remembered, 65-byte ones decoded each time, both correctly; a name ending at the last byte is still unterminated', () => {
  for (const n of [63, 64, 65]) {
    for (const last of ['0', '1', '0', '1']) assert.equal(startupParams('user', 'u'.repeat(n - 1) + last).get('user'), 'u'.repeat(n - 1) + last);
  }
  expectProtocolError(() => parseStartupPacket(packet(v3(0), Buffer.from('user\0'))), /unterminated name/);
});

test('remembering never confuses strings: same length, one byte apart, multi-byte UTF-8, and long values', () => {
  startupParams('user', 'bench', 'database', 'bench');
  const p = startupParams('user', 'bencH', 'database', 'bénch', 'application_name', 'x'.repeat(300));
  assert.equal(p.get('user'), 'bencH');
  assert.equal(p.get('database'), 'bénch');
  assert.equal(p.get('application_name'), 'x'.repeat(300));
  assert.equal(startupParams('user', 'bench').get('user'), 'bench');
});

test('two strings whose remembering keys collide each still decode to themselves', () => {
  // The cache is keyed by FNV-1a of the bytes, cut to 30 bits: find two short names that share a key.
  const keyOf = (s: string) => {
    let h = 0x811c9dc5;
    for (const b of Buffer.from(s)) h = Math.imul(h ^ b, 16777619);
    return h & 0x3fffffff;
  };
  const seen = new Map<number, string>();
  let pair: [string, string] | null = null;
  for (let i = 0; !pair; i++) {
    const name = `u${i.toString(36).padStart(6, '0')}`; // one length for all, so the bytes are compared
    const other = seen.get(keyOf(name));
    if (other !== undefined) pair = [other, name];
    else seen.set(keyOf(name), name);
  }
  const [first, second] = pair;
  for (let round = 0; round < 2; round++) {
    assert.equal(startupParams('user', first).get('user'), first);
    assert.equal(startupParams('user', second).get('user'), second);
  }
});

// ---------------------------------------------------------------- remembered packets

test('a byte-identical startup packet gets the same frozen parse; one byte apart gets its own', () => {
  const bytes = packet(v3(0), pairs('user', 'carol', 'database', 'orders', 'client_encoding', 'UTF8'));
  const a = parseStartupPacket(bytes) as Extract<StartupPacket, { kind: 'startup' }>;
  const b = parseStartupPacket(Buffer.from(bytes)) as Extract<StartupPacket, { kind: 'startup' }>;
  assert.equal(a.shared, true);
  assert.equal(b, a, 'the same object for the same bytes');
  assert.ok(Object.isFrozen(a) && Object.isFrozen(a.protocolOptions));
  const other = Buffer.from(bytes);
  other[other.indexOf('carol') + 4] = 0x4c; // 'carol' -> 'caroL', same length and hash input size
  const c = parseStartupPacket(other) as Extract<StartupPacket, { kind: 'startup' }>;
  assert.notEqual(c, a);
  assert.equal(c.params.get('user'), 'caroL');
  assert.equal(a.params.get('user'), 'carol', 'the remembered parse is untouched');
  // The protocol version is part of the packet: 3.2 is not 3.0 with the same parameters.
  const minor2 = parseStartupPacket(packet(v3(2), pairs('user', 'carol', 'database', 'orders', 'client_encoding', 'UTF8')));
  assert.equal((minor2 as Extract<StartupPacket, { kind: 'startup' }>).minor, 2);
});

test('packets over 512 bytes are parsed each time and not shared; malformed ones are always refused', () => {
  const long = packet(v3(0), pairs('user', 'dave', 'application_name', 'a'.repeat(600)));
  const a = parseStartupPacket(long) as Extract<StartupPacket, { kind: 'startup' }>;
  const b = parseStartupPacket(long) as Extract<StartupPacket, { kind: 'startup' }>;
  assert.equal(a.shared, false);
  assert.notEqual(a, b);
  assert.equal(b.params.get('application_name'), 'a'.repeat(600));
  // A good packet seen before does not vouch for a broken one that starts the same way.
  const good = packet(v3(0), pairs('user', 'erin'));
  parseStartupPacket(good);
  const broken = Buffer.from(good);
  broken[broken.length - 1] = 0x78; // the terminator replaced
  for (let i = 0; i < 2; i++) expectProtocolError(() => parseStartupPacket(broken), /terminator|unterminated/);
});

test('a shared parse cannot be written to; 3.0 and 3.2 packets with the same parameters are remembered apart', () => {
  const kv = ['user', 'frank', 'database', 'ledger'];
  const p30 = parseStartupPacket(packet(v3(0), pairs(...kv))) as Extract<StartupPacket, { kind: 'startup' }>;
  const p32 = parseStartupPacket(packet(v3(2), pairs(...kv))) as Extract<StartupPacket, { kind: 'startup' }>;
  assert.throws(() => (p30.params as Map<string, string>).set('user', 'mallory'), TypeError);
  assert.throws(() => (p30.params as Map<string, string>).delete('user'), TypeError);
  assert.equal(p30.params.get('user'), 'frank');
  // The version is hashed too, so the two do not keep evicting each other.
  for (let i = 0; i < 3; i++) {
    assert.equal(parseStartupPacket(packet(v3(0), pairs(...kv))), p30);
    assert.equal(parseStartupPacket(packet(v3(2), pairs(...kv))), p32);
  }
});

test('past 1,024 remembered packets the cache starts over and every packet still parses to itself', () => {
  const first = parseStartupPacket(packet(v3(0), pairs('user', 'u-first')));
  for (let i = 0; i < 1100; i++) {
    const p = parseStartupPacket(packet(v3(0), pairs('user', `u${i}`, 'application_name', 'fill'))) as Extract<StartupPacket, { kind: 'startup' }>;
    assert.equal(p.params.get('user'), `u${i}`);
  }
  const again = parseStartupPacket(packet(v3(0), pairs('user', 'u-first'))) as Extract<StartupPacket, { kind: 'startup' }>;
  assert.notEqual(again, first, 'forgotten when the cache started over, then parsed afresh');
  assert.equal(again.params.get('user'), 'u-first');
  assert.equal(again.shared, true);
});
