// The per-client state machine: startup, authentication, welcome, then the
// query loop that links the client to a server for a session, a transaction
// or a statement, and unlinks it only when the server is known clean.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type net from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Duplex } from 'node:stream';
import { MessageReader, Verdict, type FrameSink } from '../protocol/framer.js';
import { ProtocolError } from '../protocol/errors.js';
import { StartupReader, NEWEST_MINOR, type StartupPacket } from '../protocol/startup.js';
import {
  SSL_NO,
  SSL_YES,
  backendKeyData,
  errorResponse,
  negotiateProtocolVersion,
  parameterStatus,
  parseErrorBody,
  parseParameterStatus,
  readyForQuery,
  type ErrorFields,
} from '../protocol/messages.js';
import type { DatabaseEntry, PoolMode } from '../config/types.js';
import type { Pool, Waiter } from '../pool/pool.js';
import { PoolError } from '../pool/errors.js';
import type { LinkedClient, ServerConn } from '../pool/server_conn.js';
import type { Tickable } from '../pool/pooler.js';
import { ClientParams } from '../session/params.js';
import type { ClientContext } from './context.js';

export type ClientState = 'startup' | 'auth' | 'welcome' | 'idle' | 'waiting' | 'linking' | 'active' | 'closed';

// Client message types read whole; CopyData ('d') streams through.
const CLIENT_INSPECT = (() => {
  const t = new Uint8Array(256).fill(1);
  t[0x64] = 0;
  return t;
})();

let nextClientId = 1;

export class ClientConn implements FrameSink, LinkedClient, Waiter, Tickable {
  readonly id = nextClientId++;
  state: ClientState = 'startup';
  readonly connectedAt = Date.now();
  /** Last time the client sent something or a query finished (ms). */
  lastActivity = Date.now();
  waitStart = 0;
  user = '';
  database = '';
  appName = '';
  protocolMinor = 0;
  pool: Pool | null = null;
  db: DatabaseEntry | null = null;
  server: ServerConn | null = null;
  params = new ClientParams();
  /** Our own cancel key for this client. */
  cancelPid = 0;
  cancelKey: Buffer = Buffer.alloc(0);
  tls = false;
  /** The verified client certificate's CN (auth_type cert). */
  certCommonName: string | undefined;
  socket: net.Socket;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly isUnix: boolean;
  closeReason = '';

  private startupReader: StartupReader | null = new StartupReader();
  private reader: MessageReader;
  // Transaction-boundary tracking while linked.
  private pendingReplies = 0; // ReadyForQuery messages still owed by the server
  private unsynced = false; // extended-protocol messages sent since the last Sync
  private inCopy = false;
  private linkStart = 0;
  private queryStart = 0;
  private cancelReason = '';
  private statementViolation = false;
  private sentFatal = false;

  constructor(
    socket: net.Socket,
    private readonly ctx: ClientContext,
  ) {
    this.socket = socket;
    this.remoteAddress = socket.remoteAddress ?? 'unix';
    this.remotePort = socket.remotePort ?? 0;
    this.isUnix = socket.remoteAddress === undefined;
    this.reader = new MessageReader(this, CLIENT_INSPECT, ctx.settings().max_packet_size);
    socket.setNoDelay?.(true);
    this.attach(socket);
  }

