// Accepting connections without a net.Socket.
//
// net.Server wraps every accepted handle in a net.Socket (a Duplex with two
// stream states and its listeners) before emitting 'connection'. For a
// pooler facing connection churn and thousands of idle clients that is most
// of the cost of a connection, so Sluice takes the accepted handle itself
// whenever the connection cannot need TLS, and gives it to a Wire
// (Wire.overHandle). Otherwise, and on accept errors, Node's own path runs.
import type net from 'node:net';
import { handlesSupported, type AcceptedHandle } from './wire.js';

interface ListeningHandle {
  onconnection: (this: ListeningHandle, err: number, handle: AcceptedHandle | undefined) => void;
}

/**
 * After `server` listens: connections for which `wantsBare()` is true go to
 * `onBare` as raw handles; the rest become net.Sockets and reach the
 * server's 'connection' listeners as usual. Returns false (and changes
 * nothing) when this Node.js does not allow it.
 */
export function acceptBareHandles(server: net.Server, wantsBare: () => boolean, onBare: (handle: AcceptedHandle) => void): boolean {
  const listening = (server as unknown as { _handle?: ListeningHandle | null })._handle;
  if (!handlesSupported || !listening || typeof listening.onconnection !== 'function') return false;
  const nodeOnConnection = listening.onconnection;
  listening.onconnection = function (err, handle) {
    if (err || !handle || !wantsBare()) {
      nodeOnConnection.call(this, err, handle);
      return;
    }
    try {
      onBare(handle);
    } catch (err) {
      // Nothing owns the connection now: close it rather than leak the descriptor.
      (handle as { close?(): void }).close?.();
      throw err;
    }
  };
  return true;
}
