// Keeps the order of responses the server owes for extended-protocol messages,
// so that Sluice can swallow replies to messages it injected (Parse/Close of
// its own statements) and emit replies it answers locally (ParseComplete,
// CloseComplete for a client's named statements) at exactly the right point.
//
// Rules from the protocol: every message's reply comes in order; after an
// ErrorResponse the server skips to the next Sync; ReadyForQuery ends a Sync
// (or a simple Query, whose replies are never split).
import type { Statement } from './prepared.js';

export const enum Pending {
  Parse,
  ParseOurs,
  Bind,
  Describe,
  Execute,
  Close,
  CloseOurs,
  Sync,
  Query,
  SyntheticParse,
  SyntheticClose,
  /** Bytes Sluice answers itself (a refusal), emitted in order. */
  SyntheticRaw,
}

export interface TrackerSink {
  /** A locally answered reply is due now. */
  emit(kind: Pending.SyntheticParse | Pending.SyntheticClose | Pending.SyntheticRaw, payload?: Buffer): void;
  /** A Parse (the client's or Sluice's) of a named statement failed or was skipped; `tag` names the client's Parse (0 for Sluice's). */
  notPrepared(st: Statement, tag: number): void;
  /** A client's Parse answered locally (the server already had the statement) was skipped after an error. */
  nameNotParsed(tag: number): void;
  /** A Close Sluice sent was skipped: the statement may still be on this server. */
  stillPrepared(st: Statement): void;
  /** The client's Parse of the unnamed statement with this sequence number failed or was skipped. */
  unnamedNotParsed(seq: number): void;
  /** A simple Query (or FunctionCall) was skipped after an error: it gets no ReadyForQuery. */
  querySkipped(): void;
}

/** A pipeline longer than this gets fresh arrays when it is answered, so one burst does not pin memory. */
const MAX_KEPT_SLOTS = 64;

export class ResponseTracker {
  // Three parallel queues, used from `head` to `tail`. The arrays keep their
  // slots between transactions: setting an array's length is a runtime call,
  // which cost more than the rest of the bookkeeping per transaction.
  private kinds: Pending[] = [];
  private stmts: (Statement | null)[] = [];
  private payloads: (Buffer | null)[] = [];
  /** For a client's Parse of the unnamed statement: its sequence number (see UnnamedStatement). */
  private tags: number[] = [];
  private head = 0;
  private tail = 0;
  /**
   * After an ErrorResponse whose Sync the client has not sent yet, the server
   * skips everything until that Sync: nothing pushed meanwhile gets a reply.
   */
  skipping = false;

  get empty(): boolean {
    return this.head >= this.tail;
  }

  reset(): void {
    this.clear();
    this.skipping = false;
  }

  /** Drops every entry, keeping the slots unless a long pipeline grew them. */
  private clear(): void {
    if (this.kinds.length > MAX_KEPT_SLOTS) {
      this.kinds = [];
      this.stmts = [];
      this.payloads = [];
      this.tags = [];
    } else {
      for (let i = this.head; i < this.tail; i++) {
        this.stmts[i] = null;
        this.payloads[i] = null;
      }
    }
    this.head = this.tail = 0;
  }

  push(kind: Pending, st: Statement | null, sink: TrackerSink, payload: Buffer | null = null, tag = 0): void {
    if (this.skipping && kind !== Pending.Sync && kind !== Pending.Query && kind !== Pending.SyntheticRaw) {
      // The server will skip this message; a skipped Parse/Close changes nothing there.
      this.forget(kind, st, sink, tag);
      return;
    }
    if (kind === Pending.Sync) this.skipping = false;
    const at = this.tail++;
    this.kinds[at] = kind;
    this.stmts[at] = st;
    this.payloads[at] = payload;
    this.tags[at] = tag;
    this.drainSynthetic(sink);
  }

  private pop(): void {
    const at = this.head++;
    this.stmts[at] = null; // a Statement or Buffer is not kept alive by a spent slot
    this.payloads[at] = null;
    if (this.head >= this.tail) this.clear();
  }

  /** Bookkeeping for a message that got no reply. */
  private forget(kind: Pending, st: Statement | null, sink: TrackerSink, tag: number): void {
    if (kind === Pending.Query) sink.querySkipped();
    else if (kind === Pending.SyntheticParse) sink.nameNotParsed(tag);
    else if (!st) {
      if (kind === Pending.Parse) sink.unnamedNotParsed(tag); // a client's Parse with no Statement is of the unnamed one
    } else if (kind === Pending.ParseOurs || kind === Pending.Parse) sink.notPrepared(st, tag);
    else if (kind === Pending.CloseOurs) sink.stillPrepared(st);
  }

