// One socket per DO for all tabs of an origin (a browser profile). Web Locks
// elect the tab that holds the socket; a BroadcastChannel carries the
// others' frames to it and its server frames to them.
//
//   follower tab                          holding tab                     DO
//   transport ── TabLink ─ open ────────▶ hub: opened (if live)
//             ◀─ opened ──────────────────
//             ── up: hello{subs} ───────▶ hub: its welcome back (to: tab),
//             ◀─ to: welcome ─────────────  each sub as `sub` ─────────────▶
//             ── up: sub/unsub/mut/call ▶ sent as they are ───────────────▶
//             ◀─ down: every server frame (but welcomes) ◀─────────────────
//
// * Each follower's transport runs as it does on a socket of its own: its
//   units, its cursor, its write queue (acks and rejects for other tabs'
//   ids match nothing). Its subscription ids carry its tab id, so tabs never
//   replace each other's subscriptions; its `recv` reports are dropped (the
//   holder reports what its socket read).
// * The holder's socket lost: `lost` closes every link (followers resume
//   through it later with fresh snapshots); live again: `live` makes them
//   dial at once. A follower's link closes also when it takes over.
// * Takeover: each follower queues for the lock. When the holder's page
//   closes or crashes, the browser releases it and the next tab in the queue
//   holds the socket from then on: its link closes, and its transport
//   redials for real, resuming from its own cursor; unanswered writes are
//   sent again under their ids, so none is lost or applied twice.
// * A follower tab that goes away releases its own tab lock; the holder,
//   queued on it, then unsubscribes that tab's subscriptions and tells
//   onTabGone — where per-tab state (presence slots) is cleared.

import type { SubBody } from '../protocol/index.js'
import type { WebSocketLike } from './options.js'

type Message =
  | { k: 'open' | 'close'; from: string }
  | { k: 'up'; from: string; text: string }
  | { k: 'opened' | 'refused'; to: string }
  | { k: 'to'; to: string; text: string }
  | { k: 'down'; text: string }
  | { k: 'lost' | 'live' }

/** What the holding tab's transport gives the hub to serve followers. */
export interface HolderIo {
  /** The socket is live (a welcome came). */
  live(): boolean
  /** The text of the socket's welcome. */
  welcome(): string | undefined
  /** Sends a frame on the socket. */
  send(text: string): void
}

interface LocksLike {
  request(name: string, options: { ifAvailable?: boolean }, callback: (lock: unknown) => unknown): Promise<unknown>
  request(name: string, callback: (lock: unknown) => unknown): Promise<unknown>
  query(): Promise<{ held?: Array<{ name?: string }> }>
}

const TAB_LOCK = 'seqsync-tab '

export class TabHub {
  /** This page's id. */
  readonly tab = crypto.randomUUID()
  readonly #locks: LocksLike
  readonly #channel: BroadcastChannel
  readonly #socketLock: string
  #holding = false
  #io: HolderIo | undefined
  #closed = false
  #release: (() => void) | undefined
  readonly #takeover = new Set<() => void>()
  readonly #holderLive = new Set<() => void>()
  readonly #tabGone = new Set<(tab: string) => void>()
  // Each follower's presence slots set through this socket, cleared when it goes.
  readonly #followerPresence = new Map<string, Set<string>>()
  /** Follower side: the link of the current dial. */
  #link: TabLink | undefined
  /** Holder side: each follower's subscription ids on the socket, and the tabs whose lock it waits on. */
  readonly #followerSubs = new Map<string, Set<string>>()
  readonly #watched = new Set<string>()

  private constructor(name: string, locks: LocksLike) {
    this.#locks = locks
    this.#socketLock = `seqsync-socket ${name}`
    this.#channel = new BroadcastChannel(`seqsync ${name}`)
    this.#channel.onmessage = (ev: MessageEvent<Message>) => this.#receive(ev.data)
  }

