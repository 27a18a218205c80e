// One connection from Sluice to PostgreSQL: login, then either idle in its
// pool, linked to a client (frames go to the client), or running an internal
// query (reset, rollback, check, SET replay) whose results Sluice consumes.
import { Buffer } from 'node:buffer';
import net from 'node:net';
import tls from 'node:tls';
import { MessageReader, Verdict, inspectTable, type FrameSink } from '../protocol/framer.js';
import { ProtocolError } from '../protocol/errors.js';
import { parseErrorBody, parseParameterStatus, query, startupMessage, TERMINATE, sslRequest, errorResponse } from '../protocol/messages.js';
import { ServerStatements } from '../session/prepared.js';
import { UNKNOWN_UNNAMED, type UnnamedStatement } from '../session/unnamed.js';
import { Wire, type WireSink } from '../net/wire.js';
import { now } from '../net/clock.js';

/** What a server needs from the client it is linked to. */
export interface LinkedClient {
  onServerFrame(server: ServerConn, type: number, data: Buffer, start: number, end: number): Verdict;
  writeFromServer(bytes: Buffer): boolean;
  /** The server connection died or was closed under the client. */
  onServerLost(server: ServerConn, reason: string, fatal: Buffer | null): void;
  onServerDrain(): void;
  /** End of a server chunk that reached a release point: the client decides whether to let go. */
  detachServer(server: ServerConn): void;
}

export interface ServerTarget {
  readonly host: string; // hostname/IP, or a Unix socket directory starting with '/'
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly startupParams: Readonly<Record<string, string>>;
  /** Starts a login exchange for one connection; it answers each Authentication request. */
  readonly auth: () => (body: Buffer) => { send?: Buffer; error?: string };
  readonly tls?: { mode: 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full'; options: tls.ConnectionOptions };
  readonly keepAlive: boolean;
  readonly maxPacketSize: number;
  /** `host` split at commas, once per target; with several: take turns (round-robin) or always the first (disable). */
  readonly hosts?: readonly string[];
  readonly loadBalanceHosts?: 'round-robin' | 'disable';
  /** The database entry's connect_query: run once on each new connection before it serves anyone. */
  readonly connectQuery?: string;
}

export type ServerState = 'connecting' | 'login' | 'idle' | 'active' | 'internal' | 'closed';

export interface ServerEvents {
  onLoginDone(server: ServerConn): void;
  onLoginFailed(server: ServerConn, message: string, errorMessage: Buffer | null, sqlstate: string): void;
  onClosed(server: ServerConn, reason: string): void;
  /** End of a chunk in which the linked client asked for release. */
  onReleaseRequested(server: ServerConn): void;
}

/** An error a server reported while Sluice ran its own query. */
export class ServerQueryError extends Error {
  readonly sqlstate: string;
  constructor(sqlstate: string, message: string) {
    super(message);
    this.sqlstate = sqlstate;
  }
}

// Server message types whose bodies Sluice reads (small ones; DataRow and CopyData stream).
const SERVER_INSPECT = inspectTable('ZESKRCvtn123sIT');
// While Sluice runs its own query it also reads the rows.
const INTERNAL_INSPECT = inspectTable('ZESKRCvtn123sITD');
let nextServerId = 1;

/** Turns taken through a target's host list, per target (one per pool). */
const hostTurns = new WeakMap<ServerTarget, number>();

/** One host of a comma-separated `host` (no failover to the next one yet). */
function pickHost(target: ServerTarget): string {
  const hosts = target.hosts;
  if (!hosts || hosts.length < 2) return hosts?.[0] ?? target.host;
  if (target.loadBalanceHosts === 'disable') return hosts[0];
  const turn = hostTurns.get(target) ?? 0;
  hostTurns.set(target, turn + 1);
  return hosts[turn % hosts.length];
}

export class ServerConn implements FrameSink, WireSink {
  readonly id = nextServerId++;
  state: ServerState = 'connecting';
  socket: net.Socket;
  /** Reads and writes go through here (the handle directly once logged in). */
  readonly wire: Wire;
  readonly reader: MessageReader;
  /** Parameters the server reported (ParameterStatus). */
  readonly params = new Map<string, string>();
  /** Values Sluice set with SET on this connection (parameter replay), by lower-case name. */
  readonly settings = new Map<string, string>();
  pid = 0;
  key: Buffer = Buffer.alloc(0);
  txStatus: 'I' | 'T' | 'E' = 'I';
  client: LinkedClient | null = null;
  readonly createdAt = Date.now();
  /** When it last became idle or was last linked (ms). */
  lastUsed = Date.now();
  linkedAt = 0;
  connectDeadline = 0;
  releaseRequested = false;
  closeReason = '';
  tlsActive = false;
  /** Set on connections that must not be reused (e.g. a RECONNECT asked for it). */
  retire = false;
  /** Statements Sluice prepared on this connection (transaction/statement mode). */
  readonly statements = new ServerStatements();
  /**
   * Whose unnamed statement this server holds (transaction and statement
   * mode), current while unnamedSeq equals its seq; null for none. A new
   * server's is unknown: a session-mode client (before a RELOAD changed the
   * pool's mode) may have left one. See src/session/unnamed.ts.
   */
  unnamedOf: UnnamedStatement | null = UNKNOWN_UNNAMED;
  unnamedSeq = 0;
  /** Cancel requests sent for this server whose connection PostgreSQL has not closed yet (src/client/cancel.ts). */
  cancelsInFlight = 0;
  /** What to do once they are all done: set by a release that had to wait for them. */
  afterCancels: (() => void) | null = null;
  /** Opaque slot for the pool that owns it. */
  poolSlot: unknown = null;
  /** The host of `target.host` this connection went to (cancels go there too). */
  readonly host: string;
  private internal: { cb: (err: ServerQueryError | null, rows: string[][]) => void; error: ServerQueryError | null; rows: string[][] } | null = null;
  private loginError: { message: string; raw: Buffer; sqlstate: string } | null = null;
  private readonly login: (body: Buffer) => { send?: Buffer; error?: string };
  /** The next byte read answers an SSLRequest. */
  private awaitingSslAnswer = false;

