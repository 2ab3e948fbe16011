// On-demand sync (syncMode 'on-demand') with real @tanstack/db collections and
// live queries in Node, against the fixture DO in local workerd, over real
// WebSockets. A counting WebSocket records every frame each way, so the tests
// can check what reached the client, not only what it shows.
import {
  BTreeIndex,
  and,
  createCollection,
  createLiveQueryCollection,
  eq,
  gt,
  ilike,
  like,
  type LoadSubsetOptions,
  lower,
  multiply,
  or,
} from '@tanstack/db'
import { afterEach, describe, expect, it } from 'vitest'
import type WebSocket from 'ws'

import {
  doCollectionOptions,
  ErrorCode,
  PageError,
  SubscriptionError,
  WebSocketTransport,
  type WebSocketConstructor,
} from '../../worker/src/client/index.js'
import type { ClientFrame, HelloFrame, ServerFrame, SubBody } from '../../worker/src/protocol/index.js'
import { changesIn } from '../../worker/src/client/codec.js'
import { admin, baseUrl, freshRoom, Network, type Task, until } from './harness.js'

/** Every frame one client sent and received, and the task rows it received. */
class Wire {
  sent: ClientFrame[] = []
  received: ServerFrame[] = []
  /** Fresh subscriptions: `sub` frames, and the non-resumed subs of a `hello`. */
  get subs(): SubBody[] {
    return this.sent.flatMap((f) =>
      f.t === 'sub' ? [f] : f.t === 'hello' ? (f.subs ?? []).filter((s) => s.resume !== true) : [],
    )
  }
  get unsubs(): string[] {
    return this.sent.flatMap((f) => (f.t === 'unsub' ? [f.id] : []))
  }
  get hellos(): HelloFrame[] {
    return this.sent.filter((f): f is HelloFrame => f.t === 'hello')
  }
  /** Task rows received in snapshots and changes (a removal carries no row). */
  rowsReceived(from = 0): number {
    let n = 0
    for (const f of this.received.slice(from)) {
      if (f.t === 'snapshot' && f.c === 'tasks') n += f.rows.length
      if (f.t === 'changes') n += changesIn(f).filter((c) => c.c === 'tasks' && c.row !== undefined).length
    }
    return n
  }
  snapshotsSince(from: number) {
    return this.received.slice(from).filter((f) => f.t === 'snapshot')
  }
}

function countingWebSocket(network: Network, wire: Wire): WebSocketConstructor {
  const Base = network.WebSocket as unknown as typeof WebSocket
  class Counting extends Base {
    constructor(url: string) {
      super(url)
      this.on('message', (data: unknown) => {
        wire.received.push(JSON.parse(String(data)) as ServerFrame)
      })
    }
    override send(data: unknown, ...rest: unknown[]): void {
      wire.sent.push(JSON.parse(String(data)) as ClientFrame)
      ;(super.send as (...args: unknown[]) => void)(data, ...rest)
    }
  }
  return Counting as unknown as WebSocketConstructor
}

let counter = 0
const open: WebSocketTransport[] = []
const queries: Array<{ cleanup: () => Promise<void> }> = []
afterEach(async () => {
  for (const q of queries.splice(0)) await q.cleanup().catch(() => {})
  for (const t of open.splice(0)) t.close()
})

function onDemandClient(room: string, user = 'ann', kind: 'sync' | 'short' = 'sync', cursorLoads?: 'page') {
  const network = new Network()
  const wire = new Wire()
  const transport = new WebSocketTransport({
    url: `${baseUrl().replace('http', 'ws')}/${kind}/${room}?user=${user}`,
    WebSocket: countingWebSocket(network, wire),
    backoff: { initialMs: 50, maxMs: 500 },
    watchNetwork: false,
  })
  open.push(transport)
  const tasks = createCollection(
    doCollectionOptions<Task>({
      transport,
      table: 'tasks',
      getKey: (t) => t.id,
      syncMode: 'on-demand',
      id: `od-tasks-${user}-${counter++}`,
      startSync: true,
      autoIndex: 'eager',
      defaultIndexType: BTreeIndex,
      ...(cursorLoads ? { cursorLoads } : {}),
    }),
  )
  return { transport, network, wire, tasks }
}
type OnDemandClient = ReturnType<typeof onDemandClient>

