// A tiny protocol reader for raw-socket tests: collects backend messages and
// lets a test wait (with a deadline) for one that matches.
import type net from 'node:net';
import { parseErrorBody, frameMessage, startupMessage } from '../../src/protocol/messages.js';

export interface WireMessage {
  type: string;
  body: Buffer;
  /** ErrorResponse/NoticeResponse fields. */
  fields?: Map<string, string>;
}

export interface MessageStream {
  readonly all: WireMessage[];
  until(pred: (m: WireMessage) => boolean, timeoutMs?: number): Promise<WireMessage>;
  readonly closed: Promise<void>;
}

export function readMessages(socket: net.Socket, options: { rawFirstByte?: boolean } = {}): MessageStream {
  const all: WireMessage[] = [];
  let buf = Buffer.alloc(0);
  let waiters: Array<{ pred: (m: WireMessage) => boolean; resolve: (m: WireMessage) => void; from: number }> = [];
  let firstRaw = options.rawFirstByte ?? false;
  const deliver = () => {
    waiters = waiters.filter((w) => {
      for (let i = w.from; i < all.length; i++) {
        if (w.pred(all[i])) {
          w.resolve(all[i]);
          return false;
        }
      }
      w.from = all.length;
      return true;
    });
  };
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    if (firstRaw && buf.length >= 1) {
      all.push({ type: String.fromCharCode(buf[0]), body: Buffer.alloc(0) });
      buf = buf.subarray(1);
      firstRaw = false;
    }
    while (buf.length >= 5) {
      const len = buf.readInt32BE(1);
      if (buf.length < len + 1) break;
      const type = String.fromCharCode(buf[0]);
      const body = Buffer.from(buf.subarray(5, len + 1));
      const m: WireMessage = { type, body };
      if (type === 'E' || type === 'N') m.fields = parseErrorBody(body, 0, body.length);
      all.push(m);
      buf = buf.subarray(len + 1);
    }
    deliver();
  });
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return {
    all,
    closed,
    until(pred, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching message within ${timeoutMs} ms; got ${all.map((m) => m.type).join('')}`)), timeoutMs);
        waiters.push({
          pred,
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m);
          },
          from: 0,
        });
        deliver();
        void closed.then(() => {
          // Let late-arriving matches win; otherwise fail fast once the socket is gone.
          setImmediate(() => {
            if (waiters.some((w) => w.pred === pred)) {
              clearTimeout(timer);
              waiters = waiters.filter((w) => w.pred !== pred);
              reject(new Error(`connection closed before a matching message; got ${all.map((m) => m.type).join('')}`));
            }
          });
        });
      });
    },
  };
}

/** Connects, completes a trust login, and returns the socket and its message stream. */
export async function loggedInSession(port: number, user = 'postgres', database = 'postgres'): Promise<{ socket: net.Socket; msgs: MessageStream }> {
  const { connect } = await import('node:net');
  const socket = connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const msgs = readMessages(socket);
  socket.write(startupMessage({ user, database }));
  await msgs.until((m) => m.type === 'Z');
  return { socket, msgs };
}

// Frontend message builders for raw-protocol tests.
export function frame(type: string, body: Buffer): Buffer {
  return frameMessage(type, body);
}
export function cstr(s: string): Buffer {
  return Buffer.from(s + '\0');
}
export function int16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
}
export function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}
export function parseMsg(name: string, sql: string): Buffer {
  return frame('P', Buffer.concat([cstr(name), cstr(sql), int16(0)]));
}
export function bindMsg(portal: string, statement: string): Buffer {
  return frame('B', Buffer.concat([cstr(portal), cstr(statement), int16(0), int16(0), int16(0)]));
}
export function executeMsg(portal = '', maxRows = 0): Buffer {
  return frame('E', Buffer.concat([cstr(portal), int32(maxRows)]));
}
export function syncMsg(): Buffer {
  return frame('S', Buffer.alloc(0));
}
