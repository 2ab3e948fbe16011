// WebSocketTransport: the one socket to one Durable Object, shared by every
// collection on it. This class is the I/O shell: it owns the socket and the
// timers, feeds socket and network events to the pure connection machine
// (connection.ts), and performs the effects it returns. The pure parts live
// beside it: frame decoding (codec.ts), unit assembly and the cursor
// (unit.ts), the write queue (writes.ts), the subscriptions
// (subscriptions.ts); host.ts wraps the timers and network events.
//
// Invariants (docs/protocol.md §3):
// * appliedSeq only moves at the end of a unit (final changes / snapshot /
//   synced frame) or on an ack, and only forwards: max(appliedSeq, seq).
// * A unit is dispatched to the collections whole, synchronously, once its
//   final frame arrives; a socket drop discards a partial unit, so the next
//   resume repeats it.
// * A subscription is `synced` once one of its snapshots was applied in the
//   current epoch. Only synced subs ask for `resume: true`; a sub whose first
//   snapshot was cut by a drop gets a fresh snapshot, never a catch-up from a
//   cursor that other subs advanced: those subs' units were applied, its own
//   snapshot never was, so the cursor says nothing about it.
// * A write (mut/call) keeps its id until it settles: it is sent after each
//   welcome until an ack or reject arrives, so the server's dedup makes the
//   replay exactly-once.
// * With `local` (local-store.ts), nothing is dialled before the local copy
//   was read: the persisted epoch and cursor become the hello's, each
//   persisted subscription gets its stored rows (and resumes if they were
//   synced at that cursor), and the outbox is queued ahead of new writes.
//   Rows are staged as units apply; the cursor is written with them.

import { CloseCode, ErrorCode, isTerminalClose, PROTOCOL_VERSION } from '../protocol/index.js'
import type {
  AckFrame,
  CallFrame,
  ClientFrame,
  ErrorFrame,
  HelloFrame,
  RejectFrame,
  ServerFrame,
  WelcomeFrame,
  WireOp,
} from '../protocol/index.js'
import { decodeServerFrame, encodeClientFrame, isObject } from './codec.js'
import { DebugLog } from './debug-log.js'
import { ReadCredit } from './read-credit.js'
import { backoffDelay, DEFAULT_BACKOFF, initialTransition, transition } from './connection.js'
import type {
  ConnectionEffect,
  ConnectionEvent,
  ConnectionState,
  ConnectionStatus,
  MachineConfig,
} from './connection.js'
import { ClosedError, PresenceError, ProtocolError, SeqsyncError, SubscriptionError, TimeoutError } from './errors.js'
import { PresenceChannel } from './presence.js'
import type { PresenceWatcher } from './presence.js'
import { Subscriptions } from './subscriptions.js'
import type { SubEntry, SubscriptionHandler, SubscriptionSpec } from './subscriptions.js'
import { UnitAssembler } from './unit.js'
import type { CompletedUnit } from './unit.js'
import { LocalCopy, scopeKey, warnLocalOff } from './local-store.js'
import { TabHub } from './tabs.js'
import type { CursorRecord, LocalOptions, OutboxRecord } from './local-store.js'
import type { RestoredWrite } from './subscriptions.js'
import { waitingWriteId, WriteQueue, writeId } from './writes.js'
import { Pages } from './pages.js'
import type { PageRequest, PageResult, PendingPage } from './pages.js'
import type { WriteFrame, WriteOutcome } from './writes.js'
import type { TransportUrl, WebSocketConstructor, WebSocketLike, WebSocketTransportOptions, WriteOptions, WriteResult } from './options.js'
import type { PredicateIR, WireRow } from '../protocol/index.js'
import { RetryTimers, SeqWaiters, watchNetwork } from './host.js'

export type { AppliedUnit } from './unit.js'
export type { LocalAttachment, RestoredWrite, SubscriptionHandler, SubscriptionSpec } from './subscriptions.js'
export type { LocalOptions } from './local-store.js'
export type { PageRequest, PageResult } from './pages.js'
export type { TransportUrl, WebSocketConstructor, WebSocketLike, WebSocketTransportOptions, WriteOptions, WriteResult } from './options.js'

const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024
const DEFAULT_MAX_OPS = 500
const DEFAULT_MAX_IN_FLIGHT = 32

/** A User Timing mark where the host has them (the reload benchmark reads them). */
function mark(name: string): void {
  ;(globalThis as { performance?: { mark?: (name: string) => unknown } }).performance?.mark?.(name)
}

/** One local copy per DO: named after its URL, which a function URL cannot give. */
function defaultLocalName(url: TransportUrl): string {
  if (typeof url === 'string') return `seqsync ${url}`
  throw new TypeError('[seqsync] local: with a function url, name the local copy: local: { name: `…` } (one per DO and user)')
}

/**
 * The one WebSocket to one Durable Object. Create one per DO and pass it to
 * every `doCollectionOptions` of that DO.
 *
 * @example
 * const transport = new WebSocketTransport({ url: `wss://${host}/sync/${room}` })
 * const messages = createCollection(
 *   doCollectionOptions<Message>({ transport, table: 'messages', getKey: (m) => m.id }),
 * )
 * // Node:  import WebSocket from 'ws';  new WebSocketTransport({ url, WebSocket })
 * // A token that expires: a fresh URL before every dial
 * new WebSocketTransport({ url: async () => `wss://${host}/sync/${room}?token=${await freshToken()}` })
 */