  /** Joins the tabs of `name`; undefined where there are no Web Locks or no BroadcastChannel. */
  static async join(name: string): Promise<TabHub | undefined> {
    const locks = (globalThis as { navigator?: { locks?: LocksLike } }).navigator?.locks
    if (!locks || typeof globalThis.BroadcastChannel !== 'function') return undefined
    const hub = new TabHub(name, locks)
    // Held for the page's life: the holder learns from it when this tab is gone.
    void locks.request(TAB_LOCK + hub.tab, () => new Promise<void>(() => {}))
    hub.#holding = await hub.#acquire(true)
    if (!hub.#holding) {
      void hub.#acquire(false).then((got) => {
        if (!got || hub.#closed) return
        hub.#holding = true
        for (const listener of [...hub.#takeover]) listener()
      })
    }
    return hub
  }

  /** This tab holds the socket. */
  get holding(): boolean {
    return this.#holding
  }

  /** Called once this tab holds the socket after following. */
  onTakeover(listener: () => void): void {
    this.#takeover.add(listener)
  }

  /** Follower side: called when the holder's socket is live again (dial now). */
  onHolderLive(listener: () => void): void {
    this.#holderLive.add(listener)
  }

  /**
   * Holder side: a follower tab is gone (closed or crashed). The extension
   * point for per-tab state forwarded under the socket, such as presence
   * slots: clear that tab's here.
   */
  onTabGone(listener: (tab: string) => void): void {
    this.#tabGone.add(listener)
  }

  /** The ids of the tabs alive now (their tab locks are held). */
  async liveTabs(): Promise<Set<string>> {
    const state = await this.#locks.query()
    const tabs = new Set<string>([this.tab])
    for (const lock of state.held ?? []) if (lock.name?.startsWith(TAB_LOCK)) tabs.add(lock.name.slice(TAB_LOCK.length))
    return tabs
  }

  /** Follower side: a socket through the holder. */
  link(): WebSocketLike {
    this.#link?.fail(1001, 'replaced')
    const link = new TabLink(this)
    this.#link = link
    return link
  }

  /** Holder side: serve followers through `io`. */
  serve(io: HolderIo): void {
    this.#io = io
  }

  /** Holder side: a server frame other than a welcome, for the followers. */
  down(text: string): void {
    this.#post({ k: 'down', text })
  }

  /** Holder side: the socket is live (followers may dial) or lost (their links close). */
  holderLive(): void {
    this.#post({ k: 'live' })
  }

  holderLost(): void {
    this.#followerSubs.clear()
    this.#post({ k: 'lost' })
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#link?.fail(1000, 'closed')
    this.#release?.()
    this.#channel.close()
  }

  // ---- internals ---------------------------------------------------------------

  /** Resolves true once this tab holds the socket lock (at once or not at all with `ifAvailable`). */
  #acquire(ifAvailable: boolean): Promise<boolean> {
    return new Promise((resolve) => {
      const held = (lock: unknown) => {
        if (!lock) return resolve(false)
        resolve(true)
        return new Promise<void>((release) => (this.#release = release))
      }
      const request = ifAvailable ? this.#locks.request(this.#socketLock, { ifAvailable: true }, held) : this.#locks.request(this.#socketLock, held)
      request.catch(() => resolve(false))
    })
  }

  #post(message: Message): void {
    if (this.#closed) return
    try {
      this.#channel.postMessage(message)
    } catch {
      // A closed channel: the tab is going away.
    }
  }

  /** Follower side: a message for one link. */
  postUp(message: Message): void {
    this.#post(message)
  }

  forget(link: TabLink): void {
    if (this.#link === link) this.#link = undefined
  }

  #receive(m: Message): void {
    if (this.#holding) return this.#serveMessage(m)
    const link = this.#link
    switch (m.k) {
      case 'opened':
        if (m.to === this.tab) link?.opened()
        return
      case 'refused':
        if (m.to === this.tab) link?.fail(1013, 'the holding tab is not connected')
        return
      case 'to':
        if (m.to === this.tab) link?.deliver(m.text)
        return
      case 'down':
        link?.deliver(m.text)
        return
      case 'lost':
        link?.fail(1006, 'the holding tab lost its socket')
        return
      case 'live':
        for (const listener of [...this.#holderLive]) listener()
        return
    }
  }

  #serveMessage(m: Message): void {
    const io = this.#io
    if (!io) return
    switch (m.k) {
      case 'open':
        this.#watch(m.from)
        return this.#post(io.live() ? { k: 'opened', to: m.from } : { k: 'refused', to: m.from })
      case 'close':
        return this.#unsubscribeTab(m.from)
      case 'up':
        return this.#forward(io, m.from, m.text)
    }
  }

  /** Sends a follower's frame on the socket: a hello becomes its welcome back and one sub per entry. */
  #forward(io: HolderIo, from: string, text: string): void {
    if (!io.live()) return
    let frame: { t?: unknown; id?: unknown; subs?: unknown }
    try {
      frame = JSON.parse(text)
    } catch {
      return
    }
    const subs = this.#followerSubs.get(from) ?? new Set<string>()
    this.#followerSubs.set(from, subs)
    switch (frame.t) {
      case 'hello': {
        const welcome = io.welcome()
        if (welcome !== undefined) this.#post({ k: 'to', to: from, text: welcome })
        for (const body of Array.isArray(frame.subs) ? (frame.subs as SubBody[]) : []) {
          const { resume: _resume, ...sub } = body
          subs.add(sub.id)
          io.send(JSON.stringify({ t: 'sub', ...sub }))
        }
        return
      }
      case 'recv':
        return // the holder reports what its socket read
      case 'sub':
        if (typeof frame.id === 'string') subs.add(frame.id)
        break
      case 'unsub':
        if (typeof frame.id === 'string') subs.delete(frame.id)
        break
      case 'presence': {
        // Each tab's presence slot rides the one socket; a tab that goes has its slots cleared.
        const { tab, state } = frame as { tab?: unknown; state?: unknown }
        if (typeof tab !== 'string') break
        const slots = this.#followerPresence.get(from) ?? new Set<string>()
        this.#followerPresence.set(from, slots)
        if (state === null) slots.delete(tab)
        else slots.add(tab)
        break
      }
    }
    io.send(text)
  }

  /** Waits on a follower's tab lock: granted once that tab is gone. */
  #watch(tab: string): void {
    if (this.#watched.has(tab) || tab === this.tab) return
    this.#watched.add(tab)
    void this.#locks.request(TAB_LOCK + tab, () => {
      this.#watched.delete(tab)
      this.#unsubscribeTab(tab)
      for (const listener of [...this.#tabGone]) listener(tab)
    })
  }

  #unsubscribeTab(tab: string): void {
    const subs = this.#followerSubs.get(tab)
    const slots = this.#followerPresence.get(tab)
    this.#followerSubs.delete(tab)
    this.#followerPresence.delete(tab)
    if (!this.#io?.live()) return
    for (const id of subs ?? []) this.#io.send(JSON.stringify({ t: 'unsub', id }))
    for (const slot of slots ?? []) this.#io.send(JSON.stringify({ t: 'presence', tab: slot, state: null }))
  }
}

/** A follower's socket: frames go up to the holding tab, and come down from it. */
class TabLink implements WebSocketLike {
  readyState = 0
  binaryType = 'arraybuffer'
  onopen: ((ev: never) => void) | null = null
  onmessage: ((ev: never) => void) | null = null
  onclose: ((ev: never) => void) | null = null
  onerror: ((ev: never) => void) | null = null
  readonly #hub: TabHub

  constructor(hub: TabHub) {
    this.#hub = hub
    hub.postUp({ k: 'open', from: hub.tab })
  }

  send(text: string): void {
    if (this.readyState === 1) this.#hub.postUp({ k: 'up', from: this.#hub.tab, text })
  }

  close(): void {
    if (this.readyState === 3) return
    this.readyState = 3
    this.#hub.forget(this)
    this.#hub.postUp({ k: 'close', from: this.#hub.tab })
  }

  opened(): void {
    if (this.readyState !== 0) return
    this.readyState = 1
    ;(this.onopen as ((ev: unknown) => void) | null)?.({})
  }

  deliver(text: string): void {
    if (this.readyState === 1) (this.onmessage as ((ev: { data: string }) => void) | null)?.({ data: text })
  }

  fail(code: number, reason: string): void {
    if (this.readyState === 3) return
    this.readyState = 3
    this.#hub.forget(this)
    ;(this.onclose as ((ev: { code: number; reason: string }) => void) | null)?.({ code, reason })
  }
}
