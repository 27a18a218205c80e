// auth_hba_file: the pg_hba.conf subset PgBouncer understands.
//   types:     local, host, hostssl, hostnossl
//   database:  all, sameuser, replication, names, comma lists, "quoted" names
//   user:      all, names, comma lists
//   address:   all, CIDR (IPv4/IPv6), or address + netmask column
//   methods:   trust, reject, password, md5, scram-sha-256, cert, peer
// Not supported (warned, the element never matches): +group, @file, samehost,
// samenet, host names, regular expressions; auth options (key=value) are ignored.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { HbaParseError } from './errors.js';

export type HbaConnType = 'local' | 'host' | 'hostssl' | 'hostnossl';
export type HbaMethod = 'trust' | 'reject' | 'password' | 'md5' | 'scram-sha-256' | 'cert' | 'peer';

type NameMatcher = { readonly kind: 'all' } | { readonly kind: 'sameuser' } | { readonly kind: 'replication' } | { readonly kind: 'name'; readonly name: string };

export interface HbaAddress {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
  readonly mask: Uint8Array;
}

export interface HbaRule {
  readonly type: HbaConnType;
  readonly databases: readonly NameMatcher[];
  readonly users: readonly NameMatcher[];
  /** 'all', a network, or 'never' (an unsupported address form). Absent for local. */
  readonly address?: 'all' | 'never' | HbaAddress;
  readonly method: HbaMethod;
  readonly file: string;
  readonly line: number;
}

export interface HbaWarning {
  readonly file: string;
  readonly line: number;
  readonly message: string;
}

export interface HbaFile {
  readonly rules: readonly HbaRule[];
  readonly warnings: readonly HbaWarning[];
}

export interface HbaMatchInput {
  /** Unix-socket connection. */
  readonly local: boolean;
  /** TLS is in use on the connection. */
  readonly tls: boolean;
  /** Peer IP address (ignored for local); IPv4-mapped IPv6 is matched as IPv4. */
  readonly address: string;
  readonly database: string;
  readonly user: string;
  /** A replication connection (matched only by the `replication` keyword). */
  readonly replication?: boolean;
}

const METHODS: ReadonlySet<string> = new Set(['trust', 'reject', 'password', 'md5', 'scram-sha-256', 'cert', 'peer']);
const TYPES: ReadonlySet<string> = new Set(['local', 'host', 'hostssl', 'hostnossl']);
const MAX_LINE = 10_000;

interface Token {
  readonly text: string;
  readonly quoted: boolean;
}

/** Splits a logical line into whitespace-separated fields; each field into comma-separated tokens. */
function tokenize(line: string, file: string, lineNo: number): Token[][] {
  const fields: Token[][] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && (line[i] === ' ' || line[i] === '\t')) i++;
    if (i >= line.length || line[i] === '#') break;
    const field: Token[] = [];
    for (;;) {
      let text = '';
      let quoted = false;
      while (i < line.length && line[i] !== ' ' && line[i] !== '\t' && line[i] !== ',' && line[i] !== '#') {
        if (line[i] === '"') {
          quoted = true;
          const end = line.indexOf('"', i + 1);
          if (end < 0) throw new HbaParseError(file, lineNo, 'unterminated quoted string');
          text += line.slice(i + 1, end);
          i = end + 1;
        } else text += line[i++];
      }
      field.push({ text, quoted });
      if (line[i] === ',') {
        i++;
        // As in PostgreSQL, a list continues across whitespace after a comma.
        while (i < line.length && (line[i] === ' ' || line[i] === '\t')) i++;
        continue;
      }
      break;
    }
    fields.push(field);
  }
  return fields;
}

