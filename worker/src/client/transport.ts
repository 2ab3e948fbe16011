// WebSocketTransport: the one socket to one Durable Object, shared by every
// collection on it. This class is the I/O shell around the pure machine in
// connection.ts: it owns the socket, the retry timer and the protocol state
// (epoch, the appliedSeq cursor, subscriptions, the partial unit, writes in
// flight), feeds socket and network events to the machine and performs the
// effects it returns.
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
//   cursor that other subs advanced (the reference implementation's F1).
// * A write (mut/call) keeps its id until it settles: it is sent after each
//   welcome until an ack or reject arrives, so the server's dedup makes the
//   replay exactly-once.

import { ErrorCode, PROTOCOL_VERSION } from '../protocol/index.js'
import type {
  AckFrame,
  CallFrame,
  ChangesFrame,
  ClientFrame,
  HelloFrame,
  MutFrame,
  PredicateIR,
  RejectFrame,
  ServerFrame,
  SnapshotFrame,
  OrderByTerm,
  SubBody,
  WelcomeFrame,
  WireChange,
  WireOp,
  WireRow,
} from '../protocol/index.js'
import { DEFAULT_BACKOFF, initialTransition, transition } from './connection.js'
import type {
  BackoffConfig,
  ConnectionEffect,
  ConnectionEvent,
  ConnectionState,
  ConnectionStatus,
  MachineConfig,
} from './connection.js'
import {
  ClosedError,
  ProtocolError,
  RejectedError,
  SeqsyncError,
  SubscriptionError,
  TimeoutError,
} from './errors.js'

/** The part of a WebSocket this transport uses: the browser's, or `ws`'s in Node. */
export interface WebSocketLike {
  readonly readyState: number
  binaryType?: string
  send(data: string): void
  close(code?: number, reason?: string): void
  // Handlers are typed `(ev: never) => void` so that both the DOM's and `ws`'s
  // event types are assignable; the transport reads only `data`, `code`, `reason`.
  onopen: ((ev: never) => void) | null
  onmessage: ((ev: never) => void) | null
  onclose: ((ev: never) => void) | null
  onerror: ((ev: never) => void) | null
}

/** A WebSocket constructor: `globalThis.WebSocket`, or `WebSocket` from the `ws` package. */
export type WebSocketConstructor = new (url: string) => WebSocketLike

export interface WebSocketTransportOptions {
  /** The `ws://` or `wss://` URL of the DO's sync endpoint. */
  url: string
  /** Defaults to `globalThis.WebSocket`. In Node < 22 pass `WebSocket` from `ws`. */
  WebSocket?: WebSocketConstructor
  /** Reconnect backoff. Default `{ initialMs: 250, maxMs: 30000 }`. */
  backoff?: Partial<BackoffConfig>
  /** Uniform random in [0, 1) for the backoff jitter. Default `Math.random`. */
  random?: () => number
  /** Errors that belong to no caller: `error` frames, unparsable frames, a collection that failed to apply a unit. */
  onError?: (error: SeqsyncError) => void
  /** Don't dial until the first collection registers or the first write. Default false. */
  lazy?: boolean
  /** Listen to the host's `online`/`offline` events (browsers). Default true when available. */
  watchNetwork?: boolean
  /** Give up on a dial that has no `welcome` after this long, and retry. Default 10 000. */
  handshakeTimeoutMs?: number
}

/** The result of a confirmed write: the seq the DO gave it. */
export interface WriteResult {
  seq: number
}

/** One applied unit, as one subscription sees it. */
export interface AppliedUnit {
  seq: number
  /** The subscription id this unit is dispatched for. */
  sub: string
  /**
   * The unit's changes for this subscription's table, in order, unless
   * `snapshot` is set. Every subscription of one table receives the same
   * array object for one unit, so a handler shared by several subscriptions
   * can apply it once.
   */
  changes: readonly WireChange[]
  /** Every row of this subscription's snapshot, when the unit carries one. */
  snapshot: readonly WireRow[] | undefined
  /** With `snapshot`, for a window: the plain predicate the window resolved to. */
  where?: PredicateIR | undefined
}