/** A second client that only writes. */
function writer(room: string, kind: 'sync' | 'short' = 'sync') {
  const transport = new WebSocketTransport({
    url: `${baseUrl().replace('http', 'ws')}/${kind}/${room}?user=bob`,
    WebSocket: new Network().WebSocket,
    backoff: { initialMs: 50, maxMs: 500 },
    watchNetwork: false,
  })
  open.push(transport)
  return {
    setRank: (id: string, rank: number) => transport.mutate([{ c: 'tasks', op: 'update', k: id, cols: { rank } }]),
    update: (id: string, cols: Partial<Task>) => transport.mutate([{ c: 'tasks', op: 'update', k: id, cols }]),
    remove: (id: string) => transport.mutate([{ c: 'tasks', op: 'delete', k: id }]),
  }
}

const id = (i: number) => `t${String(i).padStart(5, '0')}`
async function seed(room: string, count: number, kind: 'sync' | 'short' = 'sync') {
  await admin(kind, room, 'seed-tasks', { count })
}

function live<T extends object>(q: T & { cleanup: () => Promise<void> }): T {
  queries.push(q)
  return q
}

/** Live query rows in query order, as ids. */
const idsOf = (q: { toArray: Array<{ id: string }> }) => q.toArray.map((t) => t.id)
const sortedKeys = (c: OnDemandClient['tasks']) => [...c.keys()].map(String).sort()

/** Direct loadSubset / unloadSubset, as core calls them. */
function loader(c: OnDemandClient) {
  const sync = (c.tasks as unknown as { _sync: { loadSubset: (o: LoadSubsetOptions) => true | Promise<void>; unloadSubset: (o: LoadSubsetOptions) => void } })._sync
  return {
    load: (o: LoadSubsetOptions) => Promise.resolve(sync.loadSubset(o)),
    unload: (o: LoadSubsetOptions) => sync.unloadSubset(o),
  }
}
const ref = (col: string) => ({ type: 'ref', path: [col] }) as unknown as NonNullable<LoadSubsetOptions['where']>
const whereEq = (col: string, value: unknown) =>
  ({ type: 'func', name: 'eq', args: [ref(col), { type: 'val', value }] }) as unknown as NonNullable<LoadSubsetOptions['where']>

