// seqsync/client with real @tanstack/db collections in Node, against the
// fixture DO in local workerd (wrangler dev), over real WebSockets.
import { and, createCollection, createTransaction, eq, gt } from '@tanstack/db'
import { afterEach, describe, expect, it } from 'vitest'

import {
  doCollectionOptions,
  doMutationFn,
  OutcomeUnknownError,
  OutOfScopeError,
  RejectedError,
  SeqsyncError,
  SubscriptionError,
  WebSocketTransport,
} from '../../worker/src/client/index.js'
import type { MutFrame } from '../../worker/src/protocol/index.js'
import {
  admin,
  baseUrl,
  type Client,
  connectClient,
  freshRoom,
  message,
  type Message,
  rowsOf,
  serverRows,
  until,
} from './harness.js'

const open: Client[] = []
function client(room: string, user: string, kind: 'sync' | 'short' = 'sync') {
  const c = connectClient(room, user, kind)
  open.push(c)
  return c
}
afterEach(() => {
  for (const c of open.splice(0)) c.transport.close()
})

describe('writes', () => {
  it('an insert applies at once and settles when the cursor passes its seq', async () => {
    const room = freshRoom()
    const ann = client(room, 'ann')
    await ann.messages.preload()
    const tx = ann.messages.insert(message('a', 'ann'))
    expect(ann.messages.has('a')).toBe(true) // optimistic
    await tx.isPersisted.promise
    expect(ann.messages.utils.appliedSeq).toBeGreaterThanOrEqual(1)
    expect(rowsOf(ann.messages)).toEqual([message('a', 'ann')])
    expect((await serverRows(room)).messages).toEqual([message('a', 'ann')])
  })

  it('update and delete confirm and reach the server', async () => {
    const room = freshRoom()
    const ann = client(room, 'ann')
    await ann.messages.preload()
    await ann.messages.insert(message('a', 'ann')).isPersisted.promise
    await ann.messages.update('a', (draft) => {
      draft.content = 'edited'
    }).isPersisted.promise
    expect((await serverRows(room)).messages[0]!.content).toBe('edited')
    await ann.messages.delete('a').isPersisted.promise
    expect((await serverRows(room)).messages).toEqual([])
    expect(ann.messages.has('a')).toBe(false)
  })

  it('a denied write rolls back and rejects with a typed error carrying the wire code', async () => {
    const room = freshRoom()
    const ann = client(room, 'ann')
    await ann.messages.preload()
    const tx = ann.messages.insert(message('forged', 'mallory'))
    const error = await tx.isPersisted.promise.catch((e: unknown) => e)
    expect(error).toBeInstanceOf(RejectedError)
    expect(error).toBeInstanceOf(SeqsyncError)
    expect((error as RejectedError).code).toBe(10)
    expect((error as RejectedError).codeName).toBe('UNAUTHORIZED')
    expect(ann.messages.has('forged')).toBe(false)
    expect((await serverRows(room)).messages).toEqual([])
  })

  it('a failing execute rolls back every op of the transaction', async () => {
    const room = freshRoom()
    const ann = client(room, 'ann')
    await Promise.all([ann.messages.preload(), ann.tasks.preload()])
    const tx = createTransaction({ autoCommit: false, mutationFn: doMutationFn(ann.transport) })
    tx.mutate(() => {
      ann.messages.insert(message('m', 'ann'))
      ann.tasks.insert({ id: 't', title: 'explode', done: 0, rank: null, category: null })
    })
    const error = await tx.commit().catch((e: unknown) => e)
    expect((error as SeqsyncError).code).toBe(12)
    expect(ann.messages.has('m')).toBe(false)
    expect(ann.tasks.has('t')).toBe(false)
    expect(await serverRows(room)).toMatchObject({ messages: [], tasks: [] })
  })

  it('a transaction spanning two collections of one DO is one mutation, confirmed once', async () => {
    const room = freshRoom()
    const ann = client(room, 'ann')
    const bob = client(room, 'bob')
    await Promise.all([ann.messages.preload(), ann.tasks.preload(), bob.messages.preload(), bob.tasks.preload()])
    const tx = createTransaction({ autoCommit: false, mutationFn: doMutationFn(ann.transport) })
    tx.mutate(() => {
      ann.messages.insert(message('m1', 'ann'))
      ann.tasks.insert({ id: 't1', title: 'together', done: 0, rank: 1, category: 'x' })
    })
    await tx.commit()
    const rows = await serverRows(room)
    expect(rows.messages.map((m) => m.id)).toEqual(['m1'])
    expect(rows.tasks.map((t) => t.id)).toEqual(['t1'])
    await until(() => bob.messages.has('m1') && bob.tasks.has('t1'), 'bob sees both')
  })

  it('close() right after an insert was sent: OutcomeUnknownError; a later transport brings the row back, and a replay under its id applies nothing twice', async () => {
    const room = freshRoom()
    const ann = client(room, 'ann')
    await ann.messages.preload()
    const tx = ann.messages.insert(message('closing', 'ann'))
    await until(() => ann.network.sentFrames('mut').length === 1, 'the mut was sent')
    ann.transport.close()
    const error = await tx.isPersisted.promise.catch((e: unknown) => e)
    expect(error).toBeInstanceOf(OutcomeUnknownError)
    expect(error).not.toBeInstanceOf(RejectedError)
    expect((error as OutcomeUnknownError).id).toBe(ann.network.sentFrames('mut')[0]!.id)
    // The DO committed it: a later transport on the same DO syncs the row.
    const later = client(room, 'ann')
    await later.messages.preload()
    await until(() => later.messages.has('closing'), 'the later transport holds the row')
    // Sending it again under its id settles it with the recorded ack; a
    // second insert of the key would have been refused.
    const { frame, id } = error as OutcomeUnknownError
    await expect(later.transport.mutate((frame as MutFrame).ops, { id })).resolves.toMatchObject({ seq: expect.any(Number) })
    expect((await serverRows(room)).messages).toEqual([message('closing', 'ann')])
  })

  it('a write outside an eager where is refused before it is sent', async () => {
    const room = freshRoom()
    const transport = new WebSocketTransport({
      url: `${baseUrl().replace('http', 'ws')}/sync/${room}?user=ann`,
      WebSocket: connectClient(room, 'x').network.WebSocket,
    })
    try {
      const mine = createCollection(
        doCollectionOptions<Message>({ transport, table: 'messages', getKey: (m) => m.id, where: { author: 'ann' } }),
      )
      await mine.preload()
      const tx = mine.insert(message('theirs', 'bob'))
      const error = await tx.isPersisted.promise.catch((e: unknown) => e)
      expect(error).toBeInstanceOf(OutOfScopeError)
      expect(mine.has('theirs')).toBe(false)
      await mine.insert(message('ok', 'ann')).isPersisted.promise
      expect((await serverRows(room)).messages.map((m) => m.id)).toEqual(['ok'])
    } finally {
      transport.close()
    }
  })
})

