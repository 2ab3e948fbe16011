import { createCollection, createTransaction, eq } from '@tanstack/db'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { doCollectionOptions, doMutationFn } from '../../worker/src/client/collection.js'
import { ClosedError, OutcomeUnknownError, OutOfScopeError, RejectedError, SubscriptionError } from '../../worker/src/client/errors.js'
import { WebSocketTransport } from '../../worker/src/client/transport.js'
import type { MutFrame, SubBody } from '../../worker/src/protocol/index.js'
import { FakeSocket, tick, until } from './fake-socket.js'

// A type alias (not an interface) so it is assignable to the wire's WireRow.
type Message = {
  id: string
  author: string
  content: string
  created_at: number
}
const msg = (id: string, over: Partial<Message> = {}): Message => ({
  id,
  author: 'ann',
  content: `hello ${id}`,
  created_at: 1,
  ...over,
})

let transport: WebSocketTransport
beforeEach(() => {
  FakeSocket.reset()
  transport = new WebSocketTransport({
    url: 'ws://do/sync/room',
    WebSocket: FakeSocket,
    backoff: { initialMs: 2, maxMs: 4 },
    watchNetwork: false,
  })
})
afterEach(() => transport.close())

function messagesCollection(where?: Parameters<typeof doCollectionOptions<Message>>[0]['where'], id?: string) {
  return createCollection(
    doCollectionOptions<Message>({ transport, table: 'messages', getKey: (m) => m.id, where, id, startSync: true }),
  )
}

/** The sub the collection registered, from the hello. */
function helloSubs(ws = FakeSocket.last): SubBody[] {
  const hello = ws.framesOf('hello')[0]
  return hello?.subs ?? []
}

function rows(c: { toArray: Array<Message> }): Message[] {
  return [...c.toArray].map(({ id, author, content, created_at }) => ({ id, author, content, created_at }))
    .sort((a, b) => a.id.localeCompare(b.id))
}

async function liveWithSnapshot(c: ReturnType<typeof messagesCollection>, snapshot: Message[], seq = 10) {
  const ws = FakeSocket.last
  ws.handshake('e1', seq)
  const [sub] = helloSubs(ws)
  ws.deliver({ t: 'snapshot', sub: sub!.id, c: 'messages', seq, rows: snapshot, more: true }, { t: 'synced', seq })
  await c.preload()
  return { ws, sub: sub! }
}

