// Server rendering with TanStack DB's own hydration (DbClient.dehydrate /
// hydrate, and the adapter hooks exportSyncMeta / importSyncMeta /
// mergeSyncMeta of @tanstack/db 0.15, node_modules/@tanstack/db/src/client.ts).
//
// The Worker reads a snapshot over RPC (readSyncSnapshot, docs/protocol.md
// §5.9) and turns it into a DehydratedDbState here: one chunk per eager
// collection, its rows, and as its syncMeta the cursor that covers them,
// `{ v: 1, epoch, seq, where }`. The page's HTML carries the state; the
// browser's DbClient.hydrate() seeds each collection with the rows (they
// render at once) and hands the meta to importSyncMeta. When the collection
// starts syncing, it adopts the hydrated rows as held and registers with
// the transport as synced at (epoch, seq), so the first hello resumes from
// there (since, resume: true) and gets only the delta.
//
// A meta is trusted only if it describes the same `where` as the collection
// and the transport has not started elsewhere: otherwise the subscription
// asks for a snapshot, which replaces the hydrated rows. Two metas that
// disagree (a second hydration at another seq) merge into one that resumes
// nothing, for the same reason: no single cursor covers mixed rows.

import type { DehydratedCollectionChunk, DehydratedDbState } from '@tanstack/db'
import type { PredicateIR, SyncSnapshot, WireRow } from '../protocol/index.js'
import { canonicalJson } from '../protocol/index.js'
import { ClosedError, ProtocolError, SubscriptionError } from './errors.js'
import { isObject } from './codec.js'

/** What a hydrated seqsync collection knows of its rows: synced at `seq` in `epoch`, for `where`. */
export interface SeqsyncSyncMeta {
  v: 1
  /** Absent: the rows are covered by no one cursor (a snapshot will replace them). */
  epoch?: string
  seq?: number
  where?: PredicateIR
}

/** A meta that resumes: rows covered by one cursor. */
export type ResumableMeta = Required<Pick<SeqsyncSyncMeta, 'epoch' | 'seq'>> & SeqsyncSyncMeta

/** The meta if it names a cursor, else undefined. */
export function resumableMeta(meta: unknown): ResumableMeta | undefined {
  if (!isObject(meta) || meta.v !== 1) return undefined
  const { epoch, seq, where } = meta
  if (typeof epoch !== 'string' || typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) return undefined
  return { v: 1, epoch, seq, ...(isObject(where) ? { where: where as unknown as PredicateIR } : {}) }
}

/** True if `meta` describes rows of the collection with `where`. */
export function sameWhere(meta: SeqsyncSyncMeta, where: PredicateIR | undefined): boolean {
  return canonicalJson(meta.where ?? null) === canonicalJson(where ?? null)
}

/** mergeSyncMeta: equal cursors stay; any disagreement resumes nothing. */
export function mergeSeqsyncMeta(current: unknown, incoming: unknown): SeqsyncSyncMeta {
  const a = resumableMeta(current)
  const b = resumableMeta(incoming)
  if (a && b && a.epoch === b.epoch && a.seq === b.seq && canonicalJson(a.where ?? null) === canonicalJson(b.where ?? null)) return b
  return { v: 1 }
}

/** Where one snapshot entry goes: the TanStack collection id, and its key. */
export interface HydrationTarget<T extends object = Record<string, unknown>> {
  /** The collection's id (the `collectionOptions(id, …)` descriptor's). */
  id: string
  getKey: (row: T) => string | number
}

/**
 * TanStack DB's dehydrated state of seqsync collections, from a snapshot
 * read: `targets` maps each read sub id (its `c` by default) to the
 * collection it hydrates. Throws the typed refusal of a refused read or
 * entry, as readSyncSnapshot does.
 *
 * @example
 * // In the Worker:
 * const snapshot = await readSyncSnapshot(req, env, routes, { room, subs: [{ c: 'messages' }] })
 * const state = dehydrateSnapshot(snapshot, { messages: { id: 'messages', getKey: (m) => m.id } })
 * // renderToString with a DbClient that hydrate(state)s; the same state goes into the HTML.
 */
export function dehydrateSnapshot(
  snapshot: SyncSnapshot,
  targets: Record<string, HydrationTarget<never>>,
): DehydratedDbState {
  if ('refused' in snapshot) {
    const { code, message } = snapshot.refused
    throw code >= 4000 ? new ClosedError(code, message) : new ProtocolError(code, message)
  }
  const collections: DehydratedCollectionChunk[] = []
  for (const entry of snapshot.subs) {
    if ('refused' in entry) throw new SubscriptionError({ sub: entry.sub, ...entry.refused }, entry.c)
    const target = targets[entry.sub] as HydrationTarget<WireRow> | undefined
    if (!target) continue
    const syncMeta: SeqsyncSyncMeta = { v: 1, epoch: snapshot.epoch, seq: snapshot.seq, ...(entry.where ? { where: entry.where } : {}) }
    collections.push({
      collectionId: target.id,
      rows: entry.rows.map((value) => ({ key: target.getKey(value), value })),
      syncMeta,
    })
  }
  return { collections }
}
