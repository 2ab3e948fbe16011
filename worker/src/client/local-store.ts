// The local copy of one transport in IndexedDB: the rows its collections
// hold, the cursor and epoch those rows are at, and the outbox of writes not
// yet answered. docs/local-first.md says why this is seqsync's own and not
// one of TanStack DB's persistence packages.
//
// * Rows and cursor move together. Row writes are staged as the collections
//   apply units (held-rows.ts); a flush writes every staged row and the
//   cursor record in ONE readwrite transaction over `rows` and `meta`, so a
//   reload finds either the state before or the state after — never a
//   cursor ahead of the rows it covers (a crash re-sends, never skips).
// * Flushes never overlap: the next starts once the previous committed. A
//   failed flush (quota, a closed database) turns persistence off for this
//   page: later flushes would be deltas on top of one that never landed.
// * A large commit (a snapshot) stores its scope as one image record, and
//   later rows as records of their own, read on top of it: IndexedDB writes
//   and reads one large value many times faster than as many small ones.
// * A row is stored under its scope (the subscription it came from, see
//   scopeKey), so two collections over one table never remove each other's
//   rows; a reload hands each scope its rows back before the socket opens.
// * The outbox holds each write's frame text under its id, in the order the
//   writes were made, with the tab that owns it; it is written when the write
//   is queued and deleted when it settles. A tab restores its own and
//   orphaned entries (their tab is gone) and sends them with the same id: the
//   DO applies an id once.
// * Anything IndexedDB refuses (no IndexedDB in Node or a Worker, a private
//   mode that blocks it, a corrupt database) leaves the transport in memory,
//   as without `local`, with one console warning. A different
//   `schemaVersion` discards the rows and cursor (never the outbox).

import type { PredicateIR, SubBody, WireRow } from '../protocol/index.js'

/** The `local` option of WebSocketTransport. */
export interface LocalOptions {
  /**
   * The IndexedDB database. Default: derived from the transport's URL. Put
   * the user in it when several users share a browser profile: the copy and
   * the outbox belong to whoever wrote them.
   */
  name?: string
  /** Bump it when the rows' shape changes: a copy of another version is discarded. Default 1. */
  schemaVersion?: number
  /** Tabs of one origin share one socket per DO (Web Locks + BroadcastChannel). Default true. */
  shareSocket?: boolean
}

/** The on-disk format of this file; a database of another format is discarded. */
const FORMAT = 2


/** What the cursor record says: the rows of `subs` are those at `seq` in `epoch`. */
export interface CursorRecord {
  format: number
  schemaVersion: number
  epoch: string
  seq: number
  /** Scopes (scopeKey) whose rows were synced at `seq`, with a window's resolved predicate. */
  subs: Record<string, { resolved?: PredicateIR }>
}

/** A row written since its scope's image; `r` null: removed. */
interface RowRecord {
  s: string
  k: string
  r: WireRow | null
}

/** Every row of a scope at one flush, by wire key. */
interface ImageRecord {
  rows: Array<[string, WireRow]>
}

export interface OutboxRecord {
  id: string
  /** Order of creation. */
  n: number
  text: string
  /** The tab that owns the write (tabs.ts). */
  owner: string
}

/** The identity of a subscription without its id: where its rows are stored. */
export function scopeKey(spec: Omit<SubBody, 'resume' | 'id'>): string {
  return JSON.stringify([spec.c, spec.where ?? null, spec.orderBy ?? null, spec.limit ?? null, spec.offset ?? null])
}

let warned = false
/** The one warning a page gets when local-first is asked for and cannot run. */
export function warnLocalOff(reason: string, cause?: unknown): void {
  if (warned) return
  warned = true
  console.warn(`[seqsync] local-first is off, the client keeps its rows and writes in memory: ${reason}`, cause ?? '')
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error)
  })
}

