// doCollectionOptions: TanStack DB collection options for one table (or a
// `where` subset of it) synced from a Durable Object through a shared
// WebSocketTransport: eagerly (eager.ts), or on demand (`syncMode:
// 'on-demand'`, on-demand.ts), where live queries load only the rows they
// need. Both write the synced state through held-rows.ts.
//
// Writes, against TanStack DB 0.15's mutation contract
// (node_modules/@tanstack/db/dist/esm/types.d.ts, SyncConfig and the
// mutation handler types):
// * Mutation handlers send the transaction as one `mut` and return nothing
//   once the cursor has passed the ack's seq. They do not wait for the sync
//   commit to become *visible*: in 0.15 a sync commit made while an optimistic
//   transaction persists becomes visible only when that transaction settles,
//   so waiting for visibility inside the handler would wait on itself. The
//   confirming rows were committed (accepted) before the ack was processed,
//   which is what core needs to replace the optimistic state on settle.

import { createTransaction } from '@tanstack/db'
import type {
  Collection,
  CollectionConfig,
  IndexConstructor,
  DeleteMutationFnParams,
  InsertMutationFnParams,
  UpdateMutationFnParams,
} from '@tanstack/db'
import type { PredicateIR, WireOp } from '../protocol/index.js'
import { ErrorCode } from '../protocol/index.js'
import type { ConnectionStatus } from './connection.js'
import { OutOfScopeError, SeqsyncError } from './errors.js'
import { mergeSeqsyncMeta, resumableMeta, sameWhere } from './hydration.js'
import type { ResumableMeta, SeqsyncSyncMeta } from './hydration.js'
import type { RestoredWrite, WebSocketTransport, WriteResult } from './transport.js'
import { startEagerSync } from './eager.js'
import { startOnDemandSync } from './on-demand.js'
import { matches, toPredicateIR } from './where.js'
import type { WhereInput } from './where.js'

/** `collection.utils` of a seqsync collection. */
export type SeqsyncUtils = {
  /** Resolves once the transport's cursor reaches `seq` (default timeout 5 s; rejects `TimeoutError`). */
  awaitSeq: (seq: number, timeoutMs?: number) => Promise<void>
  /** The transport's cursor: every change up to it is applied. */
  readonly appliedSeq: number
  /** The transport's connection status. */
  readonly status: ConnectionStatus
  /** 'persisted' while the transport keeps a local copy, 'memory' otherwise ('loading' until it is read). */
  readonly local: 'loading' | 'persisted' | 'memory'
  /** The shared transport. */
  readonly transport: WebSocketTransport
  /**
   * Why this collection's sync stopped or is recovering, if it is: a refused
   * subscription (SubscriptionError), or a unit that could not be applied
   * (then a fresh snapshot is on its way). The collection's status is
   * `error` meanwhile; undefined once it is in sync again.
   */
  readonly syncError: SeqsyncError | undefined
}

export interface DoCollectionConfig<T extends object, TKey extends string | number = string | number> {
  /** The DO's shared transport. */
  transport: WebSocketTransport
  /** The registered table (the wire `c`). */
  table: string
  /** The row's primary key; it travels as `String(key)`. */
  getKey: (row: T) => TKey
  /**
   * Sync only matching rows: `(row) => eq(row.author, 'ann')` with the
   * operators from `@tanstack/db`, an equality map `{ author: 'ann' }`, or a
   * predicate IR (docs/protocol.md §7).
   */
  where?: WhereInput<T>
  /** The TanStack collection id; also the base of the subscription id. */
  id?: string
  /** TanStack DB garbage-collection time of an unused collection, ms. */
  gcTime?: number
  /** Start syncing at creation instead of on first use. */
  startSync?: boolean
  /**
   * 'eager' (default): one subscription syncs the whole table (or `where`).
   * 'on-demand': the collection is ready at once and empty; live queries
   * load only the rows they need (TanStack DB's loadSubset), each distinct
   * request one server subscription, kept live until released.
   */
  syncMode?: 'eager' | 'on-demand'
  /**
   * On demand, how a request with a cursor (a live query paging on, as
   * `useLiveInfiniteQuery`'s next page) is served: 'subscribe' (default), a
   * window subscription kept live; or 'page', one-off page reads that hold
   * no subscription (docs/protocol.md §4.8): cheaper for scroll-back below
   * a live window, and their rows stay as read until the query releases
   * them (changes that reach them through other subscriptions still apply).
   */
  cursorLoads?: 'subscribe' | 'page'
  /**
   * TanStack DB's automatic indexing. An on-demand `orderBy` + `limit` query
   * pages lazily only with a range index on its order column: create one
   * (`collection.createIndex(row => row.rank, { indexType: BTreeIndex })`)
   * or set `autoIndex: 'eager'` with `defaultIndexType: BTreeIndex`.
   */
  autoIndex?: 'off' | 'eager'
  /** The index class `autoIndex: 'eager'` creates. */
  defaultIndexType?: IndexConstructor<TKey>
}

