// Value parsers shared by [pgbouncer] settings and [databases]/[users]
// connection strings. They throw ValueError saying what was expected;
// callers add the file/line/key.

import { ValueError } from './errors.js';

export interface IntBounds {
  readonly min?: number | undefined;
  readonly max?: number | undefined;
}

function checkBounds(n: number, raw: string, b: IntBounds): number {
  if (b.min !== undefined && n < b.min) {
    throw new ValueError(`${JSON.stringify(raw)} is below the minimum ${b.min}`);
  }
  if (b.max !== undefined && n > b.max) {
    throw new ValueError(`${JSON.stringify(raw)} is above the maximum ${b.max}`);
  }
  return n;
}

/** Decimal integer (PgBouncer also takes 0x.. hex; so do we). */
export function parseInteger(raw: string, bounds: IntBounds = {}): number {
  const s = raw.trim();
  let n: number;
  if (/^[+-]?\d+$/.test(s)) n = Number.parseInt(s, 10);
  else if (/^0x[0-9a-f]+$/i.test(s)) n = Number.parseInt(s.slice(2), 16);
  else throw new ValueError(`${JSON.stringify(raw)} is not an integer`);
  if (!Number.isSafeInteger(n)) throw new ValueError(`${JSON.stringify(raw)} is out of range`);
  return checkBounds(n, raw, bounds);
}

/** File-mode integer: a leading 0 means octal, as in `unix_socket_mode = 0777`. */
export function parseFileMode(raw: string): number {
  const s = raw.trim();
  let n: number;
  if (/^0[0-7]*$/.test(s)) n = Number.parseInt(s, 8);
  else if (/^[1-9]\d*$/.test(s)) n = Number.parseInt(s, 10);
  else throw new ValueError(`${JSON.stringify(raw)} is not a file mode (octal like 0777, or decimal)`);
  return checkBounds(n, raw, { min: 0, max: 0o7777 });
}

const TRUE_WORDS = new Set(['1', 'yes', 'on', 'true']);
const FALSE_WORDS = new Set(['0', 'no', 'off', 'false']);

export function parseBoolean(raw: string): boolean {
  const s = raw.trim().toLowerCase();
  if (TRUE_WORDS.has(s)) return true;
  if (FALSE_WORDS.has(s)) return false;
  throw new ValueError(`${JSON.stringify(raw)} is not a boolean (use 1/0, yes/no, on/off, true/false)`);
}

/**
 * Seconds as PgBouncer writes them (`30`, `0.5`, `2.25`), returned in
 * milliseconds. Negative values and unit suffixes are rejected, as in
 * PgBouncer. A positive value never rounds down to 0, which would mean
 * "disabled".
 */
export function parseSecondsToMs(raw: string, bounds: IntBounds = {}): number {
  const s = raw.trim();
  if (!/^(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(s)) {
    throw new ValueError(`${JSON.stringify(raw)} is not a duration in seconds (like 30 or 0.5)`);
  }
  const seconds = Number(s);
  if (!Number.isFinite(seconds)) throw new ValueError(`${JSON.stringify(raw)} is out of range`);
  let ms = Math.round(seconds * 1000);
  if (ms === 0 && seconds > 0) ms = 1;
  return checkBounds(ms, raw, { min: bounds.min, max: bounds.max ?? 2 ** 31 * 1000 });
}

const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3 };

/** Bytes; PgBouncer takes plain integers, Sluice also takes kB/MB/GB (1024-based). */
export function parseSize(raw: string, bounds: IntBounds = {}): number {
  const m = /^(\d+)\s*([a-z]*)$/i.exec(raw.trim());
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new ValueError(`${JSON.stringify(raw)} is not a size in bytes (like 4096, 64kB or 16MB)`);
  }
  const n = Number.parseInt(m[1]!, 10) * unit;
  if (!Number.isSafeInteger(n)) throw new ValueError(`${JSON.stringify(raw)} is out of range`);
  return checkBounds(n, raw, bounds);
}

export function parseFloatValue(raw: string, bounds: IntBounds = {}): number {
  const s = raw.trim();
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(s)) throw new ValueError(`${JSON.stringify(raw)} is not a number`);
  return checkBounds(Number(s), raw, bounds);
}

/** Case-insensitive match (PgBouncer uses strcasecmp); returns the canonical spelling. */
export function parseEnum<T extends string>(raw: string, allowed: readonly T[]): T {
  const s = raw.trim().toLowerCase();
  const hit = allowed.find((a) => a.toLowerCase() === s);
  if (hit === undefined) throw new ValueError(`${JSON.stringify(raw)} is not one of ${allowed.join(', ')}`);
  return hit;
}

/** Comma-separated list; blanks around items dropped, empty items skipped. */
export function parseList(raw: string): readonly string[] {
  return Object.freeze(
    raw
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== ''),
  );
}

/** `host:port`, `:port`, `[v6]:port`, or '' (disabled). */
export function parseListenAddress(raw: string): string {
  const s = raw.trim();
  if (s === '') return '';
  const m = /^(\[[0-9a-fA-F:.]+\]|[^\s:\[\]]*):(\d{1,5})$/.exec(s);
  if (!m || Number(m[2]) > 65535) {
    throw new ValueError(`${JSON.stringify(raw)} is not host:port (like 127.0.0.1:9127 or :9127), or empty to disable`);
  }
  return s;
}

const TLS_PROTOCOL_WORDS = ['tlsv1', 'tlsv1.0', 'tlsv1.1', 'tlsv1.2', 'tlsv1.3', 'all', 'secure', 'legacy', 'default'];

/** TLS protocol list as PgBouncer spells it: `secure`, `tlsv1.2,tlsv1.3`, ... */
export function parseTlsProtocols(raw: string): string {
  const items = raw
    .split(/[\s,:]+/)
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
  for (const item of items) {
    const word = item.replace(/^[!+-]/, '');
    if (!TLS_PROTOCOL_WORDS.includes(word)) {
      throw new ValueError(`${JSON.stringify(raw)}: ${JSON.stringify(item)} is not one of ${TLS_PROTOCOL_WORDS.join(', ')}`);
    }
  }
  return raw.trim();
}

/** Render milliseconds back in seconds the way PgBouncer's SHOW CONFIG does (%g-like). */
export function formatSeconds(ms: number): string {
  const s = ms / 1000;
  return Number.isInteger(s) ? String(s) : String(Number(s.toPrecision(6)));
}
