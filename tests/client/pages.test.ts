// One-off pages (docs/protocol.md §4.8) through a real @tanstack/db
// on-demand collection against a scripted server (FakeSocket): a request
// with a cursor is served by page reads that hold no subscription, and a
// page never resurrects a row a newer change removed or replaced.
import { createCollection, type LoadSubsetOptions } from '@tanstack/db'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { doCollectionOptions } from '../../worker/src/client/collection.js'
import { PageError } from '../../worker/src/client/errors.js'
import { WebSocketTransport } from '../../worker/src/client/transport.js'
import { ErrorCode } from '../../worker/src/protocol/index.js'
import { FakeSocket, tick, until } from './fake-socket.js'

type Task = { id: string; category: string; rank: number }
const task = (id: string, category: string, rank: number): Task => ({ id, category, rank })

let transport: WebSocketTransport
beforeEach(() => {
  FakeSocket.reset()
  transport = new WebSocketTransport({ url: 'ws://do/sync/room', WebSocket: FakeSocket, backoff: { initialMs: 2, maxMs: 4 }, watchNetwork: false })
})
afterEach(() => transport.close())

function setup() {
  const tasks = createCollection(
    doCollectionOptions<Task>({ transport, table: 'tasks', getKey: (t) => t.id, syncMode: 'on-demand', cursorLoads: 'page', startSync: true, id: 'tasks' }),
  )
  const ws = FakeSocket.last
  ws.handshake('e1', 0)
  const sync = (tasks as unknown as { _sync: { loadSubset: (o: LoadSubsetOptions) => true | Promise<void>; unloadSubset: (o: LoadSubsetOptions) => void } })._sync
  return { tasks, ws, load: (o: LoadSubsetOptions) => Promise.resolve(sync.loadSubset(o)), unload: sync.unloadSubset.bind(sync) }
}

const ref = (col: string) => ({ type: 'ref', path: ['t', col] })
const val = (value: unknown) => ({ type: 'val', value })
const fn = (name: string, ...args: unknown[]) => ({ type: 'func', name, args }) as unknown as LoadSubsetOptions['where']
const byRankDesc = [{ expression: ref('rank'), compareOptions: { direction: 'desc', nulls: 'last' } }] as unknown as LoadSubsetOptions['orderBy']
/** TanStack's request for the next `limit` rows below rank `v` (rank desc). */
const below = (v: number, limit: number): LoadSubsetOptions => ({
  orderBy: byRankDesc,
  limit,
  cursor: { whereFrom: fn('lt', ref('rank'), val(v)), whereCurrent: fn('eq', ref('rank'), val(v)) } as never,
})