function parseIp(s: string): { family: 4 | 6; bytes: Uint8Array } | null {
  const fam = net.isIP(s);
  if (fam === 4) return { family: 4, bytes: Uint8Array.from(s.split('.').map(Number)) };
  if (fam !== 6) return null;
  let str = s;
  const pct = str.indexOf('%');
  if (pct >= 0) str = str.slice(0, pct); // zone id
  // Expand an embedded IPv4 tail into two hextets.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(str);
  if (v4) {
    const b = v4[1]!.split('.').map(Number);
    str = str.slice(0, -v4[1]!.length) + ((b[0]! << 8) | b[1]!).toString(16) + ':' + ((b[2]! << 8) | b[3]!).toString(16);
  }
  const [head, tail] = str.includes('::') ? str.split('::') : [str, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  if (groups.length !== 8) return null;
  const bytes = new Uint8Array(16);
  groups.forEach((g, k) => {
    const v = parseInt(g, 16);
    bytes[2 * k] = v >> 8;
    bytes[2 * k + 1] = v & 0xff;
  });
  return { family: 6, bytes };
}

function prefixMask(family: 4 | 6, bits: number): Uint8Array {
  const m = new Uint8Array(family === 4 ? 4 : 16);
  for (let k = 0; k < m.length; k++) {
    const take = Math.max(0, Math.min(8, bits - 8 * k));
    m[k] = take === 0 ? 0 : (0xff << (8 - take)) & 0xff;
  }
  return m;
}

/** The IPv4 address inside an IPv4-mapped IPv6 address, else the input. */
function unmap(a: { family: 4 | 6; bytes: Uint8Array }): { family: 4 | 6; bytes: Uint8Array } {
  if (a.family === 6 && a.bytes.subarray(0, 10).every((b) => b === 0) && a.bytes[10] === 0xff && a.bytes[11] === 0xff) {
    return { family: 4, bytes: a.bytes.slice(12) };
  }
  return a;
}

function nameMatchers(field: Token[], what: 'database' | 'user', file: string, line: number, warn: (m: string) => void): NameMatcher[] {
  const out: NameMatcher[] = [];
  for (const t of field) {
    if (t.text === '' && !t.quoted) throw new HbaParseError(file, line, `empty ${what} name`);
    if (!t.quoted && t.text === 'all') out.push({ kind: 'all' });
    else if (!t.quoted && what === 'database' && t.text === 'sameuser') out.push({ kind: 'sameuser' });
    else if (!t.quoted && what === 'database' && t.text === 'replication') out.push({ kind: 'replication' });
    else if (!t.quoted && (t.text === 'samerole' || t.text === 'samegroup')) warn(`"${t.text}" is not supported; it never matches`);
    else if (!t.quoted && t.text.startsWith('@')) warn(`"@file" inclusion (${t.text}) is not supported; it never matches`);
    else if (!t.quoted && what === 'user' && t.text.startsWith('+')) warn(`group membership (${t.text}) is not supported; it never matches`);
    else if (!t.quoted && t.text.startsWith('/')) warn(`regular expressions (${t.text}) are not supported; it never matches`);
    else out.push({ kind: 'name', name: t.text });
  }
  return out;
}

/** Parses hba text. `file` is used in messages only. Throws HbaParseError naming file:line. */
export function parseHba(text: string, file = 'auth_hba_file'): HbaFile {
  const rules: HbaRule[] = [];
  const warnings: HbaWarning[] = [];
  const physical = text.split(/\r?\n/);
  for (let n = 0; n < physical.length; n++) {
    const lineNo = n + 1;
    let line = physical[n]!;
    // Backslash at end of line continues the record.
    while (line.endsWith('\\') && n + 1 < physical.length) line = line.slice(0, -1) + ' ' + physical[++n]!;
    if (line.length > MAX_LINE) throw new HbaParseError(file, lineNo, 'line too long');
    const warn = (message: string): void => void warnings.push({ file, line: lineNo, message });
    const f = tokenize(line, file, lineNo);
    if (f.length === 0) continue;
    const single = (k: number, what: string): string => {
      const fld = f[k];
      if (!fld) throw new HbaParseError(file, lineNo, `missing ${what}`);
      if (fld.length !== 1) throw new HbaParseError(file, lineNo, `${what} cannot be a list`);
      return fld[0]!.text;
    };
    const type = single(0, 'connection type');
    if (type.startsWith('include')) throw new HbaParseError(file, lineNo, `"${type}" is not supported`);
    if (!TYPES.has(type)) {
      if (type === 'hostgssenc' || type === 'hostnogssenc') throw new HbaParseError(file, lineNo, `connection type "${type}" is not supported`);
      throw new HbaParseError(file, lineNo, `invalid connection type "${type}"`);
    }
    if (!f[1]) throw new HbaParseError(file, lineNo, 'missing database');
    if (!f[2]) throw new HbaParseError(file, lineNo, 'missing user');
    const databases = nameMatchers(f[1], 'database', file, lineNo, warn);
    const users = nameMatchers(f[2], 'user', file, lineNo, warn);
    let k = 3;
    let address: HbaRule['address'];
    if (type !== 'local') {
      const a = single(k++, 'address');
      if (a === 'all') address = 'all';
      else if (a === 'samehost' || a === 'samenet') {
        warn(`address "${a}" is not supported; the line never matches`);
        address = 'never';
      } else {
        const slash = a.indexOf('/');
        const ip = parseIp(slash >= 0 ? a.slice(0, slash) : a);
        if (!ip) {
          if (/^[A-Za-z0-9.-]+$/.test(a) && /[A-Za-z]/.test(a)) {
            warn(`host names (${a}) are not supported; the line never matches`);
            address = 'never';
          } else throw new HbaParseError(file, lineNo, `invalid IP address "${a}"`);
        } else if (slash >= 0) {
          const bitsText = a.slice(slash + 1);
          const bits = Number(bitsText);
          if (!/^\d{1,3}$/.test(bitsText) || bits > (ip.family === 4 ? 32 : 128)) throw new HbaParseError(file, lineNo, `invalid CIDR mask in "${a}"`);
          address = { family: ip.family, bytes: ip.bytes, mask: prefixMask(ip.family, bits) };
        } else {
          const maskText = single(k++, 'netmask (or use CIDR notation)');
          const mask = parseIp(maskText);
          if (!mask || mask.family !== ip.family) throw new HbaParseError(file, lineNo, `invalid netmask "${maskText}"`);
          address = { family: ip.family, bytes: ip.bytes, mask: mask.bytes };
        }
      }
    }
    const m = single(k++, 'authentication method');
    if (!METHODS.has(m)) throw new HbaParseError(file, lineNo, `unsupported authentication method "${m}"`);
    if (m === 'peer' && type !== 'local') throw new HbaParseError(file, lineNo, 'peer authentication is only supported on local connections');
    if (m === 'cert' && type === 'local') throw new HbaParseError(file, lineNo, 'cert authentication is only supported on hostssl connections');
    for (; k < f.length; k++) warn(`authentication option "${f[k]!.map((t) => t.text).join(',')}" is ignored`);
    rules.push(Object.freeze({ type: type as HbaConnType, databases, users, address, method: m as HbaMethod, file, line: lineNo }));
  }
  return Object.freeze({ rules: Object.freeze(rules), warnings: Object.freeze(warnings) });
}

/** Reads and parses an auth_hba_file. */
export function loadHbaFile(file: string): HbaFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new HbaParseError(file, 0, `cannot read: ${(err as Error).message}`);
  }
  return parseHba(text, file);
}