  constructor(
    readonly target: ServerTarget,
    private readonly events: ServerEvents,
    connectTimeoutMs: number,
  ) {
    this.reader = new MessageReader(this, SERVER_INSPECT, target.maxPacketSize);
    this.login = target.auth();
    this.connectDeadline = connectTimeoutMs > 0 ? Date.now() + connectTimeoutMs : 0;
    this.host = pickHost(target);
    this.socket = this.host.startsWith('/')
      ? net.connect({ path: `${this.host}/.s.PGSQL.${this.target.port}` })
      : net.connect({ host: this.host, port: this.target.port });
    this.socket.setNoDelay(true);
    if (target.keepAlive) this.socket.setKeepAlive(true);
    this.socket.once('connect', () => this.onConnect());
    this.wire = new Wire(this.socket, this);
  }

  get isUnixSocket(): boolean {
    return this.host.startsWith('/');
  }

  onWireError(err: Error): void {
    this.close(`server socket error: ${err.message}`);
  }

  onWireClose(): void {
    this.close('server closed the connection');
  }

  onWireDrain(): void {
    this.client?.onServerDrain();
  }

  private onConnect(): void {
    const mode = this.target.tls?.mode ?? 'disable';
    if (mode === 'disable' || mode === 'allow' || this.isUnixSocket) {
      this.sendStartup();
      return;
    }
    // Ask for TLS; the one-byte answer arrives before any framed message.
    this.awaitingSslAnswer = true;
    this.wire.write(sslRequest());
  }

