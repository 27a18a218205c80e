// Parameters a client expects its session to have, replayed onto whichever
// server it is linked to. Keys are lower-case; the original spelling is kept
// for ParameterStatus messages.
import type { ServerConn } from '../pool/server_conn.js';

/** Startup keys that are protocol-level, never parameters to replay. */
const NOT_PARAMETERS = new Set(['user', 'database', 'replication', 'options']);

// ignore_startup_parameters as a lower-case set, made once per config (the list is frozen with it).
let ignoreList: readonly string[] | null = null;
let ignoreSet = new Set<string>();
function ignoredSet(list: readonly string[]): ReadonlySet<string> {
  if (list !== ignoreList) {
    ignoreSet = new Set(list.map((s) => s.toLowerCase()));
    ignoreList = list;
  }
  return ignoreSet;
}

export interface Wanted {
  readonly name: string;
  value: string;
  /** What the client asked for at startup, if it did: RESET returns here, as it does in PostgreSQL. */
  initial: string | undefined;
}

export class ClientParams {
  /**
   * Lower-case name → what the client wants. While `borrowed`, the Map and
   * its entries belong to a template that other clients with the same
   * startup packet share: the first write copies them (see own()).
   */
  wanted: Map<string, Wanted>;
  private borrowed: boolean;
  /**
   * The client's search_path names pg_temp, so an unqualified CREATE can make
   * a temporary object that no SQL text shows: every transaction of such a
   * client is followed by a look at the server (ClientConn.probeBeforeRelease).
   */
  tempOnPath: boolean;

  constructor(wanted: Map<string, Wanted> = new Map(), borrowed = false) {
    this.wanted = wanted;
    this.borrowed = borrowed;
    this.tempOnPath = namesTempSchema(wanted.get('search_path')?.value);
  }

  /**
   * Builds the client's wanted parameters from its startup packet. `options`
   * (`-c name=value`, `--name=value`) is unpacked; anything listed in
   * ignore_startup_parameters is dropped. Returns an error text for an
   * `options` value Sluice cannot honour. A shared packet (one the parser
   * hands out again for identical bytes) is read once per ignore list; its
   * clients then borrow that reading until they change a setting.
   */
  static fromStartup(params: ReadonlyMap<string, string>, ignore: readonly string[], shared = false): ClientParams | string {
    if (!shared) return ClientParams.read(params, ignore);
    let t = templates.get(params);
    if (t === undefined || t.ignore !== ignore) {
      t = { ignore, made: ClientParams.read(params, ignore) };
      templates.set(params, t);
    }
    return typeof t.made === 'string' ? t.made : new ClientParams(t.made.wanted, true);
  }

  private static read(params: ReadonlyMap<string, string>, ignore: readonly string[]): ClientParams | string {
    const out = new ClientParams();
    const ignored = ignoredSet(ignore);
    for (const [name, value] of params) {
      const key = name.toLowerCase();
      if (ignored.has(key)) continue;
      if (key === 'options') {
        const parsed = parseOptions(value);
        if (typeof parsed === 'string') return parsed;
        for (const [n, v] of parsed) if (!ignored.has(n.toLowerCase())) out.set(n, v);
        continue;
      }
      if (NOT_PARAMETERS.has(key)) continue;
      out.set(name, value);
    }
    for (const w of out.wanted.values()) w.initial = w.value;
    return out;
  }

  /** Before a write: a borrowed template becomes this client's own copy. */
  private own(): void {
    if (this === NO_CLIENT_PARAMS) throw new Error('ClientParams: the shared empty set is never written to');
    if (!this.borrowed) return;
    const copy = new Map<string, Wanted>();
    for (const [key, w] of this.wanted) copy.set(key, { name: w.name, value: w.value, initial: w.initial });
    this.wanted = copy;
    this.borrowed = false;
  }

  set(name: string, value: string): void {
    this.own();
    const key = name.toLowerCase();
    const cur = this.wanted.get(key);
    if (cur) cur.value = value;
    else this.wanted.set(key, { name, value, initial: undefined });
    if (key === 'search_path') this.tempOnPath = namesTempSchema(value);
  }

  get(name: string): string | undefined {
    return this.wanted.get(name.toLowerCase())?.value;
  }

