// The per-client state machine: startup, authentication, welcome, then the
// query loop that links the client to a server for a session, a transaction
// or a statement, and unlinks it only when the server is known clean.
import { Buffer } from 'node:buffer';
import { timingSafeEqual } from 'node:crypto';
import type net from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Duplex } from 'node:stream';
import { MessageReader, Verdict, type FrameSink } from '../protocol/framer.js';
import { ProtocolError } from '../protocol/errors.js';
import { StartupReader, NEWEST_MINOR, type StartupPacket } from '../protocol/startup.js';
import {
  AUTH_OK,
  SSL_NO,
  SSL_YES,
  errorResponse,
  negotiateProtocolVersion,
  parseErrorBody,
  parseParameterStatus,
  readyForQuery,
  welcome,
  type ErrorFields,
} from '../protocol/messages.js';
import type { DatabaseEntry, PoolMode } from '../config/types.js';
import type { Pool, Waiter } from '../pool/pool.js';
import { PoolError } from '../pool/errors.js';
import type { LinkedClient, ServerConn } from '../pool/server_conn.js';
import type { Tickable } from '../pool/pooler.js';
import type { Slotted } from '../pool/client_slots.js';
import { ClientParams, clientMaySet, NO_CLIENT_PARAMS } from '../session/params.js';
import { classifySqlBytes, customResetNames, customSettingNames, SqlFlag } from '../session/classify.js';
import {
  CLOSE_COMPLETE,
  CLOSE_UNNAMED,
  PARSE_COMPLETE,
  closeStatementMessage,
  describeStatementMessage,
  parseMessage,
  parseUnnamedMessage,
  renameInBind,
  type Statement,
} from '../session/prepared.js';
import { lendTracker, Pending, ResponseTracker, returnTracker, type TrackerSink } from '../session/tracker.js';
import { NO_NAMES, UNKNOWN_UNNAMED, UnnamedStatement } from '../session/unnamed.js';
import { parseProbe, pinReasons, probeSql, type SessionState } from '../session/state.js';
import type { ClientContext } from './context.js';
import { randomKey } from './random_pool.js';
import { welcomeParameters } from './welcome.js';
import { Wire, type AcceptedHandle, type WireSink } from '../net/wire.js';
import { now } from '../net/clock.js';

export type ClientState = 'startup' | 'auth' | 'welcome' | 'idle' | 'waiting' | 'linking' | 'active' | 'closed';

// Client message types read whole; CopyData ('d') streams through.
const CLIENT_INSPECT = (() => {
  const t = new Uint8Array(256).fill(1);
  t[0x64] = 0;
  return t;
})();

let nextClientId = 1;
// Shared initial values; openBatch() replaces the batch arrays before anything is pushed (frozen to fail loudly otherwise).
const NO_PINS: readonly string[] = Object.freeze([]);
const NO_KEY = Buffer.alloc(0);
const NO_BATCH = Object.freeze([]) as unknown as Array<[Buffer, Pending]>;
const NO_STATEMENTS = Object.freeze([]) as unknown as Statement[];

const TERMINATED = 'client sent Terminate';
function destroyWire(wire: Wire): void {
  wire.destroy();
}

/** Statements whose text is read for the custom settings they set or reset. */
const SETTING_FLAGS = SqlFlag.SessionSet | SqlFlag.DiscardAll;

/** The largest message before login (PostgreSQL's PG_MAX_AUTH_TOKEN_LENGTH is 65535 bytes of token). */
const AUTH_MAX_MESSAGE = 65_536 + 4;

export class ClientConn implements FrameSink, LinkedClient, Waiter, Tickable, TrackerSink, WireSink, Slotted {
  readonly id = nextClientId++;
  /** Index in the pooler's client registry (src/pool/client_slots.ts); -1 when not registered. */
  slot = -1;
  state: ClientState = 'startup';
  readonly connectedAt = now();
  /** Last time the client sent something or a query finished (ms). */
  lastActivity = this.connectedAt;
  waitStart = 0;
  user = '';
  database = '';
  appName = '';
  protocolMinor = 0;
  pool: Pool | null = null;
  db: DatabaseEntry | null = null;
  server: ServerConn | null = null;
  /** Set at startup; until then a shared empty set that nothing writes to. */
  params = NO_CLIENT_PARAMS;
  /** Our own cancel key for this client. */
  cancelPid = 0;
  cancelKey: Buffer = NO_KEY;
  tls = false;
  /** The verified client certificate's CN (auth_type cert). */
  certCommonName: string | undefined;
  /** Null for a client accepted as a bare handle (no TLS possible): the Wire is all there is. */
  socket: net.Socket | null;
  /** Reads and writes go through here (the handle directly once logged in). */
  readonly wire: Wire;
  readonly isUnix: boolean;
  /** The peer's address, asked of the kernel at first use (hba, logs, SHOW CLIENTS), not at accept. */
  private peer: { address: string; port: number } | null = null;
  closeReason = '';
  /** Counted in the per-database and per-user client limits (the context's admit and forget keep this). */
  admitted = false;

  private startupReader: StartupReader | null = new StartupReader();
  /** Made at the first regular message: most clients of a busy pooler sit idle after login. */
  private get reader(): MessageReader {
    // Before login only authentication messages come, and PostgreSQL caps those at 64 KiB:
    // an unauthenticated client must not make Sluice buffer max_packet_size.
    const max = this.state === 'startup' || this.state === 'auth' ? AUTH_MAX_MESSAGE : this.ctx.settings().max_packet_size;
    return (this.readerObj ??= new MessageReader(this, CLIENT_INSPECT, max));
  }
  private readerObj: MessageReader | null = null;
  // Transaction-boundary tracking while linked.
  private pendingReplies = 0; // ReadyForQuery messages still owed by the server
  private unsynced = false; // extended-protocol messages sent since the last Sync
  private inCopy = false;
  /** COPY FROM STDIN in progress: client Syncs are ignored by the server until CopyDone/CopyFail. */
  private copyIn = false;
  private linkStart = 0;
  private queryStart = 0;
  private cancelReason = '';
  private statementViolation = false;
  private sentFatal = false;
  // Transaction-mode session emulation.
  /** The client's named statements (protocol level). */
  get statements(): Map<string, Statement> {
    return (this.statementsMap ??= new Map());
  }
  private statementsMap: Map<string, Statement> | null = null;
  // Idle clients are most clients: what only a linked client needs is made on first use
  // (the tracker is lent at link and returned at unlink).
  private get tracker(): ResponseTracker {
    return (this.trackerObj ??= new ResponseTracker());
  }
  private trackerObj: ResponseTracker | null = null;
  /** SqlFlag bits seen since the server was linked. */
  private linkFlags = 0;
  /** Made at the client's first Parse of the unnamed statement, which outlives a Sync (see useUnnamed()). */
  private unnamed: UnnamedStatement | null = null;
  /** The client's named Parses sent in this link, by tracker tag, until the link ends. */
  private parsesInLink: Map<number, string> | null = null;
  private parseTag = 0;
  /** The client's statements when a DISCARD ALL / DEALLOCATE ALL was sent: what its success removes. */
  private dropAllSnapshot: Map<string, Statement> | null = null;
  /** Custom settings this link's statements RESET (`*` for all): their '' is no value (see parseProbe). */
  private linkResets: string[] | null = null;
  /** Custom settings (`app.tenant`) this link's statements set: the probe asks for them by name. */
  private linkSettingNames: string[] | null = null;
  /** A set_config whose setting name is not a literal ran: what it set cannot be asked for, so the client keeps its server. */
  private unknownSetting = false;
  /** Why the client holds its server beyond a transaction; empty when not pinned. */
  pinReasons: readonly string[] = NO_PINS;
  private loaded = false;
  private loggedPins: Set<string> | null = null;
  /** Skipping messages until Sync after refusing one (pin_policy = error). */
  private skipToSync = false;
  // Self-healing after schema changes: the current extended batch as sent to the server.
  private batch: Array<[Buffer, Pending]> = NO_BATCH;
  private batchStatements: Statement[] = NO_STATEMENTS;
  private batchOpen = false;
  /** The batch began with nothing in flight and no open transaction, so replaying it is safe. */
  private batchEligible = false;
  /** Some reply of this batch already reached the client. */
  private batchReplied = false;
  private healing = false;
  private healed = false;

