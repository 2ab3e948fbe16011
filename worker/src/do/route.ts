// routeSyncRequest: the Worker half of seqsync in one call.
//
// Every Worker in front of a SyncDurableObject does the same four things:
// match the sync path, authenticate the request, forge the claims header the
// DO trusts (overwriting whatever the client sent), and forward to the
// room's DO. Getting one wrong is a hole (a client-sent claims header that
// passes through), or a client that retries forever (an HTTP 401 a browser
// WebSocket cannot read). This file is the one copy of that code.
import { ClosedError, ProtocolError, SubscriptionError } from '../client/errors.js'
import { CloseCode, isTerminalClose } from '../protocol/codes.js'
import type { SnapshotSub, SyncSnapshot } from '../protocol/snapshot.js'
import { refuseConnection } from './refuse.js'

/** A snapshot read that was not refused. */
export type SnapshotOf = Extract<SyncSnapshot, { epoch: string }>

/**
 * The request header that carries the Worker's verified claims to the DO.
 * SyncDurableObject's default parseAttachment reads it; routeSyncRequest
 * always overwrites it.
 */
export const CLAIMS_HEADER = 'x-claims'

// Any Durable Object class's namespace: the helper only names rooms and forwards.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyNamespace = DurableObjectNamespace<any>

/** Where a request matched: `/<route>/<room>` or `/<route>/<room>/<endpoint>`. */
export interface SyncRouteMatch {
  /** The first path segment, a key of `namespace` (`sync` for a single namespace). */
  route: string
  room: string
  /** The third path segment, a key of `endpoints`; undefined for the sync socket itself. */
  endpoint: string | undefined
}

/** What an endpoint gets: the authenticated claims and the room's stub. */
export interface SyncEndpointContext<Env, Claims> extends SyncRouteMatch {
  req: Request
  env: Env
  claims: Claims
  /** The room's object (cast it to your class's stub to call its RPC methods). */
  stub: DurableObjectStub
}

/**
 * Decides who the request is. Return the claims to admit it; `null` (or
 * undefined) to refuse it with 4401, which clients do not retry; or a
 * Response to send as it is (`refuseConnection(req, CloseCode.FORBIDDEN, …)`).
 * Verify a signed credential here (crypto.subtle.verify), never a name the
 * client sends; with a cookie, also refuse a foreign Origin (a WebSocket has
 * no CORS). Reads are authorized here only: an admitted socket may read
 * everything in the room.
 */
export type Authenticate<Env, Claims> = (
  req: Request,
  match: SyncRouteMatch & { env: Env },
) => Claims | Response | null | undefined | Promise<Claims | Response | null | undefined>

export interface RouteSyncOptions<Env, Claims> {
  /**
   * The Durable Object namespace, served at `/sync/<room>`; or one namespace
   * per first path segment (`{ sync: env.ROOM, admin: env.ADMIN }` serves
   * `/sync/<room>` and `/admin/<room>`).
   */
  namespace: AnyNamespace | Record<string, AnyNamespace>
  authenticate: Authenticate<Env, Claims>
  /** The room names accepted; anything else is not a sync path. Default `/^[A-Za-z0-9_-]{1,64}$/`. */
  room?: RegExp
  /**
   * More routes under a room, `/<route>/<room>/<name>`, served after the
   * same authentication (an inspector, a server-rendered snapshot).
   */
  endpoints?: Record<string, (ctx: SyncEndpointContext<Env, Claims>) => Response | Promise<Response>>
  /** Headers removed before forwarding: the DO gets the claims, never the credential. Default `Cookie`, `Authorization`. */
  stripHeaders?: readonly string[]
}

const DEFAULT_ROOM = /^[A-Za-z0-9_-]{1,64}$/
const DEFAULT_STRIPPED = ['Cookie', 'Authorization']

/**
 * Serves the seqsync routes of a Worker, and returns null for every other
 * request, for the app to serve:
 *
 * @example
 * export default {
 *   async fetch(req, env) {
 *     return (await routeSyncRequest(req, env, {
 *       namespace: env.CHAT_ROOM,
 *       authenticate: (req) => verifySession(req, env), // claims, or null for 4401
 *     })) ?? env.ASSETS.fetch(req)
 *   },
 * }
 */
export async function routeSyncRequest<Env, Claims>(
  req: Request,
  env: Env,
  options: RouteSyncOptions<Env, Claims>,
): Promise<Response | null> {
  const match = matchSyncPath(new URL(req.url).pathname, options)
  if (!match) return null
  const admitted = await admit(req, env, options, match)
  if (admitted instanceof Response) return admitted
  const { claims, stub } = admitted
  if (match.endpoint !== undefined) {
    return options.endpoints![match.endpoint]!({ ...match, req, env, claims, stub })
  }
  return stub.fetch(forwarded(req, claims, options.stripHeaders))
}

