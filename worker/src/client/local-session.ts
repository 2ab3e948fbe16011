// The transport's local copy (`local`): the persisted rows, cursor and
// outbox (local-store.ts), and the tabs of this origin that share them and
// one socket (tabs.ts). It reads the copy before the first dial, hands each
// persisted subscription its stored rows, queues the stored writes, stages
// rows as units apply, and takes over when the holding tab goes. What it
// needs of the transport is `LocalSessionHost`.

import type { PredicateIR, WireRow } from '../protocol/index.js'
import { isObject } from './codec.js'
import { SeqsyncError } from './errors.js'
import { LocalCopy, scopeKey, warnLocalOff } from './local-store.js'
import type { CursorRecord, LocalOptions, OutboxRecord } from './local-store.js'
import type { TransportUrl, WebSocketLike } from './options.js'
import type { RestoredWrite, SubEntry } from './subscriptions.js'
import { TabHub } from './tabs.js'
import type { WriteFrame, WriteQueue } from './writes.js'

/** A User Timing mark where the host has them (the reload benchmark reads them). */
function mark(name: string): void {
  ;(globalThis as { performance?: { mark?: (name: string) => unknown } }).performance?.mark?.(name)
}

/** One local copy per DO: named after its URL, which a function URL cannot give. */
function defaultLocalName(url: TransportUrl): string {
  if (typeof url === 'string') return `seqsync ${url}`
  throw new TypeError('[seqsync] local: with a function url, name the local copy: local: { name: `…` } (one per DO and user)')
}

/** What the local session needs of the transport. */
export interface LocalSessionHost {
  /** The transport closed for good. */
  closed(): boolean
  /** The session is live (on this tab's own socket or a link). */
  live(): boolean
  /** The cursor: the epoch of the last welcome (or the stored one) and appliedSeq. */
  epoch(): string | undefined
  appliedSeq(): number
  /** Sets the cursor the first hello resumes from. */
  resumeFrom(epoch: string, seq: number): void
  readonly writes: WriteQueue
  /** The current socket, if any. */
  socket(): WebSocketLike | null
  sendText(text: string): void
  /** The network may be back: dial now. */
  online(): void
  /** Sends the writes not in flight. */
  pump(): void
  report(error: SeqsyncError): void
}

export class LocalSession {
  readonly #options: Required<LocalOptions>
  readonly #host: LocalSessionHost
  /** The local copy, once open; undefined in memory. */
  #copy: LocalCopy | undefined
  /** The tabs of this origin sharing one socket and one local copy; undefined until open. */
  #hub: TabHub | undefined
  /** The current socket is a link through the holding tab. */
  #viaLink = false
  /** The text of the last welcome (the holder answers followers' hellos with it). */
  #welcomeText: string | undefined
  /** Persisted scopes and the subscription that keeps each. */
  readonly #claimed = new Map<string, SubEntry>()
  /** Restored writes, and the tables whose collection already shows each. */
  #restored: Array<RestoredWrite & { shownOn: Set<string> }> = []