describe('on-demand loading', () => {
  it('is ready and empty until a query needs rows; a where subset loads only matching rows', async () => {
    const room = freshRoom('od')
    await seed(room, 30)
    const ann = onDemandClient(room)
    await until(() => ann.tasks.status === 'ready', 'ready at once (on-demand)')
    expect(ann.tasks.size).toBe(0)

    const q = live(createLiveQueryCollection((b) => b.from({ t: ann.tasks }).where(({ t }) => eq(t.category, 'a'))))
    await q.preload()
    expect(q.size).toBe(10)
    expect(ann.tasks.size).toBe(10)
    expect([...ann.tasks.values()].every((t) => t.category === 'a')).toBe(true)
    expect(ann.wire.rowsReceived()).toBe(10)
    expect(ann.wire.subs).toHaveLength(1)
    expect(ann.wire.subs[0]!.where).toEqual({
      type: 'func',
      name: 'eq',
      args: [{ type: 'ref', path: ['category'] }, { type: 'val', value: 'a' }],
    })

    // It stays live: a row moving into the subset arrives, one moving out leaves.
    const bob = writer(room)
    await bob.update(id(1), { category: 'a' }) // task 1 is category b
    await until(() => q.has(id(1)), 'task 1 moves in')
    await bob.update(id(3), { category: 'c' }) // task 3 is category a
    await until(() => !q.has(id(3)) && !ann.tasks.has(id(3)), 'task 3 moves out')
  })

  it("ilike, lower and arithmetic load the rows TanStack DB's own evaluator keeps", async () => {
    const room = freshRoom('od-fn')
    await seed(room, 30) // titles 'task 1' … 'task 30', rank i
    const ann = onDemandClient(room)
    const q = live(
      createLiveQueryCollection((b) =>
        b.from({ t: ann.tasks }).where(({ t }) => or(ilike(t.title, 'TASK 1%'), and(like(lower(t.title), '%2_'), gt(multiply(t.rank, 2), 50)))),
      ),
    )
    await q.preload()
    // task 1, 10-19; and task 26-29 (rank * 2 > 50, title ending '2x').
    const expected = [1, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 26, 27, 28, 29].map(id).sort()
    await until(() => q.size === expected.length, 'the matching tasks')
    expect(idsOf(q).sort()).toEqual(expected)
    expect(sortedKeys(ann.tasks)).toEqual(expected) // only these crossed the wire
  })

  it('an ordered window loads the top rows and tracks move-in and move-out', async () => {
    const room = freshRoom('od')
    await seed(room, 40)
    const bob = writer(room)
    await bob.setRank(id(35), 36) // a tie with task 36 at the window's boundary
    const ann = onDemandClient(room)

    const q = live(
      createLiveQueryCollection((b) =>
        b.from({ t: ann.tasks }).orderBy(({ t }) => t.rank, 'desc').limit(5),
      ),
    )
    await q.preload()
    expect(q.toArray.map((t) => t.rank)).toEqual([40, 39, 38, 37, 36])
    // The window's boundary ties are included, not more.
    const held = sortedKeys(ann.tasks)
    expect(held).toEqual([id(35), id(36), id(37), id(38), id(39), id(40)].sort())
    expect(ann.wire.rowsReceived()).toBeLessThanOrEqual(8)
    // TanStack also asks for the boundary tie (eq(rank, 36)); the window's
    // resolved range already holds it, so it adds no server subscription.
    expect(ann.wire.subs).toHaveLength(1)
    const windowSub = ann.wire.subs.find((s) => s.limit !== undefined)!
    expect(windowSub.orderBy).toEqual([{ col: 'rank', dir: 'desc', nulls: expect.any(String) }])
    const snapshot = ann.wire.received.find((f) => f.t === 'snapshot' && f.sub === windowSub.id)
    expect(snapshot && snapshot.t === 'snapshot' && snapshot.where).toBeTruthy()

    // Voted up past the boundary: moves in.
    await bob.setRank(id(3), 100)
    await until(() => idsOf(q)[0] === id(3), 'task 3 moves in at the top')
    expect(q.toArray.map((t) => t.rank)).toEqual([100, 40, 39, 38, 37])
    // Voted down: moves out of the collection.
    await bob.setRank(id(39), 1)
    await until(() => !ann.tasks.has(id(39)), 'task 39 moves out')
    await until(() => q.size === 5 && !q.has(id(39)), 'the window refills')
    expect(q.toArray.map((t) => t.rank)).toEqual([100, 40, 38, 37, 36])
  })

  it("a narrower subset's move-out keeps a row a wider subset still holds; a delete removes it from both", async () => {
    const room = freshRoom('od')
    await seed(room, 30)
    const ann = onDemandClient(room)
    // Not implied by one another: two server subscriptions.
    const wide = live(
      createLiveQueryCollection((b) => b.from({ t: ann.tasks }).where(({ t }) => or(eq(t.category, 'a'), eq(t.category, 'b')))),
    )
    const narrow = live(
      createLiveQueryCollection((b) =>
        b.from({ t: ann.tasks }).where(({ t }) => and(eq(t.category, 'a'), gt(t.rank, 20))),
      ),
    )
    await Promise.all([wide.preload(), narrow.preload()])
    expect(wide.size).toBe(20)
    expect(narrow.size).toBe(4) // 21, 24, 27, 30
    expect(ann.wire.subs).toHaveLength(2)
    const bob = writer(room)
    await bob.setRank(id(24), 2) // out of narrow, still in wide
    await until(() => !narrow.has(id(24)), 'task 24 leaves the narrow query')
    expect(ann.tasks.has(id(24))).toBe(true)
    expect(wide.has(id(24))).toBe(true)
    expect(ann.tasks.get(id(24))!.rank).toBe(2)
    await bob.remove(id(27))
    await until(() => !ann.tasks.has(id(27)), 'task 27 is deleted')
    expect(wide.has(id(27)) || narrow.has(id(27))).toBe(false)
  })

  it('identical requests share one server subscription; the last release unsubscribes and drops rows', async () => {
    const room = freshRoom('od')
    await seed(room, 30)
    const ann = onDemandClient(room)
    const build = () => createLiveQueryCollection((b) => b.from({ t: ann.tasks }).where(({ t }) => eq(t.category, 'b')))
    const q1 = build()
    const q2 = build()
    await Promise.all([q1.preload(), q2.preload()])
    expect(q1.size).toBe(10)
    expect(q2.size).toBe(10)
    expect(ann.wire.subs).toHaveLength(1)
    const subId = ann.wire.subs[0]!.id

    await q1.cleanup()
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(ann.wire.unsubs).toEqual([])
    expect(ann.tasks.size).toBe(10)
    await q2.cleanup()
    await until(() => ann.wire.unsubs.includes(subId), 'unsub is sent')
    await until(() => ann.tasks.size === 0, 'the rows are dropped')

    // Direct loads: same options shape, same sub; unload is idempotent.
    const { load, unload } = loader(ann)
    const o1: LoadSubsetOptions = { where: whereEq('category', 'c') }
    const o2: LoadSubsetOptions = { where: whereEq('category', 'c') }
    await Promise.all([load(o1), load(o2)])
    expect(ann.wire.subs).toHaveLength(2)
    expect(ann.tasks.size).toBe(10)
    unload(o1)
    unload(o1)
    expect(ann.tasks.size).toBe(10)
    unload(o2)
    expect(ann.tasks.size).toBe(0)
    expect(ann.wire.subs).toHaveLength(2)
    await until(() => ann.wire.unsubs.length === 2, 'second unsub')
  })

  it('a refused subscription rejects the load with a SubscriptionError; valid subsets stay', async () => {
    const room = freshRoom('od')
    await seed(room, 9)
    const ann = onDemandClient(room)
    const { load } = loader(ann)
    await load({ where: whereEq('category', 'a') })
    expect(ann.tasks.size).toBe(3)
    const error = await load({ where: whereEq('nope', 1) }).then(() => 'resolved', (e: unknown) => e)
    expect(error).toBeInstanceOf(SubscriptionError)
    expect((error as SubscriptionError).codeName).toBe('UNKNOWN_COLUMN')
    const unsupported = await load({
      where: { type: 'func', name: 'eq', args: [{ type: 'func', name: 'upper', args: [ref('title')] }, { type: 'val', value: 'T' }] } as never,
    }).then(() => 'resolved', (e: unknown) => e)
    expect((unsupported as SubscriptionError).codeName).toBe('UNSUPPORTED_PREDICATE')
    // An empty result is not an error.
    await expect(load({ where: whereEq('category', 'zzz') })).resolves.toBeUndefined()
    expect(ann.tasks.size).toBe(3)
    expect(ann.wire.subs).toHaveLength(4) // no resubscribe storm
  })

  it('writes are optimistic and confirmed by the cursor; a write outside every subset disappears once confirmed', async () => {
    const room = freshRoom('od')
    await seed(room, 6)
    const ann = onDemandClient(room)
    const q = live(createLiveQueryCollection((b) => b.from({ t: ann.tasks }).where(({ t }) => eq(t.category, 'a'))))
    await q.preload()
    const tx = ann.tasks.insert({ id: 'new-a', title: 'mine', done: 0, rank: 50, category: 'a' })
    expect(q.has('new-a')).toBe(true)
    await tx.isPersisted.promise
    expect(ann.tasks.has('new-a')).toBe(true)
    await ann.tasks.update('new-a', (d) => {
      d.title = 'edited'
    }).isPersisted.promise
    expect(q.get('new-a')!.title).toBe('edited')
    const outside = ann.tasks.insert({ id: 'new-b', title: 'other', done: 0, rank: 1, category: 'b' })
    await outside.isPersisted.promise
    await until(() => !ann.tasks.has('new-b'), 'the unsynced row disappears')
    const denied = ann.tasks.insert({ id: 'bad', title: 'forbidden', done: 0, rank: 1, category: 'a' })
    await expect(denied.isPersisted.promise).rejects.toThrow()
    expect(ann.tasks.has('bad')).toBe(false)
  })
})

