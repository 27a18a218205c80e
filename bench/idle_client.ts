// Load generator for the idle-scale benchmark, run as its own process so its
// sockets and memory do not mix with the pooler's. Opens N connections,
// completes the startup handshake on each (StartupMessage, then read until
// ReadyForQuery), prints one JSON line, and holds them open until stdin closes.
//   node dist/bench/idle_client.js PORT N [CONCURRENCY] [USER] [DATABASE] [SOURCE_ADDRS]
import net from 'node:net';

const [portArg, nArg, concArg, user = 'postgres', database = 'postgres', sourcesArg] = process.argv.slice(2);
const port = Number(portArg);
const total = Number(nArg);
const concurrency = Number(concArg ?? 200);

/** StartupMessage: int32 length, int32 protocol 3.0, then name\0value\0 pairs and a final \0. */
function startupPacket(params: Record<string, string>): Buffer {
  const body = Object.entries(params).map(([k, v]) => `${k}\0${v}\0`).join('') + '\0';
  const len = 8 + Buffer.byteLength(body);
  const buf = Buffer.alloc(len);
  buf.writeInt32BE(len, 0);
  buf.writeInt32BE(196608, 4);
  buf.write(body, 8);
  return buf;
}

const packet = startupPacket({ user, database, application_name: 'sluice-idle-bench' });
// Each run gets its own source addresses: the previous run's ports linger in TIME_WAIT.
const sources = sourcesArg ? sourcesArg.split(',') : ['127.0.0.1'];
const sockets: net.Socket[] = [];
let ready = 0;
let failed = 0;
let firstError = '';
let next = 0;
const started = process.hrtime.bigint();

function connectOne(i: number): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: sources[i % sources.length] });
    let buf: Buffer = Buffer.alloc(0);
    let settled = false;
    const settle = (err?: string) => {
      if (settled) return;
      settled = true;
      if (err) {
        failed++;
        if (!firstError) firstError = err;
        s.destroy();
      } else {
        ready++;
      }
      resolve();
    };
    s.once('connect', () => s.write(packet));
    s.on('data', (chunk: Buffer) => {
      if (settled) return; // idle from here on: nothing should arrive
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      while (buf.length >= 5) {
        const type = String.fromCharCode(buf[0]!);
        const len = buf.readInt32BE(1);
        if (buf.length < 1 + len) break;
        if (type === 'R' && buf.readInt32BE(5) !== 0) return settle(`server asked for authentication (code ${buf.readInt32BE(5)}); the bench needs auth_type = trust`);
        if (type === 'E') return settle(`ErrorResponse: ${buf.subarray(5, 1 + len).toString('utf8').replace(/\0/g, ' ').trim()}`);
        if (type === 'Z') {
          buf = Buffer.alloc(0);
          return settle();
        }
        buf = buf.subarray(1 + len);
      }
    });
    s.on('error', (err) => settle(err.message));
    s.on('close', () => {
      if (!settled) settle('connection closed before ReadyForQuery');
      else if (!closing) lost++;
    });
    sockets.push(s);
  });
}

let closing = false;
let lost = 0;

async function worker(): Promise<void> {
  while (next < total) await connectOne(next++);
}

await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
const ms = Number(process.hrtime.bigint() - started) / 1e6;
process.stdout.write(JSON.stringify({ ready, failed, ms, firstError }) + '\n');

// Hold until the parent says so; report connections the pooler dropped meanwhile.
process.stdin.resume();
process.stdin.on('end', () => {
  closing = true;
  process.stdout.write(JSON.stringify({ lost }) + '\n');
  for (const s of sockets) s.destroy();
  process.exit(0);
});