/** The options object `createCollection` takes. */
export type DoCollectionOptions<T extends object, TKey extends string | number = string | number> = CollectionConfig<
  T,
  TKey,
  never,
  SeqsyncUtils
> & {
  utils: SeqsyncUtils
}

// ---- collection metadata, for building a mut from any transaction ---------

const META: unique symbol = Symbol.for('seqsync.collection')

interface CollectionMeta {
  transport: WebSocketTransport
  table: string
  where: PredicateIR | undefined
}

function metaOf(collection: unknown): CollectionMeta | undefined {
  if (typeof collection !== 'object' || collection === null) return undefined
  const config = (collection as { config?: unknown }).config
  if (typeof config !== 'object' || config === null) return undefined
  return (config as { [META]?: CollectionMeta })[META]
}

/** The parts of a TanStack pending mutation that become a wire op. */
interface MutationLike {
  type: 'insert' | 'update' | 'delete'
  key: unknown
  modified: unknown
  changes: unknown
  collection: unknown
}
/** The parts of a TanStack transaction this module reads. */
export interface TransactionLike {
  mutations: ReadonlyArray<MutationLike>
}

function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {}
}

/** The row's columns for the wire: TanStack's `$`-virtual props never travel. */
function columns(value: unknown): Record<string, unknown> {
  const cols: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(asRecord(value))) if (!k.startsWith('$')) cols[k] = v
  return cols
}

/** The wire ops for `mutations`; throws before anything is sent (an insert outside the collection's where). */
export function buildOps(transport: WebSocketTransport, mutations: ReadonlyArray<MutationLike>): WireOp[] {
  const ops: WireOp[] = []
  for (const m of mutations) {
    const meta = metaOf(m.collection)
    if (!meta) {
      throw new SeqsyncError(
        ErrorCode.INVALID_FIELD,
        '[seqsync] a transaction mutates a collection that is not a seqsync collection; a transaction may only touch collections of one DO',
      )
    }
    if (meta.transport !== transport) {
      throw new SeqsyncError(
        ErrorCode.INVALID_FIELD,
        `[${meta.table}] a transaction spans two transports (two DOs); multi-DO transactions are not supported`,
      )
    }
    const k = String(m.key)
    if (m.type === 'delete') {
      ops.push({ c: meta.table, op: 'delete', k })
      continue
    }
    const modified = asRecord(m.modified)
    if (m.type === 'insert') {
      // The collection could never see the confirmed row: refuse it now.
      if (!matches(meta.where, modified)) throw new OutOfScopeError(meta.table, k)
      ops.push({ c: meta.table, op: 'insert', k, cols: columns(modified) })
    } else {
      // An update may move a held row out of the where: a legitimate write,
      // after which the confirming change removes the row from the collection.
      const cols = columns(m.changes)
      if (Object.keys(cols).length === 0) continue // nothing changed
      ops.push({ c: meta.table, op: 'update', k, cols })
    }
  }
  return ops
}

const sent = new WeakMap<object, Promise<WriteResult>>()

/**
 * Sends every mutation of `transaction` as ONE `mut` (once per transaction,
 * however many collection handlers call it) and resolves once the server
 * confirmed it: acked, and the cursor passed its seq.
 */
export function persistTransaction(transport: WebSocketTransport, transaction: TransactionLike): Promise<WriteResult> {
  const existing = sent.get(transaction)
  if (existing) return existing
  let promise: Promise<WriteResult>
  try {
    const ops = buildOps(transport, transaction.mutations)
    promise = ops.length === 0 ? Promise.resolve({ seq: transport.appliedSeq }) : transport.mutate(ops)
  } catch (error) {
    promise = Promise.reject(error)
  }
  sent.set(transaction, promise)
  return promise
}

