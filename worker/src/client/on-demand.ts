// The sync function of an on-demand collection (syncMode 'on-demand'): the
// collection is ready at once and empty; rows arrive through TanStack DB's
// loadSubset, one server subscription per distinct request.
//
// * Subsets. A request (where + cursor, orderBy/limit/offset for a window)
//   becomes one `sub`; identical requests share it, ref-counted by the
//   request's canonical key and released (`unsub`) when the count reaches 0.
//   Each acquisition is the exact options object loadSubset received, so
//   unloadSubset of the same object is idempotent.
// * Each subset keeps its resolved predicate (the snapshot's `where` for a
//   window, its own where otherwise) and the keys it holds. A live change
//   upserts a row that matches ANY active subset's predicate and removes a
//   held row that matches none, so a narrow subset's move-out never removes
//   a row a wider subset still holds. A snapshot replaces what its subset
//   held; releasing a subset removes the rows no other subset holds.
// * Every transport unit is ONE begin/write…/commit (the transport calls
//   unitDone once per unit); a load resolves once its snapshot's commit
//   receipt resolves (the rows are visible). A refused subscription rejects
//   the load with a SubscriptionError; releasing a load still waiting for its
//   snapshot rejects it with an AbortError and installs nothing.
// * Reconnect is the transport's: a synced window resumes as its resolved
//   predicate (no reload inside the retention window); from before it the
//   server answers with snapshots, which replace what each subset held.
// * A unit that throws half-way is undone whole: the sync transaction is
//   abandoned, and the rows and every subset's bookkeeping written for it
//   are restored (held-rows.ts journals both). The collection shows the
//   error (status `error`, utils.syncError) until the fresh snapshots the
//   transport asked for have been applied.
// * With a local copy, each subset's rows are stored under its own scope
//   (its request): at the end of each unit, a snapshot's subset as a whole
//   image, the rows a unit changed one by one. A reload's load of the same
//   request gets its stored rows at once (the query renders) and is then
//   resumed from the cursor or revalidated by a snapshot, which replaces them.
// * Pages (cursorLoads: 'page'). A request with a cursor (scrolling on
//   below a live window) is served by one-off `page` reads instead of a
//   subscription: the whole tie of the cursor's leading value and `limit`
//   rows after it, then the rest of the last row's tie (TanStack counts a
//   served prefix through its last leading value as loaded). Page rows are
//   held by the page until it is released, and are a read: a change for a
//   paged key updates it, a removal removes it. A page is read at a seq; a
//   change applied while it was in flight with a higher seq is newer than
//   the page's row, which is then dropped, so a page never resurrects a
//   deleted or older row.

import type { LoadSubsetOptions, SyncConfigRes } from '@tanstack/db'
import type { OrderByTerm, PredicateIR, WireChange, WireRow } from '../protocol/index.js'
import { ErrorCode, MAX_PAGE_ROWS } from '../protocol/index.js'
import { SeqsyncError, SubscriptionError } from './errors.js'
import { HeldRows } from './held-rows.js'
import type { RowSink, SyncWriter } from './held-rows.js'
import { implies, subsetKey, toSubsetRequest, toWireExpression, toWireOrderBy } from './subset.js'
import type { SubsetRequest } from './subset.js'
import type { AppliedUnit, SubscriptionHandler, WebSocketTransport } from './transport.js'
import { evaluate, matches } from './where.js'

/** The parts of TanStack's sync params this module uses. */
export interface OnDemandSyncParams<T extends object, TKey extends string | number> extends SyncWriter<T, TKey> {
  markReady: () => void
  markError: (error?: unknown) => void
}

