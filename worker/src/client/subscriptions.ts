// The subscriptions of one transport, and how a unit reaches them. No
// socket and no timers: the transport sends the frames this table builds.
//
// * An entry is `synced` once one of its snapshots was applied in the
//   current epoch; only synced entries resume (`resume: true` in hello) and
//   receive changes (planDeliveries, unit.ts).
// * A window resumes as the plain predicate its snapshot resolved to
//   (docs/protocol.md §4.2), so the server catches it up from `since`
//   instead of resolving it anew.
// * A unit reaches each handler whole: all of its subscriptions' parts, then
//   unitDone. If the handler throws, the unit is lost for those
//   subscriptions while the cursor moves past it for the others. So the
//   handler undoes what it wrote for the unit (abortUnit), and each of its
//   subscriptions of that unit stops being synced and asks for a fresh
//   snapshot: until that snapshot, it neither takes changes nor resumes
//   from the cursor, which says nothing about it. A subscription whose
//   fresh snapshot fails too is dropped (unsub, onError): the next one
//   would fail the same way.

import { ErrorCode } from '../protocol/index.js'
import type { MutFrame, PredicateIR, SubBody, WireRow } from '../protocol/index.js'
import type { RowSink } from './held-rows.js'
import { SeqsyncError, SubscriptionError } from './errors.js'
import { planDeliveries } from './unit.js'
import type { AppliedUnit, CompletedUnit, DeliveryTarget } from './unit.js'

/** What a collection registers with the transport. @internal */
export interface SubscriptionHandler {
  /** Apply one unit, synchronously. If it throws, abortUnit follows and the subscription resyncs. */
  applyUnit(unit: AppliedUnit): void
  /**
   * Called once per unit, after every subscription of this handler got its
   * `applyUnit` for that unit (a handler object shared by several
   * subscriptions is called once). Optional.
   */
  unitDone?(seq: number): void
  /**
   * applyUnit or unitDone threw for the unit at `error`'s seq: undo what was
   * written for it. `subs` (this handler's subscriptions of that unit) are
   * resyncing: fresh snapshots are on their way. Optional.
   */
  abortUnit?(error: SeqsyncError, subs: readonly string[]): void
  /** The server refused the subscription, or its units cannot be applied; nothing is held for it any more. */
  onError(error: SubscriptionError): void
  /** The transport closed for good (the subscription is gone with it). Defaults to onError. */
  onClosed?(error: SubscriptionError): void
  /**
   * With a local copy, once, before any unit: where to stage the rows it
   * writes, the rows stored for it (undefined if none), and the restored
   * writes on its table to show optimistically. Optional.
   */
  attachLocal?(local: LocalAttachment): void
  /** This tab starts writing the local copy: stage every row it holds (a full image). Optional. */
  restageLocal?(): void
}

/** What a persisted subscription gets from the local copy. @internal */
export interface LocalAttachment {
  /** The subscription this is for (a handler may serve several). */
  sub: string
  sink: RowSink
  /** The rows stored for it; they render before the network answers. */
  cached: readonly WireRow[] | undefined
  /** Restored writes touching its table, each settling with its outcome. */
  writes: ReadonlyArray<RestoredWrite>
}

/** A write read back from the local outbox, queued again under its id. @internal */
export interface RestoredWrite {
  frame: MutFrame
  settled: Promise<unknown>
}

/** A subscription as a collection declares it: a `sub` body; the transport adds `resume`. @internal */
export type SubscriptionSpec = Omit<SubBody, 'resume'>

export interface SubEntry extends DeliveryTarget {
  readonly spec: SubscriptionSpec
  readonly handler: SubscriptionHandler
  /** A snapshot of it was applied in the current epoch: it may resume. */
  synced: boolean
  /** For a window: the predicate its last snapshot resolved to; it resumes as that. */
  resolved: PredicateIR | undefined
  /** Units that failed to apply since its last applied snapshot. */
  failures: number
  /** RATE_LIMITED refusals since its last applied snapshot (the retry backoff). */
  rateLimited: number
  /** With a local copy: the scope (local-store.ts scopeKey) whose rows this subscription keeps there. */
  scope?: string | undefined
}

/** What dispatch leaves the transport to send. */
export interface DispatchResult {
  /** Subscriptions to ask again (`sub`, a fresh snapshot). */
  resync: SubEntry[]
  /** Subscriptions dropped (unregistered): send `unsub`, then tell their handler. */
  dropped: Array<{ entry: SubEntry; error: SubscriptionError }>
}

export class Subscriptions {
  readonly #entries = new Map<string, SubEntry>()
  #counter = 0

  /** A subscription id unique on this transport, derived from `base`. */
  nextId(base: string): string {
    this.#counter += 1
    return `${base}#${this.#counter}`
  }

