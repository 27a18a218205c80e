// Reader for PgBouncer's ini dialect. It only splits text into located
// entries; what a key means is decided by settings.ts / connstring.ts.
//
// Dialect (as PgBouncer reads it):
//  - `[section]` headers; `;` or `#` starts a comment only at the start of a
//    line (after optional whitespace), never later in the line;
//  - `key = value`, whitespace around both trimmed; the value runs to the end
//    of the line (an empty value is allowed: `foodb =`);
//  - keys made of other characters than [A-Za-z0-9_.*-] are written as SQL
//    identifiers in double quotes, `""` standing for one `"`;
//  - `%include path` reads another file in place; the current section carries
//    into and out of it, as if its text were pasted there.
// Sluice differs in one point: a relative include path is resolved against
// the including file's directory (PgBouncer uses the working directory, which
// is what it falls back to here, with a warning).

import { readFileSync, realpathSync, existsSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { ConfigError } from './errors.js';
import type { ConfigWarning } from './types.js';

/** Sections PgBouncer knows. Anything else is warned about and skipped. */
export const KNOWN_SECTIONS: readonly string[] = Object.freeze(['databases', 'pgbouncer', 'users', 'peers']);

/** How deep `%include` may nest, counting the main file as depth 0. */
export const MAX_INCLUDE_DEPTH = 10;

export interface IniEntry {
  readonly section: string;
  readonly key: string;
  /** Trimmed raw text after `=`. */
  readonly value: string;
  readonly file: string;
  readonly line: number;
}

export interface IniDocument {
  readonly entries: readonly IniEntry[];
  readonly warnings: readonly ConfigWarning[];
  /** Absolute paths of every file read, main file first. */
  readonly files: readonly string[];
}

export interface ReadIniOptions {
  /** Override for tests; defaults to MAX_INCLUDE_DEPTH. */
  readonly maxIncludeDepth?: number;
}

interface ReaderState {
  section: string | undefined;
  skipping: boolean; // inside an unknown section
  entries: IniEntry[];
  warnings: ConfigWarning[];
  files: string[];
  stack: string[]; // real paths of the files being read, for cycle detection
  maxDepth: number;
}

/**
 * Read `file` (and everything it includes). `file` is used as given in
 * messages, so pass the path the operator typed.
 */
export function readIni(file: string, options: ReadIniOptions = {}): IniDocument {
  const state: ReaderState = {
    section: undefined,
    skipping: false,
    entries: [],
    warnings: [],
    files: [],
    stack: [],
    maxDepth: options.maxIncludeDepth ?? MAX_INCLUDE_DEPTH,
  };
  const text = readText(file, { file, line: 0 });
  readInto(state, text, file, file);
  return { entries: state.entries, warnings: state.warnings, files: state.files };
}

/** Parse ini text that is not on disk. `%include` paths resolve against `file`'s directory (or the cwd). */
export function parseIni(text: string, file = '<memory>', options: ReadIniOptions = {}): IniDocument {
  const state: ReaderState = {
    section: undefined,
    skipping: false,
    entries: [],
    warnings: [],
    files: [],
    stack: [],
    maxDepth: options.maxIncludeDepth ?? MAX_INCLUDE_DEPTH,
  };
  parseLines(state, text, file);
  return { entries: state.entries, warnings: state.warnings, files: state.files };
}

function readText(file: string, at: { file: string; line: number }): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new ConfigError(
      { file: at.file, line: at.line, key: at.line > 0 ? '%include' : undefined },
      `cannot read ${JSON.stringify(file)}: ${reason}`,
      { cause: err },
    );
  }
}

function readInto(state: ReaderState, text: string, path: string, display: string): void {
  const real = safeRealpath(path);
  state.stack.push(real);
  state.files.push(real);
  parseLines(state, text, display);
  state.stack.pop();
}

function safeRealpath(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    return resolve(file);
  }
}

