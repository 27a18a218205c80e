// Cheap lexical classification of SQL text for transaction mode (DESIGN.md
// invariant 5). This is NOT a parser: it decides *when* Sluice must look at a
// server's real state (pg_settings, pg_locks, …). A false positive costs a
// round trip; a false negative can leak session state, so every doubt flags.
//
// Two stages:
//   1. a prefilter — one native regex test for trigger words; a miss returns 0
//      without allocating;
//   2. on a hit, a small lexer (comments, strings, E'', $tag$, "idents") that
//      splits statements at `;` and looks at statement-start keywords and at
//      function calls anywhere.
//
// Known blind spots (by design — the server is the source of truth):
//   - state created inside functions/procedures (`SELECT my_fn()` that takes an
//     advisory lock or creates a temp table) is invisible here; DO and CALL are
//     flagged Unknown;
//   - `standard_conforming_strings = off` (backslash escapes in plain '…') is
//     not modelled;
//   - a table created without `pg_temp.` while `search_path` names pg_temp
//     looks like any CREATE here; ClientParams.tempOnPath makes every
//     transaction of such a client end with a look at the server instead.
import { Buffer } from 'node:buffer';

export const enum SqlFlag {
  /** SET / SET SESSION name …, RESET name, RESET ALL, set_config(…) whose third argument is not a literal `true`. */
  SessionSet = 1,
  /** SET LOCAL …, SET TRANSACTION …, SET CONSTRAINTS … (transaction-scoped; informational). */
  SetLocal = 2,
  /** A call of a session-level advisory lock function (pg_advisory_lock[_shared], pg_try_advisory_lock[_shared], pg_advisory_unlock*); not the _xact_ variants. */
  Advisory = 4,
  /** CREATE [GLOBAL|LOCAL] TEMP|TEMPORARY …, CREATE … pg_temp.x, SELECT … INTO [LOCAL|GLOBAL] TEMP|TEMPORARY / INTO pg_temp.x. */
  TempObject = 8,
  /** LISTEN / UNLISTEN. */
  Listen = 16,
  /** DECLARE … WITH HOLD …, CLOSE name / CLOSE ALL. */
  HoldCursor = 32,
  /** LOAD '…'. */
  Load = 64,
  /** PREPARE name …, DEALLOCATE [PREPARE] name|ALL, EXECUTE name (also EXPLAIN EXECUTE, CREATE TABLE … AS EXECUTE). */
  SqlPrepare = 128,
  /** DISCARD ALL. */
  DiscardAll = 256,
  /** DISCARD TEMP / DISCARD TEMPORARY. */
  DiscardTemp = 512,
  /** DEALLOCATE [PREPARE] ALL (SqlPrepare is set too). */
  DeallocateAll = 1024,
  /** DISCARD PLANS / DISCARD SEQUENCES. */
  DiscardOther = 2048,
  /** DO blocks, CALL, and U&"…" identifiers: may hide any of the above; callers look at everything. */
  Unknown = 4096,
  /**
   * SET LOCAL search_path / SCHEMA, set_config('search_path' or a non-literal
   * name, …, true): with pg_temp on the path, a plain CREATE later in the
   * transaction makes a temporary object. Creates nothing itself.
   */
  TempPath = 8192,
}