/** What a collection registers with the transport. @internal */
export interface SubscriptionHandler {
  /** Apply one unit, synchronously. Throwing reports through `onError`. */
  applyUnit(unit: AppliedUnit): void
  /**
   * Called once per unit, after every subscription of this handler got its
   * `applyUnit` for that unit (a handler object shared by several
   * subscriptions is called once). Optional.
   */
  unitDone?(seq: number): void
  /** The server refused the subscription; nothing is held for it any more. */
  onError(error: SubscriptionError): void
}

/** A subscription as a collection declares it: a `sub` body; the transport adds `resume`. @internal */
export type SubscriptionSpec = Omit<SubBody, 'resume'>

interface SubEntry {
  spec: SubscriptionSpec
  handler: SubscriptionHandler
  /** A snapshot of it was applied in the current epoch: it may resume. */
  synced: boolean
  /** For a window: the predicate its last snapshot resolved to; it resumes as that. */
  resolved: PredicateIR | undefined
}

interface PendingWrite {
  frame: MutFrame | CallFrame
  /** The frame as sent, encoded once. */
  text: string
  resolve: (value: { seq: number; result: unknown }) => void
  reject: (error: SeqsyncError) => void
  /** Set by the ack; the write settles once appliedSeq ≥ ackSeq. */
  ackSeq: number | undefined
  /** Sent on the current socket (cleared when the socket is lost). */
  sent: boolean
  result: unknown
}

interface SeqWaiter {
  seq: number
  resolve: () => void
  reject: (error: SeqsyncError) => void
  timer: ReturnType<typeof setTimeout> | undefined
}

const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024
const DEFAULT_MAX_OPS = 500
const DEFAULT_MAX_IN_FLIGHT = 32
const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** The UTF-8 length of `text` if it is over `max` bytes, else undefined. */
function utf8Over(text: string, max: number): number | undefined {
  // Fast path: a UTF-16 unit is at most 3 UTF-8 bytes, and at least 1.
  if (text.length * 3 <= max) return undefined
  if (text.length > max) return text.length
  const bytes = encoder.encode(text).length
  return bytes > max ? bytes : undefined
}

/**
 * What is wrong with a server frame's fields the cursor and units rely on,
 * or undefined. A frame from a broken or foreign server is reported and
 * dropped; it must not move the cursor or throw out of onmessage.
 */
function malformedServerFrame(frame: ServerFrame): string | undefined {
  const f = frame as unknown as Record<string, unknown>
  const isSeq = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
  switch (frame.t) {
    case 'welcome':
    case 'synced':
      return isSeq(f.seq) ? undefined : 'seq is not a non-negative integer'
    case 'changes':
      if (!isSeq(f.seq)) return 'seq is not a non-negative integer'
      return Array.isArray(f.changes) && f.changes.every((c) => isObject(c) && typeof c.c === 'string' && typeof c.k === 'string')
        ? undefined
        : 'changes is not a list of {c, k}'
    case 'snapshot':
      if (!isSeq(f.seq)) return 'seq is not a non-negative integer'
      return typeof f.sub === 'string' && Array.isArray(f.rows) && f.rows.every(isObject) ? undefined : 'sub or rows missing'
    case 'ack':
      return typeof f.id === 'string' && isSeq(f.seq) ? undefined : 'id or seq missing'
    case 'reject':
    case 'sub-error':
    case 'error':
      return typeof f.code === 'number' ? undefined : 'code missing'
    default:
      return undefined
  }
}

