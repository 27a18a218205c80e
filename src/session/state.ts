// What session state a server connection really holds, asked of the server
// itself after a transaction the classifier flagged. One round trip; the
// answer decides pinning and the parameters the client carries to its next server.

import { quoteLiteral } from './params.js';

/** Schema-qualified, so a client's search_path cannot change what it reads. */
export const PROBE_SQL =
  'select ' +
  "(select count(*) from pg_catalog.pg_locks where locktype operator(pg_catalog.=) 'advisory' and pid operator(pg_catalog.=) pg_catalog.pg_backend_pid()), " +
  '(select count(*) from pg_catalog.pg_class where relnamespace operator(pg_catalog.=) pg_catalog.pg_my_temp_schema()), ' +
  '(select count(*) from pg_catalog.pg_listening_channels()), ' +
  '(select count(*) from pg_catalog.pg_cursors where is_holdable), ' +
  '(select count(*) from pg_catalog.pg_prepared_statements where from_sql), ' +
  "(select coalesce(pg_catalog.jsonb_object_agg(name, pg_catalog.current_setting(name)), '{}'::jsonb) from pg_catalog.pg_settings where source operator(pg_catalog.=) 'session')" +
  // SET ROLE and SET SESSION AUTHORIZATION are not in pg_settings; a privilege change must never leak.
  " operator(pg_catalog.||) case when pg_catalog.current_setting('role') operator(pg_catalog.<>) 'none' then pg_catalog.jsonb_build_object('role', pg_catalog.current_setting('role')) else '{}'::jsonb end" +
  " operator(pg_catalog.||) case when session_user operator(pg_catalog.<>) (select usename from pg_catalog.pg_stat_activity where pid operator(pg_catalog.=) pg_catalog.pg_backend_pid()) then pg_catalog.jsonb_build_object('session_authorization', session_user::text) else '{}'::jsonb end";

export interface SessionState {
  readonly advisoryLocks: number;
  readonly tempObjects: number;
  readonly listens: number;
  readonly holdCursors: number;
  readonly sqlPrepared: number;
  /** Session-level settings (SET), by name. */
  readonly settings: ReadonlyMap<string, string>;
}

/**
 * The probe, also asking for custom settings by name: pg_settings leaves out
 * placeholders such as `app.tenant`, the usual carrier of a tenant id.
 */
export function probeSql(customNames: readonly string[]): string {
  if (customNames.length === 0) return PROBE_SQL;
  const list = customNames.map(quoteLiteral).join(',');
  return (
    PROBE_SQL +
    `, (select pg_catalog.jsonb_object_agg(n, pg_catalog.current_setting(n, true)) from pg_catalog.unnest(array[${list}]::pg_catalog.text[]) n)`
  );
}

/**
 * Reads the probe's row. `resets` are the custom settings the transaction
 * RESET (`*`: RESET ALL, DISCARD ALL): their '' is the reset, not a value, so
 * the client's startup value (if any) comes back, as PostgreSQL would give it.
 */
export function parseProbe(rows: string[][], resets: readonly string[] = []): SessionState | null {
  const r = rows[0];
  if (!r || r.length < 6) return null;
  let settings = new Map<string, string>();
  try {
    settings = new Map(Object.entries(JSON.parse(r[5]) as Record<string, string>));
    if (r.length > 6 && r[6]) {
      // Unset is NULL; '' is a value a client may SET, unless it came from a RESET.
      const custom: unknown = JSON.parse(r[6]);
      if (typeof custom !== 'object' || custom === null) return null;
      const resetAll = resets.includes('*');
      for (const [name, value] of Object.entries(custom as Record<string, string | null>)) {
        if (value === null || (value === '' && (resetAll || resets.includes(name)))) continue;
        settings.set(name, value);
      }
    }
  } catch {
    return null;
  }
  return {
    advisoryLocks: Number(r[0]),
    tempObjects: Number(r[1]),
    listens: Number(r[2]),
    holdCursors: Number(r[3]),
    sqlPrepared: Number(r[4]),
    settings,
  };
}

/** Why a client must keep its server, from the probe (and LOAD, which cannot be undone). */
export function pinReasons(state: SessionState, loaded: boolean, unknownSetting = false): string[] {
  const out: string[] = [];
  if (state.advisoryLocks > 0) out.push('advisory_lock');
  if (state.tempObjects > 0) out.push('temp_object');
  if (state.listens > 0) out.push('listen');
  if (state.holdCursors > 0) out.push('with_hold_cursor');
  if (state.sqlPrepared > 0) out.push('sql_prepare');
  if (loaded) out.push('load');
  if (unknownSetting) out.push('unknown_setting');
  return out;
}
