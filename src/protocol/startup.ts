// Startup-phase packets: no type byte, Int32 length then Int32 code.
// StartupMessage (protocol 3.x), SSLRequest, GSSENCRequest, CancelRequest.
import { Buffer } from 'node:buffer';
import { ProtocolError, ProtocolErrorCode } from './errors.js';
import { int32At } from './framer.js';
import { FrozenMap } from '../config/freeze.js';

export const SSL_REQUEST_CODE = 80877103;
export const GSSENC_REQUEST_CODE = 80877104;
export const CANCEL_REQUEST_CODE = 80877102;
/** PostgreSQL's own cap on a startup packet (MAX_STARTUP_PACKET_LENGTH). */
export const MAX_STARTUP_PACKET = 10_000;
/** The newest protocol minor version Sluice speaks to clients (3.2). */
export const NEWEST_MINOR = 2;

export type StartupPacket =
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel'; pid: number; key: Buffer }
  | {
      kind: 'startup';
      major: number;
      minor: number;
      params: ReadonlyMap<string, string>;
      /** `_pq_.` protocol options the client asked for; Sluice knows none. */
      protocolOptions: readonly string[];
      /**
       * The same frozen object is handed out for every byte-identical packet
       * of up to 512 bytes (see rememberedPacket), so what is derived from
       * it can be derived once. False for longer packets.
       */
      shared: boolean;
    };

type Startup = Extract<StartupPacket, { kind: 'startup' }>;

const NOTHING = Buffer.alloc(0);

/** Assembles one startup packet; the rest of the chunk is returned untouched. */
export class StartupReader {
  private buf: Buffer | null = null;

  /** Returns a packet and any bytes after it, or null when more bytes are needed. Throws ProtocolError. */
  push(chunk: Buffer): { packet: StartupPacket; rest: Buffer } | null {
    const data = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
    if (data.length < 4) {
      this.buf = Buffer.from(data);
      return null;
    }
    const length = int32At(data, 0);
    if (length < 8 || length > MAX_STARTUP_PACKET) {
      throw new ProtocolError(ProtocolErrorCode.BadStartup, `invalid startup packet length ${length}`);
    }
    if (data.length < length) {
      this.buf = Buffer.from(data);
      return null;
    }
    this.buf = null;
    // Usually the packet is the whole chunk: no views to make then.
    if (data.length === length) return { packet: parseStartupPacket(data), rest: NOTHING };
    return { packet: parseStartupPacket(data.subarray(0, length)), rest: data.subarray(length) };
  }
}

export function parseStartupPacket(packet: Buffer): StartupPacket {
  const length = packet.length;
  // Validate the frame itself first: a short buffer has no length word to
  // read, and a length word that disagrees with the bytes given means the
  // caller framed it wrong (or a peer lied).
  const declared = length >= 4 ? int32At(packet, 0) : -1;
  if (length < 8 || declared !== length) {
    throw new ProtocolError(
      ProtocolErrorCode.BadStartup,
      `invalid startup packet length ${declared < 0 && length < 4 ? length : declared} (${length} bytes received)`,
    );
  }
  const code = int32At(packet, 4);
  if (code === SSL_REQUEST_CODE || code === GSSENC_REQUEST_CODE) {
    if (length !== 8) throw new ProtocolError(ProtocolErrorCode.BadStartup, 'invalid length of SSL/GSSENC request');
    return code === SSL_REQUEST_CODE ? { kind: 'ssl' } : { kind: 'gssenc' };
  }
  if (code === CANCEL_REQUEST_CODE) {
    // 3.0 keys are 4 bytes; protocol 3.2 allows up to 256.
    if (length < 16 || length > 12 + 256) throw new ProtocolError(ProtocolErrorCode.BadStartup, 'invalid length of cancel request');
    return { kind: 'cancel', pid: packet.readInt32BE(8), key: Buffer.from(packet.subarray(12)) };
  }
  const known = rememberedPacket(packet);
  if (known !== null) return known;
  const major = code >>> 16;
  const minor = code & 0xffff;
  if (major !== 3) {
    throw new ProtocolError(
      ProtocolErrorCode.BadStartup,
      `unsupported frontend protocol ${major}.${minor}: server supports 3.0 to 3.${NEWEST_MINOR}`,
      '0A000',
    );
  }
  const params = new Map<string, string>();
  const protocolOptions: string[] = [];
  let pos = 8;
  for (;;) {
    if (pos >= length) throw new ProtocolError(ProtocolErrorCode.BadStartup, 'startup packet is missing its terminator');
    if (packet[pos] === 0) {
      if (pos !== length - 1) throw new ProtocolError(ProtocolErrorCode.BadStartup, 'invalid startup packet layout: data after terminator');
      break;
    }
    const key = decodeCString(packet, pos, length);
    if (key === null || scanEnd >= length - 1) throw new ProtocolError(ProtocolErrorCode.BadStartup, 'invalid startup packet layout: unterminated name');
    const value = decodeCString(packet, scanEnd + 1, length);
    if (value === null) throw new ProtocolError(ProtocolErrorCode.BadStartup, 'invalid startup packet layout: unterminated value');
    if (key.startsWith('_pq_.')) protocolOptions.push(key);
    else params.set(key, value);
    pos = scanEnd + 1;
  }
  if (!params.get('user')) throw new ProtocolError(ProtocolErrorCode.BadStartup, 'no PostgreSQL user name specified in startup packet', '28000');
  const parsed: Startup = { kind: 'startup', major, minor, params, protocolOptions, shared: false };
  return rememberPacket(packet, parsed);
}