  private onSslAnswer(chunk: Buffer): void {
    const tlsCfg = this.target.tls!;
    if (chunk[0] === 0x4e /* N */) {
      if (tlsCfg.mode === 'prefer') {
        this.sendStartup();
      } else this.failLogin(`server does not support SSL, but server_tls_sslmode is ${tlsCfg.mode}`, '08006');
      return;
    }
    if (chunk[0] !== 0x53 /* S */ || chunk.length > 1) {
      this.failLogin('invalid response to SSL negotiation', '08P01');
      return;
    }
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    raw.removeAllListeners('error');
    raw.removeAllListeners('drain');
    const secure = tls.connect({ ...tlsCfg.options, socket: raw });
    this.socket = secure;
    this.wire.replace(secure);
    this.tlsActive = true;
    secure.once('secureConnect', () => this.sendStartup());
  }

  private sendStartup(): void {
    this.state = 'login';
    this.wire.write(
      startupMessage({ user: this.target.user, database: this.target.database, ...this.target.startupParams }),
    );
  }

  onWireData(chunk: Buffer): void {
    if (this.awaitingSslAnswer) {
      this.awaitingSslAnswer = false;
      this.onSslAnswer(chunk);
      return;
    }
    this.reader.push(chunk);
    if (this.releaseRequested) {
      this.releaseRequested = false;
      this.events.onReleaseRequested(this);
    }
  }

  // ---- FrameSink ----
  onFrame(type: number, data: Buffer, start: number, end: number): Verdict {
    if (this.client !== null && this.internal === null) return this.client.onServerFrame(this, type, data, start, end);
    switch (this.state) {
      case 'login':
        return this.onLoginFrame(type, data, start, end);
      case 'internal':
        return this.onInternalFrame(type, data, start, end);
      default:
        return this.onIdleFrame(type, data, start, end);
    }
  }

  onForward(bytes: Buffer): void {
    if (this.client !== null && !this.client.writeFromServer(bytes)) this.wire.pause();
  }

  onProtocolError(err: ProtocolError): void {
    this.close(`protocol error from server: ${err.message}`);
  }

  private onLoginFrame(type: number, data: Buffer, start: number, end: number): Verdict {
    switch (type) {
      case 0x52 /* R */: {
        const body = data.subarray(start + 5, end);
        const answer = this.login(body);
        if (answer.error) this.failLogin(answer.error, '28000');
        else if (answer.send) this.wire.write(answer.send);
        return Verdict.Consumed;
      }
      case 0x53 /* S */: {
        const kv = parseParameterStatus(data, start + 5, end);
        if (kv) this.params.set(kv[0], kv[1]);
        return Verdict.Consumed;
      }
      case 0x4b /* K */:
        this.pid = data.readInt32BE(start + 5);
        this.key = Buffer.from(data.subarray(start + 9, end));
        return Verdict.Consumed;
      case 0x45 /* E */: {
        const fields = parseErrorBody(data, start + 5, end);
        this.loginError = {
          message: fields.get('M') ?? 'server login failed',
          raw: Buffer.from(data.subarray(start, end)),
          sqlstate: fields.get('C') ?? '08006',
        };
        return Verdict.Consumed;
      }
      case 0x5a /* Z */: {
        this.txStatus = 'I';
        this.state = 'idle';
        this.connectDeadline = 0;
        this.lastUsed = now();
        this.wire.accelerate();
        const connectQuery = this.target.connectQuery;
        if (!connectQuery) {
          this.events.onLoginDone(this);
          return Verdict.Consumed;
        }
        this.runInternal(connectQuery, (err) => {
          if (err) this.failLogin(`connect_query failed: ${err.message}`, err.sqlstate);
          else this.events.onLoginDone(this);
        });
        return Verdict.Consumed;
      }
      default:
        return Verdict.Consumed; // notices, NegotiateProtocolVersion
    }
  }

  private failLogin(message: string, sqlstate: string, raw: Buffer | null = null): void {
    if (this.state === 'closed') return;
    const err = this.loginError;
    this.loginError = null;
    this.events.onLoginFailed(this, err?.message ?? message, err?.raw ?? raw, err?.sqlstate ?? sqlstate);
    this.close(`login failed: ${err?.message ?? message}`);
  }

