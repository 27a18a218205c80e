// Durations on the command line: a number with a unit (500ms, 30s, 10m, 2h, 1d).
// A bare number is refused: seconds (PgBouncer) and milliseconds (pg) are both
// common, and guessing wrong by 1000× is how sessions get killed.

export class DurationError extends Error {
  override readonly name = 'DurationError';
  readonly code = 'SLUICE_BAD_DURATION';
}

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds in `text`, e.g. '10m' → 600000. Compound forms like '1h30m' are accepted. */
export function parseDuration(text: string): number {
  const s = text.trim();
  const re = /(\d+(?:\.\d+)?)(ms|min|s|m|h|d)/gy;
  let total = 0;
  let pos = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    total += Number(m[1]) * (UNITS[m[2] ?? ''] ?? NaN);
    pos = re.lastIndex;
  }
  if (pos === 0 || pos !== s.length || !Number.isFinite(total)) {
    throw new DurationError(`not a duration: ${JSON.stringify(text)} (use a unit: 500ms, 30s, 10m, 2h)`);
  }
  return Math.round(total);
}

/** Short human form: 1h 2m, 3m 4s, 5.2s, 120ms. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)}s`;
  const totalS = Math.floor(ms / 1000);
  const d = Math.floor(totalS / 86400);
  const h = Math.floor((totalS % 86400) / 3600);
  const m = Math.floor((totalS % 3600) / 60);
  const sec = totalS % 60;
  if (d > 0) return h > 0 ? `${d}d ${h}h` : `${d}d`;
  if (h > 0) return m > 0 ? `${h}h ${m}m` : `${h}h`;
  return sec > 0 ? `${m}m ${sec}s` : `${m}m`;
}