// Whole startup packets repeat even more than their strings: every login
// from one application sends the same user, database and driver settings.
// A packet seen before is recognised by its bytes and its parse handed out
// again, frozen: no parameter Map, no array, no object per login. Only valid
// packets are remembered, so every malformed one is still parsed and refused.
const MAX_REMEMBERED_PACKET = 512;
const MAX_REMEMBERED_PACKETS = 1024;
const rememberedPackets = new Map<number, { bytes: Uint8Array; packet: Startup }>();
/** The hash of the packet last looked up, for rememberPacket. */
let packetHash = 0;

function rememberedPacket(packet: Buffer): Startup | null {
  const n = packet.length;
  if (n > MAX_REMEMBERED_PACKET) return null;
  let hash = 0x811c9dc5; // FNV-1a over version and parameters (the length is mixed in below)
  for (let i = 4; i < n; i++) hash = Math.imul(hash ^ packet[i], 16777619);
  hash = (hash ^ n) & 0x3fffffff;
  packetHash = hash;
  const known = rememberedPackets.get(hash);
  if (known === undefined) return null;
  const bytes = known.bytes;
  if (bytes.length !== n) return null;
  for (let i = 0; i < n; i++) if (bytes[i] !== packet[i]) return null;
  return known.packet;
}

function rememberPacket(packet: Buffer, parsed: Startup): Startup {
  if (packet.length > MAX_REMEMBERED_PACKET) return parsed;
  if (rememberedPackets.size >= MAX_REMEMBERED_PACKETS && !rememberedPackets.has(packetHash)) rememberedPackets.clear();
  // Frozen through and through: every client that sends these bytes gets this object.
  const shared: Startup = Object.freeze({
    ...parsed,
    params: new FrozenMap(parsed.params),
    protocolOptions: Object.freeze(parsed.protocolOptions),
    shared: true,
  });
  const bytes = new Uint8Array(packet.length); // its own copy, not a view that pins the read
  bytes.set(packet);
  rememberedPackets.set(packetHash, { bytes, packet: shared });
  return shared;
}

// Startup strings (parameter names, user, database and application names)
// repeat across thousands of logins. Each distinct short byte string is
// decoded once and the same string handed out afterwards: no UTF-8 decode and
// no fresh string to hash per key and value, and idle clients share one copy.
const MAX_REMEMBERED_BYTES = 64;
const MAX_REMEMBERED = 4096;
const remembered = new Map<number, { bytes: Uint8Array; text: string }>();
/** Where the last decodeCString() found its terminating zero. */
let scanEnd = 0;

/** The zero-terminated string at `start` (before `limit`), or null when no zero ends it; sets scanEnd. */
function decodeCString(packet: Buffer, start: number, limit: number): string | null {
  let hash = 0x811c9dc5; // FNV-1a
  let end = start;
  while (end < limit && packet[end] !== 0) hash = Math.imul(hash ^ packet[end++], 16777619);
  if (end >= limit) return null;
  scanEnd = end;
  const n = end - start;
  if (n > MAX_REMEMBERED_BYTES) return packet.toString('utf8', start, end);
  const key = hash & 0x3fffffff; // a small integer: a cheap Map key
  const known = remembered.get(key);
  if (known !== undefined && known.bytes.length === n) {
    let i = 0;
    while (i < n && known.bytes[i] === packet[start + i]) i++;
    if (i === n) return known.text;
  }
  const text = packet.toString('utf8', start, end);
  if (remembered.size >= MAX_REMEMBERED) remembered.clear();
  // A copy of its own: Buffer.from would take a slice of Node's shared 8 KiB pool and keep it alive.
  const bytes = new Uint8Array(n);
  bytes.set(packet.subarray(start, end));
  remembered.set(key, { bytes, text });
  return text;
}
