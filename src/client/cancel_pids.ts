// Which client a cancel request's process id names. A client's pid is random
// (31 bits, positive like PostgreSQL's), so it tells nobody its client's
// place or how many clients there are, and a blind cancel has to guess the
// pid as well as the key. The table maps pids to registry slots in two typed
// arrays with open addressing: nothing is allocated per login and nothing is
// rebuilt as clients come and go (a Map rebuilt its hash table on deletes,
// and a replaced table is garbage the young collector cannot see as such:
// see src/pool/client_slots.ts). It grows by doubling and never shrinks.
import { randomPid } from './random_pool.js';

const EMPTY = 0; // no pid is 0

export class CancelPids {
  private pids: Int32Array;
  private slots: Int32Array;
  private mask: number;
  private count = 0;

  /** `capacity`: a power of two; the table doubles when it would be more than half full. */
  constructor(capacity = 1024) {
    if (capacity < 2 || (capacity & (capacity - 1)) !== 0) throw new RangeError(`capacity ${capacity} is not a power of two`);
    this.pids = new Int32Array(capacity);
    this.slots = new Int32Array(capacity);
    this.mask = capacity - 1;
  }

  get size(): number {
    return this.count;
  }

  /** A new random pid for the client in registry slot `slot`, unique among those held. */
  add(slot: number): number {
    if ((this.count + 1) * 2 > this.pids.length) this.grow();
    for (;;) {
      const pid = randomPid();
      if (this.place(pid, slot)) {
        this.count++;
        return pid;
      }
    }
  }

  /** The slot `pid` was given to, or -1. */
  slotOf(pid: number): number {
    const i = this.indexOf(pid);
    return i < 0 ? -1 : this.slots[i]!;
  }

  /** Forgets `pid`; true when it was held. */
  delete(pid: number): boolean {
    let hole = this.indexOf(pid);
    if (hole < 0) return false;
    const { pids, slots, mask } = this;
    // Backward-shift deletion: pull later entries of the run into the hole
    // when their home position does not lie after it, so probes never stop early.
    for (let j = (hole + 1) & mask; pids[j] !== EMPTY; j = (j + 1) & mask) {
      const home = pids[j]! & mask;
      const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
      if (stays) continue;
      pids[hole] = pids[j]!;
      slots[hole] = slots[j]!;
      hole = j;
    }
    pids[hole] = EMPTY;
    this.count--;
    return true;
  }

  private indexOf(pid: number): number {
    if (pid <= 0) return -1;
    const { pids, mask } = this;
    for (let i = pid & mask; pids[i] !== EMPTY; i = (i + 1) & mask) if (pids[i] === pid) return i;
    return -1;
  }

  /** False when `pid` is already held. */
  private place(pid: number, slot: number): boolean {
    const { pids, mask } = this;
    let i = pid & mask;
    for (; pids[i] !== EMPTY; i = (i + 1) & mask) if (pids[i] === pid) return false;
    pids[i] = pid;
    this.slots[i] = slot;
    return true;
  }

  private grow(): void {
    const oldPids = this.pids;
    const oldSlots = this.slots;
    this.pids = new Int32Array(oldPids.length * 2);
    this.slots = new Int32Array(oldPids.length * 2);
    this.mask = this.pids.length - 1;
    for (let i = 0; i < oldPids.length; i++) if (oldPids[i] !== EMPTY) this.place(oldPids[i]!, oldSlots[i]!);
  }
}