  /** Either a net.Socket, or (from a listener with client TLS off) the accepted handle itself. */
  constructor(
    socket: net.Socket | null,
    private readonly ctx: ClientContext,
    accepted: AcceptedHandle | null = null,
  ) {
    this.socket = socket;
    socket?.setNoDelay?.(true);
    this.wire = new Wire(socket, this, accepted);
    this.isUnix = this.wire.unixDomain;
  }

  get remoteAddress(): string {
    return this.peerAddress().address;
  }

  get remotePort(): number {
    return this.peerAddress().port;
  }

  private peerAddress(): { address: string; port: number } {
    if (this.peer) return this.peer;
    if (this.isUnix) return (this.peer = { address: 'unix', port: 0 });
    const remote = this.wire.remote;
    const peer = { address: remote.address ?? '', port: remote.port ?? 0 };
    // Not cached when unknown (the connection already closed): nothing will ask again that matters.
    if (remote.address !== undefined) this.peer = peer;
    return peer;
  }

  /** Our end of the connection (SHOW CLIENTS); asked of the kernel only when shown. */
  get local(): { address: string | undefined; port: number | undefined } {
    return this.wire.local;
  }

  onWireError(err: Error): void {
    this.close(`client socket error: ${err.message}`);
  }

  onWireClose(): void {
    this.close('client closed the connection');
  }

  onWireDrain(): void {
    this.server?.wire.resume();
  }

  /**
   * Hands the socket to TLS: after an SSLRequest (answer 'S' first) or for a
   * direct TLS handshake (PostgreSQL 17's sslnegotiation=direct, `replay` holds
   * the bytes already read). Startup begins again on the encrypted socket.
   */
  startTls(upgrade: (raw: net.Socket) => Promise<TLSSocket>, direct: Buffer | null): void {
    const raw = this.socket;
    if (!raw) throw new Error('startTls() on a client accepted as a bare handle');
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    raw.removeAllListeners('error');
    raw.removeAllListeners('drain');
    raw.on('error', () => {});
    if (!direct) raw.write(SSL_YES);
    upgrade(direct ? replaying(raw, direct) : raw).then(
      (secure) => {
        if (this.state === 'closed') {
          secure.destroy();
          return;
        }
        if (direct && secure.alpnProtocol !== 'postgresql') {
          // PostgreSQL requires ALPN for direct TLS, so that a TLS client of another protocol cannot be confused for ours.
          secure.destroy();
          this.close('direct TLS without ALPN "postgresql"');
          return;
        }
        this.socket = secure;
        this.wire.replace(secure);
        this.tls = true;
        this.certCommonName = this.ctx.verifiedCommonName?.(secure);
        secure.setNoDelay?.(true);
        this.startupReader = new StartupReader();
      },
      (err: unknown) => {
        raw.destroy();
        this.close(`TLS handshake failed: ${err instanceof Error ? err.message : String(err)}`);
      },
    );
  }

  get mode(): PoolMode {
    return this.pool?.settings.mode ?? 'session';
  }

  /** Transaction and statement modes emulate session features; session mode passes everything through. */
  private get emulating(): boolean {
    return this.pool !== null && this.pool.settings.mode !== 'session';
  }

  get pinned(): boolean {
    return this.pinReasons.length > 0;
  }