describe('typed columns', () => {
  it('booleans, dates, JSON and 64-bit integers arrive typed and filter alike in the DO and in TanStack DB', async () => {
    const room = freshRoom('od-typed')
    await admin('sync', room, 'seed-accounts')
    const ann = onDemandClient(room)
    type Account = { id: string; active: boolean; created_at: Date; meta: unknown; counter: bigint; plain: unknown }
    const accounts = createCollection(
      doCollectionOptions<Account>({
        transport: ann.transport,
        table: 'accounts',
        getKey: (a) => a.id,
        syncMode: 'on-demand',
        id: `od-accounts-${counter++}`,
        startSync: true,
      }),
    )
    const active = live(createLiveQueryCollection((b) => b.from({ a: accounts }).where(({ a }) => eq(a.active, true))))
    const later = live(createLiveQueryCollection((b) => b.from({ a: accounts }).where(({ a }) => gt(a.created_at, new Date(1767225600000)))))
    const exact = live(createLiveQueryCollection((b) => b.from({ a: accounts }).where(({ a }) => eq(a.counter, 9007199254740993n))))
    await Promise.all([active.preload(), later.preload(), exact.preload()])
    const ids = (q: { toArray: Array<{ id: string }> }) => q.toArray.map((r) => r.id).sort()
    await until(() => active.size === 2 && later.size === 2 && exact.size === 1, 'the three filters')
    expect(ids(active)).toEqual(['a', 'c'])
    expect(ids(later)).toEqual(['b', 'c'])
    expect(ids(exact)).toEqual(['a']) // not 'b', whose counter is 2^53
    const a = accounts.get('a')!
    expect(a.active).toBe(true)
    expect(a.created_at).toEqual(new Date(1767225600000))
    expect(a.meta).toEqual({ tier: 'gold', tags: [1, 2] })
    expect(a.counter).toBe(9007199254740993n)
  })
})