  private onIdleFrame(type: number, data: Buffer, start: number, end: number): Verdict {
    if (type === 0x53 /* S */) {
      const kv = parseParameterStatus(data, start + 5, end);
      if (kv) this.params.set(kv[0], kv[1]);
    } else if (type === 0x45 /* E */) {
      // An idle server only speaks up to say it is going away.
      const fields = parseErrorBody(data, start + 5, end);
      this.close(`server error while idle: ${fields.get('M') ?? ''}`);
    }
    return Verdict.Consumed;
  }

  private onInternalFrame(type: number, data: Buffer, start: number, end: number): Verdict {
    const job = this.internal!;
    if (type === 0x45 /* E */) {
      const f = parseErrorBody(data, start + 5, end);
      job.error ??= new ServerQueryError(f.get('C') ?? 'XX000', f.get('M') ?? 'internal query failed');
    } else if (type === 0x53 /* S */) {
      const kv = parseParameterStatus(data, start + 5, end);
      if (kv) this.params.set(kv[0], kv[1]);
    } else if (type === 0x44 /* D */) {
      job.rows.push(readDataRow(data, start, end));
    } else if (type === 0x5a /* Z */) {
      this.txStatus = data[start + 5] === 0x49 ? 'I' : data[start + 5] === 0x54 ? 'T' : 'E';
      this.internal = null;
      this.reader.setInspect(SERVER_INSPECT);
      this.state = this.client ? 'active' : 'idle';
      job.cb(job.error, job.rows);
    }
    return Verdict.Consumed;
  }

  cancelStarted(): void {
    this.cancelsInFlight++;
  }

  cancelDone(): void {
    if (--this.cancelsInFlight > 0) return;
    const then = this.afterCancels;
    this.afterCancels = null;
    then?.();
  }

  /** Runs one simple query whose results Sluice consumes; the callback gets the first error and the rows as text. */
  runInternal(sql: string, cb: (err: ServerQueryError | null, rows: string[][]) => void): void {
    if (this.state === 'closed') {
      cb(new ServerQueryError('08006', 'server connection is closed'), []);
      return;
    }
    this.internal = { cb, error: null, rows: [] };
    this.state = 'internal';
    this.unnamedOf = null; // a simple Query drops the unnamed statement
    this.reader.setInspect(INTERNAL_INSPECT);
    // Sluice reads this answer itself: a pause left by a slow or departed client must not hold it.
    this.wire.resume();
    this.wire.write(query(sql));
  }

  get busyInternal(): boolean {
    return this.internal !== null;
  }

  /** The login error to pass to clients, if the login failed with a server ErrorResponse. */
  static loginErrorMessage(message: string, sqlstate: string): Buffer {
    return errorResponse({ severity: 'FATAL', code: sqlstate, message });
  }

  close(reason: string): void {
    if (this.state === 'closed') return;
    const wasLogin = this.state === 'login' || this.state === 'connecting';
    this.state = 'closed';
    this.closeReason = reason;
    if (wasLogin) {
      const err = this.loginError;
      this.events.onLoginFailed(this, err?.message ?? reason, err?.raw ?? null, err?.sqlstate ?? '08006');
    }
    const internal = this.internal;
    this.internal = null;
    if (!this.socket.destroyed) {
      if (this.socket.writable) this.wire.end(TERMINATE);
      this.socket.destroySoon?.();
      setImmediate(() => this.socket.destroy());
    }
    const client = this.client;
    this.client = null;
    if (internal) internal.cb(new ServerQueryError('08006', reason), []);
    if (client) client.onServerLost(this, reason, null);
    this.events.onClosed(this, reason);
  }
}

/** The text values of a DataRow (NULL as ''). */
function readDataRow(data: Buffer, start: number, end: number): string[] {
  const out: string[] = [];
  const n = data.readInt16BE(start + 5);
  let pos = start + 7;
  for (let i = 0; i < n && pos + 4 <= end; i++) {
    const len = data.readInt32BE(pos);
    pos += 4;
    if (len < 0) {
      out.push('');
      continue;
    }
    out.push(data.toString('utf8', pos, pos + len));
    pos += len;
  }
  return out;
}
