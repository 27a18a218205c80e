// Result-set messages for the admin console: RowDescription, DataRow,
// CommandComplete. Values are sent in text format, NULL as length -1.
import { Buffer } from 'node:buffer';
import type { Column } from './columns.js';
import { frameMessage } from '../protocol/messages.js';

export type Cell = string | number | bigint | null;

const frame = (type: string, body: Buffer): Buffer => frameMessage(type, body);

export function rowDescription(columns: readonly Column[]): Buffer {
  const parts: Buffer[] = [];
  const head = Buffer.allocUnsafe(2);
  head.writeInt16BE(columns.length, 0);
  parts.push(head);
  for (const c of columns) {
    const meta = Buffer.alloc(18);
    meta.writeInt32BE(0, 0); // table oid
    meta.writeInt16BE(0, 4); // attribute number
    meta.writeInt32BE(c.type, 6);
    meta.writeInt16BE(c.type === 23 ? 4 : c.type === 20 ? 8 : -1, 10);
    meta.writeInt32BE(-1, 12); // typmod
    meta.writeInt16BE(0, 16); // text format
    parts.push(Buffer.from(c.name + '\0', 'utf8'), meta);
  }
  return frame('T', Buffer.concat(parts));
}

export function dataRow(cells: readonly Cell[]): Buffer {
  const parts: Buffer[] = [];
  const head = Buffer.allocUnsafe(2);
  head.writeInt16BE(cells.length, 0);
  parts.push(head);
  for (const v of cells) {
    const len = Buffer.allocUnsafe(4);
    if (v === null) {
      len.writeInt32BE(-1, 0);
      parts.push(len);
      continue;
    }
    const bytes = Buffer.from(typeof v === 'number' ? String(Math.trunc(v)) : String(v), 'utf8');
    len.writeInt32BE(bytes.length, 0);
    parts.push(len, bytes);
  }
  return frame('D', Buffer.concat(parts));
}

export function commandComplete(tag: string): Buffer {
  return frame('C', Buffer.from(tag + '\0', 'utf8'));
}

/** Timestamps in SHOW CLIENTS/SERVERS: "YYYY-MM-DD HH:MM:SS UTC", as PgBouncer prints them. */
export function formatTime(ms: number): string | null {
  if (!ms) return null;
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}
