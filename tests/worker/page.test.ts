// One-off pages (docs/protocol.md §4.8) in workerd: a page reads from a
// cursor naming both halves of the boundary, holds no subscription, is read
// at the head, and is refused with a typed page-error (an unknown
// collection is never an empty page).
import { env } from 'cloudflare:test'
import { expect, it } from 'vitest'

import { ErrorCode } from '../../worker/src/protocol/index.js'
import type { Env } from './fixture.js'
import { freshRoom, TestSocket } from './socket.js'

const testEnv = env as unknown as Env
const stub = (name: string) => testEnv.TEST_DO.get(testEnv.TEST_DO.idFromName(name))
const byRank = [{ col: 'rank', dir: 'desc' }]

it('a page from a cursor serves the rest of its tie, then limit rows, read at the head, and holds no subscription', async () => {
  const name = freshRoom('page')
  await stub(name).seedTasks(12, 't') // rank = i
  await stub(name).serverInsertTasks([{ id: 't00008b', title: 'tie', done: 0, rank: 8, category: 'a' }])
  const { socket } = await TestSocket.connect(name, 'ann')
  socket.send({ t: 'page', id: 'p1', c: 'tasks', orderBy: byRank, limit: 3, cursor: { values: [8], k: 't00008' } })
  const page = await socket.next('page', (f) => f.id === 'p1')
  expect(page.rows.map((r) => r.id)).toEqual(['t00008b', 't00007', 't00006', 't00005'])
  expect(page.seq).toBe((await stub(name).state()).head)
  expect(page.more).toBeUndefined()
  // Nothing is held for it: a change to a paged row is not sent.
  await stub(name).serverInsertTasks([{ id: 't00004b', title: 'later', done: 0, rank: 4, category: 'a' }])
  await socket.barrier()
  expect(socket.all('changes')).toHaveLength(0)
  expect(await stub(name).count('SELECT COUNT(*) FROM _sync_subs')).toBe(0)
  socket.close()
})

it('a page for an unknown collection, or over the row cap, is a page-error; the socket goes on', async () => {
  const name = freshRoom('page-bad')
  const { socket } = await TestSocket.connect(name, 'ann')
  socket.send({ t: 'page', id: 'p1', c: 'nope', limit: 5 })
  const unknown = await socket.next('page-error', (f) => f.id === 'p1')
  expect(unknown.code).toBe(ErrorCode.UNKNOWN_COLLECTION)
  socket.send({ t: 'page', id: 'p2', c: 'tasks', limit: 1001 })
  expect((await socket.next('page-error', (f) => f.id === 'p2')).code).toBe(ErrorCode.TOO_MANY)
  expect(socket.all('page')).toHaveLength(0)
  await socket.barrier()
  socket.close()
})
