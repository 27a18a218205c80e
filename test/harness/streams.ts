// Byte-pipe test helpers shared by the Wire tests: a sink that records what
// a Wire delivers, a peer-side collector, and random payloads with digests.
import { createHash, randomBytes } from 'node:crypto';
import type net from 'node:net';
import type { WireSink } from '../../src/net/wire.js';

/** Records what a Wire hands its owner: bytes (with a digest), drains, errors and closes. */
export class Recorder implements WireSink {
  bytes = 0;
  drains = 0;
  closes = 0;
  errors: string[] = [];
  private readonly hash = createHash('sha256');
  onWireData(chunk: Buffer): void {
    this.bytes += chunk.length;
    this.hash.update(chunk);
  }
  onWireDrain(): void {
    this.drains++;
  }
  onWireError(err: Error): void {
    this.errors.push(err.message);
  }
  onWireClose(): void {
    this.closes++;
  }
  digest(): string {
    return this.hash.digest('hex');
  }
}

/** Counts and digests what arrives on `socket`. */
export function collect(socket: net.Socket): { bytes: () => number; digest: () => string } {
  const hash = createHash('sha256');
  let bytes = 0;
  socket.on('data', (c: Buffer) => {
    bytes += c.length;
    hash.update(c);
  });
  return { bytes: () => bytes, digest: () => hash.digest('hex') };
}

/** Random chunks of random sizes, and their digest. */
export function payload(total: number): { chunks: Buffer[]; digest: string } {
  const chunks: Buffer[] = [];
  const hash = createHash('sha256');
  let left = total;
  while (left > 0) {
    const n = Math.min(left, 1 + Math.floor(Math.random() * 20_000));
    const c = randomBytes(n);
    chunks.push(c);
    hash.update(c);
    left -= n;
  }
  return { chunks, digest: hash.digest('hex') };
}
