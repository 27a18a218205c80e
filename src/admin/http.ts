// The HTTP endpoint (http_listen = host:port): /metrics, /health, /ready,
// /budget. One node:http listener; every handler is read-only.
import http from 'node:http';
import type { Sluice } from '../app.js';
import type { Metrics } from './metrics.js';
import { longestWaitMs } from './views.js';
import { Budget } from './budget.js';

export class HttpEndpoint {
  private server: http.Server | null = null;
  readonly budget: Budget;
  port = 0;

  constructor(
    private readonly app: Sluice,
    private readonly metrics: Metrics,
  ) {
    this.budget = new Budget(app);
  }

  async listen(address: string): Promise<void> {
    const i = address.lastIndexOf(':');
    const host = address.slice(0, i).replace(/^\[|\]$/g, '') || '0.0.0.0';
    const port = Number(address.slice(i + 1));
    const server = http.createServer((req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const a = server.address();
    if (a && typeof a === 'object') this.port = a.port;
    this.server = server;
    this.app.log.info({ http: `${host}:${this.port}` }, 'HTTP endpoint listening (/metrics, /health, /ready, /budget)');
  }

  private json(res: http.ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body) + '\n');
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      this.json(res, 405, { error: 'only GET' });
      return;
    }
    try {
      switch (path) {
        case '/metrics': {
          const text = await this.metrics.registry.metrics();
          res.writeHead(200, { 'content-type': this.metrics.registry.contentType });
          res.end(text);
          return;
        }
        case '/health':
          this.json(res, 200, { status: 'ok', uptime_s: Math.floor((Date.now() - this.app.startedAt) / 1000) });
          return;
        case '/ready': {
          const reasons: string[] = [];
          const maxWait = this.app.settings().max_ready_wait;
          const wait = longestWaitMs(this.app);
          if (this.app.shuttingDown) reasons.push('shutting down');
          if (this.app.isPaused) reasons.push('paused');
          if (maxWait > 0 && wait > maxWait) reasons.push(`a client has waited ${wait} ms for a server (max_ready_wait ${maxWait} ms)`);
          this.json(res, reasons.length ? 503 : 200, { ready: reasons.length === 0, reasons, longest_wait_ms: wait });
          return;
        }
        case '/budget': {
          const b = await this.budget.check();
          this.json(res, b.ok ? 200 : 503, b);
          return;
        }
        default:
          this.json(res, 404, { error: 'not found', endpoints: ['/metrics', '/health', '/ready', '/budget'] });
      }
    } catch (err) {
      this.json(res, 500, { error: err instanceof Error ? err.message : String(err) });
    }
  }

  async close(): Promise<void> {
    await this.budget.close();
    const server = this.server;
    this.server = null;
    if (!server) return;
    server.closeAllConnections?.();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
