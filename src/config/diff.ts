// What RELOAD would change. Values are rendered in the file's units and
// secrets are never included, so the result can go straight to a log line.

import { databaseToConnString, userToConnString } from './connstring.js';
import { SETTING_SPECS, formatSetting, type SettingValue } from './settings.js';
import type { Config } from './types.js';

export type ConfigSection = 'pgbouncer' | 'databases' | 'users' | 'userlist' | 'peers';

export interface ConfigChange {
  readonly section: ConfigSection;
  /** Setting name, database name, user name or peer id. */
  readonly key: string;
  /** Rendered old value; undefined when the entry was added. */
  readonly old: string | undefined;
  /** Rendered new value; undefined when the entry was removed. */
  readonly new: string | undefined;
  /** False when the change only takes effect after a restart (PgBouncer's CF_NO_RELOAD). */
  readonly reloadable: boolean;
}

/**
 * List the differences between two configs, in a stable order:
 * settings (alphabetical), then databases, users, userlist, peers.
 * @example
 *   for (const c of diffConfig(current, loadConfig(current.file)))
 *     if (!c.reloadable) log.warn(`${c.key} needs a restart`);
 */
export function diffConfig(oldCfg: Config, newCfg: Config): ConfigChange[] {
  const changes: ConfigChange[] = [];
  const oldSettings = oldCfg.settings as unknown as Readonly<Record<string, SettingValue>>;
  const newSettings = newCfg.settings as unknown as Readonly<Record<string, SettingValue>>;

  for (const spec of SETTING_SPECS.values()) {
    let a: string | undefined;
    let b: string | undefined;
    if (spec.supported) {
      a = formatSetting(spec, oldSettings[spec.key]!);
      b = formatSetting(spec, newSettings[spec.key]!);
    } else {
      a = oldCfg.otherSettings.get(spec.key);
      b = newCfg.otherSettings.get(spec.key);
    }
    if (a !== b) changes.push({ section: 'pgbouncer', key: spec.key, old: a, new: b, reloadable: spec.reloadable });
  }

  diffMaps(changes, 'databases', oldCfg.databases, newCfg.databases, (d) => databaseToConnString(d), (x, y) => databaseToConnString(x, true) === databaseToConnString(y, true));
  diffMaps(changes, 'users', oldCfg.users, newCfg.users, userToConnString);
  // Secrets stay out of the diff: say only that one changed.
  diffMaps(changes, 'userlist', oldCfg.userlist, newCfg.userlist, (u) => `<${u.kind} secret>`, (x, y) => x.secret === y.secret, (x, y) =>
    x.kind === y.kind ? [`<${x.kind} secret>`, `<changed ${y.kind} secret>`] : undefined,
  );
  diffMaps(changes, 'peers', oldCfg.peers, newCfg.peers, (p) => `host=${p.host} port=${p.port}${p.pool_size === undefined ? '' : ` pool_size=${p.pool_size}`}`);
  return changes;
}

function diffMaps<K, V>(
  out: ConfigChange[],
  section: ConfigSection,
  a: ReadonlyMap<K, V>,
  b: ReadonlyMap<K, V>,
  render: (v: V) => string,
  same: (x: V, y: V) => boolean = (x, y) => render(x) === render(y),
  renderChange?: (x: V, y: V) => [string, string] | undefined,
): void {
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort((x, y) => (String(x) < String(y) ? -1 : String(x) > String(y) ? 1 : 0));
  for (const k of keys) {
    const x = a.get(k);
    const y = b.get(k);
    if (x !== undefined && y !== undefined && same(x, y)) continue;
    let oldText = x === undefined ? undefined : render(x);
    let newText = y === undefined ? undefined : render(y);
    if (x !== undefined && y !== undefined && renderChange) {
      const pair = renderChange(x, y);
      if (pair) [oldText, newText] = pair;
    }
    out.push({ section, key: String(k), old: oldText, new: newText, reloadable: true });
  }
}