  private attach(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.close(`client socket error: ${err.message}`));
    socket.on('close', () => this.close('client closed the connection'));
    socket.on('drain', () => this.server?.socket.resume());
  }

  /**
   * Hands the socket to TLS: after an SSLRequest (answer 'S' first) or for a
   * direct TLS handshake (PostgreSQL 17's sslnegotiation=direct, `replay` holds
   * the bytes already read). Startup begins again on the encrypted socket.
   */
  startTls(upgrade: (raw: net.Socket) => Promise<TLSSocket>, direct: Buffer | null): void {
    const raw = this.socket;
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
        this.tls = true;
        this.certCommonName = this.ctx.verifiedCommonName?.(secure);
        secure.setNoDelay?.(true);
        this.attach(secure);
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

  // ---------------------------------------------------------------- input
  private onData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    if (this.startupReader) {
      this.onStartupData(chunk);
      return;
    }
    this.reader.push(chunk);
  }

  private onStartupData(chunk: Buffer): void {
    // A TLS ClientHello (record type 22) instead of a startup packet: direct TLS.
    if (chunk[0] === 0x16 && !this.tls && this.ctx.tlsUpgrade) {
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
        const upgrade = p.kind === 'ssl' && !this.tls ? this.ctx.tlsUpgrade : undefined;
        if (upgrade) {
          this.startupReader = null; // the TLS layer gives us a new socket
          upgrade(this, null);
          return;
        }
        // No TLS here (or GSSAPI): the client may go on in plain text; a TLS-only setup refuses it after startup.
        this.socket.write(SSL_NO);
        continue;
      }
      if (p.kind === 'cancel') {
        this.startupReader = null;
        this.ctx.cancel(p.pid, p.key);
        this.close('cancel request handled', false);
        return;
      }
      this.startupReader = null;
      this.onStartup(p);
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
      this.socket.write(negotiateProtocolVersion(this.protocolMinor, p.protocolOptions));
    }
    this.user = p.params.get('user') ?? '';
    this.database = p.params.get('database') || this.user;
    this.appName = p.params.get('application_name') ?? '';
    const parsed = ClientParams.fromStartup(p.params, this.ctx.settings().ignore_startup_parameters);
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
    this.ctx.authenticate(this, (err) => {
      if (this.state !== 'auth') return;
      if (err) this.fatal(err);
      else this.onAuthenticated();
    });
  }

  /** Sends an auth message during the exchange (used by the auth layer). */
  sendAuth(msg: Buffer): void {
    if (this.state === 'auth') this.socket.write(msg);
  }

  /** The auth layer's hook for PasswordMessage/SASL responses. */
  onAuthMessage: ((type: number, body: Buffer) => void) | null = null;

  private onAuthenticated(): void {
    if (this.ctx.isAdminDatabase(this.database)) {
      this.state = 'idle';
      this.ctx.startAdmin(this);
      return;
    }
    const db = this.ctx.findDatabase(this.database);
    if (!db) {
      this.fatal({ code: '3D000', message: `no such database: ${this.database}` });
      return;
    }
    this.db = db;
    const pool = this.ctx.poolFor(db, this.user);
    this.pool = pool;
    pool.clientCount++;
    this.state = 'welcome';
    pool.whenParamsKnown((err) => {
      if (this.state !== 'welcome') return;
      if (err) this.failWithPoolError(err);
      else this.sendWelcome();
    });
  }

  private sendWelcome(): void {
    const pool = this.pool!;
    const out: Buffer[] = [];
    const sent = new Set<string>();
    for (const [name, value] of pool.params ?? []) {
      const key = name.toLowerCase();
      out.push(parameterStatus(name, this.params.get(name) ?? value));
      sent.add(key);
    }
    if (!sent.has('application_name') && this.appName) out.push(parameterStatus('application_name', this.appName));
    this.cancelPid = this.ctx.registerCancel(this);
    this.cancelKey = randomBytes(this.protocolMinor >= 2 ? 32 : 4);
    out.push(backendKeyData(this.cancelPid, this.cancelKey), readyForQuery('I'));
    this.state = 'idle';
    this.lastActivity = Date.now();
    this.socket.write(Buffer.concat(out));
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
    this.lastActivity = Date.now();
    if (type === 0x58 /* X */) {
      this.close('client sent Terminate', false);
      return Verdict.Consumed;
    }
    if (this.ctx.adminQuery && this.pool === null) {
      this.ctx.adminQuery(this, type, data, start, end);
      return Verdict.Consumed;
    }
    if (type === 0x53 /* Sync with nothing outstanding */) {
      this.socket.write(readyForQuery('I'));
      return Verdict.Consumed;
    }
    if (type === 0x48 /* Flush with nothing outstanding */) return Verdict.Consumed;
    // Anything else needs a server.
    this.requestServer();
    if (this.state === 'active') return this.onLinkedFrame(type, data, start, end);
    return Verdict.Stop;
  }

  private onLinkedFrame(type: number, data: Buffer, start: number, end: number): Verdict {
    switch (type) {
      case 0x51 /* Q */:
        this.pendingReplies++;
        if (this.queryStart === 0) this.queryStart = Date.now();
        break;
      case 0x53 /* S */:
        this.pendingReplies++;
        this.unsynced = false;
        break;
      case 0x50 /* P */:
      case 0x42 /* B */:
      case 0x45 /* E */:
      case 0x44 /* D */:
      case 0x43 /* C */:
      case 0x48 /* H */:
        this.unsynced = true;
        if (this.queryStart === 0) this.queryStart = Date.now();
        break;
      case 0x58 /* X */:
        this.close('client sent Terminate', false);
        return Verdict.Consumed;
      default:
        break;
    }
    this.pool!.stats.bytesReceived += end - start;
    return Verdict.Forward;
  }

  onForward(bytes: Buffer): void {
    const server = this.server;
    if (server && !server.socket.write(bytes)) this.socket.pause();
  }

  onProtocolError(err: ProtocolError): void {
    this.fatal({ code: err.sqlstate, message: err.message });
  }

  // ---------------------------------------------------------------- getting a server
  private requestServer(): void {
    const pool = this.pool!;
    this.state = 'waiting';
    this.socket.pause();
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
    server.linkedAt = this.linkStart = Date.now();
    this.pool!.activeClients++;
    this.pendingReplies = 0;
    this.unsynced = false;
    this.inCopy = false;
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
    this.socket.resume();
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
    switch (type) {
      case 0x5a /* Z */: {
        const status = data[start + 5];
        server.txStatus = status === 0x49 ? 'I' : status === 0x54 ? 'T' : 'E';
        if (this.pendingReplies > 0) this.pendingReplies--;
        this.inCopy = false;
        this.lastActivity = Date.now();
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
        if (this.pool!.observer) this.pool!.observer.onError(this.pool, sqlstateOf(data, start, end));
        if (this.cancelReason) return this.rewriteCancelError(data, start, end);
        break;
      case 0x53 /* S */: {
        const kv = parseParameterStatus(data, start + 5, end);
        if (kv) {
          server.params.set(kv[0], kv[1]);
          server.settings.delete(kv[0].toLowerCase());
          // A session-level SET of a reported parameter follows the client.
          this.params.set(kv[0], kv[1]);
        }
        break;
      }
      case 0x47 /* G CopyInResponse */:
      case 0x48 /* H CopyOutResponse */:
      case 0x57 /* W CopyBothResponse */:
        this.inCopy = true;
        break;
      default:
        break;
    }
    return Verdict.Forward;
  }

  private rewriteCancelError(data: Buffer, start: number, end: number): Verdict {
    const f = parseErrorBody(data, start + 5, end);
    if (f.get('C') !== '57014') return Verdict.Forward;
    this.server?.reader.flush();
    this.socket.write(
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
    if (this.pool) this.pool.stats.bytesSent += bytes.length;
    return this.socket.write(bytes);
  }

  onServerDrain(): void {
    this.socket.resume();
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
        this.socket.write(
          Buffer.concat([
            errorResponse({
              code: '25001',
              message: 'transaction blocks are not allowed in statement pooling mode',
              hint: 'This pool uses pool_mode=statement: each statement runs in autocommit. Use a pool in transaction mode for multi-statement transactions.',
            }),
            readyForQuery('I'),
          ]),
        );
        this.socket.resume();
        this.reader.resume();
      });
      return;
    }
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
    const held = Date.now() - this.linkStart;
    pool.stats.xactCount++;
    pool.stats.xactTimeUs += held * 1000;
    pool.observer?.onTransaction(pool, held);
    this.socket.resume();
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
      case 'idle':
        if (s.client_idle_timeout > 0 && now - this.lastActivity > s.client_idle_timeout) {
          this.fatal({ code: '57P05', message: `client_idle_timeout (${s.client_idle_timeout / 1000} s): closing idle connection` });
        }
        return;
      case 'waiting':
        if (s.query_wait_timeout > 0 && this.waitStart && now - this.waitStart > s.query_wait_timeout) {
          this.pool?.cancelWait(this);
          this.fatal({
            code: '08P01',
            message: `query_wait_timeout (${s.query_wait_timeout / 1000} s): no server connection became free for pool ${this.pool?.name}`,
          });
        }
        return;
      case 'active': {
        const server = this.server!;
        const inTxn = server.txStatus !== 'I';
        if (this.pendingReplies > 0 || this.unsynced) {
          if (s.query_timeout > 0 && this.queryStart && now - this.queryStart > s.query_timeout && !this.cancelReason) {
            this.cancelReason = `query_timeout (${s.query_timeout / 1000} s)`;
            this.ctx.forwardCancel(server);
          }
        } else if (inTxn && s.idle_transaction_timeout > 0 && now - this.lastActivity > s.idle_transaction_timeout) {
          this.fatal({ code: '25P03', message: `idle_transaction_timeout (${s.idle_transaction_timeout / 1000} s): transaction left idle` });
          return;
        }
        if (inTxn && this.mode !== 'session' && s.transaction_timeout > 0 && now - this.linkStart > s.transaction_timeout) {
          this.fatal({ code: '25P04', message: `transaction_timeout (${s.transaction_timeout / 1000} s): transaction ran too long` });
        }
        return;
      }
      default:
        return;
    }
  }

  /** Sends a cancel for this client's current query (admin/timeout use). */
  get linkedServer(): ServerConn | null {
    return this.server;
  }

  // ---------------------------------------------------------------- closing
  /** Sends an ErrorResponse (FATAL) and closes. */
  fatal(f: ErrorFields): void {
    if (this.state === 'closed') return;
    this.pool?.observer?.onError(this.pool, f.code);
    if (!this.sentFatal && !this.socket.destroyed) {
      this.sentFatal = true;
      this.server?.reader.flush();
      this.socket.write(errorResponse({ severity: 'FATAL', ...f }));
    }
    this.close(`${f.code}: ${f.message}`);
  }

  private sendFatalRaw(msg: Buffer, reason: string): void {
    if (this.state === 'closed') return;
    if (!this.sentFatal && !this.socket.destroyed) {
      this.sentFatal = true;
      this.socket.write(msg);
    }
    this.close(reason);
  }

  /** Sends a non-fatal error and ReadyForQuery (admin console, refusals). */
  sendError(f: ErrorFields): void {
    this.socket.write(Buffer.concat([errorResponse(f), readyForQuery('I')]));
  }

  close(reason: string, isError = true): void {
    if (this.state === 'closed') return;
    const prev = this.state;
    this.state = 'closed';
    this.closeReason = reason;
    if (prev === 'waiting') this.pool?.cancelWait(this);
    const server = this.server;
    if (server) this.releaseOnClose(server);
    if (this.pool) this.pool.clientCount--;
    this.ctx.forget(this, reason, isError);
    if (!this.socket.destroyed) {
      this.socket.end();
      // Give the final ErrorResponse a moment to flush, then make sure it is gone.
      setTimeout(() => this.socket.destroy(), 1000).unref();
    }
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
    const reset = pool.settings.mode === 'session' || s.server_reset_query_always ? s.server_reset_query : '';
    const afterRollback = () => {
      if (!reset) {
        pool.release(server, server.txStatus === 'I');
        return;
      }
      server.runInternal(reset, (err) => {
        server.settings.clear();
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
