// Admin-layer errors with stable codes; the console turns them into ErrorResponses.
export const AdminErrorCode = {
  Syntax: 'SLUICE_ADMIN_SYNTAX',
  Denied: 'SLUICE_ADMIN_DENIED',
  NotFound: 'SLUICE_ADMIN_NOT_FOUND',
  State: 'SLUICE_ADMIN_STATE',
  Timeout: 'SLUICE_ADMIN_TIMEOUT',
  Config: 'SLUICE_ADMIN_CONFIG',
} as const;
export type AdminErrorCode = (typeof AdminErrorCode)[keyof typeof AdminErrorCode];

/** SQLSTATE per code, as a PostgreSQL client would expect it. */
const SQLSTATE: Record<AdminErrorCode, string> = {
  SLUICE_ADMIN_SYNTAX: '42601',
  SLUICE_ADMIN_DENIED: '42501',
  SLUICE_ADMIN_NOT_FOUND: '42704',
  SLUICE_ADMIN_STATE: '55000',
  SLUICE_ADMIN_TIMEOUT: '57014',
  SLUICE_ADMIN_CONFIG: 'F0000',
};

export class AdminError extends Error {
  readonly code: AdminErrorCode;
  readonly sqlstate: string;
  readonly hint: string | undefined;
  constructor(code: AdminErrorCode, message: string, hint?: string) {
    super(message);
    this.name = 'AdminError';
    this.code = code;
    this.sqlstate = SQLSTATE[code];
    this.hint = hint;
  }
  static is(v: unknown): v is AdminError {
    return v instanceof AdminError;
  }
}