  /** `local` as the transport's options give it; `url` names the copy by default. */
  constructor(local: true | LocalOptions, url: TransportUrl, host: LocalSessionHost) {
    const options = local === true ? {} : local
    this.#options = {
      name: options.name ?? defaultLocalName(url),
      schemaVersion: options.schemaVersion ?? 1,
      shareSocket: options.shareSocket ?? true,
    }
    this.#host = host
  }

  /** The local copy is written (it opened, and IndexedDB works). */
  get persisted(): boolean {
    return this.#copy?.on ?? false
  }

  /** The tabs sharing the socket, once the copy is open. */
  get hub(): TabHub | undefined {
    return this.#hub
  }

  /** This page's id: the owner of its outbox entries. */
  get tab(): string {
    return this.#hub?.tab ?? 'this-page'
  }

  /** The current socket is a link through the holding tab. */
  get viaLink(): boolean {
    return this.#viaLink
  }

  /** Resolves once everything staged is written. */
  flush(): Promise<void> {
    return this.#copy?.flush() ?? Promise.resolve()
  }

  /** A new dial: the link through the holding tab when this tab should share its socket, else undefined (dial for real). */
  link(): WebSocketLike | undefined {
    const hub = this.#hub
    this.#viaLink = hub !== undefined && !hub.holding && this.#options.shareSocket !== false
    return hub && this.#viaLink ? hub.link() : undefined
  }

  /** A frame of the socket this tab holds: the followers get every frame but the welcome, which answers their own hellos. */
  relay(type: string, data: unknown): void {
    if (!this.#hub?.holding || this.#viaLink || typeof data !== 'string') return
    if (type === 'welcome') this.#welcomeText = data
    else this.#hub.down(data)
  }

  /** Keeps `entry`'s rows if it is the first persisted subscription of its scope (`running`: the copy was read). */
  claim(entry: SubEntry, running: boolean): void {
    // One subscription keeps a scope's rows; a second with the same
    // identity syncs in memory.
    const scope = scopeKey(entry.spec)
    if (this.#claimed.has(scope)) return
    this.#claimed.set(scope, entry)
    entry.scope = scope
    if (running) {
      this.#markResumable(entry)
      this.#attachLocal(entry)
    }
  }

  /** `entry` was unregistered. */
  release(entry: SubEntry): void {
    if (entry.scope !== undefined && this.#claimed.get(entry.scope) === entry) this.#claimed.delete(entry.scope)
  }

  /** A write waits: stored until it settles. */
  putWrite(id: string, text: string): void {
    this.#copy?.putWrite(id, text, this.tab)
  }

  /** A write settled. */
  deleteWrite(id: string): void {
    this.#copy?.deleteWrite(id)
  }

  /** The DO's storage was reset: rows of the old epoch that no live subscription will replace go now. */
  epochReset(): void {
    if (this.#persisting) this.#copy?.stageClearExcept(this.#claimed.keys())
  }

  /** The cursor moved: write it with the rows staged. */
  cursorMoved(): void {
    if (this.#persisting) this.#copy?.checkpoint()
  }

  close(): void {
    void this.#copy?.close()
    this.#hub?.close()
  }

  /** Reads the local copy (or finds there is none); the machine dials after. */
  async open(): Promise<void> {
    const options = this.#options
    const copy = await LocalCopy.open(options.name, options.schemaVersion, () => this.#cursorNow())
    if (this.#host.closed()) {
      void copy?.close()
      return
    }
    if (!copy) return
    // The rows are read while the tabs agree on a holder: the two wait on
    // different things (IndexedDB, Web Locks), and the rows are the long one.
    const rowsRead = copy.readRows()
    const hub = await TabHub.join(options.name)
    if (!hub) {
      // Tabs could not agree on one writer of the copy.
      warnLocalOff('this environment has no Web Locks or no BroadcastChannel')
      void copy.close()
      return
    }
    if (this.#host.closed()) {
      // Closed while the tabs were joined.
      hub.close()
      void copy.close()
      return
    }
    this.#hub = hub
    this.#copy = copy
    hub.serve({
      live: () => this.#host.live() && !this.#viaLink,
      welcome: () => this.#welcomeText,
      send: (text) => this.#host.sendText(text),
    })
    hub.onHolderLive(() => this.#host.online())
    hub.onTakeover(() => void this.#takeOver())
    if (copy.cursor) this.#host.resumeFrom(copy.cursor.epoch, copy.cursor.seq)
    // This page's writes of an earlier load, or a closed tab's; a live tab sends its own.
    const live = await hub.liveTabs()
    const orphans = copy.outbox.filter((r) => !live.has(r.owner))
    this.#restoreOutbox(orphans)
    // Writes made while the copy was being read are stored now, after the restored ones.
    for (const { frame, text } of this.#host.writes.pending()) {
      if (!copy.outbox.some((r) => r.id === frame.id)) copy.putWrite(frame.id, text, this.tab)
    }
    copy.adoptWrites(orphans, this.tab)
    // The rows are in the collections before the first dial: they render
    // before the network answers, and every unit applies on top of them.
    await rowsRead
    mark('seqsync:local-rows-read')
    for (const entry of this.#claimed.values()) {
      this.#markResumable(entry)
      this.#attachLocal(entry)
    }
    mark('seqsync:local-rows-applied')
    const flush = () => void copy.flush()
    globalThis.addEventListener?.('pagehide', flush)
  }

  /**
   * This tab now holds the socket (the holder closed or crashed): its link
   * closes and it redials for real from its own cursor. It writes the local
   * copy from now on, first a full image of what its persisted
   * subscriptions hold, and sends the writes the closed tab left.
   */
  async #takeOver(): Promise<void> {
    const copy = this.#copy
    if (copy) {
      for (const entry of this.#claimed.values()) entry.handler.restageLocal?.()
      copy.checkpoint()
    }
    const socket = this.#host.socket()
    if (this.#viaLink && socket) {
      // A link's close reaches the machine as a lost socket; it redials after a short backoff.
      ;(socket as { fail?: (code: number, reason: string) => void }).fail?.(1001, 'this tab holds the socket now')
    } else {
      this.#host.online()
    }
    if (!copy || !this.#hub) return
    const live = await this.#hub.liveTabs()
    const orphans = (await copy.readOutbox()).filter((r) => !live.has(r.owner))
    this.#restoreOutbox(orphans)
    copy.adoptWrites(orphans, this.tab)
    this.#host.pump()
  }

  /** Queues the stored writes ahead of new ones, under their ids. */
  #restoreOutbox(records: readonly OutboxRecord[]): void {
    const writes: Array<{ frame: WriteFrame; text: string }> = []
    for (const r of records) {
      let frame: unknown
      try {
        frame = JSON.parse(r.text)
      } catch {
        continue
      }
      if (!isObject(frame) || typeof frame.id !== 'string' || (frame.t !== 'mut' && frame.t !== 'call')) continue
      writes.push({ frame: frame as unknown as WriteFrame, text: r.text })
    }
    const settled = this.#host.writes.restore(writes)
    writes.forEach(({ frame }, i) => {
      const promise = settled[i]
      if (!promise) return
      // A restored write has no caller: a refusal is reported here, and
      // rolls back whatever collection shows it optimistically.
      promise.catch((error: unknown) => {
        if (error instanceof SeqsyncError) this.#host.report(error)
      })
      if (frame.t === 'mut') this.#restored.push({ frame, settled: promise, shownOn: new Set() })
    })
  }

  /** What the stored cursor says of a persisted subscription's scope, while the cursor has not moved since it was read. */
  #storedState(entry: SubEntry): { resolved?: PredicateIR } | undefined {
    const cursor = this.#copy?.cursor
    if (cursor === undefined || entry.scope === undefined) return undefined
    return cursor.epoch === this.#host.epoch() && cursor.seq === this.#host.appliedSeq() ? cursor.subs[entry.scope] : undefined
  }

  /** A persisted subscription whose rows were stored at the cursor resumes from it. */
  #markResumable(entry: SubEntry): void {
    const known = this.#storedState(entry)
    if (!known || !entry.handler.attachLocal) return
    entry.synced = true
    entry.resolved = known.resolved
  }

  /** Hands a persisted subscription its stored rows and the restored writes on its table. */
  #attachLocal(entry: SubEntry): void {
    const copy = this.#copy
    if (!copy || entry.scope === undefined || !entry.handler.attachLocal) return
    const scope = entry.scope
    const known = entry.synced ? this.#storedState(entry) : undefined
    const table = entry.spec.c
    const writes: RestoredWrite[] = []
    for (const w of this.#restored) {
      if (w.shownOn.has(table) || !w.frame.ops.some((op) => op.c === table)) continue
      w.shownOn.add(table)
      writes.push({ frame: w.frame, settled: w.settled })
    }
    entry.handler.attachLocal({
      sub: entry.spec.id,
      sink: {
        stage: (k, row) => {
          if (this.#persisting) this.#copy?.stage(scope, k, row as WireRow | undefined)
        },
        image: (rows) => {
          if (this.#persisting) this.#copy?.stageImage(scope, rows as Array<[string, WireRow]>)
        },
      },
      cached: copy.takeRows(scope) ?? (known ? [] : undefined),
      writes,
    })
  }

  /** This tab writes the local copy's rows and cursor: it holds the socket (one writer per copy). */
  get #persisting(): boolean {
    return this.#copy !== undefined && (this.#hub?.holding ?? false)
  }

  /** What the cursor record says now: the persisted subscriptions synced at appliedSeq. */
  #cursorNow(): Omit<CursorRecord, 'format' | 'schemaVersion'> | undefined {
    const epoch = this.#host.epoch()
    if (epoch === undefined || !this.#persisting) return undefined
    const subs: CursorRecord['subs'] = {}
    for (const [scope, entry] of this.#claimed) {
      if (!entry.synced) continue
      subs[scope] = entry.resolved !== undefined ? { resolved: entry.resolved } : {}
    }
    return { epoch, seq: this.#host.appliedSeq(), subs }
  }
}
