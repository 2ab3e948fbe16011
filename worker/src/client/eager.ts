// The sync function of an eager collection (syncMode 'eager', the default):
// one subscription syncs the whole table, or its `where` subset.
//
// * Every unit the transport dispatches becomes ONE begin/write…/commit,
//   synchronously, so a unit is atomic for live queries. Commit receipts are
//   never awaited.
// * A snapshot replaces what the subscription held: keys held and absent
//   from it are deleted, the others upserted (held-rows.ts writes `update`
//   for a held key, `insert` for a new one). The first applied snapshot
//   calls markReady(); an empty snapshot with nothing held only calls
//   markReady() (no empty begin/commit).
// * The socket's changes frames also carry rows for other subscriptions on
//   the same table: only rows matching this collection's `where` are kept,
//   and a held row that no longer matches is removed (it moved out).
// * A refused subscription (sub-error) holds nothing on the server and gets
//   nothing more: its rows are removed and the collection shows the error
//   (markError: preload() rejects before the first snapshot, status `error`
//   after it; utils.syncError). A transport that closes for good leaves a
//   ready collection as it is.
// * A unit that throws half-way (a getKey that throws, a write TanStack
//   refuses) is undone whole: the sync transaction is abandoned and the
//   held rows restored. The error surfaces on the collection (its `error`
//   status once it was ready, and utils.syncError) while the transport
//   asks for a fresh snapshot; the snapshot makes it ready again.
// * With a local copy, the stored rows are written as one sync transaction
//   before the socket opens, and the collection is ready at once; the
//   resume (a delta, or a snapshot that replaces them) follows as units.
// * Hydrated from a server render (hydration.ts), the rows TanStack's
//   DbClient wrote are adopted as held, the collection is ready at once, and
//   the subscription resumes from the cursor that covers them: the resume
//   brings the delta (or a snapshot that replaces them).
// * Restored writes on its table (a reload with writes unanswered) are shown
//   optimistically by the collection (collection.ts), after the stored rows.

import type { ChangeMessageOrDeleteKeyMessage } from '@tanstack/db'
import type { PredicateIR, WireChange, WireRow } from '../protocol/index.js'
import type { SeqsyncError, SubscriptionError } from './errors.js'
import { HeldRows } from './held-rows.js'
import type { RestoredWrite, WebSocketTransport } from './transport.js'
import { matches } from './where.js'

/** The parts of TanStack's sync params this module uses. */
export interface EagerSyncParams<T extends object, TKey extends string | number> {
  begin: () => void
  write: (message: ChangeMessageOrDeleteKeyMessage<T, TKey>) => void
  commit: (signal?: AbortSignal) => true | Promise<void>
  markReady: () => void
  markError: (error?: unknown) => void
}

export interface EagerSyncConfig<T extends object, TKey extends string | number> {
  transport: WebSocketTransport
  table: string
  /** The base of the subscription id. */
  label: string
  getKey: (row: T) => TKey
  /** The collection's where: only matching rows are synced. */
  where: PredicateIR | undefined
  /** Deep-enough equality of two row values (skip no-op writes). */
  sameValue: (a: T, b: T) => boolean
  /** Where the collection shows why its sync stopped (utils.syncError); undefined once it recovered. */
  onSyncError: (error: SeqsyncError | undefined) => void
  /** Shows restored writes optimistically (collection.ts); called after the stored rows are written. */
  showRestored?: (writes: ReadonlyArray<RestoredWrite>) => void
  /** Rows a DbClient hydrated from a server render (hydration.ts): held from the start, so a snapshot replaces them. */
  seeds?: readonly T[]
  /** The cursor that covers the seeds, if they are this collection's: ready at once, resumed from. */
  hydrated?: { epoch: string; seq: number }
  /** Told whether the subscription holds a consistent snapshot (for exportSyncMeta). */
  onSynced?: (synced: boolean) => void
}

/** Starts an eager sync run; returns its cleanup. @internal */
export function startEagerSync<T extends object, TKey extends string | number>(
  config: EagerSyncConfig<T, TKey>,
  params: EagerSyncParams<T, TKey>,
): () => void {
  const { transport, table, where } = config
  const { markReady, markError } = params
  const rows = new HeldRows<T, TKey>(params, config.getKey, config.sameValue)
  let ready = false
  /** A unit failed; a fresh snapshot is on its way. */
  let failed = false

  const applySnapshot = (snapshot: readonly WireRow[]) => {
    const values = snapshot as readonly T[]
    const next = new Set<string>()
    for (const value of values) next.add(rows.keyOf(value))
    for (const k of rows.keys()) if (!next.has(k)) rows.remove(k)
    for (const value of values) rows.upsert(value)
  }
  const applyChanges = (changes: readonly WireChange[]) => {
    for (const change of changes) {
      if (change.c !== table) continue
      if (change.row !== undefined && matches(where, change.row)) rows.upsert(change.row as T)
      else rows.remove(change.k)
    }
  }

  const synced = (now: boolean) => config.onSynced?.(now)
  const { hydrated } = config
  // TanStack wrote these rows already (DbClient.hydrate): they are held, not written again.
  if (config.seeds) rows.adopt(config.seeds)
  if (hydrated) {
    ready = true
    synced(true)
    markReady()
  }

  const spec = { id: transport.nextSubId(config.label), c: table, ...(where ? { where } : {}) }
  const unregister = transport.register(spec, {
    attachLocal({ sink, cached, writes }) {
      rows.sink = sink
      if (cached !== undefined) {
        rows.seed(cached as readonly T[])
        if (!ready) {
          ready = true
          markReady()
        }
      }
      if (writes.length > 0) config.showRestored?.(writes)
    },
    restageLocal() {
      rows.restage()
    },
    applyUnit(unit) {
      // If this throws, the transport calls abortUnit: nothing is committed.
      if (unit.snapshot) applySnapshot(unit.snapshot)
      else applyChanges(unit.changes)
      rows.commit()
      if (unit.snapshot) synced(true)
      if (unit.snapshot && (!ready || failed)) {
        ready = true
        if (failed) config.onSyncError(undefined)
        failed = false
        markReady()
      }
    },
    abortUnit(error) {
      rows.abort()
      failed = true
      synced(false)
      config.onSyncError(error)
      // Before the first snapshot the collection stays loading: preload()
      // waits for the fresh one (or rejects if the subscription is dropped).
      if (ready) markError(error)
    },
    onError(error: SubscriptionError) {
      synced(false)
      for (const k of rows.keys()) rows.remove(k)
      rows.commit()
      config.onSyncError(error)
      markError(error)
    },
    onClosed(error: SubscriptionError) {
      if (!ready) markError(error)
    },
  }, { persisted: true, ...(hydrated ? { hydrated: { epoch: hydrated.epoch, seq: hydrated.seq } } : {}) })
  return () => {
    unregister()
  }
}