// ---------------------------------------------------------------------------
// Prefilter. Must be a superset of everything the lexer below can flag:
// statement-start keywords (SET RESET DISCARD LISTEN UNLISTEN DECLARE CLOSE
// LOAD PREPARE DEALLOCATE EXECUTE DO CALL), the words that make CREATE /
// SELECT INTO / EXPLAIN interesting (TEMP TEMPORARY pg_temp EXECUTE), the
// function names (set_config, pg_[try_]advisory_*) and U&" identifiers.
// Whole-word matches for the short words keep OFFSET, settings, payload,
// closed_at, template … from triggering the lexer.
// Every trigger starts a word (the lexer only flags whole tokens), so a leading
// \b lets the regex engine reject most positions with one check; this is ~5×
// faster than the same alternation without it.
const PREFILTER =
  /\b(?:(?:set|reset|discard|listen|unlisten|declare|close|load|prepare|deallocate|execute|temp|temporary|do|call)\b|set_config|pg_temp|pg_advisory|pg_try_advisory|u&")/i;

/** Bitmask of SqlFlag for all statements in `sql`; 0 when nothing matters. */
export function classifySql(sql: string): number {
  if (!PREFILTER.test(sql)) return 0;
  return lexClassify(sql);
}

/**
 * Same as {@link classifySql} over the bytes of a message body: UTF-8 text in
 * `buf[start, end)`, stopping early at a NUL. Short texts are prefiltered by an
 * allocation-free byte scan; long ones by the regex over a latin1 copy. Only
 * on a hit is a (latin1) string lexed: every trigger is ASCII and every
 * non-ASCII byte is an identifier character both ways, so the answer always
 * equals classifySql(buf.toString('utf8', start, end)).
 */
export function classifySqlBytes(buf: Buffer, start: number, end: number): number {
  if (end > buf.length) end = buf.length;
  if (start >= end) return 0;
  const nul = buf.indexOf(0, start);
  if (nul !== -1 && nul < end) end = nul;
  if (end - start <= BYTE_SCAN_MAX) {
    if (!bytesPrefilter(buf, start, end)) return 0;
    return lexClassify(latin1(buf, start, end));
  }
  const text = latin1(buf, start, end);
  // The regex is the faster test on long text; on a hit, the byte scan (which
  // also knows statement starts) decides before the far slower lexer runs.
  return PREFILTER.test(text) && bytesPrefilter(buf, start, end) ? lexClassify(text) : 0;
}

// Measured (test/session_classify.test.ts prints it): up to a few hundred bytes
// the allocation-free byte scan is as fast as latin1 copy + regex; on long ORM
// queries the native regex is ~1.7× faster than the JS byte loop, so long
// messages pay for one short-lived latin1 string instead.
const BYTE_SCAN_MAX = 128;

type Latin1Slicer = { latin1Slice?: (start: number, end: number) => string };
// Buffer#latin1Slice skips toString()'s encoding dispatch (≈2× faster on short
// messages); it is undocumented, so fall back when absent.
const latin1: (buf: Buffer, start: number, end: number) => string =
  typeof (Buffer.prototype as unknown as Latin1Slicer).latin1Slice === 'function'
    ? (buf, start, end) => (buf as unknown as Required<Latin1Slicer>).latin1Slice(start, end)
    : (buf, start, end) => buf.toString('latin1', start, end);

/** @internal Prefilter over a latin1 copy of the bytes (allocates one string); exported for benchmarks. */
export function bytesPrefilterRegex(buf: Buffer, start: number, end: number): boolean {
  return PREFILTER.test(latin1(buf, start, end));
}

// Byte-level prefilter: walk [A-Za-z0-9_] words; a word hits when it is one of
// the trigger keywords, is `set_config`, or starts with pg_advisory_,
// pg_try_advisory_ or pg_temp; `u&"` hits too. The keywords the lexer only
// looks at as a statement's first word (SET, RESET, LISTEN, CLOSE, DO, …) hit
// only as the text's first word or the first after a `;`, so that UPDATE … SET
// or a column named `load` does not run the lexer. Before a statement's first
// word PostgreSQL allows only blanks and comments, and a comment marker may
// sit inside a string the prefilter does not see, so once `/*` or `--`
// appears (or EXPLAIN, which the lexer looks through) those keywords hit
// anywhere again. A `;` inside a string only makes more words count: still a
// superset of what the lexer can flag, and no string is built on a miss.
/** @internal Allocation-free byte prefilter; exported for benchmarks. */
export function bytesPrefilter(buf: Buffer, i: number, end: number): boolean {
  let first = true; // the next word is a statement's first
  let anywhere = false; // statement-start keywords count wherever they are
  while (i < end) {
    let c = buf[i]!;
    // Skip non-word bytes fast.
    if (!(WORD[c]! & 1)) {
      if (c === 0x3b /* ; */) first = true;
      else if ((c === 0x2d /* - */ || c === 0x2f /* / */) && i + 1 < end) {
        const d = buf[i + 1]!;
        if ((c === 0x2d && d === 0x2d) || (c === 0x2f && d === 0x2a)) anywhere = true;
      }
      i++;
      continue;
    }
    const s = i;
    i++;
    while (i < end && WORD[buf[i]!]! & 1) i++;
    const n = i - s;
    const atStart = first;
    first = false;
    c |= 0x20;
    // Only words that start with one of: c d e l p r s t u.
    if (!(WORD[c]! & 2)) continue;
    if (n === 1) {
      // u&"
      if (c === 0x75 && i + 1 < end && buf[i] === 0x26 && buf[i + 1] === 0x22) return true;
      continue;
    }
    const kind = matchWordBytes(buf, s, n);
    if (kind === Trigger.Anywhere || (kind === Trigger.StatementStart && (atStart || anywhere))) return true;
    if (kind === Trigger.Explain && atStart) anywhere = true;
  }
  return false;
}

// WORD[b]: bit 1 = [A-Za-z0-9_]; bit 2 = lower-case first letter of a trigger.
const WORD = new Uint8Array(256);
for (let b = 0; b < 256; b++) {
  if ((b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x5f) WORD[b] = 1;
}
for (const ch of 'cdelprstu') WORD[ch.charCodeAt(0)]! |= 2;

const enum Trigger {
  None,
  /** Flags only as a statement's first word (dispatch() below). */
  StatementStart,
  /** Flags wherever it is (scanStatement() below, or a function name). */
  Anywhere,
  /** EXPLAIN: the lexer dispatches on the word after its options. */
  Explain,
}

const STATEMENT_START_KEYWORDS = ['set', 'reset', 'discard', 'listen', 'unlisten', 'declare', 'close', 'load', 'prepare', 'deallocate', 'do', 'call'];
const ANYWHERE_KEYWORDS = ['execute', 'temp', 'temporary', 'set_config'];
// By length, for the byte prefilter.
const KW_BY_LEN: { word: string; kind: Trigger }[][] = [];
for (const word of STATEMENT_START_KEYWORDS) (KW_BY_LEN[word.length] ??= []).push({ word, kind: Trigger.StatementStart });
for (const word of ANYWHERE_KEYWORDS) (KW_BY_LEN[word.length] ??= []).push({ word, kind: Trigger.Anywhere });
KW_BY_LEN[7]!.push({ word: 'explain', kind: Trigger.Explain });

function lowerByte(b: number): number {
  return b >= 0x41 && b <= 0x5a ? b | 0x20 : b;
}

function bytesStartWith(buf: Buffer, s: number, n: number, w: string): boolean {
  if (n < w.length) return false;
  for (let k = 0; k < w.length; k++) if (lowerByte(buf[s + k]!) !== w.charCodeAt(k)) return false;
  return true;
}

function matchWordBytes(buf: Buffer, s: number, n: number): Trigger {
  const list = KW_BY_LEN[n];
  if (list !== undefined) {
    for (let j = 0; j < list.length; j++) if (bytesStartWith(buf, s, n, list[j]!.word)) return list[j]!.kind;
  }
  if (n >= 7 && lowerByte(buf[s]!) === 0x70 /* p */) {
    if (bytesStartWith(buf, s, n, 'pg_temp') || bytesStartWith(buf, s, n, 'pg_advisory_') || bytesStartWith(buf, s, n, 'pg_try_advisory_')) {
      return Trigger.Anywhere;
    }
  }
  return Trigger.None;
}

// ---------------------------------------------------------------------------
// Lexer. Module-level state: classification is synchronous and not re-entrant.

const T_EOF: number = 0;
const T_IDENT: number = 1; // bare identifier or keyword
const T_QIDENT: number = 2; // "quoted identifier" (content in ns..ne)
const T_STRING: number = 3; // '…', E'…', U&'…', $tag$…$tag$
const T_NUMBER: number = 4;
const T_PUNCT: number = 5; // one character, in `tc`
const T_SEMI: number = 6;
const T_PARAM: number = 7; // $1

let src = '';
let len = 0;
let pos = 0;
let tk = T_EOF;
let ts = 0; // token start
let te = 0; // token end
let ns = 0; // name start (identifiers: content without quotes)
let ne = 0;
let tc = 0; // punctuation character
let extra = 0; // flags raised by the lexer itself (U&"…")
let stmtCreate = false;
let intoEnabled = true;

function isIdentStart(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || c >= 0x80;
}
function isIdentCont(c: number): boolean {
  return isIdentStart(c) || (c >= 0x30 && c <= 0x39) || c === 0x24;
}

// Hot loops work on locals (s, p, n) and write `pos` back once: module-level
// `let`s cost a context load/store (and hole check) per character.

/** From the opening quote at `p`, past the closing one; doubled quotes escape. */
function skipQuoted(s: string, p: number, n: number, q: number): number {
  const quote = q === 0x22 ? '"' : "'";
  for (;;) {
    const k = s.indexOf(quote, p + 1); // native scan: ORM text is mostly "quoted"
    if (k === -1 || k >= n) return n;
    if (k + 1 < n && s.charCodeAt(k + 1) === q) {
      p = k + 1;
      continue;
    }
    return k + 1;
  }
}

/** E'…': from the opening quote; backslash escapes and '' both work. */
function skipEString(s: string, p: number, n: number): number {
  p++;
  while (p < n) {
    const c = s.charCodeAt(p);
    if (c === 0x5c) {
      p += 2;
      continue;
    }
    if (c === 0x27) {
      if (p + 1 < n && s.charCodeAt(p + 1) === 0x27) {
        p += 2;
        continue;
      }
      return p + 1;
    }
    p++;
  }
  return n;
}

function at(s: string, p: number, n: number): number {
  return p < n ? s.charCodeAt(p) : -1;
}

function next(): void {
  const s = src;
  const n = len;
  let p = pos;
  let c = -1;
  for (;;) {
    if (p >= n) {
      tk = T_EOF;
      ts = te = pos = n;
      return;
    }
    c = s.charCodeAt(p);
    if (c === 0x20 || (c >= 0x09 && c <= 0x0d)) {
      p++;
      continue;
    }
    if (c === 0x2d && at(s, p + 1, n) === 0x2d) {
      p += 2;
      while (p < n) {
        const d = s.charCodeAt(p);
        if (d === 0x0a || d === 0x0d) break;
        p++;
      }
      continue;
    }
    if (c === 0x2f && at(s, p + 1, n) === 0x2a) {
      let depth = 1;
      p += 2;
      while (p < n && depth > 0) {
        const d = s.charCodeAt(p);
        const e = at(s, p + 1, n);
        if (d === 0x2f && e === 0x2a) {
          depth++;
          p += 2;
        } else if (d === 0x2a && e === 0x2f) {
          depth--;
          p += 2;
        } else p++;
      }
      continue;
    }
    break;
  }
  ts = p;
  if (isIdentStart(c)) {
    const c1 = at(s, p + 1, n);
    if ((c === 0x45 || c === 0x65) && c1 === 0x27) {
      // E'…'
      pos = te = skipEString(s, p + 1, n);
      tk = T_STRING;
      return;
    }
    if ((c === 0x55 || c === 0x75) && c1 === 0x26) {
      const c2 = at(s, p + 2, n);
      if (c2 === 0x27) {
        pos = te = skipQuoted(s, p + 2, n, 0x27);
        tk = T_STRING;
        return;
      }
      if (c2 === 0x22) {
        // U&"…" — escapes could spell any name: look at everything.
        pos = te = skipQuoted(s, p + 2, n, 0x22);
        tk = T_QIDENT;
        ns = ts + 3;
        ne = te - 1 < ns ? ns : te - 1;
        extra |= SqlFlag.Unknown;
        return;
      }
    }
    p++;
    while (p < n && isIdentCont(s.charCodeAt(p))) p++;
    tk = T_IDENT;
    pos = te = ne = p;
    ns = ts;
    return;
  }
  if (c === 0x27) {
    pos = te = skipQuoted(s, p, n, 0x27);
    tk = T_STRING;
    return;
  }
  if (c === 0x22) {
    pos = te = skipQuoted(s, p, n, 0x22);
    tk = T_QIDENT;
    ns = ts + 1;
    ne = te - 1 < ns ? ns : te - 1;
    return;
  }
  if (c === 0x24) {
    const c1 = at(s, p + 1, n);
    if (c1 >= 0x30 && c1 <= 0x39) {
      p += 2;
      while (p < n && isIdentCont(s.charCodeAt(p))) p++;
      tk = T_PARAM;
      pos = te = p;
      return;
    }
    // $tag$ … $tag$ (tag may be empty; no `$` and no leading digit in a tag)
    let j = p + 1;
    if (c1 !== 0x24) {
      if (!isIdentStart(c1)) return punct(p, c);
      j++;
      while (j < n) {
        const d = s.charCodeAt(j);
        if (d === 0x24 || !isIdentCont(d)) break;
        j++;
      }
      if (at(s, j, n) !== 0x24) return punct(p, c);
    }
    const delim = s.slice(p, j + 1);
    const close = s.indexOf(delim, j + 1);
    pos = te = close === -1 ? n : close + delim.length;
    tk = T_STRING;
    return;
  }
  if (c >= 0x30 && c <= 0x39) {
    p++;
    while (p < n) {
      const d = s.charCodeAt(p);
      if (isIdentCont(d) || d === 0x2e) p++;
      else break;
    }
    tk = T_NUMBER;
    pos = te = p;
    return;
  }
  if (c === 0x3b) {
    tk = T_SEMI;
    pos = te = p + 1;
    return;
  }
  punct(p, c);
}

function punct(p: number, c: number): void {
  tk = T_PUNCT;
  tc = c;
  pos = te = p + 1;
}

/** Current token is the bare word `w` (lower-case ASCII), case-insensitively. */
function isWord(w: string): boolean {
  if (tk !== T_IDENT || te - ts !== w.length) return false;
  for (let i = 0; i < w.length; i++) {
    let c = src.charCodeAt(ts + i);
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== w.charCodeAt(i)) return false;
  }
  return true;
}

/** Name src[s, e) starts with `w`; case-insensitive when `fold` (bare identifiers). */
function nameStarts(s: number, e: number, fold: boolean, w: string): boolean {
  if (e - s < w.length) return false;
  for (let i = 0; i < w.length; i++) {
    let c = src.charCodeAt(s + i);
    if (fold && c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== w.charCodeAt(i)) return false;
  }
  return true;
}

function nameContains(s: number, e: number, fold: boolean, w: string): boolean {
  for (let k = s; k + w.length <= e; k++) if (nameStarts(k, e, fold, w)) return true;
  return false;
}

// ---------------------------------------------------------------------------
// Classification

function lexClassify(sql: string): number {
  src = sql;
  len = sql.length;
  pos = 0;
  extra = 0;
  let flags = 0;
  for (;;) {
    next();
    if (tk === T_EOF) break;
    if (tk === T_SEMI) continue;
    const start = ts;
    stmtCreate = false;
    intoEnabled = true;
    flags |= dispatch();
    pos = start;
    flags |= scanStatement();
    if (tk === T_EOF) break;
  }
  flags |= extra;
  src = '';
  return flags;
}

/** Statement-start keywords. The current token is the statement's first; may consume tokens. */
function dispatch(): number {
  if (tk !== T_IDENT) return 0;
  switch (src.charCodeAt(ts) | 0x20) {
    case 0x63: // c
      if (isWord('create')) {
        stmtCreate = true;
        next();
        if (isWord('or')) {
          next();
          if (isWord('replace')) next();
        }
        if (isWord('global') || isWord('local')) next();
        return isWord('temp') || isWord('temporary') ? SqlFlag.TempObject : 0;
      }
      if (isWord('close')) return SqlFlag.HoldCursor;
      if (isWord('call')) return SqlFlag.Unknown;
      return 0;
    case 0x64: // d
      if (isWord('do')) return SqlFlag.Unknown;
      if (isWord('discard')) {
        next();
        if (isWord('all')) return SqlFlag.DiscardAll;
        if (isWord('temp') || isWord('temporary')) return SqlFlag.DiscardTemp;
        if (isWord('plans') || isWord('sequences')) return SqlFlag.DiscardOther;
        return 0;
      }
      if (isWord('deallocate')) {
        next();
        if (isWord('prepare')) next();
        return isWord('all') ? SqlFlag.SqlPrepare | SqlFlag.DeallocateAll : SqlFlag.SqlPrepare;
      }
      if (isWord('declare')) {
        // DECLARE name [BINARY] [ASENSITIVE|INSENSITIVE] [[NO] SCROLL] CURSOR [WITH|WITHOUT HOLD] FOR …
        for (;;) {
          next();
          if (tk === T_EOF || tk === T_SEMI || isWord('for')) return 0;
          if (isWord('with')) {
            next();
            if (isWord('hold')) return SqlFlag.HoldCursor;
          }
        }
      }
      return 0;
    case 0x65: // e
      if (isWord('execute')) return SqlFlag.SqlPrepare;
      if (isWord('explain')) {
        next();
        if (tk === T_PUNCT && tc === 0x28) {
          let depth = 1;
          while (depth > 0) {
            next();
            if (tk === T_EOF || tk === T_SEMI) return 0;
            if (tk === T_PUNCT) {
              if (tc === 0x28) depth++;
              else if (tc === 0x29) depth--;
            }
          }
          next();
        } else {
          while (isWord('analyze') || isWord('analyse') || isWord('verbose')) next();
        }
        return dispatch();
      }
      return 0;
    case 0x69: // i
      if (isWord('insert')) intoEnabled = false;
      return 0;
    case 0x6c: // l
      if (isWord('listen')) return SqlFlag.Listen;
      if (isWord('load')) return SqlFlag.Load;
      return 0;
    case 0x6d: // m
      if (isWord('merge')) intoEnabled = false;
      return 0;
    case 0x70: // p
      if (isWord('prepare')) {
        next();
        if (isWord('transaction')) {
          next();
          if (tk === T_STRING) return 0; // two-phase commit, not a statement
        }
        return SqlFlag.SqlPrepare;
      }
      return 0;
    case 0x72: // r
      return isWord('reset') ? SqlFlag.SessionSet : 0;
    case 0x73: // s
      if (isWord('set')) {
        next();
        if (isWord('local')) {
          // With pg_temp on a transaction's search_path, a plain CREATE makes a temporary object.
          next();
          return isWord('search_path') || isWord('schema') ? SqlFlag.SetLocal | SqlFlag.TempPath : SqlFlag.SetLocal;
        }
        if (isWord('transaction') || isWord('constraints')) return SqlFlag.SetLocal;
        return SqlFlag.SessionSet;
      }
      return 0;
    case 0x75: // u
      return isWord('unlisten') ? SqlFlag.Listen : 0;
    default:
      return 0;
  }
}

/**
 * Walks one statement to its `;` (or the end): function calls anywhere,
 * `INTO [LOCAL|GLOBAL] TEMP`, `pg_temp.` in CREATE / INTO, `AS EXECUTE`.
 */
function scanStatement(): number {
  let f = 0;
  let pk = T_EOF; // previous token kind
  let pns = 0;
  let pne = 0;
  let pAs = false;
  let pPgTemp = false;
  let into = false;
  for (;;) {
    next();
    if (tk === T_EOF || tk === T_SEMI) return f;
    if (tk === T_IDENT || tk === T_QIDENT) {
      const fold = tk === T_IDENT;
      const temp = nameStarts(ns, ne, fold, 'pg_temp');
      if (fold) {
        if (pAs && isWord('execute')) f |= SqlFlag.SqlPrepare;
        if (into) {
          if (isWord('temp') || isWord('temporary')) {
            f |= SqlFlag.TempObject;
            into = false;
          } else if (!(temp || isWord('local') || isWord('global') || isWord('unlogged') || isWord('table'))) {
            into = false;
          }
        }
        if (intoEnabled && isWord('into')) into = true;
        pAs = isWord('as');
      } else {
        if (!temp) into = false;
        pAs = false;
      }
      pPgTemp = temp;
      pk = tk;
      pns = ns;
      pne = ne;
      continue;
    }
    if (tk === T_PUNCT) {
      if (tc === 0x28 && (pk === T_IDENT || pk === T_QIDENT)) {
        f |= callFlags(pns, pne, pk === T_IDENT);
      } else if (tc === 0x2e && pPgTemp && (stmtCreate || into)) {
        f |= SqlFlag.TempObject;
      }
    }
    pk = tk;
    pAs = false;
    pPgTemp = false;
    into = false;
  }
}

/** Flags for a call of the function named src[s, e); the current token is its `(`. */
function callFlags(s: number, e: number, fold: boolean): number {
  const n = e - s;
  if (n === 10 && nameStarts(s, e, fold, 'set_config')) {
    if (!setConfigIsLocal()) return SqlFlag.SessionSet;
    return setConfigMaySetSearchPath() ? SqlFlag.TempPath : 0;
  }
  if (
    n >= 16 &&
    (nameStarts(s, e, fold, 'pg_advisory_') || nameStarts(s, e, fold, 'pg_try_advisory_')) &&
    !nameContains(s, e, fold, 'xact')
  ) {
    return SqlFlag.Advisory;
  }
  return 0;
}

/** After set_config's `(`: is the first argument 'search_path', or not a literal at all? Does not move the lexer. */
function setConfigMaySetSearchPath(): boolean {
  const saved = pos;
  next();
  const literal = tk === T_STRING && src.charCodeAt(ts) === 0x27;
  const may = !literal || src.slice(ts + 1, te - 1).toLowerCase() === 'search_path';
  pos = saved;
  tk = T_PUNCT;
  tc = 0x28;
  return may;
}

/** After set_config's `(`: is the third argument exactly the literal `true`? Does not move the lexer. */
function setConfigIsLocal(): boolean {
  const saved = pos;
  let depth = 1;
  let arg = 0;
  let count = 0;
  let isTrue = false;
  for (;;) {
    next();
    if (tk === T_EOF || tk === T_SEMI) break;
    if (tk === T_PUNCT) {
      const c = tc;
      if (c === 0x29 && --depth === 0) break;
      if (c === 0x28) depth++;
      else if (c === 0x2c && depth === 1) {
        arg++;
        continue;
      }
    }
    if (arg === 2) {
      count++;
      if (count === 1) isTrue = isWord('true');
    }
  }
  const local = tk === T_PUNCT && tc === 0x29 && depth === 0 && arg === 2 && count === 1 && isTrue;
  pos = saved;
  tk = T_PUNCT;
  tc = 0x28;
  return local;
}

// ---------------------------------------------------------------------------
// Names targeted by SET / RESET, for logging.

/**
 * Parameter names targeted by SET / RESET statements in `sql`, lower-cased
 * (quoted names keep their spelling), in order, without duplicates.
 * `RESET ALL` → `*`; `SET TIME ZONE` → `timezone`; `SET NAMES` →
 * `client_encoding`; `SET SCHEMA` → `search_path`; `SET ROLE` → `role`;
 * `SET SESSION AUTHORIZATION` → `session_authorization`; `SET [SESSION
 * CHARACTERISTICS AS] TRANSACTION …` → `[default_]transaction_isolation` /
 * `_read_only` / `_deferrable`. SET LOCAL targets are included. Calls of
 * set_config(…) whose third argument is not `true` add their name when it is
 * a string literal, otherwise `?`.
 */
export function splitSetTarget(sql: string, resetsOnly = false): string[] {
  const out: string[] = [];
  const add = (name: string): void => {
    if (!out.includes(name)) out.push(name);
  };
  src = sql;
  len = sql.length;
  pos = 0;
  extra = 0;
  try {
    for (;;) {
      next();
      if (tk === T_EOF) break;
      if (tk === T_SEMI) continue;
      const start = ts;
      if (resetsOnly) {
        if (isWord('reset')) {
          next();
          if (isWord('all')) add('*');
          else setName(add);
        } else if (isWord('discard')) {
          next();
          if (isWord('all')) add('*');
        }
      } else if (isWord('set')) {
        next();
        if (isWord('local')) {
          next();
          if (isWord('transaction')) {
            next();
            transactionModes('transaction_', add);
          } else setName(add);
        } else if (isWord('session')) {
          next();
          if (isWord('authorization')) {
            add('session_authorization');
            next();
          } else if (isWord('characteristics')) {
            next(); // AS
            next(); // TRANSACTION
            next();
            transactionModes('default_transaction_', add);
          } else setName(add);
        } else if (isWord('transaction')) {
          next();
          transactionModes('transaction_', add);
        } else if (!isWord('constraints')) setName(add);
      } else if (isWord('reset')) {
        next();
        if (isWord('all')) add('*');
        else if (isWord('session')) {
          next();
          if (isWord('authorization')) add('session_authorization');
        } else if (isWord('transaction')) {
          next(); // RESET TRANSACTION ISOLATION LEVEL
          if (isWord('isolation')) add('transaction_isolation');
        } else setName(add);
      }
      // set_config calls anywhere in the statement.
      pos = start;
      tk = T_EOF;
      for (;;) {
        const prevIdent = tk === T_IDENT || tk === T_QIDENT;
        const fold = tk === T_IDENT;
        const s = ns;
        const e = ne;
        next();
        if (tk === T_EOF || tk === T_SEMI) break;
        if (!resetsOnly && prevIdent && tk === T_PUNCT && tc === 0x28 && e - s === 10 && nameStarts(s, e, fold, 'set_config')) {
          if (setConfigIsLocal()) continue;
          const save = pos;
          next();
          let name = '?';
          if (tk === T_STRING && src.charCodeAt(ts) === 0x27) {
            const lit = src.slice(ts + 1, te - 1).replace(/''/g, "'");
            next();
            if (tk === T_PUNCT && (tc as number) === 0x2c) name = lit.toLowerCase();
          }
          add(name);
          pos = save;
          tk = T_PUNCT;
        }
      }
      if (tk === T_EOF) break;
    }
  } finally {
    src = '';
  }
  return out;
}

/**
 * The custom (dotted) settings that statements in `sql` SET, RESET or
 * set_config(…, false), lower-cased like PostgreSQL's own lookup. pg_settings
 * does not list such placeholders, so the probe asks for each by name. `?`
 * stands for a set_config whose name is not a literal: it cannot be asked for.
 */
export function customSettingNames(sql: string): string[] {
  const out: string[] = [];
  for (const name of splitSetTarget(sql)) {
    const n = name.toLowerCase();
    if ((n === '?' || n.includes('.')) && !out.includes(n)) out.push(n);
  }
  return out;
}

/**
 * The custom settings that statements in `sql` RESET, lower-cased; `*` for
 * RESET ALL or DISCARD ALL. After one, a custom setting reads '' on Sluice's
 * servers, where a startup value was applied with SET: the client gets its
 * startup value back, as PostgreSQL would give it.
 */
export function customResetNames(sql: string): string[] {
  const out: string[] = [];
  for (const name of splitSetTarget(sql, true)) {
    const n = name.toLowerCase();
    if ((n === '*' || n.includes('.')) && !out.includes(n)) out.push(n);
  }
  return out;
}

/** Current token starts a (possibly qualified) parameter name, or a special form. */
function setName(add: (n: string) => void): void {
  if (isWord('time')) {
    next();
    if (isWord('zone')) return add('timezone');
    return add('time');
  }
  if (isWord('names')) return add('client_encoding');
  if (isWord('schema')) return add('search_path');
  if (isWord('role')) return add('role');
  if (isWord('xml')) {
    next();
    if (isWord('option')) return add('xmloption');
    return add('xml');
  }
  let name = '';
  for (;;) {
    if (tk === T_IDENT) name += src.slice(ns, ne).toLowerCase();
    else if (tk === T_QIDENT) name += src.slice(ns, ne).replace(/""/g, '"');
    else break;
    next();
    if (tk === T_PUNCT && tc === 0x2e) {
      name += '.';
      next();
    } else break;
  }
  if (name !== '') add(name);
}

function transactionModes(prefix: string, add: (n: string) => void): void {
  for (;;) {
    if (tk === T_EOF || tk === T_SEMI) return;
    if (isWord('isolation')) add(prefix + 'isolation');
    else if (isWord('read')) add(prefix + 'read_only');
    else if (isWord('deferrable')) add(prefix + 'deferrable');
    next();
  }
}
