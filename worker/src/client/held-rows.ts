// The rows one sync run wrote into a TanStack DB collection's synced state,
// and the sync transaction they are written in. Shared by the eager and the
// on-demand sync (eager.ts, on-demand.ts).
//
// TanStack DB's contract (SyncConfig.sync): writes happen between begin()
// and commit(); `insert` for a key the synced state holds throws
// DuplicateKeySyncError, and `delete` of a key it does not hold is an
// error. So every write goes through here: upsert writes `update` for a
// held key and `insert` for a new one, and skips a value equal to the held
// one; remove writes `delete` only for a held key (removing an absent key
// is a no-op, as on the wire). A transaction is begun by the first write and
// ended by commit(), so a unit that changes nothing commits nothing.
//
// abort() discards the open transaction (TanStack abandons a transaction
// committed with an aborted signal) and undoes the bookkeeping done since
// the last commit, its own and what callers recorded with journal(), so a
// unit that failed half-way leaves no trace.
//
// With a local copy (local-store.ts), every row written is staged there at
// commit() — never before, so an aborted unit stages nothing — and the
// transport writes the staged rows with the cursor in one transaction.

import type { ChangeMessageOrDeleteKeyMessage } from '@tanstack/db'

/** The part of TanStack's sync params that writes rows. */
export interface SyncWriter<T extends object, TKey extends string | number> {
  begin: () => void
  write: (message: ChangeMessageOrDeleteKeyMessage<T, TKey>) => void
  commit: (signal?: AbortSignal) => true | Promise<void>
}

/** Where committed rows go when the transport keeps a local copy. */
export interface RowSink {
  /** `row` undefined: the key was removed. */
  stage(k: string, row: object | undefined): void
  /** Every row held, replacing what was stored (a large commit, or a full image). */
  image(rows: Array<[string, object]>): void
}

/** A commit that touches this many keys stages a full image instead: one large IndexedDB value, not as many small ones. */
const IMAGE_ROWS = 1000

interface HeldRow<T, TKey> {
  key: TKey
  value: T
}

export class HeldRows<T extends object, TKey extends string | number> {
  readonly #sync: SyncWriter<T, TKey>
  readonly #getKey: (row: T) => TKey
  readonly #sameValue: (a: T, b: T) => boolean
  /** What this sync run wrote into the synced state, by wire key (`String(key)`). */
  readonly #rows = new Map<string, HeldRow<T, TKey>>()
  #open = false
  /**
   * How to undo the rows written since the last commit, in order: the key,
   * and what it held before (undefined: nothing). Two arrays, not a closure
   * per row: a catch-up writes thousands.
   */
  #undoKeys: string[] = []
  #undoPrev: Array<HeldRow<T, TKey> | undefined> = []
  /** How to undo what callers recorded with journal(), in order (their own state, apart from the rows). */
  #undo: Array<() => void> = []
  #sink: RowSink | undefined
  /** Keys written since the last commit, for the sink. */
  #touched = new Set<string>()

  constructor(sync: SyncWriter<T, TKey>, getKey: (row: T) => TKey, sameValue: (a: T, b: T) => boolean, sink?: RowSink) {
    this.#sync = sync
    this.#getKey = getKey
    this.#sameValue = sameValue
    this.#sink = sink
  }

  /** Where committed rows are staged (the transport's local copy), once known. */
  set sink(sink: RowSink | undefined) {
    this.#sink = sink
  }

