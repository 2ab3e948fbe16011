// SyncDurableObject: the Durable Object shell around the C++ core.
//
// The shell owns what only JS can do: the Cloudflare APIs (hibernatable
// WebSockets, ctx.storage.sql and transactionSync) and the user's callbacks
// (authorize, execute, afterCommit). Every protocol decision — decoding and
// validating frames, seqs, catch-up, compaction, retention, deduplication —
// is the core's. A frame crosses into the core whole; what comes back is a
// plan: frames to send, to whom, and at most one mutation to run.
import { DurableObject } from 'cloudflare:workers'

import { CloseCode, closeCodeName, ErrorCode, errorName } from '../protocol/codes.js'
import { assembleSnapshot, snapshotHello, type SnapshotSub, type SyncSnapshot } from '../protocol/snapshot.js'
import {
  Core,
  CoreError,
  errorFrame,
  keepSpareCoreModule,
  notRegisteredPlan,
  type RawPlan,
  SyncRegistrationError,
} from './core.js'
import { SyncDenied } from './denied.js'
import { refuseConnection } from './refuse.js'
import { CLAIMS_HEADER } from './route.js'
import type { RegistryHandle } from './registry.js'
import type { SyncOptions } from './sync-options.js'
import { DebugLines, helloOf } from './debug-lines.js'
import { isThenable, type MutationHost, runMutation, transactionScopedSql } from './run-mutation.js'
import {
  canonicalJson,
  closeQuietly,
  frameBytes,
  keepPresence,
  leavesRoomForPresence,
  readAttachment,
  sendQuietly,
  type SocketAttachment,
  withoutTokenTimes,
} from './socket.js'
import type { SyncInspection, SyncJson, SyncStats } from './stats.js'


export { SyncRegistrationError }
export type { SyncOptions }

interface SocketIdentity<Claims> {
  socketId: string
  claims: Claims
  scope: string
  expiresAt: number | undefined
  presenceUser?: string
}

/** What presenceValidate is given: one tab's state, from the socket of `user`. */
export interface PresenceContext<Claims, Env> {
  user: Claims
  tab: string
  state: unknown
  env: Env
}

export abstract class SyncDurableObject<Env = unknown, Claims = unknown> extends DurableObject<Env> {
  /** The DO's SQLite. Create your tables with it before calling registerSync. */
  protected readonly sql: SqlStorage

  // Set by registerSync: a core exists only registered.
  #core: Core | undefined
  #registry: RegistryHandle | undefined
  // socket id -> socket, rebuilt from ctx.getWebSockets() after a wake.
  #sockets: Map<string, WebSocket> | undefined
  // Set when a core call threw: its heap may be corrupt, so it is never
  // called again (see #coreTrapped).
  #coreBroken = false
  // Each socket's attachment, deserialized once per instance (a wake with
  // many sockets reads them all), and kept in step with what is stored.
  #attachments = new WeakMap<WebSocket, SocketAttachment<Claims> | null>()
  // Each socket's mutation scope, canonicalized once rather than per frame.
  #identities = new WeakMap<WebSocket, SocketIdentity<Claims>>()
  // The sql handle execute gets (see transactionScopedSql).
  #scopedSql: ReturnType<typeof transactionScopedSql> | undefined
  /** What runMutation needs of this object. */
  readonly #mutationHost: MutationHost<Claims, Env> = {
    registry: () => this.#registry,
    env: () => this.env,
    sql: () => this.sql,
    storage: () => this.ctx.storage,
    core: () => this.#registeredCore(),
    coreBroken: () => this.#coreBroken,
    now: () => this.syncNow(),
    deliver: (plan, sender) => this.#deliver(plan, sender),
    scopedSql: () => (this.#scopedSql ??= transactionScopedSql(this.sql)),
  }
  // Refusals the shell sends itself (a frame too large to copy into the
  // core), by code, merged into the core's in syncStats.
  #shellRefusals = new Map<number, number>()
  // The structured lines written while debug is on.
  readonly #debugLines = new DebugLines(() => this.debug)