export class WebSocketTransport {
  readonly #url: TransportUrl
  /** The URL of the last dial (before the first, the option when it is a string). */
  #dialledUrl: string
  /** The last socket closed 4001 REAUTH and no welcome came since: a terminal close now refuses the re-authentication. */
  #reauthenticating = false
  readonly #WebSocket: WebSocketConstructor
  readonly #machine: MachineConfig
  readonly #onError: ((error: SeqsyncError) => void) | undefined

  #state: ConnectionState
  #ws: WebSocketLike | null = null
  /** Bumped for every socket; events of an older socket are ignored. */
  #generation = 0
  /** The connection's timers: the reconnect, and the handshake's deadline. */
  readonly #timers = new RetryTimers<'reconnect' | 'handshake'>()
  readonly #handshakeTimeoutMs: number
  #started = false
  /** The machine runs: the local copy, if any, has been read. */
  #running = false
  #queue: ConnectionEvent[] = []
  #dispatching = false

  #epoch: string | undefined
  #limits: WelcomeFrame['limits'] | undefined
  readonly #subs = new Subscriptions()
  /** Subscriptions refused RATE_LIMITED waiting to be sent again, and writes held by a transient refusal. */
  readonly #retries = new RetryTimers<SubEntry | PendingPage | 'writes'>()
  /** One-off pages in flight (pages.ts). */
  readonly #pages = new Pages()
  /** The unit in progress and the cursor. */
  readonly #units = new UnitAssembler()
  readonly #readCredit = new ReadCredit()
  readonly #writes = new WriteQueue((id) => this.#local?.deleteWrite(id))
  /** `local`, resolved; undefined without it. */
  readonly #localOptions: Required<LocalOptions> | undefined
  /** The local copy, once open; undefined in memory. */
  #local: LocalCopy | undefined
  /** The tabs of this origin sharing one socket and one local copy (tabs.ts); undefined without `local`. */
  #hub: TabHub | undefined
  /** This page's id: the owner of its outbox entries. */
  get #tab(): string {
    return this.#hub?.tab ?? 'this-page'
  }
  /** The current socket is a link through the holding tab. */
  #viaLink = false
  /** The text of the last welcome (the holder answers followers' hellos with it). */
  #welcomeText: string | undefined
  /** Persisted scopes and the subscription that keeps each. */
  readonly #claimed = new Map<string, SubEntry>()
  /** Restored writes, and the tables whose collection already shows each. */
  #restored: Array<RestoredWrite & { shownOn: Set<string> }> = []
  /** Transient refusals of writes since the last ack (the retry backoff). */
  #writeRetries = 0
  readonly #waiters = new SeqWaiters()
  readonly #presence: PresenceChannel
  #listeners = new Set<() => void>()
  #networkCleanup: (() => void) | undefined
  readonly #debug: DebugLog | undefined

  constructor(options: WebSocketTransportOptions) {
    this.#url = options.url
    this.#dialledUrl = typeof options.url === 'string' ? options.url : ''
    const ctor =
      options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
    if (!ctor) {
      throw new TypeError(
        '[seqsync] no WebSocket implementation: globalThis.WebSocket is undefined. ' +
          "In Node before 22, install `ws` and pass it: new WebSocketTransport({ url, WebSocket })",
      )
    }
    this.#WebSocket = ctor
    this.#machine = {
      backoff: { ...DEFAULT_BACKOFF, ...options.backoff },
      random: options.random ?? Math.random,
    }
    this.#onError = options.onError
    this.#presence = new PresenceChannel((frame) => this.#sendFrame(frame), options.presenceThrottleMs)
    this.presenceTab = options.presenceTab ?? randomTabId()
    this.#debug = options.debug ? new DebugLog(options.debug) : undefined
    this.#handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000
    if (options.local) {
      const local = options.local === true ? {} : options.local
      this.#localOptions = {
        name: local.name ?? defaultLocalName(options.url),
        schemaVersion: local.schemaVersion ?? 1,
        shareSocket: local.shareSocket ?? true,
      }
    }
    this.#state = { status: 'connecting', failures: 0, open: false }
    if (options.watchNetwork !== false) {
      this.#networkCleanup = watchNetwork(
        () => this.#sendEvent({ type: 'online' }),
        () => this.#sendEvent({ type: 'offline' }),
      )
    }
    if (!options.lazy) this.#start()
  }

  // ---- public surface ------------------------------------------------------

  /** The URL of the last dial ('' before the first when `url` is a function). */
  get url(): string {
    return this.#dialledUrl
  }

  /** This transport's presence tab slot (docs/protocol.md §4.7): its `setPresence` entries are keyed by it. */
  readonly presenceTab: string

  /**
   * Sets this connection's presence (`tab`: this transport's slot by
   * default) for everyone in the room: throttled to one frame per
   * `presenceThrottleMs` (100 ms) per tab, last write wins, and sent again
   * on every new socket. `null` clears it. Never in the change log; a
   * refusal reaches `onError` and the presence collections as a
   * PresenceError (the tab keeps its last accepted state).
   */
  setPresence(state: unknown, tab: string = this.presenceTab): void {
    if (this.#state.status === 'closed') return
    this.#presence.set(tab, state === undefined ? null : state)
    this.#start()
  }

  /** 'connecting' | 'live' | 'offline' | 'closed'. */
  get status(): ConnectionStatus {
    return this.#state.status
  }

  /** Every change up to this seq that concerns this socket's subscriptions has been applied. */
  get appliedSeq(): number {
    return this.#units.appliedSeq
  }

  /**
   * 'persisted' while the local copy is written, 'memory' without `local` or
   * where IndexedDB is unavailable, 'loading' until it has been read.
   */
  get local(): 'loading' | 'persisted' | 'memory' {
    if (!this.#localOptions) return 'memory'
    if (!this.#running && this.#state.status !== 'closed') return 'loading'
    return this.#local?.on ? 'persisted' : 'memory'
  }

  /** Resolves once everything staged for the local copy is written (tests; before a planned unload). */
  flushLocal(): Promise<void> {
    return this.#local?.flush() ?? Promise.resolve()
  }

  /** The DO storage incarnation from the last `welcome`, if any. */
  get epoch(): string | undefined {
    return this.#epoch
  }

  /** Calls `listener` whenever `status` or `appliedSeq` changes. Returns the unsubscribe function. */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener)
    return () => {
      this.#listeners.delete(listener)
    }
  }

  /** Resolves once `appliedSeq >= seq`; rejects `TimeoutError` after `timeoutMs`, `ClosedError` on close. */
  awaitSeq(seq: number, timeoutMs = 5000): Promise<void> {
    if (this.#units.appliedSeq >= seq) return Promise.resolve()
    if (this.#state.status === 'closed') return Promise.reject(this.#closedError())
    return this.#waiters.wait(
      seq,
      timeoutMs,
      () => new TimeoutError(`[seqsync] awaitSeq(${seq}) timed out after ${timeoutMs} ms (appliedSeq ${this.#units.appliedSeq}, ${this.status})`),
    )
  }

  /**
   * Sends one atomic mutation and resolves once the server acked it and the
   * cursor passed its seq (the change is then in every synced collection).
   * Rejects `RejectedError` on `reject` (nothing was applied). While offline
   * the write waits and is sent after the next welcome, with the same id. If
   * the transport closes first, it rejects `ClosedError` when it was never
   * sent, and `OutcomeUnknownError` when it was: that write may have
   * committed. `id` (default a fresh UUID) sends a write again under the id
   * an OutcomeUnknownError carries: it is applied at most once.
   */
  async mutate(ops: WireOp[], options?: WriteOptions): Promise<WriteResult> {
    if (ops.length === 0) throw new SeqsyncError(ErrorCode.INVALID_FIELD, '[seqsync] mutate: ops is empty')
    const maxOps = this.#limits?.maxOpsPerMutation ?? DEFAULT_MAX_OPS
    if (ops.length > maxOps) {
      throw new SeqsyncError(ErrorCode.TOO_MANY, `[seqsync] mutate: ${ops.length} ops, more than maxOpsPerMutation ${maxOps}`)
    }
    const { seq } = await this.#write({ t: 'mut', id: writeId(options?.id), ops })
    return { seq }
  }

  /** Runs a named server command (exactly once); resolves with its result once confirmed. Settles as `mutate` does. */
  async call<R = unknown>(name: string, args?: unknown, options?: WriteOptions): Promise<R> {
    const frame: CallFrame = { t: 'call', id: writeId(options?.id), name }
    if (args !== undefined) frame.args = args
    const { result } = await this.#write(frame)
    return result as R
  }

  /**
   * Reads one page (docs/protocol.md §4.8): `limit` rows of `c` in
   * (`orderBy`, key) order after `cursor` (the last row held: its orderBy
   * values and key), after the rest of the cursor's ties. It holds no
   * subscription: its rows are a read at `seq`, and no later change is sent
   * because of it. While offline it waits, and a page lost with its socket
   * is asked again. Rejects `PageError` when refused (an unknown collection
   * too, never an empty page), `ClosedError` if the transport closes first.
   */
  page(request: PageRequest): Promise<PageResult> {
    if (this.#state.status === 'closed') return Promise.reject(this.#closedError())
    const { settled } = this.#pages.add(request, this.#hub ? `@${this.#hub.tab.slice(0, 8)}` : '')
    this.#sendPages()
    this.#start()
    return settled
  }

  /**
   * Closes the socket for good. Waits reject `ClosedError`; writes as
   * `mutate` says: `ClosedError` if never sent, `OutcomeUnknownError` if sent
   * and unanswered.
   */
  close(): void {
    this.#sendEvent({ type: 'user-close' })
  }

  // ---- internal API for collections -----------------------------------------

  /** A subscription id unique on this transport, derived from `base`. @internal */
  nextSubId(base: string): string {
    // Tabs sharing a socket must not replace each other's subscriptions.
    return this.#subs.nextId(this.#hub ? `${base}@${this.#hub.tab.slice(0, 8)}` : base)
  }

  /**
   * Registers a subscription; its snapshot and changes reach `handler`.
   * Returns the function that unregisters it (and sends `unsub`). @internal
   */
  register(
    spec: SubscriptionSpec,
    handler: SubscriptionHandler,
    options?: { persisted?: boolean; hydrated?: { epoch: string; seq: number; resolved?: PredicateIR } },
  ): () => void {
    if (this.#subs.get(spec.id)) throw new TypeError(`[seqsync] subscription id ${spec.id} is already registered`)
    if (this.#state.status === 'closed') {
      const gone = new SubscriptionError({ sub: spec.id, code: ErrorCode.INTERNAL, message: 'transport closed' }, spec.c)
      queueMicrotask(() => (handler.onClosed ? handler.onClosed(gone) : handler.onError(gone)))
      return () => {}
    }
    const entry = this.#subs.add(spec, handler)
    if (options?.hydrated) this.#resumeHydrated(entry, options.hydrated)
    if (options?.persisted && this.#localOptions) {
      // One subscription keeps a scope's rows; a second with the same
      // identity syncs in memory.
      const scope = scopeKey(spec)
      if (!this.#claimed.has(scope)) {
        this.#claimed.set(scope, entry)
        entry.scope = scope
        if (this.#running) {
          this.#markResumable(entry)
          this.#attachLocal(entry)
        }
      }
    }
    if (this.#helloSent()) this.#sendFrame({ t: 'sub', ...this.#subs.body(entry, false) })
    this.#start()
    return () => {
      if (!this.#subs.delete(entry)) return
      if (entry.scope !== undefined && this.#claimed.get(entry.scope) === entry) this.#claimed.delete(entry.scope)
      this.#retries.cancel(entry)
      if (this.#helloSent()) this.#sendFrame({ t: 'unsub', id: spec.id })
    }
  }

  /**
   * A subscription whose rows a server render hydrated at (epoch, seq)
   * resumes from there: the transport's first hello carries that cursor.
   * Only while no hello is out, and only if nothing else set the cursor
   * elsewhere (a welcome, a hydration at another seq, a local copy):
   * otherwise it asks for a snapshot, which replaces the hydrated rows.
   */
  #resumeHydrated(entry: SubEntry, at: { epoch: string; seq: number; resolved?: PredicateIR }): void {
    if (this.#localOptions || this.#helloSent()) return
    if (this.#epoch === undefined && this.#units.appliedSeq === 0) {
      this.#epoch = at.epoch
      this.#units.advance(at.seq)
    }
    if (this.#epoch !== at.epoch || this.#units.appliedSeq !== at.seq) return
    entry.synced = true
    entry.resolved = at.resolved
  }

  /** Adds a presence watcher (a presence collection). Returns the function that removes it. @internal */
  watchPresence(watcher: PresenceWatcher): () => void {
    const unwatch = this.#presence.watch(watcher)
    this.#start()
    return unwatch
  }

  // ---- writes ----------------------------------------------------------------

  #write(frame: WriteFrame): Promise<WriteOutcome> {
    if (this.#state.status === 'closed') return Promise.reject(this.#closedError())
    const text = encodeClientFrame(frame)
    const settled = this.#writes.add(frame, text, this.#limits?.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES)
    if (this.#writes.has(frame.id)) this.#local?.putWrite(frame.id, text, this.#tab)
    this.#pump()
    this.#start()
    return settled
  }

  #onAck(frame: AckFrame): void {
    // Every change up to the ack's seq was sent before it: the cursor moves
    // to it first, so the write is confirmed once it settles.
    const moved = this.#units.advance(frame.seq)
    if (this.#writes.ack(frame)) this.#writeRetries = 0
    this.#waiters.settle(this.#units.appliedSeq)
    if (moved) this.#notify()
    this.#pump()
  }

  #onReject(frame: RejectFrame): void {
    const outcome = this.#writes.reject(frame)
    if (outcome === 'unknown') return
    if (outcome === 'retry') this.#retryWritesLater()
    this.#pump()
  }

  /** An `error` frame. TOO_MANY about a write in flight (too many sockets wait on its id) must not settle it. */
  #onErrorFrame(frame: ErrorFrame): void {
    const waiting = waitingWriteId(frame)
    if (waiting !== undefined && this.#writes.hold(waiting)) return this.#retryWritesLater()
    this.#report(new ProtocolError(frame.code, frame.message))
  }

  /** Releases held writes after a backoff delay (a transient refusal). */
  #retryWritesLater(): void {
    if (this.#retries.has('writes')) return
    this.#writeRetries += 1
    this.#retries.schedule('writes', backoffDelay(this.#writeRetries, this.#machine), () => {
      this.#writes.release()
      this.#pump()
    })
  }

  /** Sends unsent writes, oldest first, within the in-flight window (writes.ts). */
  #pump(): void {
    if (this.#state.status !== 'live') return
    const texts = this.#writes.next({
      maxInFlight: this.#limits?.maxInFlightPerSocket ?? DEFAULT_MAX_IN_FLIGHT,
      maxFrameBytes: this.#limits?.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
    })
    for (const text of texts) this.#sendText(text)
  }

  // ---- frames in -------------------------------------------------------------

  #onMessage(data: unknown): void {
    const decoded = decodeServerFrame(data)
    if (decoded.error) return this.#report(decoded.error)
    const frame: ServerFrame = decoded.frame
    this.#debug?.frame(frame)
    if (this.#hub?.holding && !this.#viaLink && typeof data === 'string') {
      // The followers get every frame but the welcome, which answers their own hellos.
      if (frame.t === 'welcome') this.#welcomeText = data
      else this.#hub.down(data)
    }
    switch (frame.t) {
      case 'welcome':
        return this.#onWelcome(frame)
      case 'changes':
      case 'snapshot':
      case 'synced': {
        const unit = this.#units.add(frame)
        if (unit) this.#endUnit(unit)
        return
      }
      case 'ack':
        return this.#onAck(frame)
      case 'reject':
        return this.#onReject(frame)
      case 'sub-error': {
        const entry = this.#subs.get(frame.sub)
        if (!entry) return
        // Too many sub frames too fast: nothing changed, ask again later.
        if (frame.code === ErrorCode.RATE_LIMITED) return this.#retrySub(entry)
        this.#subs.delete(entry)
        const error = new SubscriptionError(frame, entry.spec.c)
        this.#report(error)
        this.#tell(entry, error)
        return
      }
      case 'page':
        return this.#pages.onFrame(frame)
      case 'page-error': {
        const later = this.#pages.onError(frame)
        if (later) this.#retryPage(later)
        return
      }
      case 'error':
        return this.#onErrorFrame(frame)
      case 'presence':
        return this.#presence.onFrame(frame)
      case 'presence-error': {
        const error = new PresenceError(frame)
        this.#report(error)
        return this.#presence.onError(error)
      }
      default:
        return // a frame type from a later protocol minor: ignore
    }
  }

  #onWelcome(frame: WelcomeFrame): void {
    if (this.#epoch !== undefined && frame.epoch !== this.#epoch) {
      // The DO's storage was reset: seqs restart, and the server answers every
      // sub with a fresh snapshot; the cursor starts over.
      this.#subs.newEpoch()
      this.#units.reset()
      // Rows of the old epoch that no live subscription will replace go now.
      if (this.#persisting) this.#local?.stageClearExcept(this.#claimed.keys())
    }
    this.#epoch = frame.epoch
    this.#reauthenticating = false
    if (isObject(frame.limits)) this.#limits = frame.limits
    this.#readCredit.setLimit(this.#limits?.maxUnreadBytesPerSocket)
    this.#sendEvent({ type: 'welcome' })
  }

  /** A unit ended: apply it whole, then move the cursor. */
  #endUnit(unit: CompletedUnit): void {
    const { resync, dropped } = this.#subs.dispatch(unit, (error) => this.#report(error))
    // Re-using the id of a live subscription replaces it: a fresh snapshot.
    for (const entry of resync) if (this.#helloSent()) this.#sendFrame({ t: 'sub', ...this.#subs.body(entry, false) })
    for (const { entry, error } of dropped) {
      if (this.#helloSent()) this.#sendFrame({ t: 'unsub', id: entry.spec.id })
      this.#tell(entry, error)
    }
    this.#advance(unit.seq)
  }

  /** Tells a subscription's handler it is gone. */
  #tell(entry: { spec: SubscriptionSpec; handler: SubscriptionHandler }, error: SubscriptionError): void {
    try {
      entry.handler.onError(error)
    } catch (e) {
      this.#report(new SeqsyncError(ErrorCode.INTERNAL, `[${entry.spec.c}] sub-error handler threw`, { cause: e }))
    }
  }

  /** appliedSeq = max(appliedSeq, seq); settle the waits that confirms; notify. */
  #advance(seq: number): void {
    const moved = this.#units.advance(seq)
    this.#waiters.settle(this.#units.appliedSeq)
    if (moved) {
      if (this.#persisting) this.#local?.checkpoint()
      this.#notify()
    }
  }

  // ---- the local copy ---------------------------------------------------------

  /** Reads the local copy (or finds there is none), then lets the machine dial. */
  async #openLocal(options: Required<LocalOptions>): Promise<void> {
    const copy = await LocalCopy.open(options.name, options.schemaVersion, () => this.#cursorNow())
    if (this.#state.status === 'closed') {
      void copy?.close()
      return
    }
    if (!copy) return
    const hub = await TabHub.join(options.name)
    if (!hub) {
      // Tabs could not agree on one writer of the copy.
      warnLocalOff('this environment has no Web Locks or no BroadcastChannel')
      void copy.close()
      return
    }
    if ((this.#state as ConnectionState).status === 'closed') {
      // Closed while the tabs were joined.
      hub.close()
      void copy.close()
      return
    }
    this.#hub = hub
    this.#local = copy
    hub.serve({
      live: () => this.#state.status === 'live' && !this.#viaLink,
      welcome: () => this.#welcomeText,
      send: (text) => this.#sendText(text),
    })
    hub.onHolderLive(() => this.#sendEvent({ type: 'online' }))
    hub.onTakeover(() => void this.#takeOver())
    if (copy.cursor) {
      this.#epoch = copy.cursor.epoch
      this.#units.advance(copy.cursor.seq)
    }
    // This page's writes of an earlier load, or a closed tab's; a live tab sends its own.
    const live = await hub.liveTabs()
    const orphans = copy.outbox.filter((r) => !live.has(r.owner))
    this.#restoreOutbox(orphans)
    // Writes made while the copy was being read are stored now, after the restored ones.
    for (const { frame, text } of this.#writes.pending()) {
      if (!copy.outbox.some((r) => r.id === frame.id)) copy.putWrite(frame.id, text, this.#tab)
    }
    copy.adoptWrites(orphans, this.#tab)
    // The rows are in the collections before the first dial: they render
    // before the network answers, and every unit applies on top of them.
    await copy.readRows()
    mark('seqsync:local-rows-read')
    for (const entry of this.#claimed.values()) {
      this.#markResumable(entry)
      this.#attachLocal(entry)
    }
    mark('seqsync:local-rows-applied')
    const flush = () => void copy.flush()
    globalThis.addEventListener?.('pagehide', flush)
  }

  /**
   * This tab now holds the socket (the holder closed or crashed): its link
   * closes and it redials for real from its own cursor. It writes the local
   * copy from now on, first a full image of what its persisted
   * subscriptions hold, and sends the writes the closed tab left.
   */
  async #takeOver(): Promise<void> {
    const local = this.#local
    if (local) {
      for (const entry of this.#claimed.values()) entry.handler.restageLocal?.()
      local.checkpoint()
    }
    if (this.#viaLink && this.#ws) {
      // A link's close reaches the machine as a lost socket; it redials after a short backoff.
      ;(this.#ws as { fail?: (code: number, reason: string) => void }).fail?.(1001, 'this tab holds the socket now')
    } else {
      this.#sendEvent({ type: 'online' })
    }
    if (!local || !this.#hub) return
    const live = await this.#hub.liveTabs()
    const orphans = (await local.readOutbox()).filter((r) => !live.has(r.owner))
    this.#restoreOutbox(orphans)
    local.adoptWrites(orphans, this.#tab)
    this.#pump()
  }

  /** Queues the stored writes ahead of new ones, under their ids. */
  #restoreOutbox(records: readonly OutboxRecord[]): void {
    const writes: Array<{ frame: WriteFrame; text: string }> = []
    for (const r of records) {
      let frame: unknown
      try {
        frame = JSON.parse(r.text)
      } catch {
        continue
      }
      if (!isObject(frame) || typeof frame.id !== 'string' || (frame.t !== 'mut' && frame.t !== 'call')) continue
      writes.push({ frame: frame as unknown as WriteFrame, text: r.text })
    }
    const settled = this.#writes.restore(writes)
    writes.forEach(({ frame }, i) => {
      const promise = settled[i]
      if (!promise) return
      // A restored write has no caller: a refusal is reported here, and
      // rolls back whatever collection shows it optimistically.
      promise.catch((error: unknown) => {
        if (error instanceof SeqsyncError) this.#report(error)
      })
      if (frame.t === 'mut') this.#restored.push({ frame, settled: promise, shownOn: new Set() })
    })
  }

  /** What the stored cursor says of a persisted subscription's scope, while the cursor has not moved since it was read. */
  #storedState(entry: SubEntry): { resolved?: PredicateIR } | undefined {
    const cursor = this.#local?.cursor
    if (cursor === undefined || entry.scope === undefined) return undefined
    return cursor.epoch === this.#epoch && cursor.seq === this.#units.appliedSeq ? cursor.subs[entry.scope] : undefined
  }

  /** A persisted subscription whose rows were stored at the cursor resumes from it. */
  #markResumable(entry: SubEntry): void {
    const known = this.#storedState(entry)
    if (!known || !entry.handler.attachLocal) return
    entry.synced = true
    entry.resolved = known.resolved
  }

  /** Hands a persisted subscription its stored rows and the restored writes on its table. */
  #attachLocal(entry: SubEntry): void {
    const local = this.#local
    if (!local || entry.scope === undefined || !entry.handler.attachLocal) return
    const scope = entry.scope
    const known = entry.synced ? this.#storedState(entry) : undefined
    const table = entry.spec.c
    const writes: RestoredWrite[] = []
    for (const w of this.#restored) {
      if (w.shownOn.has(table) || !w.frame.ops.some((op) => op.c === table)) continue
      w.shownOn.add(table)
      writes.push({ frame: w.frame, settled: w.settled })
    }
    entry.handler.attachLocal({
      sub: entry.spec.id,
      sink: {
        stage: (k, row) => {
          if (this.#persisting) this.#local?.stage(scope, k, row as WireRow | undefined)
        },
        image: (rows) => {
          if (this.#persisting) this.#local?.stageImage(scope, rows as Array<[string, WireRow]>)
        },
      },
      cached: local.takeRows(scope) ?? (known ? [] : undefined),
      writes,
    })
  }

  /** This tab writes the local copy's rows and cursor: it holds the socket (one writer per copy). */
  get #persisting(): boolean {
    return this.#local !== undefined && (this.#hub?.holding ?? false)
  }

  /** What the cursor record says now: the persisted subscriptions synced at appliedSeq. */
  #cursorNow(): Omit<CursorRecord, 'format' | 'schemaVersion'> | undefined {
    if (this.#epoch === undefined || !this.#persisting) return undefined
    const subs: CursorRecord['subs'] = {}
    for (const [scope, entry] of this.#claimed) {
      if (!entry.synced) continue
      subs[scope] = entry.resolved !== undefined ? { resolved: entry.resolved } : {}
    }
    return { epoch: this.#epoch, seq: this.#units.appliedSeq, subs }
  }

  // ---- the machine and its effects ------------------------------------------

  #start(): void {
    if (this.#started) return
    this.#started = true
    const local = this.#localOptions
    if (!local) return this.#begin()
    this.#openLocal(local)
      .catch((error: unknown) => warnLocalOff(`reading the local copy failed (${String(error)})`, error))
      .finally(() => this.#begin())
  }

  /** Starts the machine: the first dial. */
  #begin(): void {
    if (this.#state.status === 'closed') return
    this.#running = true
    const networkDown = typeof navigator !== 'undefined' && (navigator as { onLine?: boolean }).onLine === false
    const t = initialTransition(networkDown)
    this.#state = t.state
    this.#notify()
    this.#run(t.effects)
  }

  #sendEvent(event: ConnectionEvent): void {
    if (!this.#running && event.type !== 'user-close') return
    this.#queue.push(event)
    if (this.#dispatching) return
    this.#dispatching = true
    try {
      for (let next = this.#queue.shift(); next; next = this.#queue.shift()) {
        const before = this.#state.status
        const t = transition(this.#state, next, this.#machine)
        this.#state = t.state
        this.#run(t.effects)
        if (this.#state.status !== before) this.#notify()
      }
    } finally {
      this.#dispatching = false
    }
  }

  #run(effects: readonly ConnectionEffect[]): void {
    for (const effect of effects) {
      switch (effect.type) {
        case 'open-socket':
          this.#openSocket()
          break
        case 'close-socket':
          this.#closeSocket(effect.code, effect.reason)
          break
        case 'send-hello':
          this.#sendHello()
          break
        case 'session-live':
          this.#timers.cancel('handshake')
          this.#pump()
          if (this.#hub?.holding && !this.#viaLink) this.#hub.holderLive()
          this.#presence.live()
          this.#sendPages()
          break
        case 'session-lost':
          this.#timers.cancel('handshake')
          this.#units.discard()
          this.#writes.socketLost()
          this.#pages.socketLost()
          this.#retries.cancelAll() // the next hello asks for every sub; every write is sent again
          this.#presence.lost()
          this.#ws = null
          this.#generation += 1
          if (this.#viaLink && !this.#hub?.holding) {
            // The holder's socket is not this tab's: whatever it held says
            // nothing about the next, and the next hello asks for snapshots.
            this.#subs.newEpoch()
          } else if (this.#hub?.holding) {
            this.#hub.holderLost()
          }
          break
        case 'schedule-retry':
          this.#timers.schedule('reconnect', effect.ms, () => this.#sendEvent({ type: 'retry' }))
          break
        case 'cancel-retry':
          this.#timers.cancel('reconnect')
          break
        case 'terminal':
          this.#terminate()
          break
      }
    }
  }

  #openSocket(): void {
    this.#generation += 1
    const generation = this.#generation
    const live = () => generation === this.#generation
    // The deadline covers resolving the URL too: a token fetch that hangs is retried.
    this.#timers.schedule('handshake', this.#handshakeTimeoutMs, () => {
      if (live()) this.#sendEvent({ type: 'handshake-timeout' })
    })
    const failed = (what: string, error: unknown) => {
      this.#report(new SeqsyncError(ErrorCode.INTERNAL, `[seqsync] ${what}: ${String(error)}`, { cause: error }))
      queueMicrotask(() => {
        if (live()) this.#sendEvent({ type: 'error' })
      })
    }
    const hub = this.#hub
    this.#viaLink = hub !== undefined && !hub.holding && this.#localOptions?.shareSocket !== false
    if (hub && this.#viaLink) return this.#use(hub.link(), live)
    const option = this.#url
    if (typeof option === 'string') return this.#dial(option, live, failed)
    let url: string | Promise<string>
    try {
      url = option()
    } catch (error) {
      return failed('the url function threw', error)
    }
    if (typeof url === 'string') return this.#dial(url, live, failed)
    Promise.resolve(url).then(
      (resolved) => {
        if (live()) this.#dial(resolved, live, failed)
      },
      (error: unknown) => {
        if (live()) failed('the url function rejected', error)
      },
    )
  }

  /** Opens the socket of the dial that `live` names. */
  #dial(url: unknown, live: () => boolean, failed: (what: string, error: unknown) => void): void {
    if (typeof url !== 'string') return failed('the url function returned no string', url)
    this.#dialledUrl = url
    let ws: WebSocketLike
    try {
      ws = new this.#WebSocket(url)
    } catch (error) {
      return failed(`could not open ${url}`, error)
    }
    this.#use(ws, live)
  }

  /** Makes `ws` the socket of the dial that `live` names. */
  #use(ws: WebSocketLike, live: () => boolean): void {
    this.#ws = ws
    this.#readCredit.reset()
    try {
      ws.binaryType = 'arraybuffer'
    } catch {
      // Some implementations have a read-only binaryType; text frames don't need it.
    }
    // Handlers stay attached after the socket is replaced (a `ws` socket emits
    // `error` while closing, and an EventEmitter without a listener throws);
    // the generation check silences a stale socket instead.
    ws.onopen = () => {
      if (!live()) return
      this.#debug?.connect(this.url)
      this.#sendEvent({ type: 'open' })
    }
    ws.onmessage = (ev: { data: unknown }) => {
      if (!live()) return
      this.#onMessage(ev.data)
      // After the frame is handled: reporting it read frees the DO to send more.
      const recv = this.#readCredit.received(ev.data)
      if (recv && live()) this.#sendText(recv)
    }
    ws.onclose = (ev: { code?: number; reason?: string }) => {
      if (!live()) return
      this.#debug?.close(ev.code, ev.reason)
      const event: { type: 'close'; code?: number; reason?: string } = { type: 'close' }
      if (typeof ev.code === 'number') event.code = ev.code
      if (typeof ev.reason === 'string') event.reason = ev.reason
      // 4001: the claims expired; the next dial asks the url function for fresh credentials.
      if (ev.code === CloseCode.REAUTH) this.#reauthenticating = true
      else if (this.#reauthenticating && event.code !== undefined && isTerminalClose(event.code)) {
        event.reason = `re-authentication refused${event.reason ? `: ${event.reason}` : ''}`
      }
      this.#sendEvent(event)
    }
    ws.onerror = () => {
      if (live()) this.#sendEvent({ type: 'error' })
    }
  }

  #closeSocket(code: number, reason: string): void {
    const ws = this.#ws
    this.#ws = null
    this.#generation += 1
    if (!ws) return
    try {
      ws.close(code, reason)
    } catch {
      // Closing a socket that never opened may throw in some implementations.
    }
  }

  #helloSent(): boolean {
    const s = this.#state
    return this.#ws !== null && (s.status === 'live' || (s.status === 'connecting' && s.open))
  }

  #sendHello(): void {
    const hello: HelloFrame = { t: 'hello', v: PROTOCOL_VERSION }
    if (this.#epoch !== undefined) {
      hello.epoch = this.#epoch
      hello.since = this.#units.appliedSeq
    }
    const subs = this.#subs.hello(this.#epoch !== undefined)
    if (subs.length > 0) hello.subs = subs
    this.#debug?.hello(hello)
    this.#sendFrame(hello)
  }

  #sendFrame(frame: ClientFrame): void {
    this.#sendText(encodeClientFrame(frame))
  }

  #sendText(text: string): void {
    const ws = this.#ws
    if (!ws) return
    try {
      ws.send(text)
    } catch (error) {
      // The socket is unusable; the machine reconnects and writes are resent.
      this.#report(new SeqsyncError(ErrorCode.INTERNAL, `[seqsync] send failed: ${String(error)}`, { cause: error }))
      const generation = this.#generation
      queueMicrotask(() => {
        if (generation === this.#generation) this.#sendEvent({ type: 'error' })
      })
    }
  }

  #closedError(): ClosedError {
    const s = this.#state
    return s.status === 'closed' ? new ClosedError(s.code, s.reason) : new ClosedError(undefined, 'closed')
  }

  #terminate(): void {
    const error = this.#closedError()
    this.#timers.cancelAll()
    this.#networkCleanup?.()
    this.#networkCleanup = undefined
    this.#retries.cancelAll()
    this.#writes.close(error)
    this.#pages.close(error)
    this.#waiters.rejectAll(error)
    this.#subs.closeAll(error)
    void this.#local?.close()
    this.#hub?.close()
  }

  /** Sends the pages not sent on this socket, once the session is live. */
  #sendPages(): void {
    if (this.#state.status !== 'live') return
    for (const page of this.#pages.unsent()) {
      page.sent = true
      this.#sendFrame(page.frame)
    }
  }

  /** Asks for `page` again after a backoff delay (it was refused RATE_LIMITED). */
  #retryPage(page: PendingPage): void {
    this.#retries.schedule(page, backoffDelay(page.rateLimited, this.#machine), () => {
      if (!this.#pages.holds(page)) return
      page.sent = false
      this.#sendPages()
    })
  }

  /** Sends `entry`'s sub again after a backoff delay (it was refused RATE_LIMITED). */
  #retrySub(entry: SubEntry): void {
    entry.synced = false
    entry.rateLimited += 1
    this.#retries.schedule(entry, backoffDelay(entry.rateLimited, this.#machine), () => {
      if (this.#subs.holds(entry) && this.#state.status === 'live') this.#sendFrame({ t: 'sub', ...this.#subs.body(entry, false) })
    })
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener()
      } catch (error) {
        this.#report(new SeqsyncError(ErrorCode.INTERNAL, `[seqsync] a status listener threw: ${String(error)}`, { cause: error }))
      }
    }
  }

  #report(error: SeqsyncError): void {
    if (this.#onError) this.#onError(error)
  }
}

/** A tab slot id: random, short, unique enough among one socket's tabs. */
function randomTabId(): string {
  const c = globalThis.crypto as { randomUUID?: () => string } | undefined
  return (c?.randomUUID?.() ?? Math.random().toString(36).slice(2)).slice(0, 12)
}