describe('doCollectionOptions: sync', () => {
  it('a snapshot makes the collection ready with its rows', async () => {
    const c = messagesCollection()
    expect(c.status).not.toBe('ready')
    await liveWithSnapshot(c, [msg('a'), msg('b')])
    expect(c.status).toBe('ready')
    expect(rows(c)).toEqual([msg('a'), msg('b')])
    expect(c.utils.appliedSeq).toBe(10)
    expect(c.utils.status).toBe('live')
  })

  it('an empty table: ready and empty', async () => {
    const c = messagesCollection()
    await liveWithSnapshot(c, [])
    expect(c.status).toBe('ready')
    expect(c.size).toBe(0)
  })

  it('applies changes: insert, update of a held key, delete, delete of an absent key', async () => {
    const c = messagesCollection()
    const { ws } = await liveWithSnapshot(c, [msg('a')])
    ws.deliver({
      t: 'changes',
      seq: 11,
      changes: [
        { c: 'messages', k: 'b', row: msg('b') },
        { c: 'messages', k: 'a', row: msg('a', { content: 'edited' }) },
        { c: 'messages', k: 'zz' },
        { c: 'rooms', k: 'b' },
      ],
    })
    expect(rows(c)).toEqual([msg('a', { content: 'edited' }), msg('b')])
    ws.deliver({ t: 'changes', seq: 12, changes: [{ c: 'messages', k: 'a' }] })
    expect(rows(c)).toEqual([msg('b')])
    // a key deleted and re-inserted while away comes back as an upsert of a held key
    ws.deliver({ t: 'changes', seq: 13, changes: [{ c: 'messages', k: 'b', row: msg('b', { content: 'again' }) }] })
    expect(rows(c)).toEqual([msg('b', { content: 'again' })])
  })

  it('a snapshot replaces what the sub held (resume beyond retention)', async () => {
    const c = messagesCollection()
    const { sub } = await liveWithSnapshot(c, [msg('a'), msg('b'), msg('c')])
    FakeSocket.last.drop(1006)
    await until(() => FakeSocket.instances.length === 2)
    const ws = FakeSocket.last
    ws.handshake('e1', 900)
    expect(helloSubs(ws)).toEqual([{ id: sub.id, c: 'messages', resume: true }])
    ws.deliver(
      { t: 'snapshot', sub: sub.id, c: 'messages', seq: 900, rows: [msg('b', { content: 'new' })], more: true },
      { t: 'snapshot', sub: sub.id, c: 'messages', seq: 900, rows: [msg('d')], more: true },
      { t: 'synced', seq: 900 },
    )
    expect(rows(c)).toEqual([msg('b', { content: 'new' }), msg('d')])
    expect(c.utils.appliedSeq).toBe(900)
  })

  it('a refused subscription rejects preload', async () => {
    const c = messagesCollection()
    const ws = FakeSocket.last
    ws.handshake()
    const [sub] = helloSubs(ws)
    const preload = c.preload()
    ws.deliver({ t: 'sub-error', sub: sub!.id, code: 7, error: 'UNKNOWN_COLLECTION', message: 'no such table' })
    await expect(preload).rejects.toMatchObject({ codeName: 'UNKNOWN_COLLECTION' })
    expect(c.status).toBe('error')
  })

  it('with where: sends it, and ignores rows of other subs on the same table', async () => {
    const c = messagesCollection({ author: 'ann' })
    const { ws, sub } = await liveWithSnapshot(c, [msg('a')])
    expect(sub.where).toEqual({ type: 'func', name: 'eq', args: [{ type: 'ref', path: ['author'] }, { type: 'val', value: 'ann' }] })
    ws.deliver({
      t: 'changes',
      seq: 11,
      changes: [
        { c: 'messages', k: 'b', row: msg('b', { author: 'bob' }) },
        { c: 'messages', k: 'a', row: msg('a', { author: 'bob' }) }, // moved out
        { c: 'messages', k: 'c', row: msg('c') },
      ],
    })
    expect(rows(c)).toEqual([msg('c')])
  })

  it('a unit that fails half-way is undone, surfaces on the collection, and the collection resyncs', async () => {
    let poisoned = true
    const c = createCollection(
      doCollectionOptions<Message>({
        transport,
        table: 'messages',
        getKey: (m) => {
          if (poisoned && m.id === 'boom') throw new Error('bad row')
          return m.id
        },
        startSync: true,
      }),
    )
    const { ws, sub } = await liveWithSnapshot(c, [msg('a')])
    ws.deliver({
      t: 'changes',
      seq: 11,
      changes: [
        { c: 'messages', k: 'a', row: msg('a', { content: 'edited' }) },
        { c: 'messages', k: 'boom', row: msg('boom') },
      ],
    })
    // Nothing of the failed unit is visible; the error is on the collection.
    expect(rows(c)).toEqual([msg('a')])
    expect(c.status).toBe('error')
    expect(c.utils.syncError?.message).toMatch(/seq 11.*bad row/)
    // The subscription asks for a fresh snapshot, which brings it back.
    expect(ws.framesOf('sub')).toEqual([{ t: 'sub', id: sub.id, c: 'messages' }])
    poisoned = false
    ws.deliver({ t: 'snapshot', sub: sub.id, c: 'messages', seq: 12, rows: [msg('a', { content: 'edited' }), msg('boom')] })
    expect(rows(c)).toEqual([msg('a', { content: 'edited' }), msg('boom')])
    expect(c.status).toBe('ready')
    expect(c.utils.syncError).toBeUndefined()
  })

  it('a sub-error after ready surfaces on the collection and removes what the subscription held', async () => {
    const c = messagesCollection()
    const { ws, sub } = await liveWithSnapshot(c, [msg('a'), msg('b')])
    ws.deliver({ t: 'sub-error', sub: sub.id, code: 8, error: 'UNKNOWN_COLUMN', message: 'no column author' })
    expect(c.status).toBe('error')
    expect(c.utils.syncError).toBeInstanceOf(SubscriptionError)
    expect(c.utils.syncError?.codeName).toBe('UNKNOWN_COLUMN')
    expect(c.size).toBe(0)
  })

  it('a RATE_LIMITED sub-error is retried with backoff, not a failure', async () => {
    const c = messagesCollection()
    const ws = FakeSocket.last
    ws.handshake('e1', 10)
    const [sub] = helloSubs(ws)
    const preload = c.preload()
    ws.deliver({ t: 'sub-error', sub: sub!.id, code: 19, error: 'RATE_LIMITED', message: 'too many subs' })
    expect(c.status).toBe('loading')
    await until(() => ws.framesOf('sub').length === 1)
    expect(ws.framesOf('sub')).toEqual([{ t: 'sub', id: sub!.id, c: 'messages' }])
    ws.deliver({ t: 'snapshot', sub: sub!.id, c: 'messages', seq: 11, rows: [msg('a')] })
    await preload
    expect(rows(c)).toEqual([msg('a')])
    expect(c.utils.syncError).toBeUndefined()
  })

  it('closing the transport leaves a ready collection as it was', async () => {
    const c = messagesCollection()
    await liveWithSnapshot(c, [msg('a')])
    transport.close()
    expect(c.status).toBe('ready')
    expect(rows(c)).toEqual([msg('a')])
  })

  it("with a where function (TanStack DB's eq): sends its IR and keeps only matching rows", async () => {
    const c = messagesCollection((row) => eq(row.author, 'ann'))
    const { ws, sub } = await liveWithSnapshot(c, [msg('a')])
    expect(sub.where).toEqual({ type: 'func', name: 'eq', args: [{ type: 'ref', path: ['author'] }, { type: 'val', value: 'ann' }] })
    ws.deliver({ t: 'changes', seq: 11, changes: [{ c: 'messages', k: 'b', row: msg('b', { author: 'bob' }) }, { c: 'messages', k: 'c', row: msg('c') }] })
    expect(rows(c)).toEqual([msg('a'), msg('c')])
  })

  it('cleanup sends unsub', async () => {
    const c = messagesCollection()
    const { ws, sub } = await liveWithSnapshot(c, [])
    await c.cleanup()
    expect(ws.framesOf('unsub')).toEqual([{ t: 'unsub', id: sub.id }])
  })

  it('cleanup never closes the shared transport: the other collection stays live', async () => {
    const a = messagesCollection(undefined, 'a')
    const b = messagesCollection(undefined, 'b')
    const ws = FakeSocket.last
    ws.handshake('e1', 10)
    const [subA, subB] = helloSubs(ws)
    ws.deliver(
      { t: 'snapshot', sub: subA!.id, c: 'messages', seq: 10, rows: [], more: true },
      { t: 'snapshot', sub: subB!.id, c: 'messages', seq: 10, rows: [], more: true },
      { t: 'synced', seq: 10 },
    )
    await Promise.all([a.preload(), b.preload()])
    await a.cleanup()
    expect(ws.closedByClient).toBeUndefined()
    expect(transport.status).toBe('live')
    ws.deliver({ t: 'changes', seq: 11, changes: [{ c: 'messages', k: 'x', row: msg('x') }] })
    expect(rows(b)).toEqual([msg('x')])
    expect(FakeSocket.instances).toHaveLength(1)
  })
})