  /**
   * Debug logging: one JSON line per connect, resume (delta or snapshot,
   * how many rows), refusal (code, reason), close and mutation outcome,
   * each with its socket id (and mutation id). `true` logs with
   * console.log; a function gets each line. Off by default, and then it
   * costs one check per frame sent. Set it in the constructor, from an
   * env var say: `this.debug = env.SEQSYNC_DEBUG === '1'`.
   */
  protected debug: boolean | ((line: string) => void) = false

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    this.sql = ctx.storage.sql
    // Keepalive: a client's "ping" is answered by the runtime without waking
    // (or billing) a hibernated object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('ping', 'pong'))
  }

  /**
   * Reads the Worker-forged claims from the upgrade request. They are stored
   * in the socket's attachment and passed to every authorize/execute. Throw
   * to refuse the connection: a thrown Response is returned as is, anything
   * else becomes a 4401 close. Default: the JSON of the `x-claims` header
   * that routeSyncRequest forges (a missing, unparsable or null one
   * refuses). Override it to check the claims' shape, or to read claims a
   * hand-written Worker put elsewhere.
   */
  protected parseAttachment(req: Request): Claims {
    const claims = JSON.parse(req.headers.get(CLAIMS_HEADER) ?? 'null') as Claims | null
    if (claims === null) throw new Error('no claims: upgrades must come through the Worker (routeSyncRequest)')
    return claims
  }

  /**
   * The identity that scopes mutation ids: another identity presenting the
   * same id is an unrelated mutation. It must stay the same across a token
   * refresh, or a write replayed after the refresh would run twice. Default:
   * the claims as canonical JSON without the claims a refresh changes
   * (`exp`, `iat`, `nbf`, `jti`, `auth_time`). Override it to return your
   * user id if your claims carry other per-token fields.
   */
  protected mutationScope(claims: Claims): string {
    return canonicalJson(withoutTokenTimes(claims))
  }

  /**
   * When a socket opened with `claims` must re-authenticate, in milliseconds
   * since the epoch; undefined for never. At that time the object closes the
   * socket with 4001 REAUTH (an alarm does it, hibernated or not, and a frame
   * that arrives after it is dropped), and the client dials again with fresh
   * credentials and resumes by cursor. Claims already expired at the upgrade
   * are refused with 4401. Default: the claims' `exp` (seconds, as in a
   * JWT) if it is a number. If your object uses its alarm too, call
   * `super.alarm()` from yours, and never move an armed alarm later.
   */
  protected socketExpiresAt(claims: Claims): number | undefined {
    const exp = (claims as { exp?: unknown } | null)?.exp
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined
  }

  /** The clock socket expiries, rate limits and retention are measured against. Default Date.now(); a test overrides it to inject time. */
  protected syncNow(): number {
    return Date.now()
  }

  /**
   * Who a socket's presence entries are, as every watcher sees them (at most
   * 256 bytes). It comes from the claims, never from the client, so no
   * client can speak for another. Default: the claims' `userId`, else
   * `sub`, else the mutation scope. Override it to show a name, or to keep
   * an id private.
   */
  protected presenceUser(claims: Claims): string {
    const { userId, sub } = (claims ?? {}) as { userId?: unknown; sub?: unknown }
    if (typeof userId === 'string') return userId
    if (typeof sub === 'string') return sub
    return this.mutationScope(claims)
  }

  /**
   * Judges one tab's presence state before anyone sees it: throw a
   * SyncDenied to refuse it (its message reaches the client in a
   * presence-error, UNAUTHORIZED); any other throw refuses it as INTERNAL
   * and is logged. Synchronous, so sets apply in the order they came. The
   * core has already bounded it (size, tabs, rate). Default: accept.
   *
   * @example
   * protected override presenceValidate({ state }: PresenceContext<Claims, Env>) {
   *   if (typeof state !== 'object' || state === null) throw new SyncDenied('presence is an object')
   * }
   */
  protected presenceValidate(_ctx: PresenceContext<Claims, Env>): void {}

  /**
   * Wires change capture for the registry's tables (idempotent across
   * deploys) and restores the sockets that survived hibernation. Call it in
   * the constructor, inside ctx.blockConcurrencyWhile, after your migrations.
   */
  protected registerSync(registry: RegistryHandle, options: SyncOptions = {}): void {
    this.#usableCore() // throws while a trapped core resets the object
    // Called again in a running instance (after ctx.storage.deleteAll(),
    // say): what the running core holds in memory describes the old
    // storage, so a fresh core is opened over the new one.
    const previousEpoch = this.#core?.epoch
    this.#dropCore()
    const sockets = this.#socketMap()
    // The registration's DDL and the restore commit together, or neither does.
    const opened = this.ctx.storage.transactionSync(() =>
      Core.open({
        sql: this.sql,
        send: (to, frame) => this.#sendTo(to, frame),
        optionsJson: JSON.stringify(options),
        registrationJson: registry.toRegistrationJson(),
        freshEpoch: crypto.randomUUID(),
        liveSocketIds: [...sockets.keys()],
        livePresence: this.#livePresence(sockets),
        onTrap: (error) => this.#coreTrapped(error),
      }),
    )
    this.#core = opened.core
    this.#registry = registry
    if (previousEpoch !== undefined && previousEpoch !== opened.core.epoch) {
      // A new epoch under live sockets: their cursors mean nothing here.
      // A retryable close makes each client reconnect, see the new epoch,
      // and replace what it holds with a snapshot.
      for (const ws of sockets.values()) closeQuietly(ws, CloseCode.RESET, 'storage was reset; reconnect to resync')
      return
    }
    // Subscriptions a deploy made invalid (a dropped collection or column) are refused, not left hanging.
    this.#deliver({ deliveries: opened.refusals })
  }

  /**
   * Applies a server-side write (an agent, a webhook, a cron job, a seed)
   * and broadcasts it to subscribed clients exactly like a client write.
   * `write` runs inside a transaction: synchronous statements only.
   */
  protected runSyncedWrite<T>(write: (sql: SqlStorage) => T): T {
    const result = this.ctx.storage.transactionSync(() => write(this.sql))
    // Before registerSync no socket can hold a subscription: nothing to send.
    const core = this.#usableCore()
    if (core) this.#deliver(core.drain(this.syncNow()))
    return result
  }

  /**
   * Compaction and retention, now. They also run on their own as writes
   * flow; call this from an alarm or cron to prune an idle DO. `nowMs` is
   * the clock the retention window is measured against.
   */
  protected syncHousekeep(nowMs: number = this.syncNow()): void {
    this.#registeredCore().housekeep(nowMs)
  }

  /**
   * The object's stats, for dashboards, health checks and alerts: head,
   * floor, the log's rows and bytes, each table's rows, sockets and
   * subscriptions by collection, writes in flight, mutation outcomes,
   * refusals and closes by code, mutation latency (p50/p99 of the last
   * 512), frames and bytes sent, the last housekeeping and the core's wasm
   * memory. The counters are the core's, kept as frames leave, from zero in
   * each instance (a wake resets them); the sizes are read from SQLite now
   * (3 statements), never on a write. An RPC method: only code holding the
   * object's binding can call it, so serve it behind your own authorization.
   *
   * @example
   * const stats = await env.CHAT_ROOM.get(env.CHAT_ROOM.idFromName(room)).syncStats()
   */
  syncStats(): SyncStats {
    return this.#stats(false)
  }

  /**
   * syncStats() and what the inspector page (syncInspector) shows: each
   * socket with its identity (redactClaims of its claims) and its
   * subscriptions with their `where`, the newest change-log entries, and
   * the recent mutations (outcome, latency) and refusals.
   */
  syncInspect(): SyncInspection {
    const inspection = this.#stats(true) as SyncInspection
    const sockets = this.#socketMap()
    for (const socket of inspection.socketList) {
      const ws = sockets.get(socket.id)
      const identity = ws && this.#identity(ws)
      socket.identity = identity ? this.redactClaims(identity.claims) : null
    }
    return inspection
  }

  /**
   * What the inspector shows of a socket's claims. Default: nothing (null).
   * Return only what an operator may see, e.g. `{ userId: claims.userId }`.
   */
  protected redactClaims(_claims: Claims): SyncJson {
    return null
  }

  #stats(detail: boolean): SyncStats {
    const core = this.#registeredCore()
    const stats = JSON.parse(core.statsJson(detail)) as SyncStats
    stats.epoch = core.epoch
    stats.databaseBytes = this.sql.databaseSize
    for (const [code, count] of this.#shellRefusals) {
      const entry = stats.refusals.find((r) => r.code === code)
      if (entry) entry.count += count
      else stats.refusals.push({ code, error: errorName(code), count })
    }
    return stats
  }

  /** Head, retention floor and log size, for logs, health checks and tests. */
  protected syncState(): { head: number; floor: number; rows: number; epoch: string } {
    const core = this.#registeredCore()
    return { ...core.state(), epoch: core.epoch }
  }

  /**
   * Reads snapshots for a server render, over RPC (docs/protocol.md §5.9):
   * the rows each of `subs` would get as a socket's first snapshot, with the
   * seq and epoch that cover them all, or the refusal that socket would get.
   * `req` is what an upgrade would be (routeSyncRequest's forged claims
   * header): its claims pass the same parseAttachment and size check, and
   * the core judges each sub as it judges a hello's. Nothing is held or
   * written. Call it through readSyncSnapshot, which authenticates first.
   */
  async readSyncSnapshot(req: Request, subs: SnapshotSub[]): Promise<SyncSnapshot> {
    const admitted = this.#admit(req)
    if ('code' in admitted) {
      return { v: 1, refused: { code: admitted.code, error: closeCodeName(admitted.code), message: admitted.reason } }
    }
    const core = this.#usableCore()
    if (!core) {
      const message = 'the Durable Object did not call registerSync before accepting reads'
      return { v: 1, refused: { code: ErrorCode.NOT_REGISTERED, error: 'NOT_REGISTERED', message } }
    }
    const list = Array.isArray(subs) ? subs : []
    return assembleSnapshot(core.epoch, list, core.readSnapshot(snapshotHello(list)))
  }

  /** Accepts the WebSocket upgrade. Override to serve other requests too. */
  override async fetch(req: Request): Promise<Response> {
    if (req.headers.get('Upgrade')?.toLowerCase() !== 'websocket') {
      return new Response('seqsync: expected a WebSocket upgrade', { status: 426 })
    }
    const attachment = this.#admit(req)
    if ('code' in attachment) {
      if (this.debug) this.#debugLines.write({ event: 'refusal', socket: null, code: attachment.code, reason: attachment.reason })
      return attachment.response ?? refuseConnection(req, attachment.code, attachment.reason)
    }
    const { expiresAt } = attachment.seqsync
    const { 0: client, 1: server } = new WebSocketPair()
    this.ctx.acceptWebSocket(server)
    try {
      server.serializeAttachment(attachment)
    } catch {
      // Accepted but unidentifiable, it would be ignored forever: refuse it.
      server.close(CloseCode.PROTOCOL, 'claims cannot be stored with the socket')
      return new Response(null, { status: 101, webSocket: client })
    }
    this.#attachments.set(server, attachment)
    this.#socketMap().set(attachment.seqsync.socketId, server)
    if (this.debug) this.#debugLines.write({ event: 'connect', socket: attachment.seqsync.socketId })
    if (expiresAt !== undefined) await this.#armExpiryAlarm(expiresAt)
    return new Response(null, { status: 101, webSocket: client })
  }

  /**
   * Closes every socket whose claims expired with 4001 REAUTH, and arms the
   * alarm for the next expiry. The attachments hold the expiries, so this
   * works in an instance woken from hibernation by the alarm itself.
   */
  override async alarm(): Promise<void> {
    const now = this.syncNow()
    let next: number | undefined
    for (const ws of this.ctx.getWebSockets()) {
      const expiresAt = this.#attachment(ws)?.seqsync.expiresAt
      if (expiresAt === undefined) continue
      if (expiresAt <= now) this.#reauthenticate(ws)
      else if (next === undefined || expiresAt < next) next = expiresAt
    }
    if (next !== undefined) await this.#armExpiryAlarm(next)
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const identity = this.#identity(ws)
    if (!identity) return // not a seqsync socket
    const { socketId, claims, scope, expiresAt } = identity
    // The alarm closes an expired socket; a frame that beat it is not served.
    if (expiresAt !== undefined && expiresAt <= this.syncNow()) return this.#reauthenticate(ws)
    const core = this.#usableCore()
    if (!core) return this.#deliver(notRegisteredPlan(socketId), ws)
    // An oversize frame is refused before it is copied into the wasm heap.
    const bytes = frameBytes(message, core.maxFrameBytes)
    if (bytes > core.maxFrameBytes) {
      this.#shellRefusals.set(ErrorCode.TOO_LARGE, (this.#shellRefusals.get(ErrorCode.TOO_LARGE) ?? 0) + 1)
      this.#sendTo(socketId, errorFrame(ErrorCode.TOO_LARGE, `frame is ${bytes} bytes; the limit is ${core.maxFrameBytes}`))
      return
    }
    // Binary frames go in as bytes: the core checks that they are UTF-8.
    const frame = typeof message === 'string' ? message : new Uint8Array(message)
    const hello = this.debug ? helloOf(message) : undefined
    if (hello) this.#debugLines.startResume(socketId)
    const plan = core.onMessage(socketId, scope, frame, this.syncNow())
    this.#deliver(plan, ws)
    if (hello) this.#debugLines.endResume(socketId, hello)
    if (plan.presence) this.#judgePresence(ws, identity, plan.presence)
    if (plan.mutation) await runMutation(this.#mutationHost, scope, claims, plan.mutation, ws)
    keepSpareCoreModule()
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.#forget(ws)
    // Complete the close handshake. 1005 (no status) and 1006 (abnormal) are
    // reserved for reporting and may not be sent in a close frame, so they are answered with 1000.
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason)
    } catch {
      // already closed
    }
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.#forget(ws)
  }

  // ---- internals -----------------------------------------------------------

  /**
   * The attachment of the socket `req` would open, or why it may not: a
   * terminal close code (a thrown Response is answered as it is, and counts
   * as 4403 if it is a 403, else 4401; claims already expired are 4401).
   */
  #admit(req: Request): SocketAttachment<Claims> | { code: number; reason: string; response?: Response } {
    let claims: Claims
    try {
      claims = this.parseAttachment(req)
    } catch (thrown) {
      if (!(thrown instanceof Response)) return { code: CloseCode.UNAUTHORIZED, reason: 'unauthorized' }
      const code = thrown.status === 403 ? CloseCode.FORBIDDEN : CloseCode.UNAUTHORIZED
      return { code, reason: 'refused by parseAttachment', response: thrown }
    }
    const expiresAt = this.socketExpiresAt(claims)
    if (expiresAt !== undefined && expiresAt <= this.syncNow()) {
      return { code: CloseCode.UNAUTHORIZED, reason: 'credentials expired' }
    }
    const attachment: SocketAttachment<Claims> = {
      seqsync: { v: 1, socketId: crypto.randomUUID(), claims, ...(expiresAt === undefined ? {} : { expiresAt }) },
    }
    if (!leavesRoomForPresence(attachment)) {
      return { code: CloseCode.PROTOCOL, reason: 'claims exceed 10 KB (the 16 KB socket attachment keeps 6 KB for presence)' }
    }
    return attachment
  }

  /**
   * Drops a trapped core by resetting the object: its sockets are closed,
   * and the next request starts a fresh instance whose core is rebuilt from
   * SQLite. Nothing the trapped core decided was committed (a trap inside a
   * mutation's transaction rolls it back), and clients resume by cursor.
   */
  #coreTrapped(error: unknown): never {
    this.#coreBroken = true
    this.#core = undefined
    console.error('seqsync: the wasm core trapped; resetting the Durable Object:', error)
    this.ctx.abort('seqsync: the wasm core trapped')
    throw error instanceof Error ? error : new Error(String(error))
  }

  /** Stops the running core, if any. */
  #dropCore(): void {
    this.#core?.delete()
    this.#core = undefined
  }

  /** The core, or undefined before registerSync. Throws once a core trapped: the object is being reset. */
  #usableCore(): Core | undefined {
    if (this.#coreBroken) throw new Error('seqsync: the wasm core trapped; this object is being reset')
    return this.#core
  }

  /** The core; throws if registerSync was not called. */
  #registeredCore(): Core {
    const core = this.#usableCore()
    if (!core) throw new CoreError(ErrorCode.NOT_REGISTERED, 'seqsync: registerSync was not called')
    return core
  }

  /** Runs the app's hook on a presence set the core admitted, then has the core apply or refuse it. */
  #judgePresence(ws: WebSocket, identity: SocketIdentity<Claims>, pending: NonNullable<RawPlan['presence']>): void {
    const { socketId, claims } = identity
    let refusal: { code: number; message: string } | undefined
    try {
      const verdict = this.presenceValidate({ user: claims, tab: pending.tab, state: pending.state, env: this.env }) as unknown
      if (isThenable(verdict)) {
        ;(verdict as Promise<unknown>).catch(() => {})
        throw new Error('presenceValidate returned a promise: it must be synchronous')
      }
    } catch (error) {
      if (error instanceof SyncDenied) refusal = { code: ErrorCode.UNAUTHORIZED, message: error.message }
      else {
        console.error(`seqsync: presenceValidate threw for tab ${pending.tab}:`, error)
        refusal = { code: ErrorCode.INTERNAL, message: 'presenceValidate threw' }
      }
    }
    const core = this.#registeredCore()
    identity.presenceUser ??= this.presenceUser(claims)
    const plan = refusal
      ? core.refusePresence(socketId, refusal.code, refusal.message)
      : core.commitPresence(socketId, identity.presenceUser)
    this.#deliver(plan, ws)
  }

  /** The presence each live socket's attachment kept, for the core a wake opens. */
  #livePresence(sockets: Map<string, WebSocket>): Array<{ socket: string; presence: string }> {
    const kept: Array<{ socket: string; presence: string }> = []
    for (const [socket, ws] of sockets) {
      const presence = this.#attachment(ws)?.seqsync.presence
      if (typeof presence === 'string') kept.push({ socket, presence })
    }
    return kept
  }

  #identity(ws: WebSocket): SocketIdentity<Claims> | undefined {
    let identity = this.#identities.get(ws)
    if (!identity) {
      const attachment = this.#attachment(ws)
      if (!attachment) return undefined
      const { socketId, claims, expiresAt } = attachment.seqsync
      identity = { socketId, claims, scope: this.mutationScope(claims), expiresAt }
      this.#identities.set(ws, identity)
    }
    return identity
  }

  /** The socket's seqsync attachment (undefined: not a seqsync socket). */
  #attachment(ws: WebSocket): SocketAttachment<Claims> | undefined {
    let attachment = this.#attachments.get(ws)
    if (attachment === undefined) {
      attachment = readAttachment<Claims>(ws) ?? null
      this.#attachments.set(ws, attachment)
    }
    return attachment ?? undefined
  }

  #socketMap(): Map<string, WebSocket> {
    if (!this.#sockets) {
      this.#sockets = new Map()
      for (const ws of this.ctx.getWebSockets()) {
        const attachment = this.#attachment(ws)
        if (attachment) this.#sockets.set(attachment.seqsync.socketId, ws)
      }
    }
    return this.#sockets
  }

  /** Closes `ws` 4001 REAUTH and forgets it, so nothing more is sent to it under its expired claims. */
  #reauthenticate(ws: WebSocket): void {
    const reason = 'credentials expired; reconnect with fresh ones'
    if (this.debug) this.#debugLines.write({ event: 'close', socket: this.#identity(ws)?.socketId ?? null, code: CloseCode.REAUTH, reason })
    closeQuietly(ws, CloseCode.REAUTH, reason)
    this.#forget(ws)
  }

  /** Arms the alarm for `expiresAt` (on syncNow's clock) unless it already rings earlier. */
  async #armExpiryAlarm(expiresAt: number): Promise<void> {
    const at = Date.now() + Math.max(0, expiresAt - this.syncNow())
    const armed = await this.ctx.storage.getAlarm()
    if (armed === null || armed > at) await this.ctx.storage.setAlarm(at)
  }

  #forget(ws: WebSocket): void {
    const socketId = this.#identities.get(ws)?.socketId ?? this.#attachment(ws)?.seqsync.socketId
    if (socketId === undefined) return
    this.#identities.delete(ws)
    this.#socketMap().delete(socketId)
    // Its presence leaves the others' views now, not when they next hear from the object.
    const plan = this.#core?.onClose(socketId)
    if (plan) this.#deliver(plan)
  }

  /** Sends `frame` to the sockets `to` (ids one per line). */
  #sendTo(to: string, frame: string): void {
    if (this.debug) this.#debugLines.frame(to, frame)
    const sockets = this.#socketMap()
    if (!to.includes('\n')) {
      const ws = sockets.get(to)
      if (ws) sendQuietly(ws, frame)
      return
    }
    for (const id of to.split('\n')) {
      const ws = sockets.get(id)
      if (ws) sendQuietly(ws, frame)
    }
  }

  /**
   * Sends the plan's frames, keeps the sender's presence in its attachment
   * if the plan changed it, then closes what it says to close (`sender` by
   * default).
   */
  #deliver(plan: RawPlan, sender?: WebSocket): void {
    const sockets = this.#socketMap()
    if (plan.deliveries) for (const { to, frame } of plan.deliveries) this.#sendTo(to, frame)
    if (plan.keepPresence !== undefined && sender) {
      const kept = keepPresence(sender, this.#attachment(sender), plan.keepPresence)
      if (kept) this.#attachments.set(sender, kept)
    }
    if (!plan.closeCode) return
    const targets = plan.close?.length ? plan.close.map((id) => sockets.get(id)) : [sender]
    for (const ws of targets) {
      if (!ws) continue
      if (this.debug) {
        this.#debugLines.write({ event: 'close', socket: this.#identity(ws)?.socketId ?? null, code: plan.closeCode, reason: plan.closeReason ?? '' })
      }
      closeQuietly(ws, plan.closeCode, plan.closeReason ?? '')
      // A slow reader's close handshake waits behind everything it has not
      // read: forget it now, so nothing more is queued for it meanwhile.
      if (plan.closeCode === CloseCode.SLOW_READER) this.#forget(ws)
    }
  }

}