describe('writes and where', () => {
  it("a where function in TanStack DB's style syncs only the rows it matches", async () => {
    const room = freshRoom()
    const ann = client(room, 'ann')
    const bob = client(room, 'bob')
    const mine = createCollection(
      doCollectionOptions<Message>({
        transport: ann.transport,
        table: 'messages',
        getKey: (m) => m.id,
        where: (row) => and(eq(row.author, 'ann'), gt(row.created_at, 0)),
      }),
    )
    await Promise.all([mine.preload(), bob.messages.preload()])
    await bob.messages.insert(message('b1', 'bob')).isPersisted.promise
    await mine.insert(message('a1', 'ann')).isPersisted.promise
    await ann.messages.preload()
    await until(() => ann.messages.size === 2, 'the whole table reaches the unfiltered collection')
    expect(rowsOf(mine)).toEqual([message('a1', 'ann')])
  })

  it('an update that moves a row out of an eager where is sent; once confirmed the row leaves the collection', async () => {
    const room = freshRoom()
    const ann = client(room, 'ann')
    const drafts = createCollection(
      doCollectionOptions<Message>({ transport: ann.transport, table: 'messages', getKey: (m) => m.id, where: { content: 'draft' } }),
    )
    await drafts.preload()
    await drafts.insert(message('d', 'ann', 'draft')).isPersisted.promise
    expect(drafts.has('d')).toBe(true)
    await drafts.update('d', (m) => {
      m.content = 'final'
    }).isPersisted.promise
    expect((await serverRows(room)).messages).toEqual([message('d', 'ann', 'final')])
    await until(() => !drafts.has('d'), 'the row leaves the drafts')
  })
})

