// ═════════════════════════════════════════════════════════════════════════
//  DEMO AUTH: REPLACE WITH YOUR REAL AUTH.
//  This is the one place where the three examples decide who a user is and
//  which rooms they may open. Nothing else in them trusts the client.
// ═════════════════════════════════════════════════════════════════════════
//
// Only two parts are toys: `login` takes any user name without a password,
// and `mayOpenRoom` is a naming rule instead of a membership table. The
// rest is what a real app keeps. The session is an HMAC-SHA256-signed cookie
// (key: AUTH_SECRET, with a dev value in .dev.vars; in production run
// `wrangler secret put AUTH_SECRET`). Every /sync upgrade verifies that
// cookie and checks the room (authenticate, below). Only then does
// routeSyncRequest forge the claims header the Durable Object reads.
import { CloseCode, refuseConnection } from 'seqsync'

export interface AuthEnv {
  /** The key that signs session cookies. At least 32 characters. */
  AUTH_SECRET?: string
  /** How long a session lasts, in seconds (a var; default 12 hours). */
  SESSION_SECONDS?: string
}

/** Everything a Durable Object knows about a socket's user. Only `authenticate` makes it. */
export interface Claims {
  userId: string
  /**
   * When the session ends, in seconds since the epoch (as a JWT's `exp`).
   * The Durable Object closes the socket with 4001 REAUTH then, and the page
   * dials again with a fresh session (its transport's url function).
   */
  exp: number
}

const COOKIE = 'seqsync_session'
const DEFAULT_SESSION_SECONDS = 12 * 60 * 60
const USER_NAME = /^[a-z0-9]{1,32}$/

// ── Toy 1: the sign-in. ─────────────────────────────────────────────────

/**
 * POST /auth/login with the body {"user": "ann"}. It sets the session cookie.
 * DEMO: it believes any well-formed name. Check a password, or finish an
 * OAuth flow, here instead.
 */
export async function login(req: Request, env: AuthEnv): Promise<Response> {
  // Blocks login CSRF: another site cannot sign this browser in as someone else.
  if (req.method !== 'POST' || !sameOrigin(req)) return new Response('forbidden', { status: 403 })
  const { user } = (await req.json().catch(() => ({}))) as { user?: unknown }
  if (typeof user !== 'string' || !USER_NAME.test(user)) {
    return new Response('a user name is 1 to 32 lowercase letters or digits', { status: 400 })
  }
  const seconds = sessionSeconds(env)
  const payload = `${user}.${Math.floor(Date.now() / 1000) + seconds}`
  const token = `${payload}.${hex(await crypto.subtle.sign('HMAC', await hmacKey(env), utf8(payload)))}`
  // HttpOnly: page scripts (and any XSS) never see the token. SameSite=Strict:
  // other sites' requests don't carry it.
  const secure = new URL(req.url).protocol === 'https:' ? '; Secure' : ''
  const cookie = `${COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${seconds}${secure}`
  return Response.json({ user }, { headers: { 'Set-Cookie': cookie } })
}

// ── Toy 2: room membership. ─────────────────────────────────────────────

/**
 * May `userId` open `room`? The Durable Object authorizes reads only at the
 * upgrade, so this check decides everything the user can read in the room.
 * DEMO rule: a room named `private-<user>-<user>…` admits only the users in
 * its name (`private-ann-bob`). Every other room admits every signed-in
 * user. Look up your membership table here instead.
 */
export function mayOpenRoom(userId: string, room: string): boolean {
  if (!room.startsWith('private-')) return true
  return room.slice('private-'.length).split('-').includes(userId)
}

// ── Keep this part: the gate that every /sync/<room> upgrade passes. ────

/**
 * routeSyncRequest's authenticate: the claims of the verified session, or
 * the terminal refusal to send back (a 44xx close, so the client stops
 * retrying). routeSyncRequest forges the claims header from what this
 * returns and strips the cookie, so the DO gets the claims, never the
 * credential.
 */
export async function authenticate(req: Request, env: AuthEnv, room: string): Promise<Claims | Response> {
  // A WebSocket has no CORS, and SameSite does not cover sibling subdomains.
  // So refuse other origins, or any page could open a socket as the user.
  if (!sameOrigin(req)) return refuseConnection(req, CloseCode.FORBIDDEN, 'cross-origin upgrade')
  const claims = await verifySession(req, env)
  if (!claims) return refuseConnection(req) // 4401: no session, or a forged or expired one
  if (!mayOpenRoom(claims.userId, room)) return refuseConnection(req, CloseCode.FORBIDDEN, 'not a member of this room')
  return claims
}

async function verifySession(req: Request, env: AuthEnv): Promise<Claims | null> {
  const parts = readCookie(req, COOKIE)?.split('.') ?? []
  const [user, expires, mac] = parts
  if (parts.length !== 3 || !USER_NAME.test(user!) || !/^\d{1,12}$/.test(expires!) || !/^[0-9a-f]{64}$/.test(mac!)) return null
  if (Number(expires) * 1000 < Date.now()) return null
  // crypto.subtle.verify compares in constant time. A string === would not.
  const valid = await crypto.subtle.verify('HMAC', await hmacKey(env), unhex(mac!), utf8(`${user}.${expires}`))
  return valid ? { userId: user!, exp: Number(expires) } : null
}

function sessionSeconds(env: AuthEnv): number {
  const seconds = Number(env.SESSION_SECONDS ?? DEFAULT_SESSION_SECONDS)
  if (!Number.isSafeInteger(seconds) || seconds < 1) throw new Error('SESSION_SECONDS is a whole number of seconds, at least 1')
  return seconds
}

async function hmacKey(env: AuthEnv): Promise<CryptoKey> {
  // Fail closed. There is no built-in fallback key that could reach production.
  if (!env.AUTH_SECRET || env.AUTH_SECRET.length < 32) {
    throw new Error('AUTH_SECRET is not set (32+ characters): .dev.vars for wrangler dev, `wrangler secret put` to deploy')
  }
  return crypto.subtle.importKey('raw', utf8(env.AUTH_SECRET), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify'])
}

/** True unless a browser says that a page of another origin sent the request. */
function sameOrigin(req: Request): boolean {
  const origin = req.headers.get('Origin')
  return origin === null || origin === new URL(req.url).origin
}

function readCookie(req: Request, name: string): string | undefined {
  for (const pair of (req.headers.get('Cookie') ?? '').split(';')) {
    const at = pair.indexOf('=')
    if (at > 0 && pair.slice(0, at).trim() === name) return pair.slice(at + 1).trim()
  }
  return undefined
}

const utf8 = (s: string) => new TextEncoder().encode(s)
const hex = (buf: ArrayBuffer) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('')
const unhex = (s: string) => Uint8Array.from(s.match(/../g)!, (h) => parseInt(h, 16))
