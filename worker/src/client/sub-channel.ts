// The subscriptions on the socket: the registry (subscriptions.ts), its sub
// and unsub frames once a hello is out, a completed unit applied to it, a sub
// refused RATE_LIMITED sent again after a backoff delay, and each handler
// told when its subscription is gone.

import { ErrorCode } from '../protocol/index.js'
import type { ClientFrame, SubErrorFrame } from '../protocol/index.js'
import { SeqsyncError, SubscriptionError } from './errors.js'
import type { ClosedError } from './errors.js'
import { RetryTimers } from './host.js'
import { Subscriptions } from './subscriptions.js'
import type { SubEntry, SubscriptionHandler, SubscriptionSpec } from './subscriptions.js'
import type { CompletedUnit } from './unit.js'

/** What the subscription channel needs of the transport. */
export interface SubscriptionChannelHost {
  /** A hello is out on the current socket: later subs and unsubs go as frames of their own. */
  helloSent(): boolean
  /** The session is live. */
  live(): boolean
  send(frame: ClientFrame): void
  /** The backoff delay before the `attempt`th retry. */
  backoff(attempt: number): number
  report(error: SeqsyncError): void
}

export class SubscriptionChannel {
  readonly registry = new Subscriptions()
  readonly #host: SubscriptionChannelHost
  /** Subscriptions refused RATE_LIMITED waiting to be sent again. */
  readonly #retries = new RetryTimers<SubEntry>()

  constructor(host: SubscriptionChannelHost) {
    this.#host = host
  }

  /** Sends `entry`'s sub if a hello is out (else the next hello carries it). */
  sendSub(entry: SubEntry): void {
    if (this.#host.helloSent()) this.#host.send({ t: 'sub', ...this.registry.body(entry, false) })
  }

  /** Unregisters `entry` and sends its unsub; false if it was not registered. */
  remove(entry: SubEntry): boolean {
    if (!this.registry.delete(entry)) return false
    this.#retries.cancel(entry)
    if (this.#host.helloSent()) this.#host.send({ t: 'unsub', id: entry.spec.id })
    return true
  }

  onSubError(frame: SubErrorFrame): void {
    const entry = this.registry.get(frame.sub)
    if (!entry) return
    // Too many sub frames too fast: nothing changed, ask again later.
    if (frame.code === ErrorCode.RATE_LIMITED) return this.#retry(entry)
    this.registry.delete(entry)
    const error = new SubscriptionError(frame, entry.spec.c)
    this.#host.report(error)
    this.#tell(entry, error)
  }

  /** A unit ended: apply it whole to its subscriptions (the transport moves the cursor after). */
  dispatch(unit: CompletedUnit): void {
    const { resync, dropped } = this.registry.dispatch(unit, (error) => this.#host.report(error))
    // Re-using the id of a live subscription replaces it: a fresh snapshot.
    for (const entry of resync) this.sendSub(entry)
    for (const { entry, error } of dropped) {
      if (this.#host.helloSent()) this.#host.send({ t: 'unsub', id: entry.spec.id })
      this.#tell(entry, error)
    }
  }

  /** The socket is gone: the next hello asks for every sub. */
  socketLost(): void {
    this.#retries.cancelAll()
  }

  close(error: ClosedError): void {
    this.#retries.cancelAll()
    this.registry.closeAll(error)
  }

  /** Sends `entry`'s sub again after a backoff delay (it was refused RATE_LIMITED). */
  #retry(entry: SubEntry): void {
    entry.synced = false
    entry.rateLimited += 1
    this.#retries.schedule(entry, this.#host.backoff(entry.rateLimited), () => {
      if (this.registry.holds(entry) && this.#host.live()) this.#host.send({ t: 'sub', ...this.registry.body(entry, false) })
    })
  }

  /** Tells a subscription's handler it is gone. */
  #tell(entry: { spec: SubscriptionSpec; handler: SubscriptionHandler }, error: SubscriptionError): void {
    try {
      entry.handler.onError(error)
    } catch (e) {
      this.#host.report(new SeqsyncError(ErrorCode.INTERNAL, `[${entry.spec.c}] sub-error handler threw`, { cause: e }))
    }
  }
}
