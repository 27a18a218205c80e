// Builders and small parsers for the messages Sluice itself writes or reads.
// Constant messages are built once at module load.
import { Buffer } from 'node:buffer';

/** A regular message: type byte, Int32 length, then the parts of the body in order. */
export function frameMessage(type: string | number, ...parts: Buffer[]): Buffer {
  let len = 4;
  for (const p of parts) len += p.length;
  const out = Buffer.allocUnsafe(1 + len);
  out[0] = typeof type === 'number' ? type : type.charCodeAt(0);
  out.writeInt32BE(len, 1);
  let pos = 5;
  for (const p of parts) {
    p.copy(out, pos);
    pos += p.length;
  }
  return out;
}

function message(type: string, body: Buffer): Buffer {
  return frameMessage(type, body);
}

function cstr(s: string): Buffer {
  return Buffer.from(s + '\0', 'utf8');
}

export const AUTH_OK = message('R', Buffer.from([0, 0, 0, 0]));
export const SYNC = message('S', Buffer.alloc(0));
export const FLUSH = message('H', Buffer.alloc(0));
export const TERMINATE = message('X', Buffer.alloc(0));
export const SSL_NO = Buffer.from('N');
export const SSL_YES = Buffer.from('S');
const RFQ = { I: message('Z', Buffer.from('I')), T: message('Z', Buffer.from('T')), E: message('Z', Buffer.from('E')) };

export function readyForQuery(status: 'I' | 'T' | 'E' = 'I'): Buffer {
  return RFQ[status];
}

export interface ErrorFields {
  severity?: 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE' | 'LOG' | 'INFO' | 'DEBUG';
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

function fields(kind: 'E' | 'N', f: ErrorFields): Buffer {
  const severity = f.severity ?? (kind === 'E' ? 'ERROR' : 'NOTICE');
  const parts = [Buffer.from('S'), cstr(severity), Buffer.from('V'), cstr(severity), Buffer.from('C'), cstr(f.code), Buffer.from('M'), cstr(f.message)];
  if (f.detail) parts.push(Buffer.from('D'), cstr(f.detail));
  if (f.hint) parts.push(Buffer.from('H'), cstr(f.hint));
  parts.push(Buffer.from([0]));
  return message(kind, Buffer.concat(parts));
}

export function errorResponse(f: ErrorFields): Buffer {
  return fields('E', f);
}

export function noticeResponse(f: ErrorFields): Buffer {
  return fields('N', f);
}

export function parameterStatus(name: string, value: string): Buffer {
  return message('S', Buffer.concat([cstr(name), cstr(value)]));
}

/**
 * The end of a login: ParameterStatus messages, BackendKeyData and
 * ReadyForQuery, in one Buffer; with `authOk`, AuthenticationOk first.
 */
export function welcome(parameterStatuses: Buffer, pid: number, key: Uint8Array, authOk = false): Buffer {
  const head = authOk ? AUTH_OK.length : 0;
  const at = head + parameterStatuses.length;
  const out = Buffer.allocUnsafe(at + 9 + key.length + 6);
  // set() rather than Buffer#copy: one builtin call each, at every login.
  if (authOk) out.set(AUTH_OK, 0);
  out.set(parameterStatuses, head);
  out[at] = 0x4b; // K
  out.writeInt32BE(8 + key.length, at + 1);
  out.writeInt32BE(pid, at + 5);
  out.set(key, at + 9);
  out.set(RFQ.I, at + 9 + key.length);
  return out;
}

export function negotiateProtocolVersion(newestMinor: number, unsupported: readonly string[]): Buffer {
  const head = Buffer.allocUnsafe(8);
  head.writeInt32BE(newestMinor, 0);
  head.writeInt32BE(unsupported.length, 4);
  return message('v', Buffer.concat([head, ...unsupported.map(cstr)]));
}

export function query(sql: string): Buffer {
  return message('Q', cstr(sql));
}

export function startupMessage(params: Readonly<Record<string, string>>, minor = 0): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(params)) parts.push(cstr(k), cstr(v));
  parts.push(Buffer.from([0]));
  const body = Buffer.concat(parts);
  const out = Buffer.allocUnsafe(8 + body.length);
  out.writeInt32BE(8 + body.length, 0);
  out.writeInt32BE((3 << 16) | minor, 4);
  body.copy(out, 8);
  return out;
}

export function cancelRequest(pid: number, key: Buffer): Buffer {
  const out = Buffer.allocUnsafe(12 + key.length);
  out.writeInt32BE(12 + key.length, 0);
  out.writeInt32BE(80877102, 4);
  out.writeInt32BE(pid, 8);
  key.copy(out, 12);
  return out;
}

export function sslRequest(): Buffer {
  const out = Buffer.allocUnsafe(8);
  out.writeInt32BE(8, 0);
  out.writeInt32BE(80877103, 4);
  return out;
}

/** Reads an ErrorResponse/NoticeResponse body (after the header) into a field map. */
export function parseErrorBody(data: Buffer, start: number, end: number): Map<string, string> {
  const out = new Map<string, string>();
  let pos = start;
  while (pos < end && data[pos] !== 0) {
    const code = String.fromCharCode(data[pos]);
    const stop = data.indexOf(0, pos + 1);
    if (stop < 0 || stop >= end) break;
    out.set(code, data.toString('utf8', pos + 1, stop));
    pos = stop + 1;
  }
  return out;
}

/** Reads the two C strings of a ParameterStatus body. */
export function parseParameterStatus(data: Buffer, start: number, end: number): [string, string] | null {
  const a = data.indexOf(0, start);
  if (a < 0 || a >= end) return null;
  const b = data.indexOf(0, a + 1);
  if (b < 0 || b >= end) return null;
  return [data.toString('utf8', start, a), data.toString('utf8', a + 1, b)];
}

/** Reads a NUL-terminated string starting at `start`; returns [value, index after the NUL] or null. */
export function readCString(data: Buffer, start: number, end: number): [string, number] | null {
  const stop = data.indexOf(0, start);
  if (stop < 0 || stop >= end) return null;
  return [data.toString('utf8', start, stop), stop + 1];
}
