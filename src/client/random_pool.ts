// Cancel keys and their process ids come from a pool of CSPRNG bytes refilled
// in bulk: one randomBytes() call per few hundred logins instead of one or two
// per login. A client's process id also carries its registry slot, so a
// cancel request finds its client without a table kept per login.
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

/** Registry slots that fit in a process id's low bits; more concurrent clients than this get a table. */
export const CANCEL_SLOT_BITS = 20;
const SLOT_MASK = (1 << CANCEL_SLOT_BITS) - 1;
/** Set in process ids that are not slot-coded, so the two kinds never collide. */
const UNCODED = 0x40000000;

/**
 * The process id for the client in registry slot `slot` (at most 2^20 - 1):
 * the slot in the low 20 bits, 10 random bits above it, never 0, bit 30
 * clear. Unique among live clients because their slots are. It is not the
 * secret: a cancel request must also carry the client's random key.
 */
export function slotCodedPid(slot: number): number {
  if (slot < 0 || slot > SLOT_MASK) throw new RangeError(`slot ${slot} does not fit in a process id`);
  for (;;) {
    const high = randomPid() & 0x3ff;
    if (high !== 0) return (high << CANCEL_SLOT_BITS) | slot;
  }
}

/** A random process id with bit 30 set: never equal to a slot-coded one. */
export function uncodedPid(): number {
  return UNCODED | (randomPid() & (UNCODED - 1));
}

/** The registry slot a process id names, or -1 when it is not slot-coded. */
export function slotOfPid(pid: number): number {
  return pid > 0 && (pid & UNCODED) === 0 ? pid & SLOT_MASK : -1;
}