describe('joins', () => {
  it('a join whose on-demand side is asked for 400 keys loads them as one in list and joins every row', async () => {
    const room = freshRoom('od-join')
    await seed(room, 1000)
    const ann = onDemandClient(room)
    // 400 notes, each naming a task: the eager side of the join.
    const notesOf = new Set(Array.from({ length: 400 }, (_, i) => id(2 * i + 3)))
    await ann.transport.mutate([...notesOf].map((k) => ({ c: 'notes', op: 'insert', k: `n-${k}`, cols: { id: `n-${k}`, body: k } })))
    const notes = createCollection(
      doCollectionOptions<{ id: string; body: string }>({
        transport: ann.transport,
        table: 'notes',
        getKey: (n) => n.id,
        id: `notes-${counter++}`,
        startSync: true,
      }),
    )
    await notes.preload()
    expect(notes.size).toBe(400)
    const q = live(
      createLiveQueryCollection((b) =>
        b
          .from({ n: notes })
          // A left join keeps the notes active and loads tasks by their keys
          // (an inner join would make the smaller side, the empty tasks, active).
          .join({ t: ann.tasks }, ({ n, t }) => eq(n.body, t.id), 'left')
          .select(({ n, t }) => ({ id: n.id, task: t?.id, title: t?.title })),
      ),
    )
    await q.preload()
    await until(() => q.size === 400 && q.toArray.every((r) => r.task !== undefined), 'every note joined with its task')
    expect(new Set(q.toArray.map((r) => r.task))).toEqual(notesOf)
    // The tasks collection holds only the demanded rows, asked for as in lists.
    expect(sortedKeys(ann.tasks)).toEqual([...notesOf].sort())
    const lists = ann.wire.subs.flatMap((s) => (s.where?.type === 'func' && s.where.name === 'in' ? [s.where] : []))
    expect(lists.length).toBeGreaterThan(0)
    const asked = lists.flatMap((w) => (w.type === 'func' && w.args[1]?.type === 'val' ? (w.args[1].value as string[]) : []))
    expect(new Set(asked)).toEqual(notesOf)
    // Past the 100 values that a chain of ORs could not hold.
    expect(Math.max(...lists.map((w) => (w.type === 'func' && w.args[1]?.type === 'val' ? (w.args[1].value as string[]).length : 0)))).toBeGreaterThan(100)
  })
})