/** What readSyncSnapshot reads: a room (under `route`, default `sync`) and its subscriptions. */
export interface SnapshotRead {
  room: string
  route?: string
  /** `sub` bodies (`id` defaults to `c`), judged as a socket's hello judges its subs. */
  subs: SnapshotSub[]
}

/**
 * Reads snapshots from a room's DO for a server render, as the socket
 * `req` would open there would see them: `req` passes the same
 * `authenticate` (and the DO's parseAttachment), and each sub is judged as
 * that socket's hello would judge it. The rows come with the seq and epoch
 * that cover them: a client that hydrates from them resumes from there and
 * receives only what changed since (docs/protocol.md §5.9).
 *
 * Throws what the socket would have met, typed as the client types it:
 * `ClosedError` (code 4401/4403, `closeCode`) for refused claims,
 * `SubscriptionError` (its `code`, `sub`) for a refused sub, and
 * `ProtocolError` for a refused list.
 *
 * @example
 * const snapshot = await readSyncSnapshot(req, env, routeOptions, {
 *   room, subs: [{ c: 'messages' }],
 * })
 * const state = dehydratedState(snapshot, { messages: (m) => m.id }) // seqsync/client
 */
export async function readSyncSnapshot<Env, Claims>(
  req: Request,
  env: Env,
  options: RouteSyncOptions<Env, Claims>,
  read: SnapshotRead,
): Promise<SnapshotOf> {
  const route = read.route ?? 'sync'
  const match = matchSyncPath(`/${route}/${read.room}`, options)
  if (!match) throw new TypeError(`[seqsync] readSyncSnapshot: /${route}/${read.room} is not a sync path of these options`)
  const admitted = await admit(req, env, options, match)
  if (admitted instanceof Response) {
    const code = admitted.status === 403 ? CloseCode.FORBIDDEN : CloseCode.UNAUTHORIZED
    throw new ClosedError(code, admitted.status === 101 ? 'refused' : await admitted.text())
  }
  const stub = admitted.stub as unknown as { readSyncSnapshot(req: Request, subs: SnapshotSub[]): Promise<SyncSnapshot> }
  const snapshot = await stub.readSyncSnapshot(forwarded(req, admitted.claims, options.stripHeaders), read.subs)
  return checkedSnapshot(snapshot)
}

/** The snapshot, or the typed error of its refusal. */
export function checkedSnapshot(snapshot: SyncSnapshot): SnapshotOf {
  if ('refused' in snapshot) {
    const { code, message } = snapshot.refused
    throw isTerminalClose(code) ? new ClosedError(code, message) : new ProtocolError(code, message)
  }
  for (const entry of snapshot.subs) {
    if ('refused' in entry) throw new SubscriptionError({ sub: entry.sub, ...entry.refused }, entry.c)
  }
  return snapshot
}

/** The claims, and the room's stub, of an authenticated request; or the Response that refuses it. */
async function admit<Env, Claims>(
  req: Request,
  env: Env,
  options: RouteSyncOptions<Env, Claims>,
  match: SyncRouteMatch,
): Promise<{ claims: Claims; stub: DurableObjectStub } | Response> {
  const verdict = await options.authenticate(req, { ...match, env })
  if (verdict instanceof Response) return verdict
  if (verdict === null || verdict === undefined) return refuseConnection(req)
  const namespace = namespaceOf(options.namespace, match.route) as DurableObjectNamespace
  return { claims: verdict, stub: namespace.get(namespace.idFromName(match.room)) }
}

/** `req` as the DO gets it: the forged claims header, without the credential. */
function forwarded(req: Request, claims: unknown, stripHeaders: readonly string[] = DEFAULT_STRIPPED): Request {
  const headers = new Headers(req.headers)
  for (const name of stripHeaders) headers.delete(name)
  headers.set(CLAIMS_HEADER, JSON.stringify(claims)) // overwrites any value the client sent
  return new Request(req, { headers })
}

/** The route, room and endpoint of `pathname`, or null if it is not one of the options' paths. */
export function matchSyncPath(
  pathname: string,
  options: { namespace: RouteSyncOptions<unknown, unknown>['namespace']; room?: RegExp; endpoints?: object },
): SyncRouteMatch | null {
  const [empty, route, room, endpoint, ...rest] = pathname.split('/')
  if (empty !== '' || route === undefined || room === undefined || rest.length > 0) return null
  if (!namespaceOf(options.namespace, route)) return null
  if (!(options.room ?? DEFAULT_ROOM).test(room)) return null
  if (endpoint !== undefined && !Object.hasOwn(options.endpoints ?? {}, endpoint)) return null
  return { route, room, endpoint }
}

function namespaceOf(namespace: RouteSyncOptions<unknown, unknown>['namespace'], route: string): AnyNamespace | undefined {
  if (isNamespace(namespace)) return route === 'sync' ? namespace : undefined
  return Object.hasOwn(namespace, route) ? namespace[route] : undefined
}

function isNamespace(value: unknown): value is AnyNamespace {
  return typeof (value as { idFromName?: unknown }).idFromName === 'function'
}