describe('live sync', () => {
  it('two clients converge under concurrent writes', async () => {
    const room = freshRoom()
    const ann = client(room, 'ann')
    const bob = client(room, 'bob')
    await Promise.all([ann.messages.preload(), bob.messages.preload()])
    const writes = []
    for (let i = 0; i < 10; i++) {
      writes.push(ann.messages.insert(message(`a${i}`, 'ann')).isPersisted.promise)
      writes.push(bob.messages.insert(message(`b${i}`, 'bob')).isPersisted.promise)
    }
    await Promise.all(writes)
    const server = (await serverRows(room)).messages
    expect(server).toHaveLength(20)
    await until(() => ann.messages.size === 20 && bob.messages.size === 20, 'both hold 20 rows')
    expect(rowsOf(ann.messages)).toEqual(server)
    expect(rowsOf(bob.messages)).toEqual(server)
  })

  it('server-originated writes appear', async () => {
    const room = freshRoom()
    const ann = client(room, 'ann')
    await ann.messages.preload()
    await admin('sync', room, 'server-insert', message('srv', 'agent'))
    await until(() => ann.messages.has('srv'), 'the server write arrives')
    expect(ann.messages.get('srv')).toMatchObject(message('srv', 'agent'))
  })

  it('a refused subscription rejects preload with a typed error', async () => {
    const room = freshRoom()
    const ann = client(room, 'ann')
    const nope = createCollection(
      doCollectionOptions<Message>({ transport: ann.transport, table: 'nope', getKey: (m) => m.id }),
    )
    const error = await nope.preload().then(() => 'resolved', (e: unknown) => e)
    expect(error).toBeInstanceOf(SubscriptionError)
    expect((error as SubscriptionError).code).toBe(7)
  })

  it('awaitSeq resolves at the cursor and times out beyond it', async () => {
    const room = freshRoom()
    const ann = client(room, 'ann')
    await ann.messages.preload()
    await ann.messages.insert(message('a', 'ann')).isPersisted.promise
    const at = ann.messages.utils.appliedSeq
    await ann.messages.utils.awaitSeq(at, 100)
    await expect(ann.messages.utils.awaitSeq(at + 1000, 100)).rejects.toThrow()
  })
})

