// The Node.js floor: the least a Node.js process can do per connection or per
// round trip, to measure Sluice and PgBouncer against (`npm run bench -- --floor`).
// Not a pooler and not for use: no framing, no auth, no limits.
//
//   node floor_server.js login PORT         answers SSL/GSSENC requests with 'N' and any
//                                           StartupMessage with canned
//                                           AuthenticationOk … ReadyForQuery;
//                                           closes on Terminate
//   node floor_server.js proxy PORT PGPORT  forwards every byte both ways, one
//                                           PostgreSQL connection per client
//
// Both drive libuv handles the way Sluice's Wire does (one shared read buffer,
// writeBuffer with a plain request object, TCP_NODELAY), so the difference
// between Sluice and this is Sluice's own work, not Node.js's.

interface Handle {
  onread: () => void;
  readStart(): number;
  useUserBuffer(buf: Buffer): void;
  setNoDelay(on: boolean): number;
  writeBuffer(req: object, buf: Buffer): number;
  close(): void;
  bind(host: string, port: number): number;
  listen(backlog: number): number;
  connect(req: object, host: string, port: number): number;
  onconnection: (status: number, handle: Handle) => void;
}
interface Bindings {
  TCP: new (type: number) => Handle;
  TCPConnectWrap: new () => { oncomplete: (status: number) => void };
  constants: { SERVER: number; SOCKET: number };
}
interface StreamBindings {
  WriteWrap: new () => { handle: Handle; oncomplete: () => void; async: boolean };
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
}

const binding = (process as unknown as { binding(name: string): unknown }).binding;
const { TCP, TCPConnectWrap, constants } = binding('tcp_wrap') as Bindings;
const { WriteWrap, streamBaseState, kReadBytesOrError } = binding('stream_wrap') as StreamBindings;

const shared = Buffer.allocUnsafeSlow(64 * 1024);
const done = () => {};

function write(h: Handle, buf: Buffer): void {
  const req = new WriteWrap();
  req.handle = h;
  req.oncomplete = done;
  req.async = false;
  if (h.writeBuffer(req, buf) !== 0) h.close();
}

function message(type: string, body: Buffer): Buffer {
  const b = Buffer.alloc(5 + body.length);
  b[0] = type.charCodeAt(0);
  b.writeInt32BE(4 + body.length, 1);
  body.copy(b, 5);
  return b;
}

const param = (k: string, v: string) => message('S', Buffer.from(`${k}\0${v}\0`));
const keyData = Buffer.alloc(8);
keyData.writeInt32BE(4242, 0);
const WELCOME = Buffer.concat([
  message('R', Buffer.alloc(4)),
  param('server_version', '15.0'),
  param('server_encoding', 'UTF8'),
  param('client_encoding', 'UTF8'),
  param('standard_conforming_strings', 'on'),
  param('DateStyle', 'ISO, MDY'),
  param('integer_datetimes', 'on'),
  message('K', keyData),
  message('Z', Buffer.from('I')),
]);
const NO_ENCRYPTION = Buffer.from('N');
const ENCRYPTION_REQUEST = 1234;

function onLoginConnection(ch: Handle): void {
  ch.setNoDelay(true);
  ch.useUserBuffer(shared);
  let loggedIn = false;
  ch.onread = () => {
    const n = streamBaseState[kReadBytesOrError]!;
    if (n < 0) return ch.close();
    if (loggedIn) {
      if (shared[0] === 0x58 /* Terminate */) ch.close();
      return;
    }
    // SSLRequest or GSSENCRequest (code 1234.xxxx in an 8-byte packet): refuse, as both poolers do here.
    if (n === 8 && shared.readInt16BE(4) === ENCRYPTION_REQUEST) return write(ch, NO_ENCRYPTION);
    loggedIn = true;
    write(ch, WELCOME);
  };
  ch.readStart();
}

function onProxyConnection(ch: Handle, pgPort: number): void {
  ch.setNoDelay(true);
  const sh = new TCP(constants.SOCKET);
  sh.setNoDelay(true);
  const req = new TCPConnectWrap();
  req.oncomplete = (status) => {
    if (status !== 0) return ch.close();
    ch.useUserBuffer(shared);
    sh.useUserBuffer(shared);
    const pipe = (from: Handle, to: Handle) => () => {
      const n = streamBaseState[kReadBytesOrError]!;
      if (n < 0) {
        from.close();
        to.close();
        return;
      }
      write(to, shared.subarray(0, n));
    };
    ch.onread = pipe(ch, sh);
    sh.onread = pipe(sh, ch);
    ch.readStart();
    sh.readStart();
  };
  if (sh.connect(req, '127.0.0.1', pgPort) !== 0) ch.close();
}

const [variant, portText, pgPortText] = process.argv.slice(2);
const port = Number(portText);
const pgPort = Number(pgPortText);
if ((variant !== 'login' && variant !== 'proxy') || !port || (variant === 'proxy' && !pgPort)) {
  console.error('usage: floor_server.js login PORT | proxy PORT PGPORT');
  process.exit(2);
}
const server = new TCP(constants.SERVER);
const err = server.bind('127.0.0.1', port) || server.listen(511);
if (err) {
  console.error(`floor_server: cannot listen on 127.0.0.1:${port} (libuv error ${err})`);
  process.exit(1);
}
server.onconnection = (status, handle) => {
  if (status !== 0) return;
  if (variant === 'login') onLoginConnection(handle);
  else onProxyConnection(handle, pgPort);
};
// A listening handle made through the binding does not keep the loop alive on its own.
setInterval(() => {}, 1 << 30);
console.log(`floor_server ${variant} listening on ${port}`);
