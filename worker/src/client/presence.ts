// Presence on the transport's socket (docs/protocol.md §4.7, §5.9): each
// tab slot's latest state, sent throttled (last write wins), and the view of
// everyone's presence for the watchers (presence collections). Presence is
// per connection: every new socket sends `watch` and each tab's state again
// after its welcome, and a lost socket empties every watcher's view, since
// nobody's presence is known while offline.

import type { PresenceClientFrame, PresenceEntry, PresenceFrame } from '../protocol/index.js'
import type { PresenceError } from './errors.js'

/** What a presence collection hears from the transport. @internal */
export interface PresenceWatcher {
  /** The whole view (a watch's answer); `you` is this socket's id. */
  onView(entries: PresenceEntry[], you: string): void
  /** Changes to the view: an entry without `state` is gone. */
  onEntries(entries: PresenceEntry[]): void
  /** The socket was lost: nothing is known until the next view. */
  onLost(): void
  onError?(error: PresenceError): void
}

interface Tab {
  state: unknown // null: cleared
  sentAt: number // when a set of this tab last left, or -Infinity
  timer: ReturnType<typeof setTimeout> | undefined
}

/** The default throttle of one tab's sets: 10 a second, under the DO's default rate (20/s, docs/protocol.md §9.1). */
export const PRESENCE_THROTTLE_MS = 100

export class PresenceChannel {
  readonly #watchers = new Set<PresenceWatcher>()
  readonly #tabs = new Map<string, Tab>()
  #live = false

  /** `send` puts a frame on the current socket; `now` is the clock the throttle reads. */
  constructor(
    private readonly send: (frame: PresenceClientFrame) => void,
    private readonly throttleMs = PRESENCE_THROTTLE_MS,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** Sets (or, with null, clears) `tab`'s state: sent at once, or at the end of the throttle window with the latest state. */
  set(tab: string, state: unknown): void {
    let entry = this.#tabs.get(tab)
    if (!entry) this.#tabs.set(tab, (entry = { state, sentAt: -Infinity, timer: undefined }))
    entry.state = state
    if (!this.#live || entry.timer !== undefined) return
    const wait = entry.sentAt + this.throttleMs - this.now()
    if (wait <= 0) return this.#flush(tab, entry)
    entry.timer = setTimeout(() => {
      entry.timer = undefined
      if (this.#live) this.#flush(tab, entry)
    }, wait)
  }

  /**
   * Adds a watcher; the first one makes the socket watch. Returns the
   * function that removes it. The socket keeps watching after the last one
   * leaves: tabs sharing one socket (tabs.ts) may still watch through it.
   */
  watch(watcher: PresenceWatcher): () => void {
    this.#watchers.add(watcher)
    if (this.#live && this.#watchers.size === 1) this.send({ t: 'presence', watch: true })
    return () => {
      this.#watchers.delete(watcher)
    }
  }

  /** A new socket is live: watch again if anyone watches, and send every tab's state. */
  live(): void {
    this.#live = true
    if (this.#watchers.size > 0) this.send({ t: 'presence', watch: true })
    for (const [tab, entry] of this.#tabs) {
      if (entry.state !== null) this.#flush(tab, entry)
      else this.#tabs.delete(tab) // a clear needs no resend: the new socket holds nothing for it
    }
  }

  /** The socket was lost: pending sets wait for the next one; every view empties. */
  lost(): void {
    this.#live = false
    for (const entry of this.#tabs.values()) {
      clearTimeout(entry.timer)
      entry.timer = undefined
    }
    for (const w of this.#watchers) w.onLost()
  }

  onFrame(frame: PresenceFrame): void {
    if (!Array.isArray(frame.entries)) return
    for (const w of this.#watchers) {
      if (frame.all) w.onView(frame.entries, frame.you ?? '')
      else w.onEntries(frame.entries)
    }
  }

  onError(error: PresenceError): void {
    for (const w of this.#watchers) w.onError?.(error)
  }

  #flush(tab: string, entry: Tab): void {
    entry.sentAt = this.now()
    this.send({ t: 'presence', tab, state: entry.state })
    if (entry.state === null) this.#tabs.delete(tab)
  }
}

/** A tab slot id: random, short, unique enough among one socket's tabs. */
export function randomTabId(): string {
  const c = globalThis.crypto as { randomUUID?: () => string } | undefined
  return (c?.randomUUID?.() ?? Math.random().toString(36).slice(2)).slice(0, 12)
}