describe('paging', () => {
  it('a paged ordered live query transfers only the rows it needs (5,000-task table)', async () => {
    const room = freshRoom('od')
    await seed(room, 5000)
    const ann = onDemandClient(room)
    const q = live(
      createLiveQueryCollection((b) =>
        b.from({ t: ann.tasks }).orderBy(({ t }) => t.rank, 'desc').limit(21), // pageSize 20 (+1), as useLiveInfiniteQuery
      ),
    )
    await q.preload()
    expect(q.toArray.map((t) => t.rank)).toEqual(Array.from({ length: 21 }, (_, i) => 5000 - i))
    const firstScreen = ann.wire.rowsReceived()
    console.log(`[on-demand] first screen (orderBy rank desc limit 20+1) of 5,000 tasks: ${firstScreen} rows received, ${ann.wire.subs.length} sub(s)`)
    expect(firstScreen).toBeLessThanOrEqual(22) // 21 rows (+ a boundary tie, none here)
    expect(ann.wire.subs).toHaveLength(1)

    // Next page: a bigger window, as fetchNextPage does.
    await q.utils.setWindow({ offset: 0, limit: 41 })
    await until(() => q.size === 41, 'page 2 is shown')
    expect(q.toArray.map((t) => t.rank)).toEqual(Array.from({ length: 41 }, (_, i) => 5000 - i))
    const twoPages = ann.wire.rowsReceived()
    console.log(`[on-demand] after page 2 (limit 40+1): ${twoPages} rows received, ${ann.wire.subs.length} sub(s)`)
    expect(twoPages).toBeLessThanOrEqual(45)
    expect(ann.tasks.size).toBeLessThanOrEqual(45)
  })
})

