// The write queue of one transport (mut and call frames), pure: no socket,
// no timers. The transport feeds it the answers that arrive and sends what
// `next` hands out.
//
// * A write keeps its id until it settles: it is handed out again after each
//   lost socket, so the server's dedup makes the replay exactly-once.
// * At most `maxInFlight` writes are unanswered on one socket, oldest first
//   (the server refuses more with TOO_MANY).
// * An ack settles its write: the server sends it only after every change up
//   to its seq, so the cursor has already passed the seq when it arrives.
//   A reject settles it with a RejectedError: nothing was applied.
// * Some refusals are transient and settle nothing. A reject TOO_MANY for
//   the socket's in-flight caps (count or bytes) applied nothing and was not
//   recorded: the write is held and sent again, same id, once another write
//   settles (or the transport's retry timer releases it). An `error`
//   TOO_MANY about an id already in flight with too many sockets waiting on
//   it means its outcome is still unknown: the write is held and sent again
//   later (the transport's timer).
// * When the transport ends, a write that never reached a socket rejects
//   ClosedError (nothing was applied); one that was sent and not answered
//   rejects OutcomeUnknownError: the DO may have committed it, and that must
//   never look like a refusal.

import { ErrorCode } from '../protocol/index.js'
import type { AckFrame, CallFrame, ErrorFrame, MutFrame, RejectFrame } from '../protocol/index.js'
import { OutcomeUnknownError, RejectedError, SeqsyncError } from './errors.js'
import type { ClosedError } from './errors.js'

export type WriteFrame = MutFrame | CallFrame

/** A confirmed write: the seq the DO gave it, and a call's result. */
export interface WriteOutcome {
  seq: number
  result: unknown
}

export interface SendLimits {
  /** Writes that may be unanswered on one socket. */
  maxInFlight: number
  /** The server's maxFrameBytes: a larger write is refused here, never sent. */
  maxFrameBytes: number
}

interface QueuedWrite {
  frame: WriteFrame
  /** The frame as sent, encoded once. */
  text: string
  resolve: (value: WriteOutcome) => void
  reject: (error: SeqsyncError) => void
  /** Sent on the current socket (cleared when the socket is lost). */
  sent: boolean
  /** Sent on some socket since it was last known not applied: the DO may have committed it. */
  mayHaveCommitted: boolean
  /** Refused for now: not sent again until released. */
  held: 'in-flight' | 'waiters' | undefined
}

/** What a reject did: settled the write, held it for a retry, or matched no write. */
export type RejectOutcome = 'refused' | 'retry' | 'unknown'

/** A reject TOO_MANY for the socket's in-flight caps (count or bytes): transient, not recorded. */
function isInFlightCap(frame: RejectFrame): boolean {
  return frame.code === ErrorCode.TOO_MANY && typeof frame.message === 'string' && /\bin flight\b/.test(frame.message)
}

const encoder = new TextEncoder()

/** The id of a new write: `id` if given (a non-empty string), else a fresh UUID. */
export function writeId(id: string | undefined): string {
  if (id === undefined) return crypto.randomUUID()
  if (typeof id !== 'string' || id.length === 0) throw new TypeError('[seqsync] a write id must be a non-empty string')
  return id
}

/**
 * The write an `error` TOO_MANY is about when too many sockets wait on its
 * id (docs/protocol.md §4.4: its outcome is not known yet), or undefined.
 * The frame has no id field: the core's message names it.
 */
export function waitingWriteId(frame: ErrorFrame): string | undefined {
  if (frame.code !== ErrorCode.TOO_MANY || typeof frame.message !== 'string') return undefined
  return /^mutation '(.*)' already has \d+ sockets waiting on it$/.exec(frame.message)?.[1]
}

/** The UTF-8 length of `text` if it is over `max` bytes, else undefined. */
export function utf8Over(text: string, max: number): number | undefined {
  // Fast path: a UTF-16 unit is at most 3 UTF-8 bytes, and at least 1.
  if (text.length * 3 <= max) return undefined
  if (text.length > max) return text.length
  const bytes = encoder.encode(text).length
  return bytes > max ? bytes : undefined
}

export class WriteQueue {
  /** Unsettled writes by id, in the order they were made. */
  #writes = new Map<string, QueuedWrite>()
  /** Told when a write settles, whichever way (the local outbox forgets it). */
  readonly #onSettle: ((id: string) => void) | undefined

  constructor(onSettle?: (id: string) => void) {
    this.#onSettle = onSettle
  }

  /** Unsettled writes. */
  get size(): number {
    return this.#writes.size
  }