  // ---------------------------------------------------------------- input
  onWireData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    if (this.startupReader) {
      this.onStartupData(chunk);
      return;
    }
    this.reader.push(chunk);
  }

  private onStartupData(chunk: Buffer): void {
    // A TLS ClientHello (record type 22) instead of a startup packet: direct TLS.
    if (chunk[0] === 0x16 && !this.tls && this.socket && this.ctx.tlsUpgrade) {
      this.startupReader = null;
      this.ctx.tlsUpgrade(this, chunk);
      return;
    }
    let data: Buffer | null = chunk;
    while (data && this.startupReader && this.state === 'startup') {
      let got: { packet: StartupPacket; rest: Buffer } | null;
      try {
        got = this.startupReader.push(data);
      } catch (err) {
        this.fatal(protocolFields(err));
        return;
      }
      if (!got) return;
      data = got.rest.length ? got.rest : null;
      const p = got.packet;
      if (p.kind === 'ssl' || p.kind === 'gssenc') {
        // Bytes sent after an SSLRequest, before our answer, would be injected plaintext.
        if (data) {
          this.fatal({ code: '08P01', message: 'unexpected data after SSL/GSSENC request' });
          return;
        }
        // A bare handle was accepted while client TLS was off (a RELOAD may have turned it on since): answer 'N'.
        const upgrade = p.kind === 'ssl' && !this.tls && this.socket ? this.ctx.tlsUpgrade : undefined;
        if (upgrade) {
          this.startupReader = null; // the TLS layer gives us a new socket
          upgrade(this, null);
          return;
        }
        // No TLS here (or GSSAPI): the client may go on in plain text; a TLS-only setup refuses it after startup.
        this.wire.write(SSL_NO);
        continue;
      }
      if (p.kind === 'cancel') {
        this.startupReader = null;
        this.ctx.cancel(p.pid, p.key);
        this.close('cancel request handled', false);
        return;
      }
      this.startupReader = null;
      // A login that completes synchronously (trust, known pool) leaves in one write.
      this.wire.cork();
      try {
        this.onStartup(p);
      } finally {
        this.wire.uncork();
      }
      this.wire.accelerate(); // past startup: no TLS upgrade can follow
      if (data) this.reader.push(data);
    }
  }

  private onStartup(p: Extract<StartupPacket, { kind: 'startup' }>): void {
    if (!this.tls && this.ctx.tlsRequired(this)) {
      this.fatal({ code: '28000', message: 'SSL required: this server accepts only TLS connections (client_tls_sslmode)' });
      return;
    }
    this.protocolMinor = Math.min(p.minor, NEWEST_MINOR);
    if (p.minor > NEWEST_MINOR || p.protocolOptions.length > 0) {
      this.wire.write(negotiateProtocolVersion(this.protocolMinor, p.protocolOptions));
    }
    // Interned by the startup parser: thousands of clients share one copy of each name.
    this.user = p.params.get('user') ?? '';
    this.database = p.params.get('database') || this.user;
    this.appName = p.params.get('application_name') ?? '';
    const parsed = ClientParams.fromStartup(p.params, this.ctx.settings().ignore_startup_parameters, p.shared);
    if (typeof parsed === 'string') {
      this.fatal({ code: '08P01', message: parsed });
      return;
    }
    this.params = parsed;
    const refusal = this.ctx.admit(this);
    if (refusal) {
      this.fatal(refusal);
      return;
    }
    this.state = 'auth';
    this.ctx.authenticate(this);
  }

  /** The auth layer's verdict: null admits the client. */
  authDone(err: ErrorFields | null): void {
    if (this.state !== 'auth') return;
    if (err) this.fatal(err);
    else this.onAuthenticated();
  }

  /** Sends an auth message during the exchange (used by the auth layer). */
  sendAuth(msg: Buffer): void {
    if (this.state === 'auth') this.wire.write(msg);
  }

  /** The auth layer's hook for PasswordMessage/SASL responses. */
  onAuthMessage: ((type: number, body: Buffer) => void) | null = null;

  /** Trust admitted the client with no exchange: AuthenticationOk is owed (see onAuthenticated). */
  private authOkOwed = false;

  /** The auth layer's fast path (trust): AuthenticationOk goes out with what follows it. */
  deferAuthOk(): void {
    if (this.state === 'auth') this.authOkOwed = true;
  }

  private onAuthenticated(): void {
    this.readerObj?.setMaxPacketSize(this.ctx.settings().max_packet_size);
    const admin = this.ctx.isAdminDatabase(this.database);
    const db = admin ? undefined : this.ctx.findDatabase(this.database);
    const pool = db ? this.ctx.poolFor(db, this.user) : null;
    // An owed AuthenticationOk rides in the welcome's own Buffer when the welcome goes now; otherwise it goes alone, first.
    const okInWelcome = this.authOkOwed && pool !== null && pool.params !== null;
    if (this.authOkOwed && !okInWelcome) this.wire.write(AUTH_OK);
    this.authOkOwed = false;
    if (admin) {
      this.state = 'idle';
      this.ctx.startAdmin(this);
      return;
    }
    if (!db || !pool) {
      this.fatal({ code: '3D000', message: `no such database: ${this.database}` });
      return;
    }
    this.db = db;
    this.pool = pool;
    pool.clientCount++;
    pool.stats.clientConnectCount++;
    this.state = 'welcome';
    // Known once the pool has logged in to a server: then no callback to make.
    if (pool.params) {
      this.sendWelcome(okInWelcome);
      return;
    }
    pool.whenParamsKnown((err) => {
      if (this.state !== 'welcome') return;
      if (err) this.failWithPoolError(err);
      else this.sendWelcome(false);
    });
  }

  private sendWelcome(authOk: boolean): void {
    const pool = this.pool!;
    this.cancelPid = this.ctx.registerCancel(this);
    this.cancelKey = randomKey(this.protocolMinor >= 2 ? 32 : 4);
    this.state = 'idle';
    this.lastActivity = now();
    this.wire.write(welcome(welcomeParameters(pool.params, this.params, this.appName), this.cancelPid, this.cancelKey, authOk));
    this.wire.accelerate();
  }

  /** Constant-time check of a cancel key against ours. */
  matchesCancelKey(key: Buffer): boolean {
    if (key.length !== this.cancelKey.length || this.cancelKey.length === 0) return false;
    return timingSafeEqual(key, this.cancelKey);
  }

  // ---------------------------------------------------------------- client frames
  onFrame(type: number, data: Buffer, start: number, end: number): Verdict {
    switch (this.state) {
      case 'auth':
        if (this.onAuthMessage) this.onAuthMessage(type, Buffer.from(data.subarray(start + 5, end)));
        else this.fatal({ code: '08P01', message: 'unexpected message during authentication' });
        return Verdict.Consumed;
      case 'active':
        return this.onLinkedFrame(type, data, start, end);
      case 'idle':
        return this.onIdleFrame(type, data, start, end);
      case 'waiting':
      case 'linking':
      case 'welcome':
        return Verdict.Stop;
      default:
        return Verdict.Consumed;
    }
  }

  private onIdleFrame(type: number, data: Buffer, start: number, end: number): Verdict {
    this.lastActivity = now();
    if (this.skipToSync) {
      // After a refused extended-protocol message: drop the rest of the batch, like a server would.
      if (type === 0x53 /* S */) {
        this.skipToSync = false;
        this.wire.write(readyForQuery('I'));
      }
      return Verdict.Consumed;
    }
    if (type === 0x58 /* X */) {
      this.close(TERMINATED, false);
      return Verdict.Consumed;
    }
    if (this.ctx.adminQuery && this.pool === null) {
      this.ctx.adminQuery(this, type, data, start, end);
      return Verdict.Consumed;
    }
    if (type === 0x53 /* Sync with nothing outstanding */) {
      this.wire.write(readyForQuery('I'));
      return Verdict.Consumed;
    }
    if (type === 0x48 /* Flush with nothing outstanding */) return Verdict.Consumed;
    if (type === 0x50 /* Parse */ && this.emulating && data[start + 5] !== 0) {
      // A named statement needs no server yet: register it, answer now, prepare lazily at Bind/Describe.
      // Nothing is in flight for an unlinked client, so the reply is in order.
      const nameEnd = data.indexOf(0, start + 5);
      const name = data.toString('utf8', start + 5, nameEnd);
      if (this.refuseDuplicateName(name)) return Verdict.Consumed;
      const st = this.ctx.statements.intern(data.subarray(nameEnd + 1, end));
      if (st.flags !== 0 && this.refuseByPolicy(st.flags, false)) return Verdict.Consumed;
      this.statements.set(name, st);
      this.pool!.stats.preparedParses++;
      this.wire.write(PARSE_COMPLETE);
      return Verdict.Consumed;
    }
    if (type === 0x43 /* Close */ && this.emulating && data[start + 5] === 0x53 && data[start + 6] !== 0) {
      this.statements.delete(data.toString('utf8', start + 6, end - 1));
      this.wire.write(CLOSE_COMPLETE);
      return Verdict.Consumed;
    }
    // Anything else needs a server.
    this.requestServer();
    if (this.state === 'active') return this.onLinkedFrame(type, data, start, end);
    return Verdict.Stop;
  }

  private onLinkedFrame(type: number, data: Buffer, start: number, end: number): Verdict {
    if (this.skipToSync) {
      if (type !== 0x53 /* S */) return Verdict.Consumed;
      // The Sync itself goes on: the server answers it in its own state, and
      // leaves the skip of an error it may have had meanwhile.
      this.skipToSync = false;
    }
    const emulating = this.emulating;
    switch (type) {
      case 0x51 /* Q */:
        // After an error the server skips everything up to Sync, a simple Query too: no reply, no effect.
        if (emulating && this.trackerObj?.skipping === true) break;
        this.pendingReplies++;
        if (this.queryStart === 0) this.queryStart = now();
        if (emulating) {
          const flags = classifySqlBytes(data, start + 5, end);
          if (flags !== 0 && this.refuseByPolicy(flags, true)) return Verdict.Consumed;
          if (flags & SETTING_FLAGS) {
            const sql = data.toString('utf8', start + 5, end - 1);
            this.willRun(flags, customSettingNames(sql), customResetNames(sql));
          } else this.willRun(flags);
          this.tracker.push(Pending.Query, null, this);
          // A simple Query drops the unnamed statement, the client's and the server's.
          this.unnamed?.dropped();
          this.server!.unnamedOf = null;
        }
        break;
      case 0x46 /* F FunctionCall */:
        if (emulating && this.trackerObj?.skipping === true) break;
        // Answered like a simple Query; the function is named by OID only, so any state may follow.
        this.pendingReplies++;
        if (this.queryStart === 0) this.queryStart = now();
        if (emulating) {
          this.linkFlags |= SqlFlag.Unknown;
          this.tracker.push(Pending.Query, null, this);
        }
        break;
      case 0x53 /* S */:
        // PostgreSQL ignores Sync during COPY FROM STDIN (libpq sends one before the data).
        if (this.copyIn) break;
        this.pendingReplies++;
        this.unsynced = false;
        if (emulating) {
          this.tracker.push(Pending.Sync, null, this);
          if (this.batchOpen) this.record(data.subarray(start, end), Pending.Sync);
          this.batchOpen = false;
        }
        break;
      case 0x50 /* P */:
        this.unsynced = true;
        if (this.queryStart === 0) this.queryStart = now();
        if (emulating) return this.onParse(data, start, end);
        break;
      case 0x42 /* B */:
        this.unsynced = true;
        if (this.queryStart === 0) this.queryStart = now();
        if (emulating) return this.onBind(data, start, end);
        break;
      case 0x44 /* D */:
        this.unsynced = true;
        if (emulating) return this.onDescribe(data, start, end);
        break;
      case 0x43 /* C */:
        this.unsynced = true;
        if (emulating) return this.onClose(data, start, end);
        break;
      case 0x45 /* E */:
        this.unsynced = true;
        if (emulating) {
          this.tracker.push(Pending.Execute, null, this);
          this.record(data.subarray(start, end), Pending.Execute);
        }
        break;
      case 0x48 /* H */:
        if (!this.copyIn) this.unsynced = true;
        break;
      case 0x63 /* c CopyDone */:
      case 0x66 /* f CopyFail */:
        this.copyIn = false;
        break;
      case 0x58 /* X */:
        // Queries before it in this chunk are still gathered for forwarding: send them, as PostgreSQL would run them.
        this.reader.flush();
        this.close(TERMINATED, false);
        return Verdict.Consumed;
      default:
        break;
    }
    this.pool!.stats.bytesReceived += end - start;
    return Verdict.Forward;
  }

  // ---------------------------------------------------------------- prepared statements
  /** Notes an extended-protocol message of the current batch (a view or a rewritten copy). */
  private record(msg: Buffer, kind: Pending): void {
    this.openBatch();
    if (this.batchEligible) this.batch.push([msg, kind]);
  }

  private openBatch(): void {
    if (this.batchOpen) return;
    this.batchOpen = true;
    this.batch = [];
    this.batchStatements = [];
    this.batchEligible = this.pendingReplies === 0 && this.server!.txStatus === 'I';
    this.batchReplied = false;
    this.healed = false;
  }

  private onParse(data: Buffer, start: number, end: number): Verdict {
    const nameEnd = data.indexOf(0, start + 5);
    if (nameEnd === start + 5) {
      const flags = classifySqlBytes(data, nameEnd + 1, end);
      if (flags !== 0 && this.refuseByPolicy(flags, false)) return Verdict.Consumed;
      this.linkFlags |= flags;
      const sql = flags & SETTING_FLAGS ? data.toString('utf8', nameEnd + 1, data.indexOf(0, nameEnd + 1)) : '';
      const unnamed = (this.unnamed ??= new UnnamedStatement());
      unnamed.parsed(data, nameEnd + 1, end, flags, sql ? customSettingNames(sql) : NO_NAMES, sql ? customResetNames(sql) : NO_NAMES);
      // Skipped after an error, the Parse changes nothing there (the tracker then drops the client's too).
      if (this.trackerObj?.skipping !== true) {
        this.server!.unnamedOf = unnamed;
        this.server!.unnamedSeq = unnamed.seq;
      }
      this.tracker.push(Pending.Parse, null, this, null, unnamed.seq);
      this.record(data.subarray(start, end), Pending.Parse);
      return Verdict.Forward;
    }
    // Skipped by the server after an error: no reply, no effect.
    if (this.trackerObj?.skipping === true) return Verdict.Consumed;
    const name = data.toString('utf8', start + 5, nameEnd);
    if (this.refuseDuplicateName(name)) return Verdict.Consumed;
    const st = this.ctx.statements.intern(data.subarray(nameEnd + 1, end));
    if (st.flags !== 0 && this.refuseByPolicy(st.flags, false)) return Verdict.Consumed;
    this.openBatch();
    this.batchEligible = false; // a Parse reply goes to the client at once
    this.statements.set(name, st);
    this.dropAllSnapshot?.delete(name); // defined after a pending DISCARD ALL: it outlives it
    // If this Parse fails, or the server skips it after an error, the name goes again (see forgetParse).
    const tag = ++this.parseTag;
    (this.parsesInLink ??= new Map()).set(tag, name);
    this.pool!.stats.preparedParses++;
    this.reader.flush();
    const server = this.server!;
    if (server.statements.has(st)) {
      this.pool!.stats.preparedHits++;
      this.tracker.push(Pending.SyntheticParse, st, this, null, tag);
    } else {
      this.pool!.stats.preparedMisses++;
      this.prepareOnServer(server, st, Pending.Parse, tag);
    }
    return Verdict.Consumed;
  }

  /** The client's Parse with this tag did not take effect: its name is not the client's after all. */
  private forgetParse(tag: number, st: Statement | null): void {
    const name = this.parsesInLink?.get(tag);
    if (name === undefined) return;
    this.parsesInLink!.delete(tag);
    if (st === null || this.statements.get(name) === st) this.statements.delete(name);
  }

  /** Custom settings the probe asks for: this link's, the client's, and those the server holds from earlier clients. */
  private probedSettingNames(server: ServerConn): string[] {
    const names = new Set(this.linkSettingNames);
    this.linkSettingNames = null;
    for (const key of this.params.wanted.keys()) if (key.includes('.')) names.add(key);
    for (const key of server.settings.keys()) if (key.includes('.')) names.add(key);
    return [...names];
  }

  /**
   * A statement is about to run on the linked server: its SqlFlag bits, and
   * the custom settings it sets and resets (customSettingNames,
   * customResetNames), which the probe after the transaction asks about.
   */
  private willRun(flags: number, sets: readonly string[] = NO_NAMES, resets: readonly string[] = NO_NAMES): void {
    this.linkFlags |= flags;
    for (const name of sets) {
      if (name === '?') this.unknownSetting = true;
      else if (!(this.linkSettingNames ??= []).includes(name)) this.linkSettingNames.push(name);
    }
    if (resets.length !== 0) (this.linkResets ??= []).push(...resets);
    if (flags & (SqlFlag.DiscardAll | SqlFlag.DeallocateAll)) {
      // PostgreSQL may refuse it (DISCARD ALL in a transaction block), and statements
      // pipelined after it are prepared anew: decide nothing until its reply.
      this.server!.statements.forgetAll();
      this.dropAllSnapshot = new Map(this.statements);
    }
  }

  /** The server holds this client's current unnamed statement (or neither has one). */
  private holdsMyUnnamed(server: ServerConn): boolean {
    const mine = this.unnamed;
    return server.unnamedOf === mine && (mine === null || server.unnamedSeq === mine.seq);
  }

  /**
   * A Bind or Describe of the unnamed statement on a server whose unnamed
   * statement is not this client's: Parse the client's text first (its reply
   * swallowed), or, when the client has none, Close the server's so that
   * PostgreSQL itself reports that there is no unnamed statement.
   */
  private useUnnamed(msg: Buffer, kind: Pending.Bind | Pending.Describe): Verdict {
    const server = this.server!;
    const mine = this.unnamed;
    const body = mine?.body() ?? null;
    this.reader.flush();
    this.openBatch();
    this.batchEligible = false;
    if (body === null) {
      server.wire.write(CLOSE_UNNAMED);
      this.tracker.push(Pending.CloseOurs, null, this);
      server.unnamedOf = null;
    } else {
      server.wire.write(parseUnnamedMessage(body));
      this.tracker.push(Pending.ParseOurs, null, this);
      server.unnamedOf = mine;
      server.unnamedSeq = mine!.seq;
    }
    server.wire.write(msg);
    this.tracker.push(kind, null, this);
    this.record(msg, kind);
    return Verdict.Consumed;
  }

  /** Sends Parse for `st` (closing LRU victims first); the reply is the client's (Parse) or swallowed (ParseOurs). */
  private prepareOnServer(server: ServerConn, st: Statement, kind: Pending.Parse | Pending.ParseOurs, tag = 0): void {
    const max = this.ctx.settings().max_prepared_statements;
    if (max > 0) {
      for (const victim of server.statements.evictFor(max, st)) {
        server.wire.write(closeStatementMessage(victim));
        this.tracker.push(Pending.CloseOurs, victim, this);
        this.pool!.stats.preparedEvictions++;
      }
    }
    if (server.statements.takeUnsure(st)) {
      server.wire.write(closeStatementMessage(st));
      this.tracker.push(Pending.CloseOurs, st, this);
    }
    server.wire.write(parseMessage(st));
    server.statements.add(st);
    this.tracker.push(kind, st, this, null, tag); // a failed or skipped Parse un-records it
  }

  /** The statement a named Bind/Describe refers to, prepared on the server; null for unnamed or unknown. */
  private ensurePrepared(name: string): Statement | null {
    const st = this.statements.get(name);
    if (!st) return null;
    const server = this.server!;
    if (server.statements.has(st)) {
      this.pool!.stats.preparedHits++;
    } else {
      this.pool!.stats.preparedMisses++;
      this.prepareOnServer(server, st, Pending.ParseOurs);
    }
    return st;
  }

  private onBind(data: Buffer, start: number, end: number): Verdict {
    const portalEnd = data.indexOf(0, start + 5);
    const nameEnd = data.indexOf(0, portalEnd + 1);
    if (nameEnd === portalEnd + 1 || nameEnd < 0) {
      const unnamed = this.unnamed;
      if (unnamed !== null) {
        // Running it again does again what it does.
        this.willRun(unnamed.flags, unnamed.names, unnamed.resets);
      }
      if (nameEnd > 0 && !this.holdsMyUnnamed(this.server!) && this.trackerObj?.skipping !== true) return this.useUnnamed(data.subarray(start, end), Pending.Bind);
      this.tracker.push(Pending.Bind, null, this);
      this.record(data.subarray(start, end), Pending.Bind);
      return Verdict.Forward;
    }
    this.reader.flush();
    this.openBatch(); // before any injected Parse
    const st = this.ensurePrepared(data.toString('utf8', portalEnd + 1, nameEnd));
    if (st) this.willRun(st.flags, st.settingNames, st.resetNames); // each run may create session state
    const server = this.server!;
    const msg = st ? renameInBind(data, start, portalEnd + 1, nameEnd, end, st.name) : data.subarray(start, end); // unknown name: PostgreSQL reports it
    server.wire.write(msg);
    this.tracker.push(Pending.Bind, null, this);
    this.record(msg, Pending.Bind);
    if (st && !this.batchStatements.includes(st)) this.batchStatements.push(st);
    return Verdict.Consumed;
  }

  private onDescribe(data: Buffer, start: number, end: number): Verdict {
    if (data[start + 5] === 0x53 /* S */ && data[start + 6] === 0 && !this.holdsMyUnnamed(this.server!) && this.trackerObj?.skipping !== true) {
      return this.useUnnamed(data.subarray(start, end), Pending.Describe);
    }
    if (data[start + 5] !== 0x53 /* S */ || data[start + 6] === 0) {
      this.tracker.push(Pending.Describe, null, this);
      this.record(data.subarray(start, end), Pending.Describe);
      return Verdict.Forward;
    }
    this.reader.flush();
    this.openBatch();
    const st = this.ensurePrepared(data.toString('utf8', start + 6, end - 1));
    const msg = st ? describeStatementMessage(st.name) : data.subarray(start, end);
    this.server!.wire.write(msg);
    this.tracker.push(Pending.Describe, null, this);
    this.record(msg, Pending.Describe);
    if (st && !this.batchStatements.includes(st)) this.batchStatements.push(st);
    return Verdict.Consumed;
  }

  private onClose(data: Buffer, start: number, end: number): Verdict {
    if (data[start + 5] !== 0x53 /* S */ || data[start + 6] === 0) {
      if (data[start + 5] === 0x53 && !this.tracker.skipping) {
        // Closing the unnamed statement drops it on the server, whoever parsed it there.
        this.unnamed?.dropped();
        this.server!.unnamedOf = null;
      }
      this.tracker.push(Pending.Close, null, this);
      this.record(data.subarray(start, end), Pending.Close);
      return Verdict.Forward;
    }
    this.openBatch();
    this.batchEligible = false;
    if (this.tracker.skipping) return Verdict.Consumed; // skipped by the server too: no effect, no reply
    // A client's Close of its own statement is answered locally; the server keeps it for others.
    this.statements.delete(data.toString('utf8', start + 6, end - 1));
    this.reader.flush();
    this.tracker.push(Pending.SyntheticClose, null, this);
    return Verdict.Consumed;
  }

  /** TrackerSink: a locally answered reply is due. */
  emit(kind: Pending.SyntheticParse | Pending.SyntheticClose | Pending.SyntheticRaw, payload?: Buffer): void {
    this.wire.write(kind === Pending.SyntheticParse ? PARSE_COMPLETE : kind === Pending.SyntheticClose ? CLOSE_COMPLETE : payload!);
  }

  /** TrackerSink: a Parse failed or was skipped: the next one of the statement closes it first. */
  notPrepared(st: Statement, tag: number): void {
    this.server?.statements.markUnsure(st);
    if (tag !== 0) this.forgetParse(tag, st);
  }

  /** TrackerSink: a client's Parse answered locally was skipped after an error. */
  nameNotParsed(tag: number): void {
    this.forgetParse(tag, null);
  }

  /** TrackerSink: the client's unnamed Parse failed or was skipped, so (to Sluice's knowledge) it has none. */
  unnamedNotParsed(seq: number): void {
    if (this.unnamed?.seq === seq) this.unnamed.dropped(); // a later Parse of it stands
  }

  /** TrackerSink: a simple Query was skipped after an error: its ReadyForQuery will not come. */
  querySkipped(): void {
    if (this.pendingReplies > 0) this.pendingReplies--;
  }

  /** TrackerSink: a Close of ours was skipped: the statement may still be there. */
  stillPrepared(st: Statement): void {
    this.server?.statements.markUnsure(st);
  }

  // ---------------------------------------------------------------- session state
  /**
   * pin_policy = error: refuse a statement that would create state Sluice can
   * only keep by pinning. Returns true when the message was refused.
   */
  private refuseByPolicy(flags: number, simple: boolean): boolean {
    if (this.pool!.settings.pinPolicy !== 'error') return false;
    const creates = flags & (SqlFlag.Advisory | SqlFlag.TempObject | SqlFlag.Listen | SqlFlag.HoldCursor | SqlFlag.Load | SqlFlag.SqlPrepare);
    if (!creates || flags & (SqlFlag.DiscardAll | SqlFlag.DeallocateAll)) return false;
    this.refuse(
      errorResponse({
        code: '0A000',
        message: 'this statement creates session state, which pin_policy = error refuses in transaction pooling',
        hint:
          'Use the transaction-scoped form (pg_advisory_xact_lock, ON COMMIT DROP temp tables, cursors without WITH HOLD, protocol-level prepared statements), or connect to a pool with pin_policy = pin or pool_mode = session.',
      }),
      simple,
    );
    return true;
  }

  /**
   * A Parse of a name the client already has: PostgreSQL refuses it (42P05),
   * unless a DISCARD ALL / DEALLOCATE ALL sent before it drops the name first.
   * Returns true when refused.
   */
  private refuseDuplicateName(name: string): boolean {
    if (!this.statements.has(name) || this.dropAllSnapshot?.has(name)) return false;
    this.refuse(errorResponse({ code: '42P05', message: `prepared statement "${name}" already exists` }), false);
    return true;
  }

  /** Answers a message with `err` in its turn: after the replies still owed, then (extended protocol) skips to Sync as a server would. */
  private refuse(err: Buffer, simple: boolean): void {
    this.reader.flush();
    // Replies still owed for earlier messages go first: the refusal queues behind them.
    const status = this.server?.txStatus ?? 'I';
    if (simple) {
      this.pendingReplies--;
      this.tracker.push(Pending.SyntheticRaw, null, this, Buffer.concat([err, readyForQuery(status)]));
    } else {
      this.tracker.push(Pending.SyntheticRaw, null, this, err);
      this.skipToSync = true;
    }
  }

  /** Flags that mean the server's session state may have changed and must be looked at. */
  private static readonly PROBE_FLAGS =
    SqlFlag.SessionSet |
    SqlFlag.Advisory |
    SqlFlag.TempObject |
    SqlFlag.TempPath |
    SqlFlag.Listen |
    SqlFlag.HoldCursor |
    SqlFlag.SqlPrepare |
    SqlFlag.DiscardAll |
    SqlFlag.DiscardTemp |
    SqlFlag.Unknown |
    SqlFlag.Load;

  /**
   * At a transaction boundary: when the transaction did something that may
   * leave session state, ask the server what is really there, then pin or
   * release. Returns true when the release decision is deferred to the probe.
   */
  private probeBeforeRelease(server: ServerConn): boolean {
    const flags = this.linkFlags | (this.params.tempOnPath ? SqlFlag.TempPath : 0);
    if (!this.pinned && (flags & ClientConn.PROBE_FLAGS) === 0) return false;
    if (this.pool!.settings.pinPolicy === 'allow' && (flags & (SqlFlag.SessionSet | SqlFlag.DiscardAll | SqlFlag.Unknown)) === 0 && !this.pinned) return false;
    this.linkFlags = 0;
    if (flags & SqlFlag.Load) this.loaded = true;
    this.state = 'linking';
    const resets = this.linkResets ?? NO_NAMES;
    this.linkResets = null;
    server.runInternal(probeSql(this.probedSettingNames(server)), (err, rows) => {
      if (this.server !== server || this.state !== 'linking') return;
      const probe = err ? null : parseProbe(rows, resets);
      if (!probe) {
        // Cannot tell what the server holds: keep the client on it, like session mode.
        this.setPins(['unknown_state']);
        this.becomeActive();
        return;
      }
      this.params.adoptSessionSettings(probe.settings, server);
      // A RESET of a startup parameter left the server default: put the startup value back.
      const fix = this.params.replaySql(server);
      if (fix) {
        server.runInternal(fix, (fixErr) => {
          if (this.server !== server || this.state !== 'linking') return;
          if (!fixErr) this.params.markApplied(server);
          this.decidePin(server, probe);
        });
        return;
      }
      this.decidePin(server, probe);
    });
    return true;
  }

  /** After the probe: pin on real state, otherwise release at this boundary. */
  private decidePin(server: ServerConn, probe: SessionState): void {
    this.setPins(this.pool!.settings.pinPolicy === 'allow' ? [] : pinReasons(probe, this.loaded, this.unknownSetting));
    if (this.pinned) {
      this.becomeActive();
      return;
    }
    this.unlink(server.txStatus === 'I');
    this.state = 'idle';
    this.reader.resume();
  }

  private setPins(reasons: string[]): void {
    const pool = this.pool!;
    for (const r of reasons) {
      if (this.pinReasons.includes(r)) continue;
      pool.observer?.onPin(pool, r);
      this.loggedPins ??= new Set();
      if (!this.loggedPins.has(r)) {
        this.loggedPins.add(r);
        this.ctx.logPin?.(this, r);
      }
    }
    this.pinReasons = reasons;
  }

  onForward(bytes: Buffer): void {
    const server = this.server;
    if (server && !server.wire.write(bytes)) this.wire.pause();
  }

  onProtocolError(err: ProtocolError): void {
    this.fatal({ code: err.sqlstate, message: err.message });
  }

  // ---------------------------------------------------------------- getting a server
  private requestServer(): void {
    const pool = this.pool!;
    this.state = 'waiting';
    this.wire.pause();
    pool.acquire(this);
  }

  /** Waiter: a server was assigned. */
  onServer(server: ServerConn): void {
    if (this.state !== 'waiting') {
      this.pool!.release(server, true);
      return;
    }
    this.server = server;
    server.client = this;
    const lastUsed = server.lastUsed;
    server.linkedAt = this.linkStart = now();
    this.pool!.activeClients++;
    this.pendingReplies = 0;
    this.unsynced = false;
    this.inCopy = false;
    this.copyIn = false;
    this.server!.wire.resume();
    // Emulation tracks replies while linked; the tracker goes back at unlink.
    this.trackerObj = this.emulating ? lendTracker() : null;
    this.linkFlags = 0;
    this.linkSettingNames = null;
    this.linkResets = null;
    this.dropAllSnapshot = null;
    this.parsesInLink = null;
    this.batchOpen = false;
    this.healing = false;
    const s = this.ctx.settings();
    const needsCheck = s.server_check_delay >= 0 && s.server_check_query && this.linkStart - lastUsed > s.server_check_delay;
    const replay = this.params.replaySql(server);
    if (!replay && !needsCheck) {
      this.becomeActive();
      return;
    }
    this.state = 'linking';
    const afterCheck = () => {
      if (!replay) return this.becomeActive();
      server.runInternal(replay, (err) => {
        if (this.state !== 'linking' || this.server !== server) return;
        if (err) {
          // A parameter the server refuses (as PostgreSQL would at startup).
          this.fatal({ code: err.sqlstate, message: err.message });
          return;
        }
        this.params.markApplied(server);
        this.becomeActive();
      });
    };
    if (needsCheck) {
      server.runInternal(s.server_check_query, (err) => {
        if (this.state !== 'linking' || this.server !== server) return;
        if (err) {
          // Dead or broken: drop it and ask again.
          this.unlink(false);
          this.requestServer();
          return;
        }
        afterCheck();
      });
    } else afterCheck();
  }

  private becomeActive(): void {
    this.state = 'active';
    this.wire.resume();
    this.reader.resume();
  }

  /** Waiter: no server could be had. */
  onAcquireFailed(err: PoolError): void {
    if (this.state !== 'waiting' && this.state !== 'welcome') return;
    this.failWithPoolError(err);
  }

  private failWithPoolError(err: PoolError): void {
    if (err.serverMessage) {
      this.sendFatalRaw(err.serverMessage, err.message);
      return;
    }
    this.fatal({ code: err.sqlstate, message: err.message });
  }

  // ---------------------------------------------------------------- server frames
  onServerFrame(server: ServerConn, type: number, data: Buffer, start: number, end: number): Verdict {
    let verdict = Verdict.Forward;
    // Every server message passes here: the tracker is read once, not through its getter per use.
    const tracker = this.trackerObj;
    const tracking = tracker !== null && !tracker.empty && this.emulating;
    if (this.healing) return this.onHealingFrame(server, type, data, start);
    if (type === 0x45 /* E */ && this.canHeal(data, start, end)) {
      this.tracker.onServer(type, this);
      this.healing = true;
      return Verdict.Consumed;
    }
    if (tracking && tracker.onServer(type, this)) return Verdict.Consumed;
    if (this.batchEligible && type !== 0x4e && type !== 0x53 && type !== 0x41) this.batchReplied = true;
    switch (type) {
      case 0x5a /* Z */: {
        const status = data[start + 5];
        server.txStatus = status === 0x49 ? 'I' : status === 0x54 ? 'T' : 'E';
        if (this.pendingReplies > 0) this.pendingReplies--;
        this.inCopy = false;
        this.lastActivity = now();
        const pool = this.pool!;
        if (this.queryStart !== 0) {
          const ms = this.lastActivity - this.queryStart;
          pool.stats.queryCount++;
          pool.stats.queryTimeUs += ms * 1000;
          pool.observer?.onQuery(pool, ms);
          this.queryStart = 0;
        }
        this.cancelReason = '';
        if (this.pendingReplies === 0 && !this.unsynced) {
          const mode = pool.settings.mode;
          if (mode === 'statement' && server.txStatus !== 'I') {
            this.statementViolation = true;
            server.releaseRequested = true;
            return Verdict.Consumed;
          }
          if (mode !== 'session' && server.txStatus === 'I' && !this.reader.midMessage) server.releaseRequested = true;
        }
        break;
      }
      case 0x45 /* E */:
        // What it made the server skip may have changed its unnamed statement or not: Sluice no longer knows.
        if (this.emulating) server.unnamedOf = UNKNOWN_UNNAMED;
        if (this.pool!.observer) this.pool!.observer.onError(this.pool, sqlstateOf(data, start, end));
        if (this.cancelReason) verdict = this.rewriteCancelError(data, start, end);
        break;
      case 0x53 /* S */: {
        const kv = parseParameterStatus(data, start + 5, end);
        if (kv) {
          server.params.set(kv[0], kv[1]);
          // A session-level SET of a reported parameter follows the client.
          if (clientMaySet(kv[0])) this.params.set(kv[0], kv[1]);
          if (server.settings.has(kv[0].toLowerCase())) server.settings.set(kv[0].toLowerCase(), kv[1]);
        }
        break;
      }
      case 0x43 /* C CommandComplete */:
        if (this.linkFlags & (SqlFlag.DiscardAll | SqlFlag.DeallocateAll)) this.onDropAllComplete(data, start, end);
        break;
      case 0x47 /* G CopyInResponse */:
        this.inCopy = true;
        this.copyIn = true;
        // Syncs the client pipelined after the COPY's Execute arrive in copy mode: ignored.
        if (this.emulating) {
          const dropped = this.tracker.dropPendingSyncs();
          this.pendingReplies -= dropped;
        } else if (this.pendingReplies > 1) this.pendingReplies = 1;
        break;
      case 0x48 /* H CopyOutResponse */:
      case 0x57 /* W CopyBothResponse */:
        this.inCopy = true;
        break;
      default:
        break;
    }
    if (tracking && verdict === Verdict.Forward && tracker.headIsSynthetic) {
      // Locally answered replies follow this message: write it first, then them.
      server.reader.flush();
      this.writeFromServer(data.subarray(start, end));
      tracker.after(this);
      return Verdict.Consumed;
    }
    return verdict;
  }

  /**
   * DISCARD ALL or DEALLOCATE ALL succeeded (its own CommandComplete, which a
   * failed one never sends): the client's session lost the named statements
   * it had when the command was sent, not those it prepared after it. (The
   * server's side was settled at sending: see willRun.)
   */
  private onDropAllComplete(data: Buffer, start: number, end: number): void {
    const tag = data.toString('latin1', start + 5, end - 1);
    if (tag !== 'DISCARD ALL' && tag !== 'DEALLOCATE ALL') return;
    const before = this.dropAllSnapshot;
    this.dropAllSnapshot = null;
    if (before) for (const [name, st] of before) if (this.statements.get(name) === st) this.statements.delete(name);
  }

  /**
   * "cached plan must not change result type" after a schema change: safe to
   * replay when the batch was autocommit, complete, alone in flight, and nothing
   * of it has reached the client yet. Replayed at most once.
   */
  private canHeal(data: Buffer, start: number, end: number): boolean {
    if (!this.emulating || this.healed || !this.batchEligible || this.batchReplied || this.batchOpen) return false;
    if (this.pendingReplies !== 1 || this.batchStatements.length === 0) return false;
    if (sqlstateOf(data, start, end) !== '0A000') return false;
    return parseErrorBody(data, start + 5, end).get('M') === 'cached plan must not change result type';
  }

  /** Swallows the failed batch's remaining replies, then re-prepares and replays it. */
  private onHealingFrame(server: ServerConn, type: number, data: Buffer, start: number): Verdict {
    this.tracker.onServer(type, this);
    if (type !== 0x5a /* Z */) return Verdict.Consumed;
    this.healing = false;
    this.healed = true;
    server.txStatus = data[start + 5] === 0x49 ? 'I' : data[start + 5] === 0x54 ? 'T' : 'E';
    server.reader.flush();
    for (const st of this.batchStatements) {
      // The old plan is stale on this server: close it and prepare afresh.
      server.statements.delete(st);
      server.wire.write(closeStatementMessage(st));
      this.tracker.push(Pending.CloseOurs, st, this);
      server.wire.write(parseMessage(st));
      server.statements.add(st);
      this.tracker.push(Pending.ParseOurs, st, this);
    }
    for (const [msg, kind] of this.batch) {
      server.wire.write(msg);
      this.tracker.push(kind, null, this);
    }
    this.pool!.stats.preparedHealed++;
    return Verdict.Consumed;
  }

  private rewriteCancelError(data: Buffer, start: number, end: number): Verdict {
    const f = parseErrorBody(data, start + 5, end);
    if (f.get('C') !== '57014') return Verdict.Forward;
    this.server?.reader.flush();
    this.wire.write(
      errorResponse({
        code: '57014',
        message: `canceling statement due to ${this.cancelReason}`,
        hint: `Sluice canceled the query because ${this.cancelReason} was reached.`,
      }),
    );
    this.cancelReason = '';
    return Verdict.Consumed;
  }

  writeFromServer(bytes: Buffer): boolean {
    // A departed client's bytes go nowhere; the server must keep reading (its rollback comes next).
    if (this.state === 'closed') return true;
    if (this.pool) this.pool.stats.bytesSent += bytes.length;
    return this.wire.write(bytes);
  }

  onServerDrain(): void {
    this.wire.resume();
  }

  /** Called at the end of a server chunk in which a release boundary was reached. */
  detachServer(server: ServerConn): void {
    if (this.server !== server || this.state !== 'active') return;
    if (this.statementViolation) {
      this.statementViolation = false;
      this.state = 'linking';
      server.runInternal('ROLLBACK', () => {
        if (this.server !== server) return;
        this.unlink(server.txStatus === 'I');
        this.state = 'idle';
        this.wire.write(
          Buffer.concat([
            errorResponse({
              code: '25001',
              message: 'transaction blocks are not allowed in statement pooling mode',
              hint: 'This pool uses pool_mode=statement: each statement runs in autocommit. Use a pool in transaction mode for multi-statement transactions.',
            }),
            readyForQuery('I'),
          ]),
        );
        this.wire.resume();
        this.reader.resume();
      });
      return;
    }
    if (this.emulating && this.probeBeforeRelease(server)) return;
    this.unlink(true);
    this.state = 'idle';
    // Messages that arrived while linked and were not yet consumed.
    this.reader.resume();
  }

  private unlink(clean: boolean): void {
    const server = this.server;
    if (!server) return;
    const pool = this.pool!;
    this.server = null;
    server.client = null;
    pool.activeClients--;
    if (this.trackerObj) {
      returnTracker(this.trackerObj);
      this.trackerObj = null;
    }
    const held = now() - this.linkStart;
    pool.stats.xactCount++;
    pool.stats.xactTimeUs += held * 1000;
    pool.observer?.onTransaction(pool, held);
    this.wire.resume();
    pool.release(server, clean);
  }

  onServerLost(server: ServerConn, reason: string): void {
    if (this.server !== server) return;
    this.server = null;
    this.pool!.activeClients--;
    if (this.state === 'closed') return;
    // PostgreSQL's own FATAL (e.g. 57P01) has already been forwarded.
    this.fatal({ code: '08006', message: `server connection lost: ${reason}` });
  }

  // ---------------------------------------------------------------- timers
  onTick(now: number): void {
    const s = this.ctx.settings();
    switch (this.state) {
      case 'startup':
      case 'auth':
      case 'welcome':
        if (s.client_login_timeout > 0 && now - this.connectedAt > s.client_login_timeout) {
          this.fatal({ code: '08P01', message: `client_login_timeout (${s.client_login_timeout / 1000} s): login did not complete in time` });
        }
        return;
      case 'idle': {
        this.unnamed?.settle();
        const idle = this.ctx.userEntry(this.user)?.client_idle_timeout ?? s.client_idle_timeout;
        if (idle > 0 && now - this.lastActivity > idle) {
          this.fatal({ code: '57P05', message: `client_idle_timeout (${idle / 1000} s): closing idle connection` });
        }
        return;
      }
      case 'waiting': {
        // [users], then [databases], then [pgbouncer] (the pool's figure holds the last two).
        const wait = this.ctx.userEntry(this.user)?.query_wait_timeout ?? this.pool?.settings.queryWaitTimeoutMs ?? s.query_wait_timeout;
        if (wait > 0 && this.waitStart && now - this.waitStart > wait) {
          this.pool?.cancelWait(this);
          this.fatal({
            code: '08P01',
            message: `query_wait_timeout (${wait / 1000} s): no server connection became free for pool ${this.pool?.name}`,
          });
        }
        return;
      }
      case 'active': {
        const server = this.server!;
        const inTxn = server.txStatus !== 'I';
        const u = this.ctx.userEntry(this.user);
        if (this.awaitingServer) {
          const limit = u?.query_timeout ?? s.query_timeout;
          if (limit > 0 && this.queryStart && now - this.queryStart > limit && !this.cancelReason) {
            this.cancelReason = `query_timeout (${limit / 1000} s)`;
            this.ctx.forwardCancel(server);
          }
        } else if (inTxn) {
          const idle = u?.idle_transaction_timeout ?? s.idle_transaction_timeout;
          if (idle > 0 && now - this.lastActivity > idle) {
            this.fatal({ code: '25P03', message: `idle_transaction_timeout (${idle / 1000} s): transaction left idle` });
            return;
          }
        }
        const txLimit = u?.transaction_timeout ?? s.transaction_timeout;
        if (inTxn && this.mode !== 'session' && txLimit > 0 && now - this.linkStart > txLimit) {
          this.fatal({ code: '25P04', message: `transaction_timeout (${txLimit / 1000} s): transaction ran too long` });
        }
        return;
      }
      default:
        return;
    }
  }

  /** The server this client holds right now, if any (cancel, admin views, shutdown). */
  get linkedServer(): ServerConn | null {
    return this.server;
  }

  /** The client waits for a reply from its server: a cancel has something to stop. */
  get awaitingServer(): boolean {
    return this.server !== null && (this.pendingReplies > 0 || this.unsynced || this.inCopy);
  }

  // ---------------------------------------------------------------- closing
  /** Sends an ErrorResponse (FATAL) and closes. */
  fatal(f: ErrorFields): void {
    if (this.state === 'closed') return;
    this.pool?.observer?.onError(this.pool, f.code);
    this.ctx.onPoolerError?.(this, f);
    if (!this.sentFatal && !this.wire.destroyed) {
      this.sentFatal = true;
      this.server?.reader.flush();
      this.wire.write(errorResponse({ severity: 'FATAL', ...f }));
    }
    this.close(`${f.code}: ${f.message}`);
  }

  private sendFatalRaw(msg: Buffer, reason: string): void {
    if (this.state === 'closed') return;
    if (!this.sentFatal && !this.wire.destroyed) {
      this.sentFatal = true;
      this.wire.write(msg);
    }
    this.close(reason);
  }

  /** Sends a non-fatal error and ReadyForQuery (admin console, refusals). */
  sendError(f: ErrorFields): void {
    this.wire.write(Buffer.concat([errorResponse(f), readyForQuery('I')]));
  }

  close(reason: string, isError = true): void {
    if (this.state === 'closed') return;
    const prev = this.state;
    this.state = 'closed';
    this.closeReason = reason;
    this.unnamed?.dropped(); // a server that still points at it must not keep its read chunk alive
    if (prev === 'waiting') this.pool?.cancelWait(this);
    const server = this.server;
    if (server) this.releaseOnClose(server);
    if (this.pool) this.pool.clientCount--;
    this.ctx.forget(this, reason, isError);
    // Nothing the connection does from here on concerns this client.
    this.wire.ownerDone();
    if (this.wire.destroyed) return;
    if (reason === TERMINATED && this.wire.pendingBytes === 0) {
      // The client said goodbye and nothing is left to send: close now, as PostgreSQL does.
      this.wire.destroy();
      return;
    }
    this.wire.end();
    // Give the final ErrorResponse a moment to flush, then make sure it is gone.
    setTimeout(destroyWire, 1000, this.wire).unref();
  }

  /**
   * The client is gone while linked. Reuse the server only when its state is
   * known: nothing in flight; an open transaction is rolled back first; in
   * session mode the reset query runs.
   */
  private releaseOnClose(server: ServerConn): void {
    const pool = this.pool!;
    this.server = null;
    server.client = null;
    pool.activeClients--;
    const inFlight = this.pendingReplies > 0 || this.unsynced || this.inCopy || this.reader.midMessage || server.busyInternal;
    if (inFlight || server.state === 'closed') {
      pool.release(server, false);
      return;
    }
    const s = this.ctx.settings();
    if (this.loaded || this.linkFlags & SqlFlag.Load) {
      pool.release(server, false); // a loaded library cannot be unloaded
      return;
    }
    // Session state left by a transaction-mode client (pins, flagged statements) is wiped before reuse.
    const dirtySession = this.emulating && (this.pinned || (this.linkFlags & ClientConn.PROBE_FLAGS) !== 0);
    const reset = pool.settings.mode === 'session' || s.server_reset_query_always || dirtySession ? s.server_reset_query || 'DISCARD ALL' : '';
    const afterRollback = () => {
      if (!reset) {
        pool.release(server, server.txStatus === 'I');
        return;
      }
      server.runInternal(reset, (err) => {
        server.settings.clear();
        if (/discard\s+all|deallocate/i.test(reset)) server.statements.clear();
        pool.release(server, !err && server.txStatus === 'I');
      });
    };
    if (server.txStatus !== 'I') {
      server.runInternal('ROLLBACK', (err) => {
        if (err) pool.release(server, false);
        else afterRollback();
      });
    } else afterRollback();
  }
}