describe('reconnect', () => {
  it('a write made offline waits and is applied once on reconnect', async () => {
    const room = freshRoom()
    const ann = client(room, 'ann')
    const bob = client(room, 'bob')
    await Promise.all([ann.messages.preload(), bob.messages.preload()])
    ann.network.cut()
    await until(() => ann.transport.status !== 'live', 'ann offline')
    const tx = ann.messages.insert(message('offline', 'ann'))
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(tx.state).toBe('persisting')
    ann.network.restore()
    await tx.isPersisted.promise
    expect((await serverRows(room)).messages.map((m) => m.id)).toEqual(['offline'])
    await until(() => bob.messages.has('offline'), 'bob sees it')
  })

  it('a write whose confirmation was lost in flight settles once after reconnect', async () => {
    const room = freshRoom()
    const ann = client(room, 'ann')
    await ann.messages.preload()
    // The DO receives the mut, commits it and acks; the ack is lost with the
    // connection. Only a replay under the same id can settle the write: a
    // fresh id would run the insert again, and the duplicate key refuses it.
    // The ack rides in the changes frame that ends the write's unit (inlineAcks): that frame is lost.
    ann.network.dropNext((f) => f.t === 'ack' || (f.t === 'changes' && f.ack !== undefined))
    const tx = ann.messages.insert(message('inflight', 'ann'))
    await until(() => ann.network.dropped.length === 1, 'the ack was lost on its way')
    const [first] = ann.network.sentFrames('mut')
    expect(JSON.parse(ann.network.dropped[0]!)).toMatchObject({ t: 'changes', ack: first!.id })
    expect((await serverRows(room)).messages.map((m) => m.id)).toEqual(['inflight']) // it committed
    expect(tx.state).toBe('persisting')
    ann.network.restore()
    await tx.isPersisted.promise
    const muts = ann.network.sentFrames('mut')
    expect(muts.length).toBeGreaterThanOrEqual(2)
    expect(muts.map((m) => m.id)).toEqual(muts.map(() => first!.id))
    expect((await serverRows(room)).messages).toEqual([message('inflight', 'ann')])
    expect(rowsOf(ann.messages)).toEqual([message('inflight', 'ann')])
  })

  it('catches up on reconnect with what it missed, including deletes', async () => {
    const room = freshRoom()
    const ann = client(room, 'ann')
    const bob = client(room, 'bob')
    await Promise.all([ann.messages.preload(), bob.messages.preload()])
    await bob.messages.insert(message('keep', 'bob')).isPersisted.promise
    await bob.messages.insert(message('gone', 'bob')).isPersisted.promise
    await until(() => ann.messages.size === 2, 'ann holds 2')
    ann.network.cut()
    for (let i = 0; i < 20; i++) await bob.messages.insert(message(`m${i}`, 'bob')).isPersisted.promise
    await bob.messages.delete('gone').isPersisted.promise
    ann.network.restore()
    const server = (await serverRows(room)).messages
    await until(() => ann.messages.size === server.length && !ann.messages.has('gone'), 'ann converges')
    expect(rowsOf(ann.messages)).toEqual(server)
  })

  it('after the retention window, resumes from a snapshot and drops rows deleted meanwhile', async () => {
    const room = freshRoom()
    const ann = client(room, 'ann', 'short')
    const bob = client(room, 'bob', 'short')
    await Promise.all([ann.messages.preload(), bob.messages.preload()])
    await bob.messages.insert(message('a', 'bob')).isPersisted.promise
    await bob.messages.insert(message('b', 'bob')).isPersisted.promise
    await until(() => ann.messages.size === 2, 'ann holds a and b')
    ann.network.cut()
    await bob.messages.delete('a').isPersisted.promise
    await bob.messages.insert(message('c', 'bob')).isPersisted.promise
    // Housekeeping 10 s ahead of the writes prunes all of them, however they
    // fell between the retention marks: ann's cursor is below the floor.
    const state = await admin('short', room, 'housekeep', { aheadMs: 10_000 })
    expect(state.floor).toBe(state.head)
    const resumedFrom = ann.network.received.length
    ann.network.restore()
    await until(() => ann.messages.has('c') && !ann.messages.has('a'), 'ann converges from a snapshot')
    expect(rowsOf(ann.messages)).toEqual((await serverRows(room, 'short')).messages)
    // It was a snapshot resume, not a catch-up: the log no longer held the delete.
    const resume = ann.network.received.slice(resumedFrom).map((f) => JSON.parse(f) as { t: string; c?: string })
    expect(resume.some((f) => f.t === 'snapshot' && f.c === 'messages')).toBe(true)
    expect(resume.some((f) => f.t === 'changes')).toBe(false)
  })

  it('an unauthorized connection is closed terminally and not retried', async () => {
    const room = freshRoom()
    const transport = new WebSocketTransport({
      url: `${baseUrl().replace('http', 'ws')}/sync/${room}?user=`,
      WebSocket: connectClient(room, 'x').network.WebSocket,
      backoff: { initialMs: 10, maxMs: 20 },
    })
    const messages = createCollection(doCollectionOptions<Message>({ transport, table: 'messages', getKey: (m) => m.id }))
    const preload = messages.preload().catch((e: unknown) => e)
    await until(() => transport.status === 'closed', 'the transport gives up')
    expect(await preload).toBeInstanceOf(SeqsyncError)
  })
})