function parseLines(state: ReaderState, text: string, file: string): void {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // BOM from Windows editors
  const lines = text.split(/\r?\n|\r/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i]!.trim();
    if (line === '' || line[0] === ';' || line[0] === '#') continue;

    if (line[0] === '[') {
      const close = line.indexOf(']');
      if (close < 0) throw new ConfigError({ file, line: lineNo }, `syntax error: section header ${JSON.stringify(line)} has no closing "]"`);
      const rest = line.slice(close + 1).trim();
      if (rest !== '' && rest[0] !== ';' && rest[0] !== '#') {
        throw new ConfigError({ file, line: lineNo }, `syntax error: unexpected text after section header: ${JSON.stringify(rest)}`);
      }
      const name = line.slice(1, close).trim();
      state.section = name;
      state.skipping = !KNOWN_SECTIONS.includes(name);
      if (state.skipping) {
        state.warnings.push({
          file,
          line: lineNo,
          message: `unknown section [${name}] is ignored (known: ${KNOWN_SECTIONS.join(', ')})`,
        });
      }
      continue;
    }

    if (line[0] === '%') {
      const m = /^%include(?:\s+(.*))?$/.exec(line);
      if (!m) throw new ConfigError({ file, line: lineNo }, `syntax error: unknown directive ${JSON.stringify(line.split(/\s/)[0])} (only %include is supported)`);
      const target = unquote((m[1] ?? '').trim());
      if (target === '') throw new ConfigError({ file, line: lineNo, key: '%include' }, '%include needs a file name');
      include(state, target, file, lineNo);
      continue;
    }

    const { key, rest } = splitKey(line, file, lineNo);
    if (state.section === undefined) {
      throw new ConfigError({ file, line: lineNo, key }, `${key} is outside any section; put it under [pgbouncer], [databases] or [users]`);
    }
    if (state.skipping) continue;
    state.entries.push({ section: state.section, key, value: rest, file, line: lineNo });
  }
}

function splitKey(line: string, file: string, lineNo: number): { key: string; rest: string } {
  let key: string;
  let pos: number;
  if (line[0] === '"') {
    // SQL-identifier quoting, "" is a literal quote
    let out = '';
    pos = 1;
    for (;;) {
      if (pos >= line.length) throw new ConfigError({ file, line: lineNo }, 'syntax error: unterminated quoted key');
      const ch = line[pos]!;
      if (ch === '"') {
        if (line[pos + 1] === '"') {
          out += '"';
          pos += 2;
          continue;
        }
        pos++;
        break;
      }
      out += ch;
      pos++;
    }
    key = out;
    if (key === '') throw new ConfigError({ file, line: lineNo }, 'syntax error: empty quoted key');
  } else {
    const eq = line.indexOf('=');
    pos = eq < 0 ? line.length : eq;
    key = line.slice(0, pos).trim();
    if (!/^[A-Za-z0-9_.*\-]+$/.test(key)) {
      if (eq < 0) throw new ConfigError({ file, line: lineNo }, `syntax error: expected "key = value", got ${JSON.stringify(line)}`);
      throw new ConfigError(
        { file, line: lineNo },
        `syntax error: key ${JSON.stringify(key)} has characters outside [A-Za-z0-9_.*-]; quote it like "my db" = ...`,
      );
    }
  }
  while (pos < line.length && (line[pos] === ' ' || line[pos] === '\t')) pos++;
  if (line[pos] !== '=') {
    throw new ConfigError({ file, line: lineNo, key }, `syntax error: expected "=" after ${JSON.stringify(key)}`);
  }
  return { key, rest: line.slice(pos + 1).trim() };
}

function include(state: ReaderState, target: string, from: string, lineNo: number): void {
  const at = { file: from, line: lineNo, key: '%include' };
  let path: string;
  let display: string;
  if (isAbsolute(target)) {
    path = target;
    display = target;
  } else {
    path = resolve(dirname(from.startsWith('<') ? '.' : from), target);
    display = from.startsWith('<') ? path : joinDisplay(from, target);
    if (!existsSync(path) && existsSync(resolve(target))) {
      // PgBouncer resolves against the working directory; accept that too.
      state.warnings.push({
        file: from,
        line: lineNo,
        key: '%include',
        message: `%include ${target}: found relative to the working directory, not to ${from}; Sluice resolves includes relative to the including file`,
      });
      path = resolve(target);
      display = target;
    }
  }
  const depth = state.stack.length; // the main file is depth 0
  if (depth > state.maxDepth) {
    throw new ConfigError(at, `%include nesting deeper than ${state.maxDepth} levels (at ${JSON.stringify(target)})`);
  }
  const real = safeRealpath(path);
  const loopStart = state.stack.indexOf(real);
  if (loopStart >= 0) {
    const chain = [...state.stack.slice(loopStart), real].join(' -> ');
    throw new ConfigError(at, `%include cycle: ${chain}`);
  }
  const text = readText(path, at);
  readInto(state, text, path, display);
}

/** The include's name as the operator would write it from the cwd: "conf.d/pools.ini". */
function joinDisplay(from: string, target: string): string {
  const dir = dirname(from);
  return dir === '.' ? target : `${dir}/${target}`;
}

/** Strip one pair of matching outer quotes ("..." or '...'), undoing doubled inner quotes. */
export function unquote(value: string): string {
  if (value.length >= 2) {
    const q = value[0];
    if ((q === '"' || q === "'") && value[value.length - 1] === q) {
      const inner = value.slice(1, -1);
      // Only treat it as quoted when every inner quote of that kind is doubled.
      const single = inner.replaceAll(q + q, '');
      if (!single.includes(q)) return inner.replaceAll(q + q, q);
    }
  }
  return value;
}
