// The writes on the socket: the queue (writes.ts) sent within the DO's
// in-flight window while the session is live, each stored in the local copy
// until it settles, and the writes a transient refusal held released again
// after a backoff delay.

import type { AckFrame, ErrorFrame, RejectFrame, WelcomeFrame } from '../protocol/index.js'
import { encodeClientFrame } from './codec.js'
import type { ClosedError } from './errors.js'
import { RetryTimers } from './host.js'
import { waitingWriteId, WriteQueue } from './writes.js'
import type { WriteFrame, WriteOutcome } from './writes.js'

const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024
const DEFAULT_MAX_IN_FLIGHT = 32

/** What the write channel needs of the transport. */
export interface WriteChannelHost {
  /** The session is live: writes may be sent. */
  live(): boolean
  /** The limits of the last welcome, if any. */
  limits(): WelcomeFrame['limits'] | undefined
  send(text: string): void
  /** The backoff delay before the `attempt`th retry. */
  backoff(attempt: number): number
  /** Stores a waiting write in the local copy, if any. */
  putWrite(id: string, text: string): void
  /** A write settled: its stored copy goes. */
  deleteWrite(id: string): void
}

export class WriteChannel {
  readonly queue: WriteQueue
  readonly #host: WriteChannelHost
  /** Transient refusals of writes since the last ack (the retry backoff). */
  #refusals = 0
  readonly #release = new RetryTimers<'held'>()

  constructor(host: WriteChannelHost) {
    this.#host = host
    this.queue = new WriteQueue((id) => host.deleteWrite(id))
  }

  /** Queues `frame` (stored until it settles) and sends it if the window allows. */
  add(frame: WriteFrame): Promise<WriteOutcome> {
    const text = encodeClientFrame(frame)
    const settled = this.queue.add(frame, text, this.#host.limits()?.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES)
    if (this.queue.has(frame.id)) this.#host.putWrite(frame.id, text)
    this.pump()
    return settled
  }

  /** An ack: settles its write (the cursor is already at its seq). Send more with `pump`. */
  ack(frame: AckFrame): void {
    if (this.queue.ack(frame)) this.#refusals = 0
  }

  reject(frame: RejectFrame): void {
    const outcome = this.queue.reject(frame)
    if (outcome === 'unknown') return
    if (outcome === 'retry') this.#releaseLater()
    this.pump()
  }

  /** An `error` frame: TOO_MANY about a write in flight (too many sockets wait on its id) holds it, settles nothing. True if it did. */
  held(frame: ErrorFrame): boolean {
    const waiting = waitingWriteId(frame)
    if (waiting === undefined || !this.queue.hold(waiting)) return false
    this.#releaseLater()
    return true
  }

  /** Sends unsent writes, oldest first, within the in-flight window (writes.ts). */
  pump(): void {
    if (!this.#host.live()) return
    const limits = this.#host.limits()
    const texts = this.queue.next({
      maxInFlight: limits?.maxInFlightPerSocket ?? DEFAULT_MAX_IN_FLIGHT,
      maxFrameBytes: limits?.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
    })
    for (const text of texts) this.#host.send(text)
  }

  /** The socket is gone: every write is sent again after the next welcome. */
  socketLost(): void {
    this.queue.socketLost()
    this.#release.cancelAll()
  }

  close(error: ClosedError): void {
    this.#release.cancelAll()
    this.queue.close(error)
  }

  /** Releases held writes after a backoff delay (a transient refusal). */
  #releaseLater(): void {
    if (this.#release.has('held')) return
    this.#refusals += 1
    this.#release.schedule('held', this.#host.backoff(this.#refusals), () => {
      this.queue.release()
      this.pump()
    })
  }
}
