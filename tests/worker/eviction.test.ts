// Hibernation: a DO whose only connections are hibernatable sockets is
// evicted after ~10 s idle in local workerd. Its sockets stay open; on wake
// a new instance rebuilds the core from SQLite and the socket attachments.
import { env } from 'cloudflare:test'
import { expect, it } from 'vitest'

import type { Env } from './fixture.js'
import { freshRoom, insertMessage, message, TestSocket } from './socket.js'

const testEnv = env as unknown as Env

it('a subscription and its socket survive the DO’s eviction; one a deploy made invalid is refused', { timeout: 40_000 }, async () => {
  const name = freshRoom('evict')
  const stub = () => testEnv.TEST_DO.get(testEnv.TEST_DO.idFromName(name))
  const { socket: watcher } = await TestSocket.connect(name, 'ann')
  watcher.send({ t: 'sub', id: 'w', c: 'messages', where: { type: 'func', name: 'eq', args: [{ type: 'ref', path: ['author'] }, { type: 'val', value: 'bob' }] } })
  await watcher.next('snapshot')
  watcher.send({ t: 'sub', id: 'n', c: 'notes' })
  await watcher.next('snapshot', (f) => f.sub === 'n')
  // While it sleeps, a deploy drops the notes collection.
  await stub().dropCollectionOnWake('notes')
  const before = await stub().whoAmI()

  // Stay idle until workerd evicts the instance.
  await new Promise((resolve) => setTimeout(resolve, 13_000))

  const { socket: writer } = await TestSocket.connect(name, 'bob')
  expect(await stub().whoAmI()).not.toBe(before) // a new instance: memory was lost
  await writer.mutate('after-wake', [insertMessage('w1', 'bob')])
  await writer.mutate('not-matching', [insertMessage('w2', 'ann')])
  // The notes subscription no longer fits the registration: refused, typed.
  const refused = await watcher.next('sub-error')
  expect(refused).toMatchObject({ sub: 'n', error: 'UNKNOWN_COLLECTION' })
  // The watcher's socket and its filtered subscription came back from SQLite.
  const changes = await watcher.next('changes')
  expect(changes.changes).toEqual([{ c: 'messages', k: 'w1', row: message('w1', 'bob') }])
  expect(watcher.closed).toBeUndefined()
  watcher.close()
  writer.close()
})
