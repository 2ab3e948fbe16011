// WebSocketTransport: the one socket to one Durable Object, shared by every
// collection on it. This class is the I/O shell: it runs the pure connection
// machine (connection.ts) on socket and network events and performs the
// effects it returns, and routes each frame in. Its parts live beside it:
// the socket itself, its dials and read credit (socket.ts); the channels
// that send and settle one kind of frame: subscriptions (sub-channel.ts over
// the pure registry subscriptions.ts), writes (write-channel.ts over the
// pure queue writes.ts), one-off pages (pages.ts), presence (presence.ts);
// frame decoding (codec.ts); unit assembly and the cursor (unit.ts); the
// local copy and the tabs sharing it (local-session.ts over local-store.ts
// and tabs.ts); host.ts wraps the timers and network events.
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

import { ErrorCode, PROTOCOL_VERSION } from '../protocol/index.js'
import type {
  AckFrame,
  CallFrame,
  ClientFrame,
  HelloFrame,
  ServerFrame,
  WelcomeFrame,
  WireOp,
} from '../protocol/index.js'
import { decodeServerFrame, encodeClientFrame, isObject } from './codec.js'
import { DebugLog } from './debug-log.js'
import { backoffDelay, DEFAULT_BACKOFF, initialTransition, transition } from './connection.js'
import type {
  ConnectionEffect,
  ConnectionEvent,
  ConnectionState,
  ConnectionStatus,
  MachineConfig,
} from './connection.js'
import { ClosedError, PresenceError, ProtocolError, SeqsyncError, SubscriptionError, TimeoutError } from './errors.js'
import { PresenceChannel, randomTabId } from './presence.js'
import type { PresenceWatcher } from './presence.js'
import { SubscriptionChannel } from './sub-channel.js'
import type { SubEntry, SubscriptionHandler, SubscriptionSpec } from './subscriptions.js'
import { UnitAssembler } from './unit.js'
import { warnLocalOff } from './local-store.js'
import { LocalSession } from './local-session.js'
import type { LocalSessionHost } from './local-session.js'
import { TransportSocket } from './socket.js'
import { writeId } from './writes.js'
import { WriteChannel } from './write-channel.js'
import { Pages } from './pages.js'
import type { PageRequest, PageResult } from './pages.js'
import type { WriteFrame, WriteOutcome } from './writes.js'
import type { WebSocketConstructor, WebSocketTransportOptions, WriteOptions, WriteResult } from './options.js'
import type { PredicateIR } from '../protocol/index.js'
import { RetryTimers, SeqWaiters, watchNetwork } from './host.js'

export type { AppliedUnit } from './unit.js'
export type { LocalAttachment, RestoredWrite, SubscriptionHandler, SubscriptionSpec } from './subscriptions.js'
export type { LocalOptions } from './local-store.js'
export type { PageRequest, PageResult } from './pages.js'
export type { TransportUrl, WebSocketConstructor, WebSocketLike, WebSocketTransportOptions, WriteOptions, WriteResult } from './options.js'

