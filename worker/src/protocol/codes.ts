// Wire error codes: equal to seqsync::Code in cpp/include/seqsync/status.h and
// to the table in docs/protocol.md §6. Never renumber; add at the end.
export const ErrorCode = {
  OK: 0,
  MALFORMED_FRAME: 1,
  UNKNOWN_FRAME: 2,
  INVALID_FIELD: 3,
  TOO_LARGE: 4,
  TOO_DEEP: 5,
  TOO_MANY: 6,
  UNKNOWN_COLLECTION: 7,
  UNKNOWN_COLUMN: 8,
  INVALID_KEY: 9,
  UNAUTHORIZED: 10,
  NO_HANDLER: 11,
  EXECUTE_FAILED: 12,
  VERSION_MISMATCH: 13,
  UNSUPPORTED_PREDICATE: 14,
  PROTOCOL_ORDER: 15,
  NOT_REGISTERED: 16,
  SCHEMA: 17,
  INTERNAL: 18,
  RATE_LIMITED: 19,
} as const

export type ErrorName = keyof typeof ErrorCode
export type ErrorCodeNumber = (typeof ErrorCode)[ErrorName]

const namesByCode = new Map<number, ErrorName>(
  Object.entries(ErrorCode).map(([name, code]) => [code, name as ErrorName]),
)

/** The wire name of a code, or "INTERNAL" for a number this version does not know. */
export function errorName(code: number): ErrorName {
  return namesByCode.get(code) ?? 'INTERNAL'
}

// WebSocket close codes (docs/protocol.md §8). The 44xx codes are terminal:
// a client must not reconnect after them.
export const CloseCode = {
  NORMAL: 1000,
  TOO_LARGE: 1009,
  INTERNAL: 1011,
  /** The object's storage was reset under the socket (a new epoch): reconnect, and resync. */
  RESET: 1012,
  /** The socket's claims expired (SyncDurableObject.socketExpiresAt): dial again with fresh credentials, and resume by cursor. */
  REAUTH: 4001,
  /** More than maxUnreadBytesPerSocket sent and not reported read: reconnect, and resume by cursor. */
  SLOW_READER: 4008,
  PROTOCOL: 4400,
  UNAUTHORIZED: 4401,
  FORBIDDEN: 4403,
} as const

const closeNamesByCode = new Map<number, string>(Object.entries(CloseCode).map(([name, code]) => [code, name]))

/** The name of a close code (`UNAUTHORIZED` for 4401), or `INTERNAL` for one this version does not know. */
export function closeCodeName(code: number): string {
  return closeNamesByCode.get(code) ?? 'INTERNAL'
}

export function isTerminalClose(code: number): boolean {
  return code >= 4400 && code < 4500
}