/** The scopes that have row records (a key cursor: the rows themselves are not read). */
function scopesOf(rows: IDBObjectStore): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const scopes = new Set<string>()
    const req = rows.openKeyCursor()
    req.onerror = () => reject(req.error)
    req.onsuccess = () => {
      const c = req.result
      if (!c) return resolve([...scopes])
      const scope = String((c.key as [string, string])[0])
      scopes.add(scope)
      // Skip the rest of this scope.
      c.continue([scope, []])
    }
  })
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve()
    tx.onerror = () => reject(tx.error)
    tx.onabort = () => reject(tx.error ?? new Error('transaction aborted'))
  })
}

/** What the cursor record should say now; undefined while it may claim nothing. */
export type CursorNow = () => Omit<CursorRecord, 'format' | 'schemaVersion'> | undefined

type StagedOp =
  | { scope: string; k: string; row: WireRow | undefined }
  | { clearExcept: Set<string> }
  | { image: string; rows: Array<[string, WireRow]> }

export class LocalCopy {
  readonly #db: IDBDatabase
  readonly #schemaVersion: number
  /** What the cursor record should say now; undefined while nothing may be claimed. */
  readonly #cursorNow: CursorNow
  #staged: StagedOp[] = []
  #flushing: Promise<void> | undefined
  #timer: ReturnType<typeof setTimeout> | undefined
  #off = false
  /** The cursor record found at open, if any. */
  readonly cursor: CursorRecord | undefined
  /** Rows read by readRows, by scope, until each scope takes them. */
  readonly #rows = new Map<string, WireRow[]>()
  /** The outbox found at open, oldest first. */
  readonly outbox: OutboxRecord[]
  #outboxCounter: number

  private constructor(
    db: IDBDatabase,
    schemaVersion: number,
    cursorNow: CursorNow,
    loaded: { cursor: CursorRecord | undefined; outbox: OutboxRecord[] },
  ) {
    this.#db = db
    this.#schemaVersion = schemaVersion
    this.#cursorNow = cursorNow
    this.cursor = loaded.cursor
    this.outbox = loaded.outbox
    this.#outboxCounter = loaded.outbox.reduce((max, w) => Math.max(max, w.n), 0)
  }

  /**
   * Opens (or creates) the database and reads the cursor and the outbox —
   * what the first dial needs; readRows() reads the rows meanwhile. Undefined,
   * with the one warning, if it cannot.
   */
  static async open(name: string, schemaVersion: number, cursorNow: CursorNow): Promise<LocalCopy | undefined> {
    const idb = (globalThis as { indexedDB?: IDBFactory }).indexedDB
    if (!idb) {
      warnLocalOff('this environment has no IndexedDB')
      return undefined
    }
    let db: IDBDatabase
    try {
      const req = idb.open(name, FORMAT)
      req.onupgradeneeded = () => {
        const d = req.result
        // Another format's rows and cursor are discarded; the outbox (frames) is kept.
        for (const store of Array.from(d.objectStoreNames)) if (store !== 'outbox') d.deleteObjectStore(store)
        d.createObjectStore('meta')
        d.createObjectStore('rows', { keyPath: ['s', 'k'] })
        d.createObjectStore('images')
        if (!d.objectStoreNames.contains('outbox')) d.createObjectStore('outbox', { keyPath: 'id' })
      }
      req.onblocked = () => warnLocalOff(`the database ${name} is held open by an older version of this page`)
      db = await request(req)
      // Another page upgrading the format: let it (this page goes on in memory).
      db.onversionchange = () => db.close()
      const tx = db.transaction(['meta', 'outbox'], 'readonly')
      const [cursorValue, outboxValues] = await Promise.all([
        request(tx.objectStore('meta').get('cursor')),
        request(tx.objectStore('outbox').getAll()),
      ])
      let cursor = cursorValue as CursorRecord | undefined
      if (cursor !== undefined && (cursor.format !== FORMAT || cursor.schemaVersion !== schemaVersion)) {
        console.warn(`[seqsync] the local copy is of schema version ${cursor.schemaVersion}, the page wants ${schemaVersion}: its rows were discarded`)
        const wipe = db.transaction(['meta', 'rows', 'images'], 'readwrite')
        for (const store of ['meta', 'rows', 'images']) wipe.objectStore(store).clear()
        await done(wipe)
        cursor = undefined
      }
      const outbox = (outboxValues as OutboxRecord[]).sort((a, b) => a.n - b.n)
      return new LocalCopy(db, schemaVersion, cursorNow, { cursor, outbox })
    } catch (error) {
      warnLocalOff(`IndexedDB ${name} could not be opened or read (${String(error)})`, error)
      return undefined
    }
  }