/**
 * A stream that yields `prefix` and then whatever `raw` receives. TLS over a
 * plain net.Socket reads its native handle directly, so bytes we already read
 * (a direct-TLS ClientHello) must be handed over through a JS stream instead.
 */
function replaying(raw: net.Socket, prefix: Buffer): net.Socket {
  const stream = new Duplex({
    read() {
      raw.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      raw.write(chunk, cb);
    },
    final(cb) {
      raw.end();
      cb();
    },
    destroy(err, cb) {
      raw.destroy();
      cb(err);
    },
  });
  stream.push(prefix);
  raw.on('data', (c: Buffer) => {
    if (!stream.push(c)) raw.pause();
  });
  raw.on('end', () => stream.push(null));
  raw.on('close', () => stream.destroy());
  return stream as unknown as net.Socket;
}

/** The SQLSTATE (C field) of an ErrorResponse, without building a field map. */
function sqlstateOf(data: Buffer, start: number, end: number): string {
  let pos = start + 5;
  while (pos < end && data[pos] !== 0) {
    const stop = data.indexOf(0, pos + 1);
    if (stop < 0 || stop >= end) break;
    if (data[pos] === 0x43 /* C */) return data.toString('latin1', pos + 1, stop);
    pos = stop + 1;
  }
  return 'XX000';
}

function protocolFields(err: unknown): ErrorFields {
  if (err instanceof ProtocolError) return { code: err.sqlstate, message: err.message };
  return { code: '08P01', message: err instanceof Error ? err.message : String(err) };
}
