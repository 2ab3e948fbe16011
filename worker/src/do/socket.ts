// What a socket carries across hibernation, and the socket helpers the
// shell shares: sends and closes that never throw, an inbound frame's size,
// and the canonical claims a mutation scope is built from.

// What each socket carries across hibernation (≤ 16 KB, platform limit):
// its id, its claims, and its presence as the core last said to keep it.
// expiresAt (ms since the epoch, from socketExpiresAt) is kept beside the
// claims so that an alarm in a woken instance knows it without the hook.
export interface SocketAttachment<Claims> {
  seqsync: { v: 1; socketId: string; claims: Claims; expiresAt?: number; presence?: string }
}

const ATTACHMENT_LIMIT_BYTES = 16 * 1024
// Kept free of claims for presence: the core's kPresenceAttachmentBytes
// (4 KiB of tabs) plus the user's name (256 bytes, escaped) and framing.
const PRESENCE_RESERVE_BYTES = 6 * 1024
const utf8 = new TextEncoder()

/** A new socket's attachment leaves the presence reserve free (its claims fit in 10 KB). */
export function leavesRoomForPresence(attachment: SocketAttachment<unknown>): boolean {
  return utf8.encode(JSON.stringify(attachment)).byteLength <= ATTACHMENT_LIMIT_BYTES - PRESENCE_RESERVE_BYTES
}

/**
 * Stores `presence` with the socket, beside its id and claims (within the
 * reserve the upgrade kept free). Returns the attachment now stored, or
 * undefined if none could be.
 */
export function keepPresence<Claims>(
  ws: WebSocket,
  attachment: SocketAttachment<Claims> | undefined,
  presence: string,
): SocketAttachment<Claims> | undefined {
  if (!attachment) return undefined
  const kept = { seqsync: { ...attachment.seqsync, presence } }
  try {
    ws.serializeAttachment(kept)
    return kept
  } catch (error) {
    // A socket that closed under us; its presence goes with it.
    console.error('seqsync: could not keep presence with the socket:', error)
    return undefined
  }
}

export function readAttachment<Claims>(ws: WebSocket): SocketAttachment<Claims> | undefined {
  const value = ws.deserializeAttachment() as SocketAttachment<Claims> | null
  return value && typeof value === 'object' && value.seqsync ? value : undefined
}

export function closeQuietly(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason)
  } catch {
    // already closed
  }
}

/** Sends without throwing: a socket that closed under us is forgotten by webSocketClose. */
export function sendQuietly(ws: WebSocket, frame: string): void {
  try {
    ws.send(frame)
  } catch {
    // already closed
  }
}

/**
 * The UTF-8 size of an inbound message, exact when it could be over
 * `limit`. A UTF-16 unit is 1 to 3 bytes, so most strings are decided by
 * their length alone, without encoding them.
 */
export function frameBytes(message: string | ArrayBuffer, limit: number): number {
  if (typeof message !== 'string') return message.byteLength
  if (message.length > limit || message.length * 3 <= limit) return message.length
  return utf8.encode(message).byteLength
}

// JWT claims that change with every token of the same user.
const TOKEN_TIME_CLAIMS = new Set(['exp', 'iat', 'nbf', 'jti', 'auth_time'])

export function withoutTokenTimes(claims: unknown): unknown {
  if (!claims || typeof claims !== 'object' || Array.isArray(claims)) return claims
  return Object.fromEntries(Object.entries(claims).filter(([key]) => !TOKEN_TIME_CLAIMS.has(key)))
}

/** JSON with object keys sorted, so equal claims give equal scopes. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  ) ?? 'null'
}
