// Server rendering with TanStack DB's own hydration: a snapshot read over
// RPC (the fixture's /sync/<room>/snapshot endpoint calls readSyncSnapshot),
// dehydrated into a DbClient state, hydrated into a real DbClient in Node;
// its collection shows the rows at once and its first subscription resumes
// from the hydrated cursor, against the fixture DO in local workerd.
import { collectionOptions, DbClient, eq } from '@tanstack/db'
import type { DehydratedDbState } from '@tanstack/db'
import { afterEach, describe, expect, it } from 'vitest'

import { dehydrateSnapshot, doCollectionOptions, WebSocketTransport } from '../../worker/src/client/index.js'
import { changesIn } from '../../worker/src/client/codec.js'
import type { ChangesFrame, SnapshotSub, SyncSnapshot } from '../../worker/src/protocol/index.js'
import { admin, baseUrl, freshRoom, message, type Message, Network, rowsOf, serverRows, socketUrl, until } from './harness.js'

const ann = { type: 'func', name: 'eq', args: [{ type: 'ref', path: ['author'] }, { type: 'val', value: 'ann' }] } as const

/** What a page's Worker reads and puts into its HTML. */
async function serverState(room: string, subs: SnapshotSub[] = [{ c: 'messages' }]): Promise<{ snapshot: SyncSnapshot; state: DehydratedDbState }> {
  const res = await fetch(`${baseUrl()}/sync/${room}/snapshot?user=ann&subs=${encodeURIComponent(JSON.stringify(subs))}`)
  expect(res.status).toBe(200)
  const snapshot = (await res.json()) as SyncSnapshot
  const sub = subs[0]!
  return { snapshot, state: dehydrateSnapshot(snapshot, { [sub.id ?? sub.c]: { id: 'messages', getKey: (m: Message) => m.id } }) }
}

const clients: DbClient[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) {
    c.getDependency<WebSocketTransport>('transport')?.close()
    await c.cleanup()
  }
})

/** The browser's side: a DbClient with one transport, hydrated with `state`, and its messages collection. */
function browser(room: string, state: DehydratedDbState, where?: typeof ann) {
  const network = new Network()
  const transport = new WebSocketTransport({ url: socketUrl(room, 'ann'), WebSocket: network.WebSocket, lazy: true })
  const client = new DbClient({ transport })
  clients.push(client)
  const descriptor = collectionOptions('messages', (db) =>
    doCollectionOptions<Message>({
      id: 'messages',
      transport: db.requireDependency<WebSocketTransport>('transport'),
      table: 'messages',
      getKey: (m) => m.id,
      ...(where ? { where: (row) => eq(row.author, where.args[1].value) } : {}),
    }),
  )
  client.hydrate(state)
  const messages = client.collection(descriptor)
  return { network, transport, messages }
}

const framesOf = (network: Network) => network.received.map((text) => JSON.parse(text) as { t: string; [k: string]: unknown })

describe('hydration from a server render', () => {
  it('shows the rows at once; the first subscription resumes from the cursor and gets only the delta', async () => {
    const room = freshRoom('hydrate')
    for (const id of ['a', 'b', 'c']) await admin('sync', room, 'server-insert', message(id, 'ann'))
    const { snapshot, state } = await serverState(room)
    if ('refused' in snapshot) throw new Error('refused')
    // After the render: one new row, one deleted, one changed.
    await admin('sync', room, 'server-insert', message('late', 'bob'))
    await admin('sync', room, 'server-delete', { id: 'b' })

    const { network, transport, messages } = browser(room, state)
    // Before any frame: the hydrated rows, and nothing dialled.
    expect(rowsOf(messages).map((m) => m.id)).toEqual(['a', 'b', 'c'])
    expect(network.sent).toEqual([])
    void messages.preload()
    expect(messages.status).toBe('ready')

    await until(() => messages.has('late') && !messages.has('b'), 'the delta')
    const hello = JSON.parse(network.sent[0]!) as { t: string; epoch: string; since: number; subs: Array<{ resume?: boolean }> }
    expect(hello).toMatchObject({ t: 'hello', epoch: snapshot.epoch, since: snapshot.seq })
    expect(hello.subs.map((s) => s.resume)).toEqual([true])
    const frames = framesOf(network)
    expect(frames.map((f) => f.t)).toEqual(['welcome', 'changes', 'synced'])
    const keys = changesIn(frames[1] as unknown as ChangesFrame).map((c) => c.k)
    expect(keys.sort()).toEqual(['b', 'late'])
    // No duplicate, and the server's rows exactly.
    expect(rowsOf(messages)).toEqual((await serverRows(room)).messages)

    // A write works, and the page stays live.
    await messages.insert(message('mine', 'ann')).isPersisted.promise
    await admin('sync', room, 'server-insert', message('after', 'bob'))
    await until(() => messages.has('after'), 'a live change')
    expect(transport.status).toBe('live')
    expect(framesOf(network).filter((f) => f.t === 'snapshot')).toEqual([])
  })

  it('the hydration exports the cursor it resumes from, and the live one once it runs', async () => {
    const room = freshRoom('hydrate')
    await admin('sync', room, 'server-insert', message('a', 'ann'))
    const { snapshot, state } = await serverState(room)
    if ('refused' in snapshot) throw new Error('refused')
    const { messages, transport } = browser(room, state)
    expect(messages.config.sync.exportSyncMeta?.()).toEqual({ v: 1, epoch: snapshot.epoch, seq: snapshot.seq })
    await messages.preload()
    await admin('sync', room, 'server-insert', message('b', 'ann'))
    await until(() => messages.has('b'), 'the change')
    expect(messages.config.sync.exportSyncMeta?.()).toEqual({ v: 1, epoch: snapshot.epoch, seq: transport.appliedSeq })
  })

  it('rows rendered for another where are replaced by a snapshot, never resumed', async () => {
    const room = freshRoom('hydrate')
    await admin('sync', room, 'server-insert', message('a', 'ann'))
    await admin('sync', room, 'server-insert', message('b', 'bob'))
    // The page rendered every message; this collection syncs only ann's.
    const { state } = await serverState(room)
    const { network, messages } = browser(room, state, ann)
    expect(rowsOf(messages).map((m) => m.id)).toEqual(['a', 'b'])
    await messages.preload()
    await until(() => !messages.has('b'), 'the snapshot that replaces the hydrated rows')
    expect(rowsOf(messages).map((m) => m.id)).toEqual(['a'])
    expect(framesOf(network).map((f) => f.t)).toEqual(['welcome', 'snapshot', 'synced'])
  })

  it('a refused read is the typed error the socket would get', async () => {
    const room = freshRoom('hydrate')
    const res = await fetch(`${baseUrl()}/sync/${room}/snapshot?user=ann&subs=${encodeURIComponent(JSON.stringify([{ c: 'nope' }]))}`)
    expect(res.status).toBe(400)
    expect(await res.json()).toEqual({ name: 'SubscriptionError', code: 7 })
  })
})