/**
 * A `mutationFn` for `createTransaction` that writes a transaction spanning
 * several collections of one DO as one atomic `mut`.
 *
 * @example
 * const tx = createTransaction({ mutationFn: doMutationFn(transport) })
 * tx.mutate(() => { rooms.insert(room); messages.insert(firstMessage) })
 * await tx.when('settled')
 */
export function doMutationFn(
  transport: WebSocketTransport,
): (params: { transaction: TransactionLike }) => Promise<void> {
  return async ({ transaction }) => {
    await persistTransaction(transport, transaction)
  }
}

// ---- restored writes ----------------------------------------------------------

/**
 * Shows writes restored from the local outbox (a reload with writes
 * unanswered) optimistically on `collection`: one TanStack transaction per
 * write, holding its ops on `table`, that settles with the write's outcome —
 * confirmed once acked, rolled back if refused. An op the synced rows already
 * reflect (an insert of a held key, an update or delete of a missing one) is
 * left out: the write committed before the reload, or never can apply.
 */
export function showRestoredWrites(
  collection: Collection<any, any, any, any, any>,
  table: string,
  writes: ReadonlyArray<RestoredWrite>,
): void {
  // Outside the sync function that delivered them, after the stored rows.
  queueMicrotask(() => {
    for (const write of writes) {
      const tx = createTransaction({
        autoCommit: false,
        mutationFn: async () => {
          await write.settled
        },
      })
      tx.mutate(() => {
        for (const op of write.frame.ops) {
          if (op.c !== table) continue
          const key = keyIn(collection, op.k)
          try {
            if (op.op === 'insert' && key === undefined) collection.insert(op.cols ?? {})
            else if (op.op === 'update' && key !== undefined) collection.update(key, (draft: Record<string, unknown>) => void Object.assign(draft, op.cols))
            else if (op.op === 'delete' && key !== undefined) collection.delete(key)
          } catch {
            // A row TanStack refuses (its schema changed): the write is still sent.
          }
        }
      })
      // The refusal is reported by the transport (onError); the rollback is TanStack's.
      tx.commit().catch(() => {})
    }
  })
}

/** The collection's key whose wire form is `k` (a key may be a number), if it holds one. */
function keyIn(collection: Collection<any, any, any, any, any>, k: string): string | number | undefined {
  if (collection.has(k)) return k
  const n = Number(k)
  if (String(n) === k && collection.has(n)) return n
  return undefined
}

/** The rows a DbClient hydrated into `collection` (its seeds), without TanStack's virtual props. */
function hydratedRows<T extends object>(collection: {
  entries(): IterableIterator<[unknown, unknown]>
  _hasHydratedKey(key: never): boolean
}): T[] {
  const out: T[] = []
  for (const [key, value] of collection.entries()) {
    if (collection._hasHydratedKey(key as never)) out.push(columns(value) as T)
  }
  return out
}

// ---- the options creator ----------------------------------------------------

function shallowEqual(a: object, b: object): boolean {
  if (a === b) return true
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  if (ka.length !== kb.length) return false
  const ra = a as Record<string, unknown>
  const rb = b as Record<string, unknown>
  for (const k of ka) {
    if (!(k in rb)) return false
    const x = ra[k]
    const y = rb[k]
    if (x === y) continue
    if (typeof x === 'object' && x !== null && typeof y === 'object' && y !== null) {
      if (JSON.stringify(x) !== JSON.stringify(y)) return false
      continue
    }
    return false
  }
  return true
}

/**
 * Options for TanStack DB's `createCollection`: the rows of `table` (or of
 * its `where` subset) held in sync with the DO, with optimistic writes sent
 * over the transport and confirmed by its cursor.
 *
 * @example
 * const messages = createCollection(
 *   doCollectionOptions<Message>({ transport, table: 'messages', getKey: (m) => m.id }),
 * )
 * await messages.insert({ id: ulid(), author, content, created_at: Date.now() }).when('settled')
 */