  /** Writes sent on the current socket and not answered yet. */
  get inFlight(): number {
    let n = 0
    for (const w of this.#writes.values()) if (w.sent) n += 1
    return n
  }

  /** Writes held back by a transient refusal. */
  get held(): number {
    let n = 0
    for (const w of this.#writes.values()) if (w.held !== undefined) n += 1
    return n
  }

  has(id: string): boolean {
    return this.#writes.has(id)
  }

  /** Every unsettled write, in order (the local outbox stores what was queued before it opened). */
  pending(): Array<{ frame: WriteFrame; text: string }> {
    return [...this.#writes.values()].map((w) => ({ frame: w.frame, text: w.text }))
  }

  /**
   * Queues `frame` (encoded as `text`); the promise settles with its answer.
   * A frame over `maxFrameBytes` is refused TOO_LARGE at once, nothing sent.
   */
  add(frame: WriteFrame, text: string, maxFrameBytes = Infinity): Promise<WriteOutcome> {
    if (this.#writes.has(frame.id)) return Promise.reject(new TypeError(`[seqsync] write ${frame.id} is already pending`))
    const bytes = utf8Over(text, maxFrameBytes)
    if (bytes !== undefined) {
      return Promise.reject(
        new SeqsyncError(ErrorCode.TOO_LARGE, `[seqsync] ${frame.t} frame is ${bytes} bytes, over maxFrameBytes ${maxFrameBytes}; nothing was sent`),
      )
    }
    return new Promise((resolve, reject) => {
      this.#writes.set(frame.id, this.#entry(frame, text, resolve, reject, false))
    })
  }

  /**
   * Puts writes read back from a local outbox ahead of every queued write,
   * in their order (one client's writes keep their order). Each may have
   * committed already: the DO answers a committed id with its recorded ack.
   * An id already queued is skipped.
   */
  restore(writes: ReadonlyArray<{ frame: WriteFrame; text: string }>): Array<Promise<WriteOutcome>> {
    const restored = new Map<string, QueuedWrite>()
    const settled: Array<Promise<WriteOutcome>> = []
    for (const { frame, text } of writes) {
      if (this.#writes.has(frame.id) || restored.has(frame.id)) continue
      settled.push(new Promise((resolve, reject) => restored.set(frame.id, this.#entry(frame, text, resolve, reject, true))))
    }
    for (const [id, w] of this.#writes) restored.set(id, w)
    this.#writes = restored
    return settled
  }

  #entry(
    frame: WriteFrame,
    text: string,
    resolve: (value: WriteOutcome) => void,
    reject: (error: SeqsyncError) => void,
    mayHaveCommitted: boolean,
  ): QueuedWrite {
    const settle = () => this.#onSettle?.(frame.id)
    return {
      frame,
      text,
      resolve: (value) => {
        settle()
        resolve(value)
      },
      reject: (error) => {
        settle()
        reject(error)
      },
      sent: false,
      mayHaveCommitted,
      held: undefined,
    }
  }

  /**
   * The texts to send now, oldest first, each marked sent, keeping at most
   * `maxInFlight` unanswered. A write over `maxFrameBytes` (the server's
   * limits may be lower than those it was checked against) is refused
   * TOO_LARGE instead: the server would answer it with an `error` no write
   * can be matched to, and it would wait forever.
   */
  next(limits: SendLimits): string[] {
    const out: string[] = []
    let inFlight = this.inFlight
    for (const w of [...this.#writes.values()]) {
      if (inFlight >= limits.maxInFlight) break
      if (w.sent || w.held !== undefined) continue
      const bytes = utf8Over(w.text, limits.maxFrameBytes)
      if (bytes !== undefined) {
        this.#writes.delete(w.frame.id)
        w.reject(
          new SeqsyncError(
            ErrorCode.TOO_LARGE,
            `[seqsync] ${w.frame.t} frame is ${bytes} bytes, over the server's maxFrameBytes ${limits.maxFrameBytes}; nothing was sent`,
          ),
        )
        continue
      }
      w.sent = true
      w.mayHaveCommitted = true
      inFlight += 1
      out.push(w.text)
    }
    return out
  }

  /** Settles the acked write (and frees writes held for the in-flight caps). False if no unsettled write has this id. */
  ack(frame: AckFrame): boolean {
    const w = this.#writes.get(frame.id)
    if (!w) return false
    this.#writes.delete(frame.id)
    this.release('in-flight')
    w.resolve({ seq: frame.seq, result: frame.result })
    return true
  }

  /**
   * A reject: a transient one (the in-flight caps) holds the write for a
   * retry; any other settles it with a RejectedError (nothing was applied).
   */
  reject(frame: RejectFrame): RejectOutcome {
    const w = this.#writes.get(frame.id)
    if (!w) return 'unknown'
    if (isInFlightCap(frame)) {
      w.sent = false
      w.held = 'in-flight'
      w.mayHaveCommitted = false // refused before it ran, and not in flight anywhere
      return 'retry'
    }
    this.#writes.delete(frame.id)
    this.release('in-flight')
    w.reject(new RejectedError(frame))
    return 'refused'
  }

  /**
   * The server cannot take `id` now and its outcome is not known yet (too
   * many sockets wait on it): hold it, unsettled, until released. False if
   * no write with this id is in flight.
   */
  hold(id: string): boolean {
    const w = this.#writes.get(id)
    if (!w || !w.sent) return false
    w.sent = false
    w.held = 'waiters'
    return true
  }

  /** Frees held writes (only those held for the in-flight caps, with 'in-flight'), to be sent again. */
  release(kind?: 'in-flight'): void {
    for (const w of this.#writes.values()) if (w.held !== undefined && (kind === undefined || w.held === kind)) w.held = undefined
  }

  /** The socket is gone: every write is unsent, to be sent again with the same id. */
  socketLost(): void {
    for (const w of this.#writes.values()) {
      w.sent = false
      w.held = undefined
    }
  }

  /**
   * The transport ended: a write never sent rejects with `closed`; a write
   * sent and not answered with OutcomeUnknownError (it may have committed).
   */
  close(closed: ClosedError): void {
    const writes = [...this.#writes.values()]
    this.#writes.clear()
    for (const w of writes) w.reject(w.mayHaveCommitted ? new OutcomeUnknownError(w.frame, closed) : closed)
  }
}