describe('pages (cursorLoads: page)', () => {
  it('the next page of a live window is a one-off page read: no second subscription, only the rows it needs', async () => {
    const room = freshRoom('od-page')
    await seed(room, 5000)
    const ann = onDemandClient(room, 'ann', 'sync', 'page')
    const q = live(createLiveQueryCollection((b) => b.from({ t: ann.tasks }).orderBy(({ t }) => t.rank, 'desc').limit(21)))
    await q.preload()
    expect(q.toArray.map((t) => t.rank)).toEqual(Array.from({ length: 21 }, (_, i) => 5000 - i))
    const firstScreen = ann.wire.rowsReceived()
    await q.utils.setWindow({ offset: 0, limit: 41 })
    await until(() => q.size === 41, 'page 2 is shown')
    expect(q.toArray.map((t) => t.rank)).toEqual(Array.from({ length: 41 }, (_, i) => 5000 - i))
    // One window subscription, the live one: the next page is read, not subscribed
    // (TanStack may also load a boundary's tie as a plain where, which subscribes).
    expect(ann.wire.subs.filter((s) => s.limit !== undefined)).toHaveLength(1)
    const pages = ann.wire.sent.filter((f) => f.t === 'page')
    expect(pages.length).toBeGreaterThanOrEqual(1)
    const replies = ann.wire.received.filter((f) => f.t === 'page')
    const pageRows = replies.reduce((n, f) => n + (f.t === 'page' ? f.rows.length : 0), 0)
    expect(pageRows).toBeLessThanOrEqual(25)
    expect(ann.tasks.size).toBeLessThanOrEqual(firstScreen + 25)
    const bytes = (f: unknown) => Buffer.byteLength(JSON.stringify(f))
    console.log(
      `[pages] next page of 20 below a live window of 5,000 tasks: ${pages.length} page frame(s) sent, ` +
        `${pages.map(bytes).join('+')} B; ${replies.length} repl(ies), ${pageRows} rows, ${replies.map(bytes).join('+')} B`,
    )
  })

  it('a page for an unknown collection is a PageError, never an empty page', async () => {
    const room = freshRoom('od-page')
    const ann = onDemandClient(room, 'ann', 'sync', 'page')
    const error = await ann.transport.page({ c: 'nope', limit: 5 }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(PageError)
    expect((error as PageError).code).toBe(ErrorCode.UNKNOWN_COLLECTION)
  })
})

describe('reconnect', () => {
  it('inside the retention window, subsets resume with their resolved predicate and do not reload', async () => {
    const room = freshRoom('od')
    await seed(room, 30)
    const ann = onDemandClient(room)
    const window = live(
      createLiveQueryCollection((b) => b.from({ t: ann.tasks }).orderBy(({ t }) => t.rank, 'desc').limit(5)),
    )
    const filtered = live(createLiveQueryCollection((b) => b.from({ t: ann.tasks }).where(({ t }) => eq(t.category, 'a'))))
    await Promise.all([window.preload(), filtered.preload()])
    const before = ann.wire.received.length
    const subsBefore = ann.wire.subs.length

    ann.network.cut()
    await until(() => ann.transport.status !== 'live', 'ann offline')
    const bob = writer(room)
    await bob.setRank(id(2), 99) // moves into the window (and is category c)
    await bob.update(id(4), { category: 'a' }) // moves into the filter
    await bob.remove(id(30)) // leaves both
    ann.network.restore()

    await until(() => window.has(id(2)) && filtered.has(id(4)) && !ann.tasks.has(id(30)), 'ann catches up')
    const hello = ann.wire.hellos.at(-1)!
    expect(hello.subs).toHaveLength(2)
    for (const sub of hello.subs!) {
      expect(sub.resume).toBe(true)
      expect(sub.orderBy).toBeUndefined()
      expect(sub.limit).toBeUndefined()
      expect(sub.where).toBeDefined()
    }
    expect(ann.wire.snapshotsSince(before)).toHaveLength(0) // no reload
    expect(ann.wire.subs.length).toBe(subsBefore)
    expect(window.toArray.map((t) => t.rank)).toEqual([99, 29, 28, 27, 26])
  })

  it('from before the retention window, each subset reloads once and vanished rows are dropped', async () => {
    const room = freshRoom('od')
    await seed(room, 30, 'short')
    const ann = onDemandClient(room, 'ann', 'short')
    const window = live(
      createLiveQueryCollection((b) => b.from({ t: ann.tasks }).orderBy(({ t }) => t.rank, 'desc').limit(5)),
    )
    const filtered = live(createLiveQueryCollection((b) => b.from({ t: ann.tasks }).where(({ t }) => eq(t.category, 'a'))))
    await Promise.all([window.preload(), filtered.preload()])
    expect(ann.tasks.has(id(27))).toBe(true)

    ann.network.cut()
    await until(() => ann.transport.status !== 'live', 'ann offline')
    const bob = writer(room, 'short')
    await bob.remove(id(27)) // in both
    await bob.remove(id(3)) // in the filter
    // The DO marks the log's time at most every retentionMs/64: let the last
    // write get a mark, so housekeeping can prune up to the head.
    await new Promise((resolve) => setTimeout(resolve, 50))
    await bob.setRank(id(2), 99)
    // Prune the change log past ann's cursor (retry: the DO's clock may lag the writes).
    await until(async () => {
      const state = await admin('short', room, 'housekeep', { aheadMs: 10_000 })
      return Number(state.floor) >= Number(state.head)
    }, 'the change log is pruned')
    const before = ann.wire.received.length
    ann.network.restore()

    await until(() => !ann.tasks.has(id(27)) && !ann.tasks.has(id(3)) && window.has(id(2)), 'ann reloads')
    const snapshots = ann.wire.snapshotsSince(before)
    const perSub = new Map<string, number>()
    for (const s of snapshots) if (s.t === 'snapshot') perSub.set(s.sub, (perSub.get(s.sub) ?? 0) + 1)
    expect([...perSub.values()]).toEqual([1, 1])
    expect(filtered.size).toBe(8)
    expect([...filtered.values()].every((t) => t.category === 'a')).toBe(true)
    expect(window.toArray.map((t) => t.rank)).toEqual([99, 30, 29, 28, 26])
  })
})
