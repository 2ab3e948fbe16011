// Presence through real TanStack DB collections in Node, against the
// fixture DO under wrangler dev: a read-only collection of everyone's
// presence, set throttled and last-write-wins, resent on a new socket,
// emptied while offline, and a refusal that reaches onError.
import { createCollection } from '@tanstack/db'
import { afterEach, describe, expect, it } from 'vitest'

import { ErrorCode, PresenceError, presenceCollectionOptions } from '../../worker/src/client/index.js'
import { type Client, connectClient, freshRoom, until } from './harness.js'

const open: Client[] = []
function client(room: string, user: string) {
  const c = connectClient(room, user)
  open.push(c)
  const errors: PresenceError[] = []
  const presence = createCollection(
    presenceCollectionOptions<{ typing?: boolean; as?: string; n?: number }>({
      transport: c.transport,
      id: `presence-${user}-${open.length}`,
      onError: (e) => errors.push(e),
    }),
  )
  return { ...c, presence, errors }
}
afterEach(() => {
  for (const c of open.splice(0)) c.transport.close()
})

const view = (p: { toArray: Array<{ user: string; state: unknown; self: boolean }> }) =>
  p.toArray.map((r) => ({ user: r.user, state: r.state, self: r.self })).sort((a, b) => (a.user < b.user ? -1 : 1))

describe('presence', () => {
  it('each client sees the other’s state, itself marked self, and is read-only', async () => {
    const room = freshRoom('presence')
    const ann = client(room, 'ann')
    const bob = client(room, 'bob')
    ann.presence.utils.set({ typing: true })
    bob.presence.utils.set({ typing: false })
    await until(() => ann.presence.size === 2 && bob.presence.size === 2, 'both see both')
    expect(view(ann.presence)).toEqual([
      { user: 'ann', state: { typing: true }, self: true },
      { user: 'bob', state: { typing: false }, self: false },
    ])
    expect(view(bob.presence).map((r) => r.self)).toEqual([false, true])
    expect(() => ann.presence.insert({ key: 'x', socket: 'x', tab: 't', user: 'eve', state: {}, self: false })).toThrow()
  })

  it('sets are throttled, last write wins, and the last one arrives', async () => {
    const room = freshRoom('presence-throttle')
    const ann = client(room, 'ann')
    const bob = client(room, 'bob')
    await until(() => ann.transport.status === 'live' && bob.presence.isReady(), 'live')
    for (let n = 1; n <= 50; n++) ann.presence.utils.set({ n })
    await until(() => bob.presence.toArray[0]?.state.n === 50, 'the last set arrives')
    const sets = ann.network.sentFrames('presence').filter((f) => 'tab' in f)
    expect(sets.length).toBeLessThanOrEqual(3) // the first at once, then the latest per window
    expect(ann.errors).toEqual([])
  })

  it('a client that goes offline empties its view and leaves the others’; back online it is here again', async () => {
    const room = freshRoom('presence-offline')
    const ann = client(room, 'ann')
    const bob = client(room, 'bob')
    ann.presence.utils.set({ typing: true })
    await until(() => bob.presence.size === 1 && ann.presence.size === 1, 'bob sees ann')
    ann.network.cut()
    await until(() => ann.presence.size === 0, 'ann’s own view empties offline')
    const cutAt = Date.now()
    await until(() => bob.presence.size === 0, 'ann leaves bob’s view', 1_000)
    expect(Date.now() - cutAt).toBeLessThan(1_000)
    ann.network.restore()
    await until(() => bob.presence.size === 1, 'ann is back, her state sent on the new socket')
    expect(view(bob.presence)).toEqual([{ user: 'ann', state: { typing: true }, self: false }])
  })

  it('a state the app’s hook refuses reaches onError as a PresenceError; nobody sees it', async () => {
    const room = freshRoom('presence-refused')
    const ann = client(room, 'ann')
    const bob = client(room, 'bob')
    ann.presence.utils.set({ as: 'ann' })
    await until(() => bob.presence.size === 1, 'bob sees ann')
    ann.presence.utils.set({ as: 'bob' })
    await until(() => ann.errors.length === 1, 'the refusal')
    expect(ann.errors[0]).toBeInstanceOf(PresenceError)
    expect(ann.errors[0]!.code).toBe(ErrorCode.UNAUTHORIZED)
    expect(view(bob.presence)).toEqual([{ user: 'ann', state: { as: 'ann' }, self: false }])
  })
})
