// Units and the cursor (docs/protocol.md §3), pure: no socket, no timers.
//
// * `changes` and `snapshot` frames with `"more": true` are parts of a unit:
//   they are buffered and change nothing. The first frame without `more` (a
//   `changes`, a `snapshot` or a `synced`) ends the unit, which is then
//   handed out whole, once.
// * The cursor (appliedSeq) moves only forwards, max(appliedSeq, seq), and
//   only when the transport says a unit was applied or an ack arrived — never
//   for a part. A lost socket discards the partial unit and leaves the cursor
//   where it was, so the next resume repeats the unit.
// * planDeliveries decides what each subscription sees of a unit: its
//   snapshot if the unit carries one (it supersedes the unit's changes), else
//   the changes of its table if it is synced; a subscription still waiting
//   for its snapshot sees nothing (the snapshot will supersede them).

import type { ChangesFrame, CompactChangesFrame, PredicateIR, SnapshotFrame, SyncedFrame, WireChange, WireRow } from '../protocol/index.js'
import { appendChanges, changesIn, isObject } from './codec.js'

/** One ended unit, as it came: its seq, its changes in order, its snapshots by subscription. */
export interface CompletedUnit {
  seq: number
  changes: WireChange[]
  snapshots: Map<string, WireRow[]>
  /** For windows: the predicate each snapshot's subscription resolved to. */
  resolved: Map<string, PredicateIR>
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

/** Buffers the parts of a unit and holds the cursor. */
export class UnitAssembler {
  #parts: Array<ChangesFrame | CompactChangesFrame | SnapshotFrame> = []
  #appliedSeq = 0

  /** Every change up to this seq that concerns the synced subscriptions has been applied. */
  get appliedSeq(): number {
    return this.#appliedSeq
  }

  /** Parts of an unfinished unit are buffered. */
  get partial(): boolean {
    return this.#parts.length > 0
  }

  /**
   * Takes one unit frame. Returns the unit when `frame` ends one, else
   * undefined (a part, buffered). The cursor does not move here.
   */
  add(frame: ChangesFrame | CompactChangesFrame | SnapshotFrame | SyncedFrame): CompletedUnit | undefined {
    if (frame.t !== 'synced') {
      this.#parts.push(frame)
      if (frame.more === true) return undefined
    }
    const frames = this.#parts
    this.#parts = []
    return assemble(frame.seq, frames)
  }

  /** A unit was applied, or an ack arrived: appliedSeq = max(appliedSeq, seq). True if it moved. */
  advance(seq: number): boolean {
    if (seq <= this.#appliedSeq) return false
    this.#appliedSeq = seq
    return true
  }

  /** The socket is gone: the partial unit is dropped; the cursor stays. */
  discard(): void {
    this.#parts = []
  }

  /** A new epoch (the DO's storage was reset): seqs start over. */
  reset(): void {
    this.#parts = []
    this.#appliedSeq = 0
  }
}

function assemble(seq: number, frames: Array<ChangesFrame | CompactChangesFrame | SnapshotFrame>): CompletedUnit {
  const unit: CompletedUnit = { seq, changes: [], snapshots: new Map(), resolved: new Map() }
  // A unit of one changes frame (every live delta) is used as it came.
  if (frames.length === 1 && frames[0]!.t === 'changes') {
    unit.changes = changesIn(frames[0]!)
    return unit
  }
  for (const f of frames) {
    if (f.t === 'changes') {
      appendChanges(f, unit.changes)
      continue
    }
    let rows = unit.snapshots.get(f.sub)
    if (!rows) unit.snapshots.set(f.sub, (rows = []))
    for (const r of f.rows) rows.push(r)
    if (isObject(f.where)) unit.resolved.set(f.sub, f.where as PredicateIR)
  }
  return unit
}

/** What planDeliveries reads of a subscription. */
export interface DeliveryTarget {
  readonly spec: { readonly id: string; readonly c: string }
  /** A snapshot of it was applied in the current epoch. */
  readonly synced: boolean
  /** For a window: the predicate its last snapshot resolved to. */
  readonly resolved: PredicateIR | undefined
}

export interface Delivery<S extends DeliveryTarget> {
  target: S
  unit: AppliedUnit
}

/** The changes of one table; the array itself when they all are (the common case). */
function changesOf(changes: WireChange[], table: string): WireChange[] {
  for (let i = 0; i < changes.length; i++) {
    if (changes[i]!.c !== table) return changes.filter((c) => c.c === table)
  }
  return changes
}

/** What each of `targets` receives of `unit`, in their order; targets that receive nothing are left out. */
export function planDeliveries<S extends DeliveryTarget>(unit: CompletedUnit, targets: Iterable<S>): Array<Delivery<S>> {
  const out: Array<Delivery<S>> = []
  if (unit.changes.length === 0 && unit.snapshots.size === 0) return out
  /** The unit's changes by table: one array per table, shared by its subs. */
  const byTable = new Map<string, WireChange[]>()
  for (const target of targets) {
    const { id, c } = target.spec
    const snapshot = unit.snapshots.get(id)
    if (snapshot) {
      const applied: AppliedUnit = { seq: unit.seq, sub: id, changes: [], snapshot }
      const where = unit.resolved.get(id) ?? target.resolved
      if (where !== undefined) applied.where = where
      out.push({ target, unit: applied })
    } else if (target.synced) {
      let mine = byTable.get(c)
      if (!mine) byTable.set(c, (mine = changesOf(unit.changes, c)))
      if (mine.length > 0) out.push({ target, unit: { seq: unit.seq, sub: id, changes: mine, snapshot: undefined } })
    }
  }
  return out
}