  private drainSynthetic(sink: TrackerSink): void {
    while (!this.empty) {
      const k = this.kinds[this.head];
      if (k !== Pending.SyntheticParse && k !== Pending.SyntheticClose && k !== Pending.SyntheticRaw) return;
      const payload = this.payloads[this.head] ?? undefined;
      this.pop();
      sink.emit(k, payload);
    }
  }

  /**
   * Accounts for one server message; returns true when Sluice must swallow it
   * (a reply to something Sluice injected). Synthetic replies that become due
   * after this message are emitted by `after()`.
   */
  onServer(type: number, sink: TrackerSink): boolean {
    if (this.empty) return false;
    const head = this.kinds[this.head];
    if (head === Pending.Query) {
      if (type === 0x5a /* Z */) this.pop();
      return false;
    }
    switch (type) {
      case 0x31 /* 1 ParseComplete */:
        this.pop();
        return head === Pending.ParseOurs;
      case 0x33 /* 3 CloseComplete */:
        this.pop();
        return head === Pending.CloseOurs;
      case 0x32 /* 2 BindComplete */:
        this.pop();
        return false;
      case 0x54 /* T RowDescription */:
      case 0x6e /* n NoData */:
        if (head === Pending.Describe) this.pop();
        return false;
      case 0x43 /* C CommandComplete */:
      case 0x49 /* I EmptyQueryResponse */:
      case 0x73 /* s PortalSuspended */:
        if (head === Pending.Execute) this.pop();
        return false;
      case 0x45 /* E ErrorResponse */: {
        // The failing message, then everything up to the Sync, gets no reply.
        while (!this.empty && this.kinds[this.head] !== Pending.Sync) {
          this.forget(this.kinds[this.head], this.stmts[this.head], sink, this.tags[this.head]);
          this.pop();
        }
        if (this.empty) this.skipping = true; // the Sync is still to come
        return false;
      }
      case 0x5a /* Z ReadyForQuery */:
        while (!this.empty) {
          const k = this.kinds[this.head];
          if (k !== Pending.Sync) this.forget(k, this.stmts[this.head], sink, this.tags[this.head]);
          this.pop();
          if (k === Pending.Sync) break;
        }
        return false;
      default:
        return false;
    }
  }

  /**
   * COPY FROM STDIN began: Syncs already sent after its Execute reach the server
   * in copy mode and are ignored. Removes them; returns how many.
   */
  dropPendingSyncs(): number {
    if (this.empty || this.kinds[this.head] === Pending.Query) return 0;
    let kept = this.head;
    for (let i = this.head; i < this.tail; i++) {
      if (this.kinds[i] === Pending.Sync) continue;
      this.kinds[kept] = this.kinds[i];
      this.stmts[kept] = this.stmts[i];
      this.payloads[kept] = this.payloads[i];
      this.tags[kept] = this.tags[i];
      kept++;
    }
    const dropped = this.tail - kept;
    for (let i = kept; i < this.tail; i++) {
      this.stmts[i] = null;
      this.payloads[i] = null;
    }
    this.tail = kept;
    return dropped;
  }

  /** Emits the locally answered replies that are now at the head. */
  after(sink: TrackerSink): boolean {
    if (this.empty) return false;
    const k = this.kinds[this.head];
    if (k !== Pending.SyntheticParse && k !== Pending.SyntheticClose && k !== Pending.SyntheticRaw) return false;
    this.drainSynthetic(sink);
    return true;
  }

  /** True when a locally answered reply is now due. */
  get headIsSynthetic(): boolean {
    if (this.empty) return false;
    const k = this.kinds[this.head];
    return k === Pending.SyntheticParse || k === Pending.SyntheticClose || k === Pending.SyntheticRaw;
  }
}

// Trackers are lent to clients while they hold a server, not kept per client:
// most clients of a busy pooler sit idle, and a used tracker keeps its slots.
const spareTrackers: ResponseTracker[] = [];
const MAX_SPARE_TRACKERS = 1024;

/** An empty tracker for a client that has just been linked to a server. */
export function lendTracker(): ResponseTracker {
  return spareTrackers.pop() ?? new ResponseTracker();
}

/** Takes back a client's tracker when it gives up its server; what it still held is dropped. */
export function returnTracker(tracker: ResponseTracker): void {
  tracker.reset();
  if (spareTrackers.length < MAX_SPARE_TRACKERS) spareTrackers.push(tracker);
}
