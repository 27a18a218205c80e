// Rows for the admin console's SHOW CONFIG: values rendered in PgBouncer's
// units (seconds for durations, 0/1 for booleans), alphabetical like PgBouncer.

import { SETTING_SPECS, defaultValue, formatSetting, type SettingValue } from './settings.js';
import type { Config } from './types.js';

export interface SettingRow {
  readonly key: string;
  readonly value: string;
  readonly default: string;
  /** Whether RELOAD applies a change ("changeable" in SHOW CONFIG). */
  readonly changeable: boolean;
}

/**
 * One row per known [pgbouncer] key, Sluice-only and not-yet-supported keys included.
 * @example settingRows(cfg).find((r) => r.key === 'query_wait_timeout') // { value: '120', default: '120', changeable: true }
 */
export function settingRows(config: Config): SettingRow[] {
  const values = config.settings as unknown as Readonly<Record<string, SettingValue>>;
  const rows: SettingRow[] = [];
  for (const spec of SETTING_SPECS.values()) {
    const def = formatSetting(spec, defaultValue(spec));
    const value = spec.supported ? formatSetting(spec, values[spec.key]!) : config.otherSettings.get(spec.key) ?? def;
    rows.push(Object.freeze({ key: spec.key, value, default: def, changeable: spec.reloadable }));
  }
  return rows;
}