/** The changes of one table; the array itself when they all are (the common case). */
function changesOf(changes: WireChange[], table: string): WireChange[] {
  for (let i = 0; i < changes.length; i++) {
    if (changes[i]!.c !== table) return changes.filter((c) => c.c === table)
  }
  return changes
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
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
 */
export class WebSocketTransport {
  readonly url: string
  readonly #WebSocket: WebSocketConstructor
  readonly #machine: MachineConfig
  readonly #onError: ((error: SeqsyncError) => void) | undefined

  #state: ConnectionState
  #ws: WebSocketLike | null = null
  /** Bumped for every socket; events of an older socket are ignored. */
  #generation = 0
  #retryTimer: ReturnType<typeof setTimeout> | undefined
  #handshakeTimer: ReturnType<typeof setTimeout> | undefined
  readonly #handshakeTimeoutMs: number
  #started = false
  #queue: ConnectionEvent[] = []
  #dispatching = false

  #epoch: string | undefined
  #appliedSeq = 0
  #limits: WelcomeFrame['limits'] | undefined
  #subs = new Map<string, SubEntry>()
  #subCounter = 0
  /** Frames of the unit in progress (parts with `more: true`). */
  #unit: Array<ChangesFrame | SnapshotFrame> = []
  #writes = new Map<string, PendingWrite>()
  #waiters: SeqWaiter[] = []
  #listeners = new Set<() => void>()
  #networkCleanup: (() => void) | undefined

  constructor(options: WebSocketTransportOptions) {
    this.url = options.url
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
    this.#handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000
    this.#state = { status: 'connecting', failures: 0, open: false }
    if (options.watchNetwork !== false) this.#watchNetwork()
    if (!options.lazy) this.#start()
  }

  // ---- public surface ------------------------------------------------------

  /** 'connecting' | 'live' | 'offline' | 'closed'. */
  get status(): ConnectionStatus {
    return this.#state.status
  }

  /** Every change up to this seq that concerns this socket's subscriptions has been applied. */
  get appliedSeq(): number {
    return this.#appliedSeq
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
    if (this.#appliedSeq >= seq) return Promise.resolve()
    if (this.#state.status === 'closed') return Promise.reject(this.#closedError())
    return new Promise<void>((resolve, reject) => {
      const waiter: SeqWaiter = { seq, resolve, reject, timer: undefined }
      if (Number.isFinite(timeoutMs)) {
        waiter.timer = setTimeout(() => {
          this.#waiters = this.#waiters.filter((w) => w !== waiter)
          reject(
            new TimeoutError(
              `[seqsync] awaitSeq(${seq}) timed out after ${timeoutMs} ms (appliedSeq ${this.#appliedSeq}, ${this.status})`,
            ),
          )
        }, timeoutMs)
      }
      this.#waiters.push(waiter)
    })
  }

  /**
   * Sends one atomic mutation and resolves once the server acked it and the
   * cursor passed its seq (the change is then in every synced collection).
   * Rejects `RejectedError` on `reject`, `ClosedError` if the transport ends
   * first. While offline the write waits and is sent after the next welcome,
   * with the same id.
   */
  async mutate(ops: WireOp[]): Promise<WriteResult> {
    if (ops.length === 0) throw new SeqsyncError(ErrorCode.INVALID_FIELD, '[seqsync] mutate: ops is empty')
    const maxOps = this.#limits?.maxOpsPerMutation ?? DEFAULT_MAX_OPS
    if (ops.length > maxOps) {
      throw new SeqsyncError(ErrorCode.TOO_MANY, `[seqsync] mutate: ${ops.length} ops, more than maxOpsPerMutation ${maxOps}`)
    }
    const { seq } = await this.#write({ t: 'mut', id: crypto.randomUUID(), ops })
    return { seq }
  }

  /** Runs a named server command (exactly once); resolves with its result once confirmed. */
  async call<R = unknown>(name: string, args?: unknown): Promise<R> {
    const frame: CallFrame = { t: 'call', id: crypto.randomUUID(), name }
    if (args !== undefined) frame.args = args
    const { result } = await this.#write(frame)
    return result as R
  }

  /** Closes the socket for good. Pending writes and waits reject `ClosedError`. */
  close(): void {
    this.#sendEvent({ type: 'user-close' })
  }

  // ---- internal API for collections -----------------------------------------

  /** A subscription id unique on this transport, derived from `base`. @internal */
  nextSubId(base: string): string {
    this.#subCounter += 1
    return `${base}#${this.#subCounter}`
  }

  /**
   * Registers a subscription; its snapshot and changes reach `handler`.
   * Returns the function that unregisters it (and sends `unsub`). @internal
   */
  register(spec: SubscriptionSpec, handler: SubscriptionHandler): () => void {
    if (this.#subs.has(spec.id)) throw new TypeError(`[seqsync] subscription id ${spec.id} is already registered`)
    if (this.#state.status === 'closed') {
      queueMicrotask(() => handler.onError(new SubscriptionError({ sub: spec.id, code: ErrorCode.INTERNAL, message: 'transport closed' }, spec.c)))
      return () => {}
    }
    const entry: SubEntry = { spec, handler, synced: false, resolved: undefined }
    this.#subs.set(spec.id, entry)
    if (this.#helloSent()) this.#sendFrame({ t: 'sub', ...this.#subBody(entry, false) })
    this.#start()
    return () => {
      if (this.#subs.get(spec.id) !== entry) return
      this.#subs.delete(spec.id)
      if (this.#helloSent()) this.#sendFrame({ t: 'unsub', id: spec.id })
    }
  }

  // ---- writes ----------------------------------------------------------------

  #write(frame: MutFrame | CallFrame): Promise<{ seq: number; result: unknown }> {
    if (this.#state.status === 'closed') return Promise.reject(this.#closedError())
    const text = JSON.stringify(frame)
    const maxBytes = this.#limits?.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES
    const bytes = utf8Over(text, maxBytes)
    if (bytes !== undefined) {
      return Promise.reject(
        new SeqsyncError(ErrorCode.TOO_LARGE, `[seqsync] ${frame.t} frame is ${bytes} bytes, over maxFrameBytes ${maxBytes}; nothing was sent`),
      )
    }
    return new Promise((resolve, reject) => {
      this.#writes.set(frame.id, { frame, text, resolve, reject, ackSeq: undefined, result: undefined, sent: false })
      this.#pump()
      this.#start()
    })
  }

  #onAck(frame: AckFrame): void {
    const write = this.#writes.get(frame.id)
    if (write) {
      write.ackSeq = frame.seq
      write.result = frame.result
    }
    this.#advance(frame.seq)
    this.#pump()
  }

  #onReject(frame: RejectFrame): void {
    const write = this.#writes.get(frame.id)
    if (!write) return
    this.#writes.delete(frame.id)
    write.reject(new RejectedError(frame))
    this.#pump()
  }

  /**
   * Sends unsent writes, oldest first, keeping at most maxInFlightPerSocket
   * unanswered on the socket (the server refuses more with TOO_MANY).
   */
  #pump(): void {
    if (this.#state.status !== 'live') return
    const max = this.#limits?.maxInFlightPerSocket ?? DEFAULT_MAX_IN_FLIGHT
    let inFlight = 0
    for (const w of this.#writes.values()) if (w.sent && w.ackSeq === undefined) inFlight += 1
    for (const w of this.#writes.values()) {
      if (inFlight >= max) break
      if (w.sent || w.ackSeq !== undefined) continue
      // The server's limits may be lower than those the write was checked
      // against: an oversize frame would get an unattributable `error` and
      // the write would wait forever. Refuse it here instead.
      const maxBytes = this.#limits?.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES
      const bytes = utf8Over(w.text, maxBytes)
      if (bytes !== undefined) {
        this.#writes.delete(w.frame.id)
        w.reject(new SeqsyncError(ErrorCode.TOO_LARGE, `[seqsync] ${w.frame.t} frame is ${bytes} bytes, over the server's maxFrameBytes ${maxBytes}; nothing was sent`))
        continue
      }
      w.sent = true
      inFlight += 1
      this.#sendText(w.text)
    }
  }

  // ---- cursor ----------------------------------------------------------------

  /** appliedSeq = max(appliedSeq, seq); settle what that confirms; notify. */
  #advance(seq: number): void {
    const moved = seq > this.#appliedSeq
    if (moved) this.#appliedSeq = seq
    this.#settle()
    if (moved) this.#notify()
  }

  #settle(): void {
    for (const [id, write] of this.#writes) {
      if (write.ackSeq !== undefined && write.ackSeq <= this.#appliedSeq) {
        this.#writes.delete(id)
        write.resolve({ seq: write.ackSeq, result: write.result })
      }
    }
    if (this.#waiters.length > 0) {
      const ready = this.#waiters.filter((w) => w.seq <= this.#appliedSeq)
      if (ready.length > 0) {
        this.#waiters = this.#waiters.filter((w) => w.seq > this.#appliedSeq)
        for (const w of ready) {
          if (w.timer !== undefined) clearTimeout(w.timer)
          w.resolve()
        }
      }
    }
  }

  // ---- frames in -------------------------------------------------------------

  #onMessage(data: unknown): void {
    let text: string
    if (typeof data === 'string') text = data
    else if (data instanceof ArrayBuffer) text = decoder.decode(data)
    else if (ArrayBuffer.isView(data)) text = decoder.decode(data)
    else return this.#report(new ProtocolError(ErrorCode.MALFORMED_FRAME, 'a frame that is neither text nor bytes'))
    let frame: ServerFrame
    try {
      const parsed: unknown = JSON.parse(text)
      if (!isObject(parsed) || typeof parsed.t !== 'string') throw new Error('not an object with a string t')
      frame = parsed as unknown as ServerFrame
    } catch (error) {
      return this.#report(new ProtocolError(ErrorCode.MALFORMED_FRAME, `unparsable server frame: ${String(error)}`))
    }
    const wrong = malformedServerFrame(frame)
    if (wrong !== undefined) {
      return this.#report(new ProtocolError(ErrorCode.MALFORMED_FRAME, `server frame ${frame.t}: ${wrong}`))
    }
    switch (frame.t) {
      case 'welcome':
        return this.#onWelcome(frame)
      case 'changes':
      case 'snapshot':
        if (frame.more === true) {
          this.#unit.push(frame)
          return
        }
        this.#unit.push(frame)
        return this.#endUnit(frame.seq)
      case 'synced':
        return this.#endUnit(frame.seq)
      case 'ack':
        return this.#onAck(frame)
      case 'reject':
        return this.#onReject(frame)
      case 'sub-error': {
        const entry = this.#subs.get(frame.sub)
        if (!entry) return
        this.#subs.delete(frame.sub)
        const error = new SubscriptionError(frame, entry.spec.c)
        this.#report(error)
        try {
          entry.handler.onError(error)
        } catch (e) {
          this.#report(new SeqsyncError(ErrorCode.INTERNAL, `[${entry.spec.c}] sub-error handler threw`, { cause: e }))
        }
        return
      }
      case 'error':
        return this.#report(new ProtocolError(frame.code, frame.message))
      default:
        return // a frame type from a later protocol minor: ignore
    }
  }

  #onWelcome(frame: WelcomeFrame): void {
    if (this.#epoch !== undefined && frame.epoch !== this.#epoch) {
      // The DO's storage was reset: seqs restart, and the server answers every
      // sub with a fresh snapshot. Writes acked in the old epoch are settled
      // (they committed); the cursor starts over.
      for (const entry of this.#subs.values()) entry.synced = false
      for (const [id, write] of this.#writes) {
        if (write.ackSeq !== undefined) {
          this.#writes.delete(id)
          write.resolve({ seq: write.ackSeq, result: write.result })
        }
      }
      this.#appliedSeq = 0
    }
    this.#epoch = frame.epoch
    if (isObject(frame.limits)) this.#limits = frame.limits
    this.#sendEvent({ type: 'welcome' })
  }

  /** The final frame of a unit arrived: apply it whole, then move the cursor. */
  #endUnit(seq: number): void {
    const frames = this.#unit
    this.#unit = []
    // A unit of one changes frame (every live delta) is used as it came.
    const only = frames.length === 1 && frames[0]!.t === 'changes' ? frames[0]! : undefined
    const changes: WireChange[] = only?.t === 'changes' ? only.changes : []
    const snapshots = new Map<string, WireRow[]>()
    const resolved = new Map<string, PredicateIR>()
    for (const f of only ? [] : frames) {
      if (f.t === 'changes') {
        for (const c of f.changes) changes.push(c)
      } else {
        let rows = snapshots.get(f.sub)
        if (!rows) snapshots.set(f.sub, (rows = []))
        for (const r of f.rows) rows.push(r)
        if (isObject(f.where)) resolved.set(f.sub, f.where as PredicateIR)
      }
    }
    if (changes.length > 0 || snapshots.size > 0) {
      /** The unit's changes by table: one array per table, shared by its subs. */
      const byTable = new Map<string, WireChange[]>()
      const touched = new Set<SubscriptionHandler>()
      for (const entry of [...this.#subs.values()]) {
        // A handler may unregister subs of this unit while it applies it.
        if (this.#subs.get(entry.spec.id) !== entry) continue
        const snapshot = snapshots.get(entry.spec.id)
        let unit: AppliedUnit
        if (snapshot) {
          // The snapshot is the sub's state at `seq`: it supersedes the unit's changes.
          const where = resolved.get(entry.spec.id)
          if (where !== undefined) entry.resolved = where
          unit = { seq, sub: entry.spec.id, changes: [], snapshot }
          if (entry.resolved !== undefined) unit.where = entry.resolved
          entry.synced = true
        } else if (entry.synced) {
          // Changes for a sub still waiting for its snapshot are superseded by it.
          let mine = byTable.get(entry.spec.c)
          if (!mine) byTable.set(entry.spec.c, (mine = changesOf(changes, entry.spec.c)))
          if (mine.length === 0) continue
          unit = { seq, sub: entry.spec.id, changes: mine, snapshot: undefined }
        } else {
          continue
        }
        touched.add(entry.handler)
        try {
          entry.handler.applyUnit(unit)
        } catch (error) {
          this.#report(
            new SeqsyncError(ErrorCode.INTERNAL, `[${entry.spec.c}] applying the unit at seq ${seq} failed: ${String(error)}`, { cause: error }),
          )
        }
      }
      for (const handler of touched) {
        if (!handler.unitDone) continue
        try {
          handler.unitDone(seq)
        } catch (error) {
          this.#report(
            new SeqsyncError(ErrorCode.INTERNAL, `[seqsync] finishing the unit at seq ${seq} failed: ${String(error)}`, { cause: error }),
          )
        }
      }
    }
    this.#advance(seq)
  }

  // ---- the machine and its effects ------------------------------------------

  #start(): void {
    if (this.#started) return
    this.#started = true
    const networkDown = typeof navigator !== 'undefined' && (navigator as { onLine?: boolean }).onLine === false
    const t = initialTransition(networkDown)
    this.#state = t.state
    this.#notify()
    this.#run(t.effects)
  }

  #sendEvent(event: ConnectionEvent): void {
    if (!this.#started && event.type !== 'user-close') return
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
          this.#clearHandshakeTimer()
          this.#pump()
          break
        case 'session-lost':
          this.#clearHandshakeTimer()
          this.#unit = []
          for (const write of this.#writes.values()) write.sent = false
          this.#ws = null
          this.#generation += 1
          break
        case 'schedule-retry':
          if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer)
          this.#retryTimer = setTimeout(() => {
            this.#retryTimer = undefined
            this.#sendEvent({ type: 'retry' })
          }, effect.ms)
          break
        case 'cancel-retry':
          if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer)
          this.#retryTimer = undefined
          break
        case 'terminal':
          this.#clearHandshakeTimer()
          this.#terminate()
          break
      }
    }
  }

  #clearHandshakeTimer(): void {
    if (this.#handshakeTimer !== undefined) clearTimeout(this.#handshakeTimer)
    this.#handshakeTimer = undefined
  }

  #openSocket(): void {
    this.#generation += 1
    const generation = this.#generation
    const live = () => generation === this.#generation
    this.#clearHandshakeTimer()
    this.#handshakeTimer = setTimeout(() => {
      this.#handshakeTimer = undefined
      if (live()) this.#sendEvent({ type: 'handshake-timeout' })
    }, this.#handshakeTimeoutMs)
    let ws: WebSocketLike
    try {
      ws = new this.#WebSocket(this.url)
    } catch (error) {
      this.#report(new SeqsyncError(ErrorCode.INTERNAL, `[seqsync] could not open ${this.url}: ${String(error)}`, { cause: error }))
      queueMicrotask(() => {
        if (live()) this.#sendEvent({ type: 'error' })
      })
      return
    }
    this.#ws = ws
    try {
      ws.binaryType = 'arraybuffer'
    } catch {
      // Some implementations have a read-only binaryType; text frames don't need it.
    }
    // Handlers stay attached after the socket is replaced (a `ws` socket emits
    // `error` while closing, and an EventEmitter without a listener throws);
    // the generation check silences a stale socket instead.
    ws.onopen = () => {
      if (live()) this.#sendEvent({ type: 'open' })
    }
    ws.onmessage = (ev: { data: unknown }) => {
      if (live()) this.#onMessage(ev.data)
    }
    ws.onclose = (ev: { code?: number; reason?: string }) => {
      if (!live()) return
      const event: { type: 'close'; code?: number; reason?: string } = { type: 'close' }
      if (typeof ev.code === 'number') event.code = ev.code
      if (typeof ev.reason === 'string') event.reason = ev.reason
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

  #subBody(entry: SubEntry, resume: boolean): SubBody {
    const { spec } = entry
    const body: SubBody = { id: spec.id, c: spec.c }
    if (resume) {
      // A window resumes as the plain predicate it resolved to (§4.2): the
      // server then catches it up from `since` instead of re-resolving it.
      const where = entry.resolved ?? spec.where
      if (where !== undefined) body.where = where
      if (entry.resolved === undefined) {
        if (spec.orderBy !== undefined) body.orderBy = spec.orderBy
        if (spec.limit !== undefined) body.limit = spec.limit
        if (spec.offset !== undefined) body.offset = spec.offset
      }
      body.resume = true
      return body
    }
    if (spec.where !== undefined) body.where = spec.where
    if (spec.orderBy !== undefined) body.orderBy = spec.orderBy
    if (spec.limit !== undefined) body.limit = spec.limit
    if (spec.offset !== undefined) body.offset = spec.offset
    return body
  }

  #sendHello(): void {
    const hello: HelloFrame = { t: 'hello', v: PROTOCOL_VERSION }
    if (this.#epoch !== undefined) {
      hello.epoch = this.#epoch
      hello.since = this.#appliedSeq
    }
    const subs = [...this.#subs.values()].map((e) => this.#subBody(e, e.synced && this.#epoch !== undefined))
    if (subs.length > 0) hello.subs = subs
    this.#sendFrame(hello)
  }

  #sendFrame(frame: ClientFrame): void {
    this.#sendText(JSON.stringify(frame))
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
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
    this.#networkCleanup?.()
    this.#networkCleanup = undefined
    const writes = [...this.#writes.values()]
    this.#writes.clear()
    for (const w of writes) w.reject(error)
    const waiters = this.#waiters
    this.#waiters = []
    for (const w of waiters) {
      if (w.timer !== undefined) clearTimeout(w.timer)
      w.reject(error)
    }
    const subs = [...this.#subs.values()]
    this.#subs.clear()
    for (const entry of subs) {
      try {
        entry.handler.onError(new SubscriptionError({ sub: entry.spec.id, code: error.code, message: error.message }, entry.spec.c))
      } catch {
        // a collection's error path must not stop the others
      }
    }
  }

  #watchNetwork(): void {
    const target = globalThis as {
      addEventListener?: (type: string, listener: () => void) => void
      removeEventListener?: (type: string, listener: () => void) => void
    }
    if (typeof target.addEventListener !== 'function' || typeof target.removeEventListener !== 'function') return
    if (typeof navigator === 'undefined' || typeof (navigator as { onLine?: unknown }).onLine !== 'boolean') return
    const online = () => this.#sendEvent({ type: 'online' })
    const offline = () => this.#sendEvent({ type: 'offline' })
    target.addEventListener('online', online)
    target.addEventListener('offline', offline)
    this.#networkCleanup = () => {
      target.removeEventListener?.('online', online)
      target.removeEventListener?.('offline', offline)
    }
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