export interface OnDemandSyncConfig<T extends object, TKey extends string | number> {
  transport: WebSocketTransport
  table: string
  label: string
  getKey: (row: T) => TKey
  /** The collection's own where, ANDed into every request. */
  where: PredicateIR | undefined
  /** Deep-enough equality of two row values (skip no-op writes). */
  sameValue: (a: T, b: T) => boolean
  /** Where the collection shows why its sync stopped (utils.syncError); undefined once it recovered. */
  onSyncError: (error: SeqsyncError | undefined) => void
  /** How a request with a cursor is served: a window subscription (default), or one-off pages. */
  cursorLoads?: 'subscribe' | 'page'
}

type SubsetState = 'pending' | 'active' | 'gone'

interface Acquisition {
  subset: Subset
  released: boolean
  /** Set while the load waits for the subset's first snapshot. */
  waiting: { resolve: () => void; reject: (error: unknown) => void } | undefined
  stopListening: (() => void) | undefined
  /** What loadSubset returned for it. */
  result: true | Promise<void>
}

interface Subset {
  key: string
  request: SubsetRequest
  subId: string
  state: SubsetState
  /** What a row must match to belong to it: the resolved predicate (undefined = every row). */
  predicate: PredicateIR | undefined
  held: Set<string>
  acquisitions: Set<Acquisition>
  /** Resolves once its latest snapshot is visible. */
  ready: Promise<void> | undefined
  unregister: () => void
  /** Where its rows are stored, with a local copy. */
  sink: RowSink | undefined
}

function abortError(message: string): Error {
  const error = new Error(message)
  error.name = 'AbortError'
  return error
}

/**
 * Starts an on-demand sync run: marks the collection ready and returns the
 * loadSubset / unloadSubset / cleanup of TanStack's SyncConfigRes.
 * @internal
 */