  /**
   * Reads every stored row: each scope's image, then its rows written since
   * (a null row removes the key). False, with the one warning, if it cannot.
   */
  async readRows(): Promise<boolean> {
    try {
      const tx = this.#db.transaction(['rows', 'images'], 'readonly')
      const images = tx.objectStore('images')
      const [scopes, imageValues, rowValues] = await Promise.all([
        request(images.getAllKeys()),
        request(images.getAll()),
        request(tx.objectStore('rows').getAll()),
      ])
      const byScope = new Map<string, Map<string, WireRow>>()
      const scopeOf = (scope: string) => {
        let rows = byScope.get(scope)
        if (!rows) byScope.set(scope, (rows = new Map()))
        return rows
      }
      const written = new Set((rowValues as RowRecord[]).map((r) => r.s))
      scopes.forEach((scope, i) => {
        const image = (imageValues[i] as ImageRecord).rows
        // An image alone is the scope's rows as they are: no map to merge into.
        if (!written.has(String(scope))) return void this.#rows.set(String(scope), image.map(([, row]) => row))
        const rows = scopeOf(String(scope))
        for (const [k, row] of image) rows.set(k, row)
      })
      for (const r of rowValues as RowRecord[]) {
        if (r.r === null) scopeOf(r.s).delete(r.k)
        else scopeOf(r.s).set(r.k, r.r)
      }
      for (const [scope, rows] of byScope) this.#rows.set(scope, [...rows.values()])
      return true
    } catch (error) {
      this.#off = true
      warnLocalOff(`the local copy's rows could not be read (${String(error)})`, error)
      return false
    }
  }

  /** False once a write failed: the page goes on in memory. */
  get on(): boolean {
    return !this.#off
  }

  /** The rows stored for `scope` (each scope takes its rows once). */
  takeRows(scope: string): WireRow[] | undefined {
    const rows = this.#rows.get(scope)
    this.#rows.delete(scope)
    return rows
  }

