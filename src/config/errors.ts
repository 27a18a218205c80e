// Config errors. One class with a stable code; the message always starts with
// "file:line:" so an operator can jump straight to the offending line.

export const CONFIG_INVALID = 'SLUICE_CONFIG_INVALID';

export interface ConfigErrorLocation {
  /** The file as the operator named it ('<memory>' for buildConfig input). */
  readonly file: string;
  /** 1-based line; 0 when there is no line (in-memory input, whole-file problems). */
  readonly line: number;
  /** The setting or connection-string key at fault, when there is one. */
  readonly key?: string | undefined;
  /** The ini section the key belongs to. */
  readonly section?: string | undefined;
}

export class ConfigError extends Error {
  readonly code = CONFIG_INVALID;
  readonly file: string;
  readonly line: number;
  readonly key: string | undefined;
  readonly section: string | undefined;
  /** The message without the "file:line: " prefix. */
  readonly detail: string;

  constructor(where: ConfigErrorLocation, detail: string, options?: { cause?: unknown }) {
    super(`${locationPrefix(where.file, where.line)}${detail}`, options);
    this.name = 'ConfigError';
    this.file = where.file;
    this.line = where.line;
    this.key = where.key;
    this.section = where.section;
    this.detail = detail;
  }

  static is(value: unknown): value is ConfigError {
    return value instanceof ConfigError;
  }
}

/** "file:12: " or "file: " when the line is unknown. */
export function locationPrefix(file: string, line: number): string {
  return line > 0 ? `${file}:${line}: ` : `${file}: `;
}

/**
 * Raised by the value parsers, which know what is wrong but not where;
 * callers catch it and rethrow a ConfigError with the location.
 */
export class ValueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ValueError';
  }
}