  /**
   * Statements that make `server` match this client, or '' when it already
   * does: SET what differs, RESET what an earlier client set and this one did not.
   */
  replaySql(server: ServerConn): string {
    let sql = '';
    for (const key of server.settings.keys()) {
      if (!this.wanted.has(key)) sql += `RESET ${quoteIdent(key)};`;
    }
    for (const [key, w] of this.wanted) {
      const current = server.settings.get(key) ?? reported(server, key);
      if (current === w.value) continue;
      // set_config takes the value as current_setting gives it: SET with a
      // quoted literal would make "a, b" one schema of search_path.
      sql += `SELECT pg_catalog.set_config(${quoteLiteral(w.name)}, ${quoteLiteral(w.value)}, false);`;
    }
    return sql;
  }

  /** Records on the server what a successful replay set. */
  markApplied(server: ServerConn): void {
    server.settings.clear();
    for (const [key, w] of this.wanted) server.settings.set(key, w.value);
  }

  /**
   * After a probe: the session-level settings the server reports are exactly
   * what this client has set, so they become what follows it to other servers.
   */
  adoptSessionSettings(settings: ReadonlyMap<string, string>, server: ServerConn): void {
    this.own();
    const present = new Set([...settings.keys()].map((k) => k.toLowerCase()));
    for (const [key, w] of [...this.wanted]) {
      if (present.has(key)) continue;
      // RESET (or never SET): back to the startup value when there is one.
      if (w.initial === undefined) this.wanted.delete(key);
      else w.value = w.initial;
    }
    server.settings.clear();
    for (const [name, value] of settings) {
      this.set(name, value);
      server.settings.set(name.toLowerCase(), value);
    }
    this.tempOnPath = namesTempSchema(this.get('search_path'));
  }
}

/**
 * Reported parameters no session can SET (the server's version and encoding,
 * whether it is a standby, whether the user is a superuser): a change of one
 * (a standby promoted) must not become a setting replayed to other servers.
 */
const SERVER_FACTS = new Set(['server_version', 'server_encoding', 'integer_datetimes', 'in_hot_standby', 'is_superuser']);

/** A ParameterStatus for this name may be a client's own SET, to carry to its next server. */
export function clientMaySet(name: string): boolean {
  return !SERVER_FACTS.has(name.toLowerCase());
}

/** A search_path value that lists the temporary schema (`pg_temp`, quoted or not, or a `pg_temp_N`). */
export function namesTempSchema(searchPath: string | undefined): boolean {
  return searchPath !== undefined && /(?:^|,)\s*"?pg_temp(?:_\d+)?"?\s*(?:,|$)/i.test(searchPath);
}

/**
 * Readings of shared startup packets, with the ignore list they were read
 * under (a RELOAD may change it). Weak: a packet the parser forgets takes
 * its reading with it.
 */
const templates = new WeakMap<ReadonlyMap<string, string>, { ignore: readonly string[]; made: ClientParams | string }>();

/** What a client has before its startup packet is read: shared by all of them, so writing to it throws. */
export const NO_CLIENT_PARAMS = new ClientParams();

function reported(server: ServerConn, key: string): string | undefined {
  for (const [k, v] of server.params) if (k.toLowerCase() === key) return v;
  return undefined;
}

/** Parses libpq's `options` startup value: `-c a=b`, `-ca=b`, `--a=b`, with `\ ` escapes. */
export function parseOptions(value: string): Array<[string, string]> | string {
  const words: string[] = [];
  let cur = '';
  let escaping = false;
  let inWord = false;
  for (const ch of value) {
    if (escaping) {
      cur += ch;
      escaping = false;
      inWord = true;
    } else if (ch === '\\') escaping = true;
    else if (/\s/.test(ch)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  const out: Array<[string, string]> = [];
  for (let i = 0; i < words.length; i++) {
    let w = words[i];
    if (w === '-c') {
      w = words[++i] ?? '';
    } else if (w.startsWith('-c')) w = w.slice(2);
    else if (w.startsWith('--')) w = w.slice(2);
    else return `unsupported startup option "${words[i]}": only -c name=value and --name=value are accepted`;
    const eq = w.indexOf('=');
    if (eq <= 0) return `invalid startup option "${w}": expected name=value`;
    out.push([w.slice(0, eq).replace(/-/g, '_'), w.slice(eq + 1)]);
  }
  return out;
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A literal that means the same whatever standard_conforming_strings says. */
export function quoteLiteral(value: string): string {
  return `E'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}