describe('doCollectionOptions: writes', () => {
  it('insert: optimistic at once, one mut, settles after the ack, row synced', async () => {
    const c = messagesCollection()
    const { ws } = await liveWithSnapshot(c, [])
    const tx = c.insert(msg('n'))
    expect(c.get('n')?.content).toBe('hello n') // optimistic
    const [mut] = ws.framesOf('mut')
    expect(mut?.ops).toEqual([{ c: 'messages', op: 'insert', k: 'n', cols: msg('n') }])
    let settled = false
    void tx.when('settled').then(() => (settled = true))
    ws.deliver({ t: 'changes', seq: 11, changes: [{ c: 'messages', k: 'n', row: msg('n') }] })
    await tick()
    expect(settled).toBe(false)
    ws.deliver({ t: 'ack', id: mut!.id, seq: 11 })
    await tx.when('settled')
    expect(tx.state).toBe('completed')
    expect(rows(c)).toEqual([msg('n')])
    expect(c.get('n')?.$hasPendingWrites).toBe(false)
  })

  it('update sends only the changed columns', async () => {
    const c = messagesCollection()
    const { ws } = await liveWithSnapshot(c, [msg('a')])
    const tx = c.update('a', (d) => {
      d.content = 'edited'
    })
    const [mut] = ws.framesOf('mut')
    expect(mut?.ops).toEqual([{ c: 'messages', op: 'update', k: 'a', cols: { content: 'edited' } }])
    ws.deliver(
      { t: 'changes', seq: 11, changes: [{ c: 'messages', k: 'a', row: msg('a', { content: 'edited' }) }] },
      { t: 'ack', id: mut!.id, seq: 11 },
    )
    await tx.when('settled')
    expect(rows(c)).toEqual([msg('a', { content: 'edited' })])
  })

  it('delete sends a delete op', async () => {
    const c = messagesCollection()
    const { ws } = await liveWithSnapshot(c, [msg('a')])
    const tx = c.delete('a')
    const [mut] = ws.framesOf('mut')
    expect(mut?.ops).toEqual([{ c: 'messages', op: 'delete', k: 'a' }])
    ws.deliver({ t: 'changes', seq: 11, changes: [{ c: 'messages', k: 'a' }] }, { t: 'ack', id: mut!.id, seq: 11 })
    await tx.when('settled')
    expect(c.size).toBe(0)
  })

  it('a reject rolls the optimistic state back', async () => {
    const c = messagesCollection()
    const { ws } = await liveWithSnapshot(c, [msg('a')])
    const tx = c.update('a', (d) => {
      d.content = 'nope'
    })
    expect(c.get('a')?.content).toBe('nope')
    const [mut] = ws.framesOf('mut')
    ws.deliver({ t: 'reject', id: mut!.id, code: 11, error: 'NO_HANDLER', message: 'no update handler' })
    await expect(tx.when('settled')).rejects.toBeInstanceOf(RejectedError)
    expect(c.get('a')?.content).toBe('hello a')
  })

  it('a write outside the eager where is refused before it is sent', async () => {
    const c = messagesCollection({ author: 'ann' })
    const { ws } = await liveWithSnapshot(c, [])
    const tx = c.insert(msg('x', { author: 'bob' }))
    await expect(tx.when('settled')).rejects.toBeInstanceOf(OutOfScopeError)
    expect(ws.framesOf('mut')).toEqual([])
    expect(c.has('x')).toBe(false)
    const ok = c.insert(msg('y'))
    expect(ws.framesOf('mut')).toHaveLength(1)
    ws.deliver({ t: 'ack', id: ws.framesOf('mut')[0]!.id, seq: 11 })
    await ok.when('settled')
  })

  it('an update that moves a row out of the eager where is sent; once confirmed the row leaves the collection', async () => {
    const c = messagesCollection({ author: 'ann' })
    const { ws } = await liveWithSnapshot(c, [msg('a')])
    const tx = c.update('a', (d) => {
      d.author = 'bob'
    })
    const [mut] = ws.framesOf('mut')
    expect(mut?.ops).toEqual([{ c: 'messages', op: 'update', k: 'a', cols: { author: 'bob' } }])
    ws.deliver(
      { t: 'changes', seq: 11, changes: [{ c: 'messages', k: 'a', row: msg('a', { author: 'bob' }) }] },
      { t: 'ack', id: mut!.id, seq: 11 },
    )
    await tx.isPersisted.promise
    expect(tx.state).toBe('completed')
    expect(c.has('a')).toBe(false)
  })

  it('a write made offline is sent after reconnect and confirmed', async () => {
    const c = messagesCollection()
    const { ws } = await liveWithSnapshot(c, [])
    ws.drop(1006)
    const tx = c.insert(msg('o'))
    expect(ws.framesOf('mut')).toEqual([])
    await until(() => FakeSocket.instances.length === 2)
    const ws2 = FakeSocket.last
    ws2.handshake('e1', 11)
    const [mut] = ws2.framesOf('mut')
    expect(mut?.ops[0]?.k).toBe('o')
    ws2.deliver(
      { t: 'changes', seq: 11, changes: [{ c: 'messages', k: 'o', row: msg('o') }], more: true },
      { t: 'synced', seq: 11 },
      { t: 'ack', id: mut!.id, seq: 11 },
    )
    await tx.when('settled')
    expect(rows(c)).toEqual([msg('o')])
  })

  it('an insert sent, then transport.close(): the transaction fails with OutcomeUnknownError carrying the mutation id', async () => {
    const c = messagesCollection()
    const { ws } = await liveWithSnapshot(c, [])
    const tx = c.insert(msg('n'))
    const [mut] = ws.framesOf('mut')
    transport.close()
    const error = await tx.isPersisted.promise.catch((e: unknown) => e)
    expect(error).toBeInstanceOf(OutcomeUnknownError)
    expect(error).not.toBeInstanceOf(RejectedError)
    expect(error).not.toBeInstanceOf(ClosedError)
    expect((error as OutcomeUnknownError).id).toBe(mut!.id)
  })

  it('createTransaction across two collections of one DO sends ONE mut', async () => {
    const a = messagesCollection(undefined, 'inbox')
    const b = messagesCollection(undefined, 'outbox')
    const ws = FakeSocket.last
    ws.handshake()
    for (const s of helloSubs(ws)) ws.deliver({ t: 'snapshot', sub: s.id, c: 'messages', seq: 1, rows: [] })
    await Promise.all([a.preload(), b.preload()])
    const tx = createTransaction({ mutationFn: doMutationFn(transport) })
    tx.mutate(() => {
      a.insert(msg('p'))
      b.insert(msg('q'))
    })
    await tick()
    const muts = ws.framesOf('mut') as MutFrame[]
    expect(muts).toHaveLength(1)
    expect(muts[0]?.ops.map((o) => o.k)).toEqual(['p', 'q'])
    ws.deliver(
      { t: 'changes', seq: 2, changes: [{ c: 'messages', k: 'p', row: msg('p') }, { c: 'messages', k: 'q', row: msg('q') }] },
      { t: 'ack', id: muts[0]!.id, seq: 2 },
    )
    await tx.when('settled')
    // both subs cover the table: both collections now hold both rows
    expect(rows(a)).toEqual([msg('p'), msg('q')])
  })
})