  /**
   * Writes rows read back from the local copy, as one committed sync
   * transaction that is not staged again. Returns the receipt.
   */
  seed(values: readonly T[]): true | Promise<void> {
    if (this.#rows.size > 0 || this.#open) {
      // Rows are held already: the general path (updates, no-op skips, undo).
      const sink = this.#sink
      this.#sink = undefined
      try {
        for (const value of values) this.upsert(value)
        return this.commit()
      } finally {
        this.#sink = sink
      }
    }
    // Into an empty run, as one transaction: every row an insert, nothing to
    // undo (a reload's 50,000 rows spend most of their time here).
    if (values.length === 0) return true
    this.#sync.begin()
    for (const value of values) {
      const key = this.#getKey(value)
      const k = String(key)
      if (this.#rows.has(k)) continue
      this.#rows.set(k, { key, value })
      this.#sync.write({ type: 'insert', value })
    }
    return this.#sync.commit()
  }

  /**
   * Records rows someone else already wrote into the synced state (a
   * DbClient's hydration) as held, writing nothing: a later snapshot or
   * delete then replaces or removes them like rows this run wrote.
   */
  adopt(values: Iterable<T>): void {
    for (const value of values) {
      const key = this.#getKey(value)
      this.#rows.set(String(key), { key, value })
    }
  }

  get size(): number {
    return this.#rows.size
  }

  has(k: string): boolean {
    return this.#rows.has(k)
  }

  /** The value held under wire key `k`. */
  valueOf(k: string): T | undefined {
    return this.#rows.get(k)?.value
  }

  /** The wire keys held, as a copy (safe to remove while iterating). */
  keys(): string[] {
    return [...this.#rows.keys()]
  }

  /** The wire key of a row. */
  keyOf(value: T): string {
    return String(this.#getKey(value))
  }

  /** Writes `value` as insert (new key) or update (held key); nothing if it equals the held value. Returns its wire key. */
  upsert(value: T): string {
    const key = this.#getKey(value)
    const k = String(key)
    const prev = this.#rows.get(k)
    if (prev !== undefined && this.#sameValue(prev.value, value)) return k
    this.#begin()
    this.#sync.write({ type: prev !== undefined ? 'update' : 'insert', value })
    this.#rows.set(k, { key, value })
    this.#undoKeys.push(k)
    this.#undoPrev.push(prev)
    if (this.#sink) this.#touched.add(k)
    return k
  }

  /** Writes a delete for a held key; nothing for a key not held. */
  remove(k: string): void {
    const prev = this.#rows.get(k)
    if (prev === undefined) return
    this.#begin()
    this.#sync.write({ type: 'delete', key: prev.key })
    this.#rows.delete(k)
    this.#undoKeys.push(k)
    this.#undoPrev.push(prev)
    if (this.#sink) this.#touched.add(k)
  }

  /** Stages every held row (a full image for a copy this run starts writing). */
  restage(): void {
    this.#sink?.image([...this.#rows].map(([k, { value }]) => [k, value]))
  }

  /** Records how to undo a change the caller made alongside the rows, should the transaction be aborted. */
  journal(undo: () => void): void {
    this.#undo.push(undo)
  }

  /** Ends the open transaction: its receipt, or true if nothing was written since the last commit. */
  commit(): true | Promise<void> {
    this.#forgetUndo()
    if (this.#touched.size > 0) {
      const sink = this.#sink
      if (this.#touched.size >= IMAGE_ROWS) this.restage()
      else for (const k of this.#touched) sink?.stage(k, this.#rows.get(k)?.value)
      this.#touched.clear()
    }
    if (!this.#open) return true
    this.#open = false
    return this.#sync.commit()
  }

  /** Discards the open transaction and undoes everything since the last commit. */
  abort(): void {
    const undo = this.#undo
    const keys = this.#undoKeys
    const prevs = this.#undoPrev
    this.#forgetUndo()
    this.#touched.clear()
    if (this.#open) {
      this.#open = false
      const controller = new AbortController()
      controller.abort()
      try {
        const receipt = this.#sync.commit(controller.signal)
        // An abandoned transaction's receipt rejects with an AbortError.
        if (receipt !== true) receipt.catch(() => {})
      } catch {
        // The transaction is gone either way.
      }
    }
    for (let i = undo.length - 1; i >= 0; i--) undo[i]!()
    for (let i = keys.length - 1; i >= 0; i--) {
      const prev = prevs[i]
      if (prev === undefined) this.#rows.delete(keys[i]!)
      else this.#rows.set(keys[i]!, prev)
    }
  }

  #forgetUndo(): void {
    this.#undo = []
    this.#undoKeys = []
    this.#undoPrev = []
  }

  #begin(): void {
    if (this.#open) return
    this.#sync.begin()
    this.#open = true
  }
}