  get(id: string): SubEntry | undefined {
    return this.#entries.get(id)
  }

  values(): IterableIterator<SubEntry> {
    return this.#entries.values()
  }

  /** Registers a subscription; throws if its id is taken. */
  add(spec: SubscriptionSpec, handler: SubscriptionHandler): SubEntry {
    if (this.#entries.has(spec.id)) throw new TypeError(`[seqsync] subscription id ${spec.id} is already registered`)
    const entry: SubEntry = { spec, handler, synced: false, resolved: undefined, failures: 0, rateLimited: 0 }
    this.#entries.set(spec.id, entry)
    return entry
  }

  /** True if `entry` is (still) registered. */
  holds(entry: SubEntry): boolean {
    return this.#entries.get(entry.spec.id) === entry
  }

  /** Unregisters `entry`; false if it already was. */
  delete(entry: SubEntry): boolean {
    if (!this.holds(entry)) return false
    this.#entries.delete(entry.spec.id)
    return true
  }

  /** The transport ended: unregisters every entry and tells its handler (onClosed, else onError). */
  closeAll(closed: SeqsyncError): void {
    const all = [...this.#entries.values()]
    this.#entries.clear()
    for (const entry of all) {
      const gone = new SubscriptionError({ sub: entry.spec.id, code: closed.code, message: closed.message }, entry.spec.c)
      try {
        if (entry.handler.onClosed) entry.handler.onClosed(gone)
        else entry.handler.onError(gone)
      } catch {
        // a collection's error path must not stop the others
      }
    }
  }

  /** A new epoch: every subscription needs a fresh snapshot. */
  newEpoch(): void {
    for (const entry of this.#entries.values()) entry.synced = false
  }

  /** The wire body of `entry`: as declared, or (`resume`) as it resumes. */
  body(entry: SubEntry, resume: boolean): SubBody {
    const { spec } = entry
    const body: SubBody = { id: spec.id, c: spec.c }
    if (resume) {
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

  /** The `subs` of a hello: synced entries resume if the client knows the epoch. */
  hello(epochKnown: boolean): SubBody[] {
    return [...this.#entries.values()].map((e) => this.body(e, e.synced && epochKnown))
  }

  /**
   * Applies `unit` to the subscriptions it concerns, synchronously, one
   * handler at a time: its parts, then unitDone. A handler that throws is
   * reported, aborted, and its subscriptions of the unit resync.
   */
  dispatch(unit: CompletedUnit, report: (error: SeqsyncError) => void): DispatchResult {
    const groups = new Map<SubscriptionHandler, SubEntry[]>()
    const parts = new Map<SubEntry, AppliedUnit>()
    for (const { target, unit: applied } of planDeliveries(unit, this.#entries.values())) {
      let group = groups.get(target.handler)
      if (!group) groups.set(target.handler, (group = []))
      group.push(target)
      parts.set(target, applied)
    }
    const result: DispatchResult = { resync: [], dropped: [] }
    for (const [handler, group] of groups) {
      try {
        for (const entry of group) {
          // A handler may unregister subs of this unit while it applies it.
          if (!this.holds(entry)) continue
          const applied = parts.get(entry)!
          if (applied.snapshot) {
            if (applied.where !== undefined) entry.resolved = applied.where
            entry.synced = true
          }
          handler.applyUnit(applied)
        }
        handler.unitDone?.(unit.seq)
      } catch (cause) {
        this.#failed(handler, group, unit.seq, cause, report, result)
        continue
      }
      for (const entry of group) {
        if (!parts.get(entry)!.snapshot) continue
        entry.failures = 0
        entry.rateLimited = 0
      }
    }
    return result
  }

  #failed(
    handler: SubscriptionHandler,
    group: SubEntry[],
    seq: number,
    cause: unknown,
    report: (error: SeqsyncError) => void,
    result: DispatchResult,
  ): void {
    const live = group.filter((entry) => this.holds(entry))
    const table = group[0]!.spec.c
    const error = new SeqsyncError(ErrorCode.INTERNAL, `[${table}] applying the unit at seq ${seq} failed: ${String(cause)}`, { cause })
    report(error)
    try {
      handler.abortUnit?.(error, live.map((entry) => entry.spec.id))
    } catch (e) {
      report(new SeqsyncError(ErrorCode.INTERNAL, `[${table}] undoing the unit at seq ${seq} failed: ${String(e)}`, { cause: e }))
    }
    for (const entry of live) {
      entry.synced = false
      entry.failures += 1
      if (entry.failures === 1) {
        result.resync.push(entry)
        continue
      }
      this.delete(entry)
      const message = `its units cannot be applied (${String(cause)}); unsubscribed`
      result.dropped.push({ entry, error: new SubscriptionError({ sub: entry.spec.id, code: ErrorCode.INTERNAL, message }, entry.spec.c) })
    }
  }
}
