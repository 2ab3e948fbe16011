// The on-demand collection against a scripted server (FakeSocket).
import { createCollection, type LoadSubsetOptions } from '@tanstack/db'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { doCollectionOptions } from '../../worker/src/client/collection.js'
import { SubscriptionError } from '../../worker/src/client/errors.js'
import { WebSocketTransport } from '../../worker/src/client/transport.js'
import type { SubBody } from '../../worker/src/protocol/index.js'
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
    doCollectionOptions<Task>({ transport, table: 'tasks', getKey: (t) => t.id, syncMode: 'on-demand', startSync: true, id: 'tasks' }),
  )
  const ws = FakeSocket.last
  ws.handshake('e1', 0)
  const sync = (tasks as unknown as { _sync: { loadSubset: (o: LoadSubsetOptions) => true | Promise<void>; unloadSubset: (o: LoadSubsetOptions) => void } })._sync
  const subs = () => ws.sent.flatMap((f): SubBody[] => (f.t === 'sub' ? [f] : []))
  return { tasks, ws, load: (o: LoadSubsetOptions) => Promise.resolve(sync.loadSubset(o)), unload: sync.unloadSubset.bind(sync), subs }
}

const ref = (col: string) => ({ type: 'ref', path: ['t', col] })
const val = (value: unknown) => ({ type: 'val', value })
const where = (name: string, ...args: unknown[]) => ({ type: 'func', name, args }) as unknown as LoadSubsetOptions['where']

