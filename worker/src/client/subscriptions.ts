// The subscriptions of one transport, and how a unit reaches them. No
// socket and no timers: the transport sends the frames this table builds.
//
// * An entry is `synced` once one of its snapshots was applied in the
//   current epoch; only synced entries resume (`resume: true` in hello) and
//   receive changes (planDeliveries, unit.ts).
// * A window resumes as the plain predicate its snapshot resolved to
//   (docs/protocol.md §4.2), so the server catches it up from `since`
//   instead of resolving it anew.

import { ErrorCode } from '../protocol/index.js'
import type { PredicateIR, SubBody } from '../protocol/index.js'
import { SeqsyncError } from './errors.js'
import type { SubscriptionError } from './errors.js'
import { planDeliveries } from './unit.js'
import type { AppliedUnit, CompletedUnit, DeliveryTarget } from './unit.js'

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

export interface SubEntry extends DeliveryTarget {
  readonly spec: SubscriptionSpec
  readonly handler: SubscriptionHandler
  /** A snapshot of it was applied in the current epoch: it may resume. */
  synced: boolean
  /** For a window: the predicate its last snapshot resolved to; it resumes as that. */
  resolved: PredicateIR | undefined
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
    const entry: SubEntry = { spec, handler, synced: false, resolved: undefined }
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

  /** Unregisters every entry and returns them. */
  clear(): SubEntry[] {
    const all = [...this.#entries.values()]
    this.#entries.clear()
    return all
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
   * Applies `unit` to the subscriptions it concerns, synchronously, and
   * calls unitDone once per handler. A handler that throws is reported.
   */
  dispatch(unit: CompletedUnit, report: (error: SeqsyncError) => void): void {
    const touched = new Set<SubscriptionHandler>()
    for (const { target: entry, unit: applied } of planDeliveries(unit, this.#entries.values())) {
      // A handler may unregister subs of this unit while it applies it.
      if (!this.holds(entry)) continue
      if (applied.snapshot) {
        if (applied.where !== undefined) entry.resolved = applied.where
        entry.synced = true
      }
      touched.add(entry.handler)
      try {
        entry.handler.applyUnit(applied)
      } catch (error) {
        report(new SeqsyncError(ErrorCode.INTERNAL, `[${entry.spec.c}] applying the unit at seq ${unit.seq} failed: ${String(error)}`, { cause: error }))
      }
    }
    for (const handler of touched) {
      if (!handler.unitDone) continue
      try {
        handler.unitDone(unit.seq)
      } catch (error) {
        report(new SeqsyncError(ErrorCode.INTERNAL, `[seqsync] finishing the unit at seq ${unit.seq} failed: ${String(error)}`, { cause: error }))
      }
    }
  }
}