const DEFAULT_MAX_OPS = 500

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
  readonly #socket: TransportSocket
  readonly #machine: MachineConfig
  readonly #onError: ((error: SeqsyncError) => void) | undefined

  #state: ConnectionState
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
  readonly #subs = new SubscriptionChannel({
    helloSent: () => this.#helloSent(),
    live: () => this.#state.status === 'live',
    send: (frame) => this.#sendFrame(frame),
    backoff: (attempt) => backoffDelay(attempt, this.#machine),
    report: (error) => this.#report(error),
  })
  /** One-off pages in flight (pages.ts). */
  readonly #pages = new Pages({
    live: () => this.#state.status === 'live',
    send: (frame) => this.#sendFrame(frame),
    backoff: (attempt) => backoffDelay(attempt, this.#machine),
  })
  /** The unit in progress and the cursor. */
  readonly #units = new UnitAssembler()
  readonly #writes = new WriteChannel({
    live: () => this.#state.status === 'live',
    limits: () => this.#limits,
    send: (text) => this.#socket.send(text),
    backoff: (attempt) => backoffDelay(attempt, this.#machine),
    putWrite: (id, text) => this.#local?.putWrite(id, text),
    deleteWrite: (id) => this.#local?.deleteWrite(id),
  })
  /** The local copy and the tabs sharing it (local-session.ts); undefined without `local`. */
  readonly #local: LocalSession | undefined
  readonly #waiters = new SeqWaiters()
  readonly #presence: PresenceChannel
  #listeners = new Set<() => void>()
  #networkCleanup: (() => void) | undefined
  readonly #debug: DebugLog | undefined

  constructor(options: WebSocketTransportOptions) {
    const ctor =
      options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
    if (!ctor) {
      throw new TypeError(
        '[seqsync] no WebSocket implementation: globalThis.WebSocket is undefined. ' +
          "In Node before 22, install `ws` and pass it: new WebSocketTransport({ url, WebSocket })",
      )
    }
    this.#debug = options.debug ? new DebugLog(options.debug) : undefined
    this.#socket = new TransportSocket(options.url, ctor, this.#debug, {
      event: (event) => this.#sendEvent(event),
      message: (data) => this.#onMessage(data),
      report: (error) => this.#report(error),
    })
    this.#machine = {
      backoff: { ...DEFAULT_BACKOFF, ...options.backoff },
      random: options.random ?? Math.random,
    }
    this.#onError = options.onError
    this.#presence = new PresenceChannel((frame) => this.#sendFrame(frame), options.presenceThrottleMs)
    this.presenceTab = options.presenceTab ?? randomTabId()
    this.#handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000
    if (options.local) this.#local = new LocalSession(options.local, options.url, this.#localHost())
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
    return this.#socket.url
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
    if (!this.#local) return 'memory'
    if (!this.#running && this.#state.status !== 'closed') return 'loading'
    return this.#local.persisted ? 'persisted' : 'memory'
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
    const { settled } = this.#pages.add(request, this.#tabSuffix())
    this.#pages.send()
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
    return this.#subs.registry.nextId(base + this.#tabSuffix())
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
    if (this.#subs.registry.get(spec.id)) throw new TypeError(`[seqsync] subscription id ${spec.id} is already registered`)
    if (this.#state.status === 'closed') {
      const gone = new SubscriptionError({ sub: spec.id, code: ErrorCode.INTERNAL, message: 'transport closed' }, spec.c)
      queueMicrotask(() => (handler.onClosed ? handler.onClosed(gone) : handler.onError(gone)))
      return () => {}
    }
    const entry = this.#subs.registry.add(spec, handler)
    if (options?.hydrated) this.#resumeHydrated(entry, options.hydrated)
    if (options?.persisted) this.#local?.claim(entry, this.#running)
    this.#subs.sendSub(entry)
    this.#start()
    return () => {
      if (this.#subs.remove(entry)) this.#local?.release(entry)
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
    if (this.#local || this.#helloSent()) return
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
    const settled = this.#writes.add(frame)
    this.#start()
    return settled
  }

  #onAck(frame: AckFrame): void {
    // Every change up to the ack's seq was sent before it: the cursor moves
    // to it first, so the write is confirmed once it settles.
    const moved = this.#units.advance(frame.seq)
    this.#writes.ack(frame)
    this.#waiters.settle(this.#units.appliedSeq)
    if (moved) this.#notify()
    this.#writes.pump()
  }

  // ---- frames in -------------------------------------------------------------

  #onMessage(data: unknown): void {
    const decoded = decodeServerFrame(data)
    if (decoded.error) return this.#report(decoded.error)
    const frame: ServerFrame = decoded.frame
    this.#debug?.frame(frame)
    this.#local?.relay(frame.t, data)
    switch (frame.t) {
      case 'welcome':
        return this.#onWelcome(frame)
      case 'changes':
      case 'snapshot':
      case 'synced': {
        const unit = this.#units.add(frame)
        if (unit) {
          this.#subs.dispatch(unit)
          this.#advance(unit.seq)
        }
        // Only the frame that ends a unit carries one: the unit is applied first.
        if (frame.t === 'changes' && frame.ack !== undefined) this.#onAck({ t: 'ack', id: frame.ack, seq: frame.seq })
        return
      }
      case 'ack':
        return this.#onAck(frame)
      case 'reject':
        return this.#writes.reject(frame)
      case 'sub-error':
        return this.#subs.onSubError(frame)
      case 'page':
        return this.#pages.onFrame(frame)
      case 'page-error':
        return this.#pages.onError(frame)
      case 'error':
        if (!this.#writes.held(frame)) this.#report(new ProtocolError(frame.code, frame.message))
        return
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
      this.#subs.registry.newEpoch()
      this.#units.reset()
      this.#local?.epochReset()
    }
    this.#epoch = frame.epoch
    if (isObject(frame.limits)) this.#limits = frame.limits
    this.#socket.welcomed(this.#limits?.maxUnreadBytesPerSocket)
    this.#sendEvent({ type: 'welcome' })
  }

  /** appliedSeq = max(appliedSeq, seq); settle the waits that confirms; notify. */
  #advance(seq: number): void {
    const moved = this.#units.advance(seq)
    this.#waiters.settle(this.#units.appliedSeq)
    if (moved) {
      this.#local?.cursorMoved()
      this.#notify()
    }
  }

  // ---- the local copy ---------------------------------------------------------

  /** What the local session reads and does of this transport. */
  #localHost(): LocalSessionHost {
    return {
      closed: () => this.#state.status === 'closed',
      live: () => this.#state.status === 'live',
      epoch: () => this.#epoch,
      appliedSeq: () => this.#units.appliedSeq,
      resumeFrom: (epoch, seq) => {
        this.#epoch = epoch
        this.#units.advance(seq)
      },
      writes: this.#writes.queue,
      socket: () => this.#socket.current,
      sendText: (text) => this.#socket.send(text),
      online: () => this.#sendEvent({ type: 'online' }),
      pump: () => this.#writes.pump(),
      report: (error) => this.#report(error),
    }
  }

  /** Tabs sharing a socket must not replace each other's subscriptions or pages: their ids carry the tab. */
  #tabSuffix(): string {
    const hub = this.#local?.hub
    return hub ? `@${hub.tab.slice(0, 8)}` : ''
  }

  // ---- the machine and its effects ------------------------------------------

  #start(): void {
    if (this.#started) return
    this.#started = true
    if (!this.#local) return this.#begin()
    this.#local
      .open()
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
          this.#socket.close(effect.code, effect.reason)
          break
        case 'send-hello':
          this.#sendHello()
          break
        case 'session-live':
          this.#timers.cancel('handshake')
          this.#writes.pump()
          if (this.#local?.hub?.holding && !this.#local.viaLink) this.#local.hub.holderLive()
          this.#presence.live()
          this.#pages.send()
          break
        case 'session-lost':
          this.#timers.cancel('handshake')
          this.#units.discard()
          this.#writes.socketLost()
          this.#pages.socketLost()
          this.#subs.socketLost() // the next hello asks for every sub
          this.#presence.lost()
          this.#socket.lost()
          if (this.#local?.viaLink && !this.#local.hub?.holding) {
            // The holder's socket is not this tab's: whatever it held says
            // nothing about the next, and the next hello asks for snapshots.
            this.#subs.registry.newEpoch()
          } else if (this.#local?.hub?.holding) {
            this.#local.hub.holderLost()
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
    const live = this.#socket.begin()
    // The deadline covers resolving the URL too: a token fetch that hangs is retried.
    this.#timers.schedule('handshake', this.#handshakeTimeoutMs, () => {
      if (live()) this.#sendEvent({ type: 'handshake-timeout' })
    })
    this.#socket.connect(live, this.#local?.link())
  }

  #helloSent(): boolean {
    const s = this.#state
    return this.#socket.current !== null && (s.status === 'live' || (s.status === 'connecting' && s.open))
  }

  #sendHello(): void {
    const hello: HelloFrame = { t: 'hello', v: PROTOCOL_VERSION, inlineAcks: true, compactChanges: true }
    if (this.#epoch !== undefined) {
      hello.epoch = this.#epoch
      hello.since = this.#units.appliedSeq
    }
    const subs = this.#subs.registry.hello(this.#epoch !== undefined)
    if (subs.length > 0) hello.subs = subs
    this.#debug?.hello(hello)
    this.#sendFrame(hello)
  }

  #sendFrame(frame: ClientFrame): void {
    this.#socket.send(encodeClientFrame(frame))
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
    this.#writes.close(error)
    this.#pages.close(error)
    this.#waiters.rejectAll(error)
    this.#subs.close(error)
    this.#local?.close()
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
