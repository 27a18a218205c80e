// Forwards a cancel request to PostgreSQL on a fresh connection, using the
// server's real key. PostgreSQL never answers a cancel; it closes the
// connection once it has signalled the backend. Until then the server is not
// handed to another client (Pool.release waits while ServerConn.cancelsInFlight), or a cancel
// meant for a query that just finished could stop the next client's query.
import net from 'node:net';
import { cancelRequest } from '../protocol/messages.js';
import type { ServerConn } from '../pool/server_conn.js';

export function sendCancel(server: ServerConn, timeoutMs = 5000): void {
  const { host } = server;
  const { port } = server.target;
  const socket = host.startsWith('/') ? net.connect({ path: `${host}/.s.PGSQL.${port}` }) : net.connect({ host, port });
  const msg = cancelRequest(server.pid, server.key);
  server.cancelStarted();
  socket.setTimeout(timeoutMs, () => socket.destroy());
  socket.once('connect', () => socket.end(msg));
  socket.on('error', () => socket.destroy());
  socket.once('close', () => server.cancelDone());
  socket.resume();
}
