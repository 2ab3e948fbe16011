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
// * A refused subscription before the first snapshot calls markError(), so
//   preload() rejects instead of resolving ready and empty.

import type { ChangeMessageOrDeleteKeyMessage } from '@tanstack/db'
import type { PredicateIR, WireChange, WireRow } from '../protocol/index.js'
import type { SubscriptionError } from './errors.js'
import { HeldRows } from './held-rows.js'
import type { WebSocketTransport } from './transport.js'
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

  const spec = { id: transport.nextSubId(config.label), c: table, ...(where ? { where } : {}) }
  const unregister = transport.register(spec, {
    applyUnit(unit) {
      try {
        if (unit.snapshot) applySnapshot(unit.snapshot)
        else applyChanges(unit.changes)
      } finally {
        rows.commit()
      }
      if (unit.snapshot && !ready) {
        ready = true
        markReady()
      }
    },
    onError(error: SubscriptionError) {
      if (!ready) markError(error)
    },
  })
  return () => {
    unregister()
  }
}