export function doCollectionOptions<T extends object, TKey extends string | number = string | number>(
  config: DoCollectionConfig<T, TKey>,
): DoCollectionOptions<T, TKey> {
  const { transport, table, getKey } = config
  if (typeof table !== 'string' || table.length === 0) {
    throw new TypeError('[seqsync] doCollectionOptions: `table` must be a non-empty string')
  }
  const where = config.where === undefined ? undefined : toPredicateIR<T>(config.where)
  const label = config.id ?? table
  const onDemand = config.syncMode === 'on-demand'
  if (config.syncMode !== undefined && config.syncMode !== 'eager' && !onDemand) {
    throw new TypeError(`[seqsync] doCollectionOptions: unknown syncMode ${JSON.stringify(config.syncMode)}`)
  }

  // Hydration (hydration.ts): the cursor the hydrated rows are at, until a sync run takes it.
  let hydratedMeta: ResumableMeta | undefined
  let running = false
  let liveSynced = false

  let syncError: SeqsyncError | undefined
  const onSyncError = (error: SeqsyncError | undefined) => {
    syncError = error
  }

  const sync: DoCollectionOptions<T, TKey>['sync'] = {
    rowUpdateMode: 'full',
    sync: ({ collection, begin, write, commit, markReady, markError }) => {
      const showRestored = (writes: ReadonlyArray<RestoredWrite>) => showRestoredWrites(collection, table, writes)
      if (onDemand) {
        return startOnDemandSync<T, TKey>(
          { transport, table, label, getKey, where, sameValue: shallowEqual, onSyncError, cursorLoads: config.cursorLoads },
          { begin, write, commit, markReady, markError },
        )
      }
      const meta = hydratedMeta
      hydratedMeta = undefined // one sync run resumes from it; a later run starts from the live state
      running = true
      const hydrated = meta && sameWhere(meta, where) ? { epoch: meta.epoch, seq: meta.seq } : undefined
      const cleanup = startEagerSync<T, TKey>(
        {
          transport, table, label, getKey, where, sameValue: shallowEqual, onSyncError, showRestored,
          seeds: hydratedRows<T>(collection),
          ...(hydrated ? { hydrated } : {}),
          onSynced: (now) => void (liveSynced = now),
        },
        { begin, write, commit, markReady, markError },
      )
      return () => {
        running = false
        liveSynced = false
        cleanup()
      }
    },
    // TanStack DB's hydration hooks (hydration.ts): the cursor that covers the rows.
    exportSyncMeta: (): SeqsyncSyncMeta | undefined => {
      if (!running) return hydratedMeta
      const epoch = transport.epoch
      if (!liveSynced || epoch === undefined) return undefined
      return { v: 1, epoch, seq: transport.appliedSeq, ...(where ? { where } : {}) }
    },
    importSyncMeta: (meta: unknown) => {
      // Only before the sync starts: a running sync owns the rows, whatever the server rendered.
      if (!running && !onDemand) hydratedMeta = resumableMeta(meta)
    },
    mergeSyncMeta: mergeSeqsyncMeta,
  }

  const onInsert = async (params: InsertMutationFnParams<T, TKey, SeqsyncUtils>): Promise<void> => {
    await persistTransaction(transport, params.transaction)
  }
  const onUpdate = async (params: UpdateMutationFnParams<T, TKey, SeqsyncUtils>): Promise<void> => {
    await persistTransaction(transport, params.transaction)
  }
  const onDelete = async (params: DeleteMutationFnParams<T, TKey, SeqsyncUtils>): Promise<void> => {
    await persistTransaction(transport, params.transaction)
  }

  const utils: SeqsyncUtils = {
    awaitSeq: (seq, timeoutMs) => transport.awaitSeq(seq, timeoutMs),
    get appliedSeq() {
      return transport.appliedSeq
    },
    get status() {
      return transport.status
    },
    get local() {
      return transport.local
    },
    transport,
    get syncError() {
      return syncError
    },
  }

  const options: DoCollectionOptions<T, TKey> = {
    getKey,
    sync,
    onInsert,
    onUpdate,
    onDelete,
    utils,
  }
  if (config.id !== undefined) options.id = config.id
  if (config.gcTime !== undefined) options.gcTime = config.gcTime
  if (config.startSync !== undefined) options.startSync = config.startSync
  if (onDemand) options.syncMode = 'on-demand'
  if (config.autoIndex !== undefined) options.autoIndex = config.autoIndex
  if (config.defaultIndexType !== undefined) options.defaultIndexType = config.defaultIndexType
  // A symbol key survives createCollection's `{ ...config }`, so a mutation's
  // `collection.config` leads back to the table and transport.
  Object.defineProperty(options, META, {
    value: { transport, table, where } satisfies CollectionMeta,
    enumerable: true,
  })
  return options
}
