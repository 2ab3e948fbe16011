// presenceCollectionOptions: everyone's presence on a transport's Durable
// Object as a read-only TanStack DB collection, so `useLiveQuery` lists who
// is here like any other data (docs/protocol.md §4.7, §5.9). A row is one
// tab of one socket; it is never written by the app (the collection has no
// mutation handlers: insert/update/delete throw), only by the DO's frames.
// `utils.set(state)` sets this connection's own entry (throttled, last write
// wins).

import type { CollectionConfig, SyncConfig } from '@tanstack/db'

import type { PresenceEntry } from '../protocol/index.js'
import type { PresenceError } from './errors.js'
import type { WebSocketTransport } from './transport.js'

/** One tab of one socket in the room. */
export interface PresenceRow<S = unknown> {
  /** `${socket}/${tab}`: the row's key. */
  key: string
  socket: string
  tab: string
  /** Named by the DO from the socket's claims, never by a client. */
  user: string
  state: S
  /** This transport's own entry: its socket and its tab slot (other tabs sharing the socket are not self). */
  self: boolean
}

export interface PresenceUtils<S> {
  /** Sets this connection's state for `tab` (this transport's slot by default); null clears it. */
  set(state: S | null, tab?: string): void
  /** Clears this connection's entry for `tab`. */
  clear(tab?: string): void
}

export interface PresenceCollectionOptions {
  transport: WebSocketTransport
  /** The collection id. Default `presence`. */
  id?: string
  /** Called with each refused set (size, rate, the app's hook): nothing changed. */
  onError?: (error: PresenceError) => void
}

/**
 * Options for `createCollection` that hold everyone's presence on
 * `transport`'s Durable Object, read-only.
 *
 * @example
 * const presence = createCollection(presenceCollectionOptions<{ typing: boolean }>({ transport }))
 * presence.utils.set({ typing: true })
 * const { data: here } = useLiveQuery((q) => q.from({ p: presence }))
 */
export function presenceCollectionOptions<S = unknown>(
  options: PresenceCollectionOptions,
): CollectionConfig<PresenceRow<S>, string> & { utils: PresenceUtils<S> } {
  const { transport } = options
  const sync: SyncConfig<PresenceRow<S>, string>['sync'] = ({ begin, write, commit, markReady }) => {
    const held = new Map<string, PresenceRow<S>>()
    let you = ''
    let ready = false
    const markReadyOnce = () => {
      if (ready) return
      ready = true
      markReady()
    }
    const rowOf = (e: PresenceEntry): PresenceRow<S> => ({
      key: `${e.socket}/${e.tab}`,
      socket: e.socket,
      tab: e.tab,
      user: e.user,
      state: e.state as S,
      self: e.socket === you && e.tab === transport.presenceTab,
    })
    // Applies `entries` over what is held; with `replace`, drops every row they do not name.
    const apply = (entries: PresenceEntry[], replace: boolean) => {
      const next = new Map<string, PresenceRow<S> | undefined>()
      for (const e of entries) {
        if (typeof e?.socket !== 'string' || typeof e.tab !== 'string') continue
        const row = 'state' in e ? rowOf(e) : undefined
        next.set(row?.key ?? `${e.socket}/${e.tab}`, row)
      }
      if (replace) for (const key of held.keys()) if (!next.has(key)) next.set(key, undefined)
      const changes = [...next].filter(([key, row]) => row !== undefined || held.has(key))
      if (changes.length === 0) return
      begin()
      for (const [key, row] of changes) {
        const old = held.get(key)
        if (row === undefined) {
          write({ type: 'delete', value: old! })
          held.delete(key)
        } else {
          write({ type: old ? 'update' : 'insert', value: row })
          held.set(key, row)
        }
      }
      commit()
    }
    const unwatch = transport.watchPresence({
      onView(entries, socket) {
        you = socket
        apply(entries, true)
        markReadyOnce()
      },
      onEntries: (entries) => apply(entries, false),
      // Offline, nobody's presence is known: the view empties until the next socket's.
      onLost: () => apply([], true),
      onError: options.onError,
    })
    const status = transport.subscribe(() => {
      if (transport.status === 'offline' || transport.status === 'closed') markReadyOnce()
    })
    return () => {
      status()
      unwatch()
    }
  }
  return {
    id: options.id ?? 'presence',
    getKey: (row) => row.key,
    sync: { sync },
    startSync: true,
    utils: {
      set: (state, tab) => transport.setPresence(state, tab),
      clear: (tab) => transport.setPresence(null, tab),
    },
  }
}
