// Cancel keys and their process ids come from a pool of CSPRNG bytes refilled
// in bulk: one randomBytes() call per few hundred logins instead of one or two
// per login.
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';

let pool = Buffer.alloc(0);
let pos = 0;

function take(n: number): number {
  if (pos + n > pool.length) {
    pool = randomBytes(8192);
    pos = 0;
  }
  const at = pos;
  pos += n; // only ever forward: no byte is handed out twice
  return at;
}

/**
 * `n` random bytes as a view, not a copy: a small copy would pin one of
 * Node's shared 8 KiB slabs per few clients.
 */
export function randomKey(n: number): Buffer {
  const at = take(n);
  return pool.subarray(at, at + n);
}

/** A random process id for a client's BackendKeyData: 1 to 2^31 - 1, as PostgreSQL's are positive. */
export function randomPid(): number {
  for (;;) {
    const at = take(4); // before reading `pool`: take() may replace it
    const pid = pool.readUInt32BE(at) & 0x7fffffff;
    if (pid !== 0) return pid;
  }
}