describe('on-demand collection', () => {
  it('is ready at once; a load sends one sub and resolves once its snapshot is applied', async () => {
    const { tasks, ws, load, subs } = setup()
    await until(() => tasks.status === 'ready')
    expect(tasks.size).toBe(0)
    let loaded = false
    const p = load({ where: where('eq', ref('category'), val('a')) }).then(() => (loaded = true))
    expect(subs()).toEqual([
      { t: 'sub', id: 'tasks#1', c: 'tasks', where: { type: 'func', name: 'eq', args: [{ type: 'ref', path: ['category'] }, { type: 'val', value: 'a' }] } },
    ])
    await tick()
    expect(loaded).toBe(false)
    ws.deliver({ t: 'snapshot', sub: 'tasks#1', c: 'tasks', seq: 1, rows: [task('x', 'a', 1)] })
    await p
    expect(tasks.get('x')).toMatchObject(task('x', 'a', 1))
  })

  it("a narrow subset's move-out never removes a row a wider subset holds; a removal frame removes it", async () => {
    const { tasks, ws, load } = setup()
    const wide = load({ where: where('eq', ref('category'), val('a')) })
    const narrow = load({ where: where('and', where('eq', ref('category'), val('a')), where('gt', ref('rank'), val(5))) })
    ws.deliver(
      { t: 'snapshot', sub: 'tasks#1', c: 'tasks', seq: 1, rows: [task('x', 'a', 9), task('y', 'a', 1)], more: true },
      { t: 'snapshot', sub: 'tasks#2', c: 'tasks', seq: 1, rows: [task('x', 'a', 9)] },
    )
    await Promise.all([wide, narrow])
    expect(tasks.size).toBe(2)
    // x leaves the narrow subset only.
    ws.deliver({ t: 'changes', seq: 2, changes: [{ c: 'tasks', k: 'x', row: task('x', 'a', 2) }] })
    expect(tasks.get('x')).toMatchObject({ rank: 2 })
    // x leaves both.
    ws.deliver({ t: 'changes', seq: 3, changes: [{ c: 'tasks', k: 'x', row: task('x', 'b', 2) }] })
    expect(tasks.has('x')).toBe(false)
    // z moves into the narrow (and the wide) subset; a removal frame removes it.
    ws.deliver({ t: 'changes', seq: 4, changes: [{ c: 'tasks', k: 'z', row: task('z', 'a', 7) }] })
    expect(tasks.has('z')).toBe(true)
    ws.deliver({ t: 'changes', seq: 5, changes: [{ c: 'tasks', k: 'z' }] })
    expect(tasks.has('z')).toBe(false)
  })

  it('a window keeps the predicate its snapshot resolved to, for live changes and for resume', async () => {
    const { tasks, ws, load } = setup()
    const orderBy = [{ expression: ref('rank'), compareOptions: { direction: 'desc', nulls: 'last' } }] as unknown as LoadSubsetOptions['orderBy']
    const p = load({ orderBy, limit: 1, offset: 0 })
    const resolved = { type: 'func' as const, name: 'gte' as const, args: [{ type: 'ref' as const, path: ['rank'] }, { type: 'val' as const, value: 9 }] }
    ws.deliver({ t: 'snapshot', sub: 'tasks#1', c: 'tasks', seq: 1, rows: [task('x', 'a', 9)], where: resolved })
    await p
    ws.deliver({ t: 'changes', seq: 2, changes: [{ c: 'tasks', k: 'y', row: task('y', 'b', 10) }] })
    expect(tasks.has('y')).toBe(true) // moved in (matches the resolved range)
    ws.deliver({ t: 'changes', seq: 3, changes: [{ c: 'tasks', k: 'x', row: task('x', 'a', 3) }] })
    expect(tasks.has('x')).toBe(false) // moved out
    ws.drop()
    await until(() => FakeSocket.instances.length === 2)
    FakeSocket.last.open()
    expect(FakeSocket.last.sent[0]).toMatchObject({ t: 'hello', since: 3, subs: [{ id: 'tasks#1', c: 'tasks', where: resolved, resume: true }] })
  })

  it('identical requests share one sub; unload is idempotent and the last one unsubscribes and drops rows', async () => {
    const { tasks, ws, load, unload, subs } = setup()
    const o1: LoadSubsetOptions = { where: where('eq', ref('category'), val('a')) }
    const o2: LoadSubsetOptions = { where: where('eq', ref('category'), val('a')) }
    const both = Promise.all([load(o1), load(o2)])
    expect(subs()).toHaveLength(1)
    ws.deliver({ t: 'snapshot', sub: 'tasks#1', c: 'tasks', seq: 1, rows: [task('x', 'a', 1)] })
    await both
    unload(o1)
    unload(o1)
    expect(ws.framesOf('unsub')).toEqual([])
    expect(tasks.has('x')).toBe(true)
    unload(o2)
    expect(ws.framesOf('unsub')).toEqual([{ t: 'unsub', id: 'tasks#1' }])
    expect(tasks.size).toBe(0)
  })

  it('a release before the snapshot settles the load and installs nothing; a reload gets a fresh sub id', async () => {
    const { tasks, ws, load, unload, subs } = setup()
    const o: LoadSubsetOptions = { where: where('eq', ref('category'), val('a')) }
    const p = load(o).then(() => 'resolved', (e: Error) => e.name)
    unload(o)
    expect(await p).toBe('AbortError')
    expect(ws.framesOf('unsub')).toEqual([{ t: 'unsub', id: 'tasks#1' }])
    ws.deliver({ t: 'snapshot', sub: 'tasks#1', c: 'tasks', seq: 1, rows: [task('x', 'a', 1)] })
    expect(tasks.size).toBe(0)
    void load({ where: where('eq', ref('category'), val('a')) })
    expect(subs().map((s) => s.id)).toEqual(['tasks#1', 'tasks#2'])
  })

  it('an aborted signal releases a waiting load', async () => {
    const { ws, load } = setup()
    const controller = new AbortController()
    const p = load({ where: where('eq', ref('category'), val('a')), signal: controller.signal }).catch((e: Error) => e.name)
    controller.abort()
    expect(await p).toBe('AbortError')
    expect(ws.framesOf('unsub')).toHaveLength(1)
  })

  it('a refused subscription rejects the load with a SubscriptionError, distinct from an empty result', async () => {
    const { ws, load } = setup()
    const refused = load({ where: where('eq', ref('nope'), val(1)) }).catch((e: unknown) => e)
    const empty = load({ where: where('eq', ref('category'), val('zzz')) })
    ws.deliver(
      { t: 'sub-error', sub: 'tasks#1', code: 8, error: 'UNKNOWN_COLUMN', message: 'no column nope' },
      { t: 'snapshot', sub: 'tasks#2', c: 'tasks', seq: 1, rows: [] },
    )
    const error = await refused
    expect(error).toBeInstanceOf(SubscriptionError)
    expect((error as SubscriptionError).codeName).toBe('UNKNOWN_COLUMN')
    await expect(empty).resolves.toBeUndefined()
  })

  it('a unit that fails half-way is undone; the subsets it reached resync with fresh snapshots', async () => {
    let poisoned = false
    const tasks = createCollection(
      doCollectionOptions<Task>({
        transport,
        table: 'tasks',
        getKey: (t) => {
          if (poisoned && t.id === 'boom') throw new Error('bad row')
          return t.id
        },
        syncMode: 'on-demand',
        startSync: true,
        id: 'tasks',
      }),
    )
    const ws = FakeSocket.last
    ws.handshake('e1', 0)
    const sync = (tasks as unknown as { _sync: { loadSubset: (o: LoadSubsetOptions) => true | Promise<void> } })._sync
    const a = Promise.resolve(sync.loadSubset({ where: where('eq', ref('category'), val('a')) }))
    ws.deliver({ t: 'snapshot', sub: 'tasks#1', c: 'tasks', seq: 1, rows: [task('x', 'a', 1)] })
    await a
    poisoned = true
    ws.deliver({ t: 'changes', seq: 2, changes: [{ c: 'tasks', k: 'x' }, { c: 'tasks', k: 'boom', row: task('boom', 'a', 2) }] })
    expect(tasks.has('x')).toBe(true) // the removal of x was undone with the rest of the unit
    expect(tasks.status).toBe('error')
    expect(ws.framesOf('sub').map((f) => f.id)).toEqual(['tasks#1', 'tasks#1'])
    poisoned = false
    ws.deliver({ t: 'snapshot', sub: 'tasks#1', c: 'tasks', seq: 3, rows: [task('boom', 'a', 2)] })
    expect([...tasks.keys()]).toEqual(['boom'])
    expect(tasks.status).toBe('ready')
  })

  it('a sub-error for a loaded subset removes the rows only it held and surfaces on the collection', async () => {
    const { tasks, ws, load, unload } = setup()
    const o: LoadSubsetOptions = { where: where('eq', ref('category'), val('a')) }
    const wide = load(o)
    const other = load({ where: where('eq', ref('rank'), val(1)) })
    ws.deliver(
      { t: 'snapshot', sub: 'tasks#1', c: 'tasks', seq: 1, rows: [task('x', 'a', 1), task('y', 'a', 2)], more: true },
      { t: 'snapshot', sub: 'tasks#2', c: 'tasks', seq: 1, rows: [task('x', 'a', 1)] },
    )
    await Promise.all([wide, other])
    ws.deliver({ t: 'sub-error', sub: 'tasks#1', code: 7, error: 'UNKNOWN_COLLECTION', message: 'tasks was dropped' })
    expect([...tasks.keys()]).toEqual(['x']) // y was held by the refused subset only
    expect(tasks.status).toBe('error')
    expect(tasks.utils.syncError?.codeName).toBe('UNKNOWN_COLLECTION')
    unload(o)
    expect(ws.framesOf('unsub')).toEqual([]) // the server already forgot it
    // No query needs the refused subset any more: the collection is ready again.
    expect(tasks.status).toBe('ready')
    expect(tasks.utils.syncError).toBeUndefined()
  })

  it('a RATE_LIMITED sub-error keeps the load waiting and retries the sub', async () => {
    const { tasks, ws, load } = setup()
    const p = load({ where: where('eq', ref('category'), val('a')) })
    ws.deliver({ t: 'sub-error', sub: 'tasks#1', code: 19, error: 'RATE_LIMITED', message: 'slow down' })
    await until(() => ws.framesOf('sub').length === 2)
    ws.deliver({ t: 'snapshot', sub: 'tasks#1', c: 'tasks', seq: 1, rows: [task('x', 'a', 1)] })
    await p
    expect(tasks.has('x')).toBe(true)
    expect(tasks.status).toBe('ready')
  })

  it('a request the wire cannot express rejects with a SubscriptionError before anything is sent', async () => {
    const { load, subs } = setup()
    const orderBy = [{ expression: where('lower', ref('category')), compareOptions: { direction: 'asc', nulls: 'first' } }] as unknown as LoadSubsetOptions['orderBy']
    const error = await load({ orderBy, limit: 3 }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(SubscriptionError)
    expect((error as SubscriptionError).codeName).toBe('UNSUPPORTED_PREDICATE')
    expect(subs()).toEqual([])
  })
})