  /** Rows stored for scopes nobody took yet. */
  get untakenScopes(): string[] {
    return [...this.#rows.keys()]
  }

  /** Stages a row of `scope` (undefined: removed); written by the next flush. */
  stage(scope: string, k: string, row: WireRow | undefined): void {
    if (this.#off) return
    this.#staged.push({ scope, k, row })
    this.#schedule()
  }

  /** Stages the removal of every row whose scope is not in `keep` (a new epoch: their rows are of the old one). */
  stageClearExcept(keep: Iterable<string>): void {
    if (this.#off) return
    this.#staged.push({ clearExcept: new Set(keep) })
    this.#rows.clear()
    this.#schedule()
  }

  /** Stages every row of `scope`, replacing what it stored (a snapshot, or a full image at a takeover). */
  stageImage(scope: string, rows: Array<[string, WireRow]>): void {
    if (this.#off) return
    this.#staged.push({ image: scope, rows })
    this.#schedule()
  }

  /** The cursor moved: write it (with whatever is staged) soon. */
  checkpoint(): void {
    if (this.#off) return
    this.#schedule()
  }

  /** Writes everything staged now, and the cursor; resolves once committed. */
  flush(): Promise<void> {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    if (this.#off) return Promise.resolve()
    // #write never rejects: a failure turns the copy off instead.
    const run = (this.#flushing ?? Promise.resolve()).then(() => this.#write())
    this.#flushing = run
    return run
  }

  #schedule(): void {
    // Coalesce a burst of units into one transaction; a unit's rows and the
    // cursor after it always land together either way.
    if (this.#timer !== undefined) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.flush()
    }, 20)
  }

  async #write(): Promise<void> {
    if (this.#off) return
    const ops = this.#staged
    this.#staged = []
    const cursor = this.#cursorNow()
    if (ops.length === 0 && cursor === undefined) return
    try {
      const tx = this.#db.transaction(['meta', 'rows', 'images'], 'readwrite')
      const rows = tx.objectStore('rows')
      const images = tx.objectStore('images')
      // Keys are [scope, k] with k a string: arrays sort after every string.
      const ofScope = (scope: string) => IDBKeyRange.bound([scope], [scope, []])
      for (const op of ops) {
        if ('clearExcept' in op) {
          const keep = op.clearExcept
          const scopes = [...new Set([...(await request(images.getAllKeys())).map(String), ...(await scopesOf(rows))])]
          for (const scope of scopes) {
            if (keep.has(scope)) continue
            images.delete(scope)
            rows.delete(ofScope(scope))
          }
          continue
        }
        if ('image' in op) {
          images.put({ rows: op.rows } satisfies ImageRecord, op.image)
          rows.delete(ofScope(op.image))
          continue
        }
        rows.put({ s: op.scope, k: op.k, r: op.row ?? null } satisfies RowRecord)
      }
      if (cursor !== undefined) {
        const record: CursorRecord = { format: FORMAT, schemaVersion: this.#schemaVersion, ...cursor }
        tx.objectStore('meta').put(record, 'cursor')
      }
      await done(tx)
    } catch (error) {
      this.#off = true
      this.#staged = []
      warnLocalOff(`writing the local copy failed (${String(error)}); it stays as it was at the last write`, error)
    }
  }

  /** Stores a queued write (its frame text) under its id, after the others. */
  putWrite(id: string, text: string, owner: string): void {
    if (this.#off) return
    this.#outboxCounter += 1
    const record: OutboxRecord = { id, n: this.#outboxCounter, text, owner }
    this.#outboxTx((store) => store.put(record))
  }

  /** Gives writes to `owner` (a tab adopting what a closed tab left). */
  adoptWrites(records: OutboxRecord[], owner: string): void {
    if (this.#off || records.length === 0) return
    this.#outboxTx((store) => {
      for (const r of records) store.put({ ...r, owner })
    })
  }

  /** Forgets a settled write. */
  deleteWrite(id: string): void {
    if (this.#off) return
    this.#outboxTx((store) => store.delete(id))
  }

  /** Reads the outbox as it is now (tabs adopt what a closed tab left). */
  async readOutbox(): Promise<OutboxRecord[]> {
    if (this.#off) return []
    try {
      const tx = this.#db.transaction('outbox', 'readonly')
      const all = (await request(tx.objectStore('outbox').getAll())) as OutboxRecord[]
      return all.sort((a, b) => a.n - b.n)
    } catch {
      return []
    }
  }

  #outboxTx(body: (store: IDBObjectStore) => void): void {
    try {
      const tx = this.#db.transaction('outbox', 'readwrite')
      body(tx.objectStore('outbox'))
      done(tx).catch((error) => {
        this.#off = true
        warnLocalOff(`writing the outbox failed (${String(error)})`, error)
      })
    } catch (error) {
      this.#off = true
      warnLocalOff(`writing the outbox failed (${String(error)})`, error)
    }
  }

  /** Flushes what is staged and closes the database. */
  async close(): Promise<void> {
    await this.flush()
    this.#off = true
    this.#db.close()
  }
}
