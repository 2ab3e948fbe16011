// The client's presence channel (worker/src/client/presence.ts): throttled
// last-write-wins sets per tab, resent on every new socket, views emptied
// when a socket is lost. The clock is the only thing faked.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import { PresenceChannel } from '../../worker/src/client/presence.js'
import type { PresenceClientFrame } from '../../worker/src/protocol/index.js'

let sent: PresenceClientFrame[]
let channel: PresenceChannel
beforeEach(() => {
  vi.useFakeTimers()
  sent = []
  channel = new PresenceChannel((f) => sent.push(f), 100, () => Date.now())
})
afterEach(() => vi.useRealTimers())

describe('PresenceChannel', () => {
  it('sends the first set at once, then at most one per window per tab: the latest', () => {
    channel.live()
    channel.set('t', 1)
    channel.set('t', 2)
    channel.set('t', 3)
    channel.set('u', 'other tab') // its own window
    expect(sent).toEqual([{ t: 'presence', tab: 't', state: 1 }, { t: 'presence', tab: 'u', state: 'other tab' }])
    vi.advanceTimersByTime(99)
    expect(sent).toHaveLength(2)
    vi.advanceTimersByTime(1)
    expect(sent.at(-1)).toEqual({ t: 'presence', tab: 't', state: 3 })
    vi.advanceTimersByTime(1000)
    expect(sent).toHaveLength(3) // nothing new to send
    channel.set('t', 4)
    expect(sent.at(-1)).toEqual({ t: 'presence', tab: 't', state: 4 }) // the window passed: at once
  })

  it('holds sets while offline and sends each tab’s latest, and watch, on the next socket', () => {
    const views: string[] = []
    channel.watch({ onView: () => views.push('view'), onEntries: () => {}, onLost: () => views.push('lost') })
    channel.set('t', 'a')
    channel.set('t', 'b')
    channel.set('gone', 'x')
    channel.set('gone', null)
    expect(sent).toEqual([])
    channel.live()
    expect(sent).toEqual([{ t: 'presence', watch: true }, { t: 'presence', tab: 't', state: 'b' }])
    channel.lost()
    expect(views).toEqual(['lost'])
    channel.set('t', 'c') // while lost: waits, its window timer does not fire into a dead socket
    vi.advanceTimersByTime(1000)
    expect(sent).toHaveLength(2)
    channel.live()
    expect(sent.slice(2)).toEqual([{ t: 'presence', watch: true }, { t: 'presence', tab: 't', state: 'c' }])
  })

  it('a clear is sent and is not sent again on the next socket', () => {
    channel.live()
    channel.set('t', 1)
    vi.advanceTimersByTime(100)
    channel.set('t', null)
    expect(sent.at(-1)).toEqual({ t: 'presence', tab: 't', state: null })
    channel.lost()
    channel.live()
    expect(sent.filter((f) => 'tab' in f)).toHaveLength(2)
  })

  it('views reach every watcher; one that leaves hears nothing more', () => {
    channel.live()
    const seen: unknown[] = []
    const stop = channel.watch({ onView: (e, you) => seen.push({ e, you }), onEntries: (e) => seen.push(e), onLost: () => {} })
    expect(sent).toEqual([{ t: 'presence', watch: true }])
    channel.onFrame({ t: 'presence', all: true, you: 's1', entries: [] })
    channel.onFrame({ t: 'presence', entries: [{ socket: 's2', tab: 't', user: 'bob', state: 1 }] })
    expect(seen).toEqual([{ e: [], you: 's1' }, [{ socket: 's2', tab: 't', user: 'bob', state: 1 }]])
    stop()
    channel.onFrame({ t: 'presence', entries: [] })
    expect(seen).toHaveLength(2)
    expect(sent).toHaveLength(1) // still watching: another tab on the socket may be
  })
})
