// Public API of the config layer.

export type * from './types.js';
export { ConfigError, CONFIG_INVALID, type ConfigErrorLocation } from './errors.js';
export { loadConfig, buildConfig, parseUserlist, type BuildConfigInput } from './load.js';
export { parseScramSecret, secretKind, type ParsedUserlist, type ScramSecret } from './userlist.js';
export { readIni, parseIni, unquote, MAX_INCLUDE_DEPTH, KNOWN_SECTIONS, type IniEntry, type IniDocument } from './ini.js';
export {
  parseConnString,
  formatConnString,
  quoteConnValue,
  parseDatabaseEntry,
  parseUserEntry,
  parsePeerEntry,
  databaseToConnString,
  userToConnString,
  DATABASE_PARAMETERS,
  USER_PARAMETERS,
  type ConnPair,
} from './connstring.js';
export {
  SETTING_SPECS,
  defaultSettings,
  parseSetting,
  formatSetting,
  isSettingsKey,
  type SettingSpec,
  type SettingKind,
  type SettingValue,
} from './settings.js';
export { diffConfig, type ConfigChange, type ConfigSection } from './diff.js';
export { settingRows, type SettingRow } from './format.js';
export { FrozenMap } from './freeze.js';
