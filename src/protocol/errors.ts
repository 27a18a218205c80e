// Protocol-level errors. Each carries a stable code for logs and tests and the
// SQLSTATE the client is sent.

export class ProtocolError extends Error {
  readonly code: string;
  readonly sqlstate: string;
  constructor(code: string, message: string, sqlstate = '08P01') {
    super(message);
    this.name = 'ProtocolError';
    this.code = code;
    this.sqlstate = sqlstate;
  }
  static is(value: unknown): value is ProtocolError {
    return value instanceof ProtocolError;
  }
}

export const ProtocolErrorCode = Object.freeze({
  BadLength: 'SLUICE_PROTOCOL_BAD_LENGTH',
  TooLarge: 'SLUICE_PROTOCOL_TOO_LARGE',
  BadStartup: 'SLUICE_PROTOCOL_BAD_STARTUP',
  BadMessage: 'SLUICE_PROTOCOL_BAD_MESSAGE',
  UnexpectedData: 'SLUICE_PROTOCOL_UNEXPECTED_DATA',
});