export function startOnDemandSync<T extends object, TKey extends string | number>(
  config: OnDemandSyncConfig<T, TKey>,
  params: OnDemandSyncParams<T, TKey>,
): SyncConfigRes {
  const { transport, table, label, getKey, sameValue } = config
  const { markReady, markError } = params

  /** What this run wrote into the synced state, and the open sync transaction. */
  const rows = new HeldRows<T, TKey>(params, getKey, sameValue)
  /** Live subsets (pending or active) by request key, and by sub id. */
  const byKey = new Map<string, Subset>()
  const bySub = new Map<string, Subset>()
  const acquisitions = new WeakMap<object, Acquisition>()
  let stopped = false

  // ---- pages: keys held by page loads, and changes seen while pages are in flight ----
  /** Keys held because a page read them, with how many page loads hold each. */
  const paged = new Map<string, number>()
  /** While a page is in flight: the seq of the latest change applied to each key. */
  const changedAt = new Map<string, number>()
  let pagesInFlight = 0
  const noteChange = (k: string, seq: number) => {
    if (pagesInFlight > 0) changedAt.set(k, Math.max(seq, changedAt.get(k) ?? 0))
  }

  const heldBySubset = (k: string, except?: Subset): boolean => {
    for (const s of bySub.values()) if (s !== except && s.state === 'active' && s.held.has(k)) return true
    return false
  }
  const heldByAnother = (k: string, except: Subset): boolean => paged.has(k) || heldBySubset(k, except)
  // A subset's bookkeeping changes inside a unit, journaled so abort() undoes them.
  // ---- the local copy: what each subset's rows became in this unit -------------
  /** Subsets whose every row is stored at the end of the unit (a snapshot), and keys of the others that changed. */
  const imaged = new Set<Subset>()
  const dirty = new Map<Subset, Set<string>>()
  const touch = (s: Subset, k: string) => {
    if (!s.sink || imaged.has(s)) return
    let keys = dirty.get(s)
    if (!keys) dirty.set(s, (keys = new Set()))
    keys.add(k)
  }
  const storeImage = (s: Subset) => s.sink?.image([...s.held].map((k) => [k, rows.valueOf(k) as object]))
  const storeUnit = () => {
    for (const s of imaged) storeImage(s)
    for (const [s, keys] of dirty) {
      if (imaged.has(s)) continue
      for (const k of keys) s.sink?.stage(k, s.held.has(k) ? (rows.valueOf(k) as object) : undefined)
    }
    imaged.clear()
    dirty.clear()
  }

  const hold = (s: Subset, k: string) => {
    touch(s, k) // held before too: its value may have changed
    if (s.held.has(k)) return
    s.held.add(k)
    rows.journal(() => s.held.delete(k))
  }
  const unhold = (s: Subset, k: string) => {
    if (!s.held.delete(k)) return
    touch(s, k)
    rows.journal(() => s.held.add(k))
  }

  // ---- failures -----------------------------------------------------------------
  /** Subsets whose unit failed, waiting for their fresh snapshot. */
  const resyncing = new Set<Subset>()
  /** Loaded subsets the server refused, until their last acquisition is released. */
  const refused = new Set<Subset>()
  /** The collection shows an error (markError was called). */
  let broken = false
  const fault = (error: SeqsyncError) => {
    broken = true
    config.onSyncError(error)
    markError(error)
  }
  /** Ready again once nothing is resyncing and no query still needs a refused subset. */
  const maybeRecover = () => {
    if (!broken || resyncing.size > 0 || refused.size > 0) return
    broken = false
    config.onSyncError(undefined)
    markReady()
  }
  const recovered = (subset: Subset) => {
    if (resyncing.delete(subset)) maybeRecover()
  }

  // ---- applying units ---------------------------------------------------------
  /** Subsets whose snapshot was applied in the unit being applied. */
  let snapshotted: Subset[] = []
  /** The changes array already applied in this unit (shared by this table's subs). */
  let appliedChanges: readonly WireChange[] | undefined

  const applySnapshot = (subset: Subset, snapshot: readonly WireRow[], resolved: PredicateIR | undefined, seq: number) => {
    const { predicate, state } = subset
    rows.journal(() => {
      subset.predicate = predicate
      subset.state = state
    })
    if (resolved !== undefined) subset.predicate = resolved
    const values = snapshot as readonly T[]
    const next = new Set<string>()
    for (const value of values) next.add(rows.keyOf(value))
    for (const k of next) noteChange(k, seq)
    // A snapshot replaces what its subset held.
    for (const k of [...subset.held]) {
      if (next.has(k)) continue
      noteChange(k, seq)
      unhold(subset, k)
      if (!heldByAnother(k, subset)) rows.remove(k)
    }
    subset.state = 'active'
    if (subset.sink) imaged.add(subset)
    for (const value of values) {
      const k = rows.upsert(value)
      hold(subset, k)
      // The row's new value decides whether the other subsets hold it.
      for (const other of bySub.values()) {
        if (other === subset || other.state !== 'active') continue
        if (matches(other.predicate, value as Record<string, unknown>)) hold(other, k)
        else unhold(other, k)
      }
    }
    snapshotted.push(subset)
  }

  const applyChanges = (changes: readonly WireChange[], seq: number) => {
    for (const change of changes) {
      if (change.c !== table) continue
      noteChange(change.k, seq)
      const row = change.row
      let kept = false
      for (const s of bySub.values()) {
        if (s.state !== 'active') continue
        if (row !== undefined && matches(s.predicate, row)) {
          hold(s, change.k)
          kept = true
        } else {
          unhold(s, change.k)
        }
      }
      // A paged row is a read, kept fresh by the changes that reach it.
      if (kept || (row !== undefined && paged.has(change.k))) rows.upsert(row as T)
      else rows.remove(change.k)
    }
  }

  const handler: SubscriptionHandler = {
    applyUnit(unit: AppliedUnit) {
      if (stopped) return
      const subset = bySub.get(unit.sub)
      if (!subset) return
      if (unit.snapshot) {
        applySnapshot(subset, unit.snapshot, unit.where, unit.seq)
      } else if (unit.changes !== appliedChanges) {
        appliedChanges = unit.changes
        applyChanges(unit.changes, unit.seq)
      }
    },
    attachLocal({ sub, sink, cached }) {
      const subset = bySub.get(sub)
      if (!subset) return
      subset.sink = sink
      if (cached === undefined) return
      // The stored rows, as if a snapshot: the load resolves with them, and
      // they are not stored again.
      applySnapshot(subset, cached, undefined, 0)
      imaged.delete(subset)
      dirty.clear()
      handler.unitDone?.(0)
    },
    restageLocal() {
      for (const s of bySub.values()) if (s.state === 'active') storeImage(s)
    },
    unitDone() {
      appliedChanges = undefined
      const done = snapshotted
      snapshotted = []
      storeUnit()
      const receipt = rows.commit()
      const ready = receipt === true ? Promise.resolve() : receipt
      for (const subset of done) {
        subset.ready = ready
        for (const acq of subset.acquisitions) settle(acq, ready)
        recovered(subset)
      }
    },
    abortUnit(error, subs) {
      appliedChanges = undefined
      snapshotted = []
      imaged.clear()
      dirty.clear()
      rows.abort()
      for (const id of subs) {
        const subset = bySub.get(id)
        if (subset) resyncing.add(subset)
      }
      fault(error)
    },
    onError(error: SubscriptionError) {
      const subset = bySub.get(error.sub)
      if (!subset) return
      // Refused: the server holds nothing for it and sends nothing more. A
      // load still waiting rejects; a loaded subset's rows that no other
      // subset holds go, and the collection shows the error until the last
      // query that loaded it lets go.
      const wasActive = subset.state === 'active'
      forget(subset)
      for (const acq of subset.acquisitions) fail(acq, error)
      if (!wasActive) return maybeRecover()
      for (const k of subset.held) if (!heldByAnother(k, subset)) rows.remove(k)
      subset.held.clear()
      rows.commit()
      if (subset.acquisitions.size > 0) refused.add(subset)
      fault(error)
    },
    onClosed(error: SubscriptionError) {
      // The transport ended for good: what is held stays; waiting loads reject.
      const subset = bySub.get(error.sub)
      if (!subset) return
      forget(subset)
      for (const acq of subset.acquisitions) fail(acq, error)
    },
  }

  // ---- acquisitions -------------------------------------------------------------
  const settle = (acq: Acquisition, ready: Promise<void>) => {
    const waiting = acq.waiting
    if (!waiting) return
    acq.waiting = undefined
    acq.stopListening?.()
    ready.then(waiting.resolve, waiting.reject)
  }
  const fail = (acq: Acquisition, error: unknown) => {
    const waiting = acq.waiting
    if (!waiting) return
    acq.waiting = undefined
    acq.stopListening?.()
    waiting.reject(error)
  }
  const forget = (subset: Subset) => {
    subset.state = 'gone'
    if (byKey.get(subset.key) === subset) byKey.delete(subset.key)
    bySub.delete(subset.subId)
    resyncing.delete(subset)
  }
  /** The last acquisition of `subset` is gone: unsubscribe and drop its rows. */
  const release = (subset: Subset) => {
    const wasActive = subset.state === 'active'
    recovered(subset) // released while resyncing: nothing is owed for it any more
    forget(subset)
    subset.unregister()
    if (!wasActive) return
    for (const k of subset.held) if (!heldByAnother(k, subset)) rows.remove(k)
    subset.held.clear()
    rows.commit()
  }

  // ---- page loads ----------------------------------------------------------------
  interface PageLoad {
    keys: Set<string>
    released: boolean
    result: Promise<void>
  }
  const pageLoads = new WeakMap<object, PageLoad>()

  /** Writes a page's rows, except those a change newer than the page already reached. */
  const installPage = (load: PageLoad, pageRows: readonly WireRow[], seq: number) => {
    for (const value of pageRows as readonly T[]) {
      const k = rows.keyOf(value)
      if ((changedAt.get(k) ?? -1) > seq) continue // the page's row is older than what was applied
      rows.upsert(value)
      if (!load.keys.has(k)) {
        load.keys.add(k)
        paged.set(k, (paged.get(k) ?? 0) + 1)
      }
    }
    return rows.commit()
  }

  /** The leading orderBy term and the cursor's value on it, or undefined if the cursor is not a plain one. */
  const pageBoundary = (options: LoadSubsetOptions): { lead: OrderByTerm; value: unknown } | undefined => {
    if (!options.orderBy || options.orderBy.length === 0 || options.limit === undefined || !options.cursor) return undefined
    const lead = toWireOrderBy(options.orderBy)[0]!
    const current = toWireExpression(options.cursor.whereCurrent)
    if (current.type !== 'func') return undefined
    // eq(col, v), or a Date's and(gte(col, v), lt(col, v + 1 ms)).
    const comparison = current.name === 'and' ? current.args[0] : current
    if (comparison?.type !== 'func' || (comparison.name !== 'eq' && comparison.name !== 'gte')) return undefined
    const [ref, value] = comparison.args
    if (ref?.type !== 'ref' || ref.path[0] !== lead.col || value?.type !== 'val') return undefined
    return { lead, value: value.value }
  }

  const loadPages = (options: LoadSubsetOptions, boundary: { lead: OrderByTerm; value: unknown }): Promise<void> => {
    const load: PageLoad = { keys: new Set(), released: false, result: Promise.resolve() }
    pageLoads.set(options, load)
    const base = toSubsetRequest({ where: options.where }, config.where).where
    const orderBy = [boundary.lead]
    const lead = boundary.lead.col
    const read = (limit: number, cursor: { values: unknown[]; k: string }) =>
      transport.page({ c: table, ...(base ? { where: base } : {}), orderBy, limit, cursor })
    const run = async () => {
      pagesInFlight += 1
      try {
        // 1. The whole tie of the cursor's value, then `limit` rows after it.
        const limit = Math.max(1, Math.min(options.limit!, MAX_PAGE_ROWS))
        let cursor = { values: [boundary.value], k: '' }
        let after = 0
        let last: WireRow | undefined
        for (;;) {
          const page = await read(limit, cursor)
          if (load.released || stopped) return
          await installPage(load, page.rows, page.seq)
          for (const row of page.rows) if (row[lead] !== boundary.value) after += 1
          last = page.rows.at(-1) ?? last
          if (!page.cut) break
          cursor = { values: [boundary.value], k: rows.keyOf(last as T) }
        }
        // 2. A full page may have cut the last row's tie: read the rest of it
        // (the one row after it is dropped: it is past the served prefix).
        while (after >= limit && last !== undefined) {
          const value = last[lead]
          const page = await read(1, { values: [value], k: rows.keyOf(last as T) })
          if (load.released || stopped) return
          const ties = page.rows.filter((row) => row[lead] === value)
          await installPage(load, ties, page.seq)
          if (!page.cut) break
          last = ties.at(-1)
        }
      } finally {
        pagesInFlight -= 1
        if (pagesInFlight === 0) changedAt.clear()
      }
    }
    load.result = run()
    return load.result
  }

  const unloadPages = (load: PageLoad) => {
    load.released = true
    for (const k of load.keys) {
      const n = (paged.get(k) ?? 1) - 1
      if (n > 0) {
        paged.set(k, n)
        continue
      }
      paged.delete(k)
      if (!heldBySubset(k)) rows.remove(k)
    }
    load.keys.clear()
    rows.commit()
  }

  const unloadSubset = (options: LoadSubsetOptions): void => {
    try {
      const pageLoad = pageLoads.get(options)
      if (pageLoad) {
        pageLoads.delete(options)
        if (!pageLoad.released) unloadPages(pageLoad)
        return
      }
      const acq = acquisitions.get(options)
      if (!acq || acq.released) return
      acq.released = true
      acquisitions.delete(options)
      fail(acq, abortError(`[${label}] the subset was released before its snapshot arrived`))
      const subset = acq.subset
      subset.acquisitions.delete(acq)
      if (subset.acquisitions.size === 0 && subset.state !== 'gone') release(subset)
      if (subset.acquisitions.size === 0 && refused.delete(subset)) maybeRecover()
    } catch {
      // unloadSubset must not throw; a failed release leaves the sub until cleanup.
    }
  }

  /**
   * An active subset that already holds, and keeps live, every row a plain
   * (non-window) request asks for: the request shares it instead of adding a
   * server subscription.
   */
  const coveringSubset = (request: SubsetRequest): Subset | undefined => {
    if (request.limit !== undefined || request.offset !== undefined) return undefined
    for (const s of bySub.values()) {
      if (s.state === 'active' && s.ready && implies(request.where, s.predicate, evaluate)) return s
    }
    return undefined
  }

  const loadSubset = (options: LoadSubsetOptions): true | Promise<void> => {
    if (stopped) return Promise.reject(abortError(`[${label}] the collection's sync was cleaned up`))
    if (options.signal?.aborted) return Promise.reject(abortError(`[${label}] the load was aborted`))
    // The same options object again is the same acquisition.
    const existing = acquisitions.get(options)
    if (existing && !existing.released) return existing.result
    const pageLoad = pageLoads.get(options)
    if (pageLoad && !pageLoad.released) return pageLoad.result
    if (config.cursorLoads === 'page') {
      let boundary: ReturnType<typeof pageBoundary>
      try {
        boundary = pageBoundary(options)
      } catch {
        boundary = undefined // not expressible as a page: a window subscription says why
      }
      if (boundary) return loadPages(options, boundary)
    }
    let request: SubsetRequest
    try {
      request = toSubsetRequest(options as Parameters<typeof toSubsetRequest>[0], config.where)
    } catch (error) {
      const code = error instanceof SeqsyncError ? error.code : ErrorCode.UNSUPPORTED_PREDICATE
      return Promise.reject(
        new SubscriptionError({ sub: '(not sent)', code, message: error instanceof Error ? error.message : String(error) }, table),
      )
    }
    const key = subsetKey(request)
    let subset = byKey.get(key) ?? coveringSubset(request)
    if (!subset) {
      const subId = transport.nextSubId(label)
      const created: Subset = {
        key,
        request,
        subId,
        state: 'pending',
        predicate: request.where,
        held: new Set(),
        acquisitions: new Set(),
        ready: undefined,
        unregister: () => {},
        sink: undefined,
      }
      subset = created
      byKey.set(key, created)
      bySub.set(subId, created)
      created.unregister = transport.register({ id: subId, c: table, ...request }, handler, { persisted: true })
    }
    const acq: Acquisition = { subset, released: false, waiting: undefined, stopListening: undefined, result: true }
    subset.acquisitions.add(acq)
    acquisitions.set(options, acq)
    if (subset.state === 'active' && subset.ready) {
      acq.result = subset.ready
      return acq.result
    }
    acq.result = new Promise<void>((resolve, reject) => {
      acq.waiting = { resolve, reject }
    })
    const signal = options.signal
    if (signal) {
      // Cooperative cancellation: an abort while waiting releases the load.
      const onAbort = () => {
        if (acq.waiting) unloadSubset(options)
      }
      signal.addEventListener('abort', onAbort, { once: true })
      acq.stopListening = () => signal.removeEventListener('abort', onAbort)
    }
    return acq.result
  }

  const cleanup = () => {
    stopped = true
    for (const subset of [...bySub.values()]) {
      forget(subset)
      subset.unregister()
      for (const acq of subset.acquisitions) fail(acq, abortError(`[${label}] the collection's sync was cleaned up`))
    }
    rows.commit()
  }

  markReady()
  return { loadSubset, unloadSubset, cleanup }
}
