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
}

export interface TrackerSink {
  /** A locally answered reply is due now. */
  emit(kind: Pending.SyntheticParse | Pending.SyntheticClose): void;
  /** An injected Parse failed or was skipped: the statement is not on this server. */
  notPrepared(st: Statement): void;
}

export class ResponseTracker {
  private kinds: Pending[] = [];
  private stmts: (Statement | null)[] = [];
  private head = 0;

  get empty(): boolean {
    return this.head >= this.kinds.length;
  }

  reset(): void {
    this.kinds.length = 0;
    this.stmts.length = 0;
    this.head = 0;
  }

  push(kind: Pending, st: Statement | null, sink: TrackerSink): void {
    if (this.empty) this.reset();
    this.kinds.push(kind);
    this.stmts.push(st);
    this.drainSynthetic(sink);
  }

  private pop(): void {
    this.head++;
    if (this.empty) this.reset();
  }

  private drainSynthetic(sink: TrackerSink): void {
    while (!this.empty) {
      const k = this.kinds[this.head];
      if (k !== Pending.SyntheticParse && k !== Pending.SyntheticClose) return;
      this.pop();
      sink.emit(k);
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
          const k = this.kinds[this.head];
          const st = this.stmts[this.head];
          if (k === Pending.ParseOurs && st) sink.notPrepared(st);
          this.pop();
        }
        return false;
      }
      case 0x5a /* Z ReadyForQuery */:
        while (!this.empty) {
          const k = this.kinds[this.head];
          this.pop();
          if (k === Pending.Sync) break;
        }
        return false;
      default:
        return false;
    }
  }

  /** Emits the locally answered replies that are now at the head. */
  after(sink: TrackerSink): boolean {
    if (this.empty) return false;
    const k = this.kinds[this.head];
    if (k !== Pending.SyntheticParse && k !== Pending.SyntheticClose) return false;
    this.drainSynthetic(sink);
    return true;
  }

  /** True when a locally answered reply is now due. */
  get headIsSynthetic(): boolean {
    if (this.empty) return false;
    const k = this.kinds[this.head];
    return k === Pending.SyntheticParse || k === Pending.SyntheticClose;
  }
}