describe('pages on an on-demand collection', () => {
  it('a request with a cursor is one page read (no sub): the whole tie of the cursor value, then limit rows, then the rest of the last tie', async () => {
    const { tasks, ws, load } = setup()
    const done = load(below(5, 2))
    await tick()
    expect(ws.framesOf('sub')).toHaveLength(0)
    const [first] = ws.framesOf('page')
    expect(first).toEqual({ t: 'page', id: first!.id, c: 'tasks', orderBy: [{ col: 'rank', dir: 'desc', nulls: 'last' }], limit: 2, cursor: { values: [5], k: '' } })
    // Ties at 5, then 2 rows after: the page is full, so the rest of rank 3's tie is asked for.
    ws.deliver({ t: 'page', id: first!.id, c: 'tasks', seq: 4, rows: [task('a', 'x', 5), task('b', 'x', 4)], more: true })
    ws.deliver({ t: 'page', id: first!.id, c: 'tasks', seq: 4, rows: [task('c', 'x', 3)] })
    await until(() => ws.framesOf('page').length === 2)
    const second = ws.framesOf('page')[1]!
    expect(second.cursor).toEqual({ values: [3], k: 'c' })
    expect(second.limit).toBe(1)
    ws.deliver({ t: 'page', id: second.id, c: 'tasks', seq: 4, rows: [task('d', 'x', 3), task('e', 'x', 2)] })
    await done
    // e is past the served prefix (rank 3): dropped.
    expect([...tasks.keys()].sort()).toEqual(['a', 'b', 'c', 'd'])
  })

  it('a page read before a change that arrives first never resurrects a deleted row nor an older value', async () => {
    const { tasks, ws, load } = setup()
    // A live subset holds x and y.
    const live = load({ where: fn('eq', ref('category'), val('live')) })
    ws.deliver({ t: 'snapshot', sub: 'tasks#1', c: 'tasks', seq: 5, rows: [task('x', 'live', 4), task('y', 'live', 3)] })
    await live
    const paging = load(below(9, 5))
    await tick()
    const [page] = ws.framesOf('page')
    // Newer changes are applied first: x deleted at 6, y updated at 7.
    ws.deliver({ t: 'changes', seq: 6, changes: [{ c: 'tasks', k: 'x' }] })
    ws.deliver({ t: 'changes', seq: 7, changes: [{ c: 'tasks', k: 'y', row: task('y', 'live', 30) }] })
    // Then the page, read at 5, holding both as they were, and z.
    ws.deliver({ t: 'page', id: page!.id, c: 'tasks', seq: 5, rows: [task('x', 'live', 4), task('y', 'live', 3), task('z', 'old', 1)] })
    await paging
    expect(tasks.has('x')).toBe(false)
    expect(tasks.get('y')).toMatchObject({ rank: 30 })
    expect(tasks.get('z')).toMatchObject({ rank: 1 })
  })

  it('releasing the page load removes the rows only it holds, not those a live subset holds too', async () => {
    const { tasks, ws, load, unload } = setup()
    const live = load({ where: fn('eq', ref('category'), val('live')) })
    ws.deliver({ t: 'snapshot', sub: 'tasks#1', c: 'tasks', seq: 1, rows: [task('l', 'live', 5)] })
    await live
    const options = below(9, 5)
    const paging = load(options)
    await tick()
    const [page] = ws.framesOf('page')
    ws.deliver({ t: 'page', id: page!.id, c: 'tasks', seq: 1, rows: [task('l', 'live', 5), task('p', 'old', 2)] })
    await paging
    expect([...tasks.keys()].sort()).toEqual(['l', 'p'])
    unload(options)
    expect([...tasks.keys()]).toEqual(['l'])
  })

  it('a page for an unknown collection rejects with PageError, never an empty page', async () => {
    const { ws, load } = setup()
    const paging = load(below(9, 5))
    await tick()
    const [page] = ws.framesOf('page')
    ws.deliver({ t: 'page-error', id: page!.id, code: ErrorCode.UNKNOWN_COLLECTION, error: 'UNKNOWN_COLLECTION', message: "collection 'tasks' is not registered" })
    const error = await paging.catch((e: unknown) => e)
    expect(error).toBeInstanceOf(PageError)
    expect(error).toMatchObject({ code: ErrorCode.UNKNOWN_COLLECTION })
  })

  it('a page lost with its socket is asked again on the next one, and its half-received rows are dropped', async () => {
    const { tasks, ws, load } = setup()
    const paging = load(below(9, 5))
    await tick()
    const [page] = ws.framesOf('page')
    ws.deliver({ t: 'page', id: page!.id, c: 'tasks', seq: 1, rows: [task('gone', 'old', 2)], more: true })
    ws.drop(1006)
    await until(() => FakeSocket.instances.length === 2)
    const next = FakeSocket.last
    next.handshake('e1', 1)
    await until(() => next.framesOf('page').length === 1)
    expect(next.framesOf('page')[0]!.id).toBe(page!.id)
    next.deliver({ t: 'page', id: page!.id, c: 'tasks', seq: 2, rows: [task('kept', 'old', 1)] })
    await paging
    expect([...tasks.keys()]).toEqual(['kept'])
  })
})
