// `sluice doctor [DATABASE_URL]`: a ✓/✗ checklist for one database URL, with
// advice for every ✗. Exit 1 on critical findings so CI can gate on it.
import { parseArgs } from 'node:util';
import { DoctorUrlError } from './doctor/connect.js';
import { DurationError, formatDuration, parseDuration } from './doctor/duration.js';
import { runDoctor, type CheckResult, type DoctorReport, type SessionInfo } from './doctor/run.js';
import { isTty, renderTable, type CliIo } from './table.js';

export { runDoctor } from './doctor/run.js';
export type { CheckResult, DoctorReport, DoctorOptions, SessionInfo } from './doctor/run.js';

export const DOCTOR_USAGE = `Usage: sluice doctor [DATABASE_URL] [options]

Checks a database URL: TLS and certificate verification, server limits,
connection usage, sessions idle in transaction, old idle connections, and
whether a pooler (Sluice, PgBouncer) is in between and in which mode.
DATABASE_URL defaults to $DATABASE_URL.

Options:
  --idle-threshold DURATION  report idle connections older than this (default 10m)
  --kill-idle DURATION       list idle connections older than DURATION that
                             would be terminated; with --yes, terminate them
  --yes                      really terminate (pg_terminate_backend)
  --instances N              app instances …
  --pool-size M              … each with a pool of M: check N×M against the limit
  --json                     the report as JSON
  -h, --help

Durations take a unit: 500ms, 30s, 10m, 2h.
Exit codes: 0 no critical findings, 1 critical findings, 2 bad usage.`;

class DoctorUsageError extends Error {
  override readonly name = 'DoctorUsageError';
  readonly code = 'SLUICE_USAGE';
}

function symbol(c: CheckResult): string {
  return c.ok ? '✓' : '✗';
}

function sessionsTable(sessions: readonly SessionInfo[], tty: boolean): string {
  return renderTable(
    [{ header: 'pid', align: 'right' }, { header: 'application' }, { header: 'user' }, { header: 'state' }, { header: 'for', align: 'right' }, { header: 'last query' }],
    sessions.map((s) => [String(s.pid), s.application, s.user ?? '', s.state ?? '', formatDuration(s.ageMs), s.query.replace(/\s+/g, ' ').slice(0, 60)]),
    { tty },
  );
}

export function renderReport(r: DoctorReport, tty: boolean): string {
  const out: string[] = [`sluice doctor ${r.url}`, ''];
  for (const c of r.checks) {
    const sev = c.ok ? '' : c.severity === 'critical' ? ' [critical]' : ' [warning]';
    out.push(`${symbol(c)} ${c.title}${sev}: ${c.detail}`);
    for (const a of c.advice) out.push(`    → ${a}`);
    const indent = (table: string): void => {
      for (const line of table.trimEnd().split('\n')) out.push('    ' + line);
    };
    if (c.id === 'usage' && r.usage.length > 0) {
      indent(
        renderTable(
          [{ header: 'application' }, { header: 'state' }, { header: 'connections', align: 'right' }],
          r.usage.map((u) => [u.application, u.state, String(u.count)]),
          { tty },
        ),
      );
    }
    if (c.id === 'idle-in-transaction' && r.idleInTransaction.length > 0) indent(sessionsTable(r.idleInTransaction, tty));
    if (c.id === 'idle' && r.idle.length > 0) indent(sessionsTable(r.idle, tty));
  }
  out.push('');
  out.push(
    r.critical > 0
      ? `${r.critical} critical finding(s), ${r.warnings} warning(s).`
      : r.warnings > 0
        ? `No critical findings; ${r.warnings} warning(s).`
        : 'All checks passed.',
  );
  return out.join('\n') + '\n';
}

function positiveInt(v: string, what: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new DoctorUsageError(`${what} must be a whole number ≥ 1, got ${JSON.stringify(v)}`);
  return Number(v);
}

export async function main(
  argv: string[],
  io: CliIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const fail = (s: string): void => void io.stderr.write(s.endsWith('\n') ? s : s + '\n');
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        'idle-threshold': { type: 'string' },
        'kill-idle': { type: 'string' },
        yes: { type: 'boolean' },
        instances: { type: 'string' },
        'pool-size': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    fail(`sluice doctor: ${err instanceof Error ? err.message : String(err)}\n\n${DOCTOR_USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout.write(DOCTOR_USAGE + '\n');
    return 0;
  }
  const url = positionals[0] ?? process.env['DATABASE_URL'];
  try {
    if (positionals.length > 1) throw new DoctorUsageError('give one DATABASE_URL');
    if (!url) throw new DoctorUsageError('no DATABASE_URL given and $DATABASE_URL is not set');
    if (values.yes && values['kill-idle'] === undefined) throw new DoctorUsageError('--yes only applies to --kill-idle DURATION');
    if (values['kill-idle'] !== undefined && values['idle-threshold'] !== undefined) throw new DoctorUsageError('give either --kill-idle or --idle-threshold, not both');
    if ((values.instances === undefined) !== (values['pool-size'] === undefined)) throw new DoctorUsageError('--instances and --pool-size go together');
    const thresholdText = values['kill-idle'] ?? values['idle-threshold'];
    const report = await runDoctor({
      url,
      ...(thresholdText !== undefined ? { idleThresholdMs: parseDuration(thresholdText) } : {}),
      killIdle: values['kill-idle'] !== undefined,
      yes: values.yes === true,
      ...(values.instances !== undefined ? { instances: positiveInt(values.instances, '--instances') } : {}),
      ...(values['pool-size'] !== undefined ? { poolSize: positiveInt(values['pool-size'], '--pool-size') } : {}),
    });
    if (values.json) {
      io.stdout.write(JSON.stringify({ ok: report.critical === 0, ...report }, null, 2) + '\n');
    } else {
      io.stdout.write(renderReport(report, isTty(io)));
    }
    return report.critical > 0 ? 1 : 0;
  } catch (err) {
    if (err instanceof DurationError || err instanceof DoctorUrlError || err instanceof DoctorUsageError) {
      fail(`sluice doctor: ${err.message}\nRun "sluice doctor --help" for the syntax.`);
      return 2;
    }
    throw err;
  }
}
