// Presence (docs/protocol.md §4.7, §5.9) in real workerd: the shell names
// the user from the socket's claims, the app's hook judges, the limits
// answer with presence-error and change nothing, a close removes, and a DO
// that hibernates and wakes keeps everyone's state (from the sockets'
// attachments: presence is never written to SQLite).
import { env } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'

import { ErrorCode } from '../../worker/src/protocol/index.js'
import type { Env } from './fixture.js'
import { freshRoom, TestSocket, untilEvicted } from './socket.js'

const testEnv = env as unknown as Env
const stubOf = (room: string) => testEnv.TEST_DO.get(testEnv.TEST_DO.idFromName(room))
const watch = { t: 'presence', watch: true }
const set = (tab: string, state: unknown) => ({ t: 'presence', tab, state })
const stepOf = (state: unknown) => (state as { step?: number } | undefined)?.step

/** What presence must never touch: the log's head and size, and the tables. */
async function durable(room: string) {
  const stub = stubOf(room)
  return { state: await stub.state(), messages: await stub.rows('messages'), sql: await stub.count('SELECT count(*) FROM sqlite_master') }
}

describe('presence', () => {
  it('a set reaches every watcher under the user of the socket’s claims, whatever the frame claims', async () => {
    const room = freshRoom('presence')
    const { socket: ann } = await TestSocket.connect(room, 'ann')
    const { socket: bob } = await TestSocket.connect(room, 'bob')
    bob.send(watch)
    const view = await bob.next('presence', (f) => f.all === true)
    expect(view).toMatchObject({ entries: [] })
    const before = await durable(room)

    ann.send({ ...set('t1', { typing: true }), user: 'bob', socket: view.you })
    const got = await bob.next('presence', (f) => f.all !== true)
    expect(got.entries).toEqual([{ socket: expect.any(String), tab: 't1', user: 'ann', state: { typing: true } }])
    expect(got.entries[0]!.socket).not.toBe(view.you)
    expect(await durable(room)).toEqual(before) // no row, no change-log entry, no table
    ann.close()
    bob.close()
  })

  it('the app’s hook refuses a state with a typed presence-error; nobody hears it', async () => {
    const room = freshRoom('presence-hook')
    const { socket: ann } = await TestSocket.connect(room, 'ann')
    const { socket: bob } = await TestSocket.connect(room, 'bob')
    bob.send(watch)
    await bob.next('presence')
    ann.send(set('t1', { as: 'bob' }))
    expect(await ann.next('presence-error')).toEqual({
      t: 'presence-error', tab: 't1', code: ErrorCode.UNAUTHORIZED, error: 'UNAUTHORIZED', message: 'you can only be present as yourself',
    })
    ann.send(set('t1', { as: 'ann' }))
    expect((await bob.next('presence')).entries).toEqual([expect.objectContaining({ user: 'ann', state: { as: 'ann' } })])
    await bob.barrier()
    expect(bob.all('presence')).toHaveLength(2) // the view and the accepted set only
    ann.close()
    bob.close()
  })

  it('over the size or the rate limit: a typed error, and nothing else changes', async () => {
    const room = freshRoom('presence-limits')
    const { socket: ann, welcome } = await TestSocket.connect(room, 'ann')
    const { socket: bob } = await TestSocket.connect(room, 'bob')
    bob.send(watch)
    await bob.next('presence')
    ann.send(set('t1', 'kept'))
    await bob.next('presence')
    const before = await durable(room)

    ann.send(set('t1', 'x'.repeat(welcome.limits.maxPresenceBytesPerSocket)))
    expect(await ann.next('presence-error')).toMatchObject({ tab: 't1', code: ErrorCode.TOO_LARGE, error: 'TOO_LARGE' })
    for (let i = 0; i <= welcome.limits.presenceRateBurst; i++) ann.send(set('t1', i))
    expect(await ann.next('presence-error')).toMatchObject({ tab: 't1', code: ErrorCode.RATE_LIMITED, error: 'RATE_LIMITED' })

    await bob.barrier()
    // bob heard the sets inside the burst, never the refused ones.
    const heard = bob.all('presence').slice(2).flatMap((f) => f.entries.map((e) => e.state))
    expect(heard.length).toBeLessThan(welcome.limits.presenceRateBurst + 1)
    expect(heard).not.toContain('x'.repeat(welcome.limits.maxPresenceBytesPerSocket))
    expect(await durable(room)).toEqual(before)
    expect(ann.closed).toBeUndefined()
    ann.close()
    bob.close()
  })

  it('a closed socket’s entries leave every other view at once', async () => {
    const room = freshRoom('presence-close')
    const { socket: ann } = await TestSocket.connect(room, 'ann')
    const { socket: bob } = await TestSocket.connect(room, 'bob')
    bob.send(watch)
    await bob.next('presence')
    ann.send(set('t1', 1))
    ann.send(set('t2', 2))
    await bob.next('presence')
    await bob.next('presence')
    const closedAt = Date.now()
    ann.close()
    const gone = await bob.next('presence', () => true, 1_000)
    expect(Date.now() - closedAt).toBeLessThan(1_000)
    expect([...gone.entries].sort((a, b) => (a.tab < b.tab ? -1 : 1))).toEqual([
      { socket: expect.any(String), tab: 't1', user: 'ann' },
      { socket: expect.any(String), tab: 't2', user: 'ann' },
    ])
    bob.close()
  })

  it('registerSync again in a running instance restores each socket’s latest presence', async () => {
    // The shell reads each attachment once an instance: the presence it
    // hands the new core must be the one stored last, not the one first read.
    const room = freshRoom('presence-again')
    const { socket: ann } = await TestSocket.connect(room, 'ann')
    const { socket: bob } = await TestSocket.connect(room, 'bob')
    bob.send(watch)
    await bob.next('presence')
    ann.send(set('t1', { step: 1 }))
    await bob.next('presence', (f) => stepOf(f.entries[0]?.state) === 1)
    ann.send(set('t1', { step: 2 }))
    await bob.next('presence', (f) => stepOf(f.entries[0]?.state) === 2)
    const instance = await stubOf(room).whoAmI()
    await stubOf(room).registerAgain()

    const { socket: cat } = await TestSocket.connect(room, 'cat')
    cat.send(watch)
    const view = await cat.next('presence')
    expect(view.entries.map((e) => [e.user, e.tab, e.state])).toEqual([['ann', 't1', { step: 2 }]])
    expect(await stubOf(room).whoAmI()).toBe(instance) // the same instance throughout
    ann.close()
    bob.close()
    cat.close()
  })

  it('a DO that hibernates and wakes keeps everyone’s presence, and who watches', { timeout: 90_000 }, async () => {
    const room = freshRoom('presence-evict')
    const { socket: ann } = await TestSocket.connect(room, 'ann')
    const { socket: bob } = await TestSocket.connect(room, 'bob')
    bob.send(watch)
    await bob.next('presence')
    ann.send(set('t1', { typing: true }))
    bob.send(set('t1', { typing: false, at: 'row-7' }))
    await bob.next('presence', (f) => f.entries[0]?.user === 'ann')
    await bob.next('presence', (f) => f.entries[0]?.user === 'bob')
    const before = await stubOf(room).whoAmI()
    await untilEvicted(() => stubOf(room).whoAmI(), before)

    // A new socket after the wake sees both, restored from the attachments.
    const { socket: cat } = await TestSocket.connect(room, 'cat')
    cat.send(watch)
    const view = await cat.next('presence')
    expect(view.entries.map((e) => [e.user, e.tab, e.state])).toEqual(
      expect.arrayContaining([['ann', 't1', { typing: true }], ['bob', 't1', { typing: false, at: 'row-7' }]]),
    )
    expect(view.entries).toHaveLength(2)
    // bob still watches without asking again, and ann's close still removes her.
    ann.send(set('t1', { typing: false }))
    expect((await bob.next('presence')).entries).toEqual([expect.objectContaining({ user: 'ann', state: { typing: false } })])
    ann.close()
    expect((await bob.next('presence')).entries).toEqual([expect.objectContaining({ user: 'ann', tab: 't1' })])
    expect(bob.all('welcome')).toHaveLength(1) // the same socket throughout
    bob.close()
    cat.close()
  })
})
