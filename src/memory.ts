// V8 doubles its young generation (up to 32 MB) whenever many new objects
// survive a collection, and a burst of client connections that then stay idle
// looks exactly like that. It gives the memory back only when its memory
// reducer judges the process idle, which takes from tens of seconds to never.
// So while many clients are connected, Sluice asks V8 not to grow the young
// generation further, and lets it grow again once they have gone. Below the
// threshold (the usual case, and every churn-heavy one) nothing changes, so
// short-lived connections keep the larger young generation that suits them.
//
// The growth factor is read by V8 at each resize, so changing it at run time
// takes effect at once. V8 clamps the command-line value to at least 2, which
// is why this cannot be a start-up flag.
import v8 from 'node:v8';

/** Connected clients (across every Sluice in the process) above which growth stops. */
export const YOUNG_GENERATION_CAP_ABOVE = 500;

let connected = 0;
let capped = false;
const defaultFactor = growthFactorFromArgs();

/** Call once per accepted client connection. */
export function clientOpened(): void {
  connected++;
  if (!capped && connected > YOUNG_GENERATION_CAP_ABOVE) setCapped(true);
}

/** Call once per client connection that has closed. */
export function clientClosed(): void {
  connected--;
  if (capped && connected <= YOUNG_GENERATION_CAP_ABOVE / 2) setCapped(false);
}

/** Whether young-generation growth is stopped now (for tests). */
export function youngGenerationCapped(): boolean {
  return capped;
}

function setCapped(on: boolean): void {
  capped = on;
  v8.setFlagsFromString(`--semi-space-growth-factor=${on ? 1 : defaultFactor}`);
}

/** The factor the operator chose (node --semi-space-growth-factor=N or NODE_OPTIONS), else V8's 2. */
function growthFactorFromArgs(): number {
  const args = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  for (const arg of args) {
    const m = /^--semi[-_]space[-_]growth[-_]factor=(\d+)$/.exec(arg);
    if (m) return Math.max(2, Number(m[1]));
  }
  return 2;
}
