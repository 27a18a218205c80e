// Protocol-level prepared statements in transaction and statement mode.
//
// A client's statement names map to global statements keyed by query text and
// parameter types. Each server connection keeps an LRU of the statements it
// has prepared under Sluice's own names (`sluice_<id>`); a statement is
// prepared lazily on whichever server the client holds when it binds.

import { Buffer } from 'node:buffer';
import { frameMessage } from '../protocol/messages.js';
import { classifySqlBytes, customResetNames, customSettingNames, SqlFlag } from './classify.js';
import { NO_NAMES } from './unnamed.js';

export interface Statement {
  readonly id: number;
  /** Server-side name. */
  readonly name: string;
  /** The Parse body after the client's name: query text, NUL, Int16 count, Int32 OIDs. */
  readonly tail: Buffer;
  /**
   * SqlFlag bits of the query text, read once: a statement is run by every
   * Bind, long after its Parse, and each run may create session state.
   */
  readonly flags: number;
  /** Custom settings the statement sets and resets (customSettingNames, customResetNames); empty for most. */
  readonly settingNames: readonly string[];
  readonly resetNames: readonly string[];
}


/** Global statements, shared by every client, keyed by the Parse tail bytes. */
export class StatementRegistry {
  private readonly byKey = new Map<string, Statement>();
  private nextId = 1;

  intern(tail: Buffer): Statement {
    const key = tail.toString('latin1');
    let st = this.byKey.get(key);
    if (!st) {
      const id = this.nextId++;
      const flags = classifySqlBytes(tail, 0, tail.length);
      const text = flags & (SqlFlag.SessionSet | SqlFlag.DiscardAll) ? tail.toString('utf8', 0, Math.max(0, tail.indexOf(0))) : '';
      const settingNames = text ? Object.freeze(customSettingNames(text)) : NO_NAMES;
      const resetNames = text ? Object.freeze(customResetNames(text)) : NO_NAMES;
      st = Object.freeze({ id, name: `sluice_${id}`, tail: Buffer.from(tail), flags, settingNames, resetNames });
      this.byKey.set(key, st);
    }
    return st;
  }

  get size(): number {
    return this.byKey.size;
  }
}

/** The statements prepared on one server connection, least recently used first. */
export class ServerStatements {
  private readonly lru = new Map<number, Statement>();
  /**
   * Statements that may or may not still be there: a DISCARD ALL or
   * DEALLOCATE ALL was sent, which PostgreSQL may refuse, and statements
   * pipelined after it are prepared again. One of these is closed before it
   * is prepared again (closing a missing statement is no error).
   */
  private unsure: Set<number> | null = null;

  has(st: Statement): boolean {
    const hit = this.lru.get(st.id);
    if (!hit) return false;
    // Move to the most-recent end.
    this.lru.delete(st.id);
    this.lru.set(st.id, hit);
    return true;
  }

  add(st: Statement): void {
    this.lru.set(st.id, st);
  }

  delete(st: Statement): void {
    this.lru.delete(st.id);
  }

  /** Oldest statements beyond `max` (after adding one more), to be closed. */
  evictFor(max: number, keep: Statement): Statement[] {
    const out: Statement[] = [];
    for (const st of this.lru.values()) {
      if (this.lru.size - out.length < max) break;
      if (st !== keep) out.push(st);
    }
    for (const st of out) this.lru.delete(st.id);
    return out;
  }

  clear(): void {
    this.lru.clear();
    this.unsure = null;
  }

  /** A DISCARD ALL or DEALLOCATE ALL is on its way: every statement known now becomes unsure. */
  forgetAll(): void {
    for (const id of this.lru.keys()) (this.unsure ??= new Set()).add(id);
    this.lru.clear();
  }

  /** A Parse or Close of `st` failed or was skipped: whether the server has it is not known any more. */
  markUnsure(st: Statement): void {
    this.lru.delete(st.id);
    (this.unsure ??= new Set()).add(st.id);
  }

  /** True (once) when `st` is unsure, so it must be closed before it is prepared again. */
  takeUnsure(st: Statement): boolean {
    return this.unsure !== null && this.unsure.delete(st.id);
  }

  get size(): number {
    return this.lru.size;
  }

  names(): string[] {
    return [...this.lru.values()].map((s) => s.name);
  }
}

function cstr(s: string): Buffer {
  return Buffer.from(s + '\0', 'utf8');
}

function frame(type: number, parts: Buffer[]): Buffer {
  return frameMessage(type, ...parts);
}

export function parseMessage(st: Statement): Buffer {
  return frame(0x50, [cstr(st.name), st.tail]);
}

const NO_NAME = Buffer.from([0]);

/** Parse of the unnamed statement from a client's Parse body (query text, NUL, parameter types). */
export function parseUnnamedMessage(tail: Buffer): Buffer {
  return frame(0x50, [NO_NAME, tail]);
}

/** Close of the unnamed statement: PostgreSQL answers CloseComplete whether or not there is one. */
export const CLOSE_UNNAMED = Buffer.from([0x43, 0, 0, 0, 6, 0x53, 0]);

export function closeStatementMessage(st: Statement): Buffer {
  return frame(0x43, [Buffer.from('S'), cstr(st.name)]);
}

export const PARSE_COMPLETE = Buffer.from([0x31, 0, 0, 0, 4]);
export const CLOSE_COMPLETE = Buffer.from([0x33, 0, 0, 0, 4]);

/** Rebuilds a Bind with the statement name replaced. `nameStart/nameEnd` delimit the old name (without NUL). */
export function renameInBind(msg: Buffer, start: number, nameStart: number, nameEnd: number, end: number, serverName: string): Buffer {
  return frame(0x42, [msg.subarray(start + 5, nameStart), cstr(serverName), msg.subarray(nameEnd + 1, end)]);
}

export function describeStatementMessage(serverName: string): Buffer {
  return frame(0x44, [Buffer.from('S'), cstr(serverName)]);
}