function nameMatches(ms: readonly NameMatcher[], value: string, input: HbaMatchInput, isDb: boolean): boolean {
  for (const m of ms) {
    switch (m.kind) {
      case 'all':
        // As in PostgreSQL, "all" does not match replication connections in the database column.
        if (!isDb || !input.replication) return true;
        break;
      case 'replication':
        if (input.replication) return true;
        break;
      case 'sameuser':
        if (!input.replication && value === input.user) return true;
        break;
      case 'name':
        if (!(isDb && input.replication) && m.name === value) return true;
        break;
    }
  }
  return false;
}

function addressMatches(a: HbaRule['address'], address: string): boolean {
  if (a === 'all') return true;
  if (a === undefined || a === 'never') return false;
  const parsed = parseIp(address);
  if (!parsed) return false;
  const ip = unmap(parsed);
  if (ip.family !== a.family) return false;
  for (let k = 0; k < a.bytes.length; k++) if (((ip.bytes[k]! ^ a.bytes[k]!) & a.mask[k]!) !== 0) return false;
  return true;
}

/** The method of the first matching rule; 'reject' when nothing matches. */
export function matchHba(rules: readonly HbaRule[], input: HbaMatchInput): HbaMethod {
  return findHbaRule(rules, input)?.method ?? 'reject';
}

/** The first matching rule (for logs: file and line), or undefined. */
export function findHbaRule(rules: readonly HbaRule[], input: HbaMatchInput): HbaRule | undefined {
  for (const r of rules) {
    if (input.local) {
      if (r.type !== 'local') continue;
    } else {
      if (r.type === 'local') continue;
      if (r.type === 'hostssl' && !input.tls) continue;
      if (r.type === 'hostnossl' && input.tls) continue;
      if (!addressMatches(r.address, input.address)) continue;
    }
    if (!nameMatches(r.databases, input.database, input, true)) continue;
    if (!nameMatches(r.users, input.user, input, false)) continue;
    return r;
  }
  return undefined;
}
