// The unnamed prepared statement in transaction and statement mode.
//
// PostgreSQL keeps a session's unnamed statement until the next Parse of it or
// a simple Query, across Syncs. By the time its client binds it again (pgx's
// describe-exec mode, libpq's PQprepare(conn, "", …) then PQexecPrepared) the
// client may hold another server, or another client may have parsed its own on
// the same one. So a client that uses it has one of these, and each server
// records whose statement it holds (ServerConn.unnamedOf and unnamedSeq).

import { Buffer } from 'node:buffer';

export const NO_NAMES: readonly string[] = Object.freeze([]);

export class UnnamedStatement {
  /** Bumped at every Parse and drop: a server holds the current statement only while its seq matches. */
  seq = 0;
  /** SqlFlag bits of the query text, and the custom settings it sets and resets: each Bind runs it again. */
  flags = 0;
  names: readonly string[] = NO_NAMES;
  resets: readonly string[] = NO_NAMES;
  // The Parse body after the name (query text, NUL, parameter types). It is
  // first a place in the chunk it arrived in; it is copied out only when it
  // must outlive that chunk, as most clients parse again before they bind again.
  private chunk: Buffer | null = null;
  private from = 0;
  private end = 0;
  private copy: Buffer | null = null;

  /** The client sent Parse "" with this body (`chunk[from, end)`, a chunk nothing writes to again). */
  parsed(chunk: Buffer, from: number, end: number, flags: number, names: readonly string[] = NO_NAMES, resets: readonly string[] = NO_NAMES): void {
    this.seq++;
    this.chunk = chunk;
    this.from = from;
    this.end = end;
    this.copy = null;
    this.flags = flags;
    this.names = names;
    this.resets = resets;
  }

  /** The client's session has no unnamed statement any more (a simple Query, a Close of it). */
  dropped(): void {
    this.seq++;
    this.chunk = null;
    this.copy = null;
    this.flags = 0;
    this.names = NO_NAMES;
    this.resets = NO_NAMES;
  }

  /** The body to parse again elsewhere; null when the client has no unnamed statement. */
  body(): Buffer | null {
    this.settle();
    return this.copy;
  }

  /** Copies the body out of its chunk, so that an idle client does not keep a read buffer alive. */
  settle(): void {
    if (this.chunk === null) return;
    this.copy = Buffer.from(this.chunk.subarray(this.from, this.end));
    this.chunk = null;
  }
}

/** What a server holds after an error made it skip messages: no client's statement, as far as Sluice knows. */
export const UNKNOWN_UNNAMED = new UnnamedStatement();
