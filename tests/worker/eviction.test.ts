// Hibernation: a DO whose only connections are hibernatable sockets is
// evicted after ~10 s idle in local workerd. Its sockets stay open; on wake
// a new instance rebuilds the core from SQLite and the socket attachments.
import { env } from 'cloudflare:test'
import { expect, it } from 'vitest'

import { ErrorCode } from '../../worker/src/protocol/index.js'
import type { Env } from './fixture.js'
import { freshRoom, insertMessage, message, TestSocket, untilEvicted } from './socket.js'

const testEnv = env as unknown as Env

it('a subscription and its socket survive the DO’s eviction; one a deploy made invalid is refused', { timeout: 90_000 }, async () => {
  const name = freshRoom('evict')
  const stub = () => testEnv.TEST_DO.get(testEnv.TEST_DO.idFromName(name))
  const byBob = { type: 'func', name: 'eq', args: [{ type: 'ref', path: ['author'] }, { type: 'val', value: 'bob' }] }
  const { socket: watcher } = await TestSocket.connect(name, 'ann')
  watcher.send({ t: 'sub', id: 'w', c: 'messages', where: byBob })
  await watcher.next('snapshot', (f) => f.sub === 'w')
  watcher.send({ t: 'sub', id: 'n', c: 'notes' })
  await watcher.next('snapshot', (f) => f.sub === 'n')
  // While it sleeps, a deploy drops the notes collection.
  await stub().dropCollectionOnWake('notes')
  const before = await stub().whoAmI()

  // Idle until workerd evicts the instance; the check that sees a new
  // instance is what woke it: memory was lost, the core was rebuilt.
  await untilEvicted(() => stub().whoAmI(), before)

  // The notes subscription no longer fits the registration: refused at the
  // wake, typed, on the socket that survived.
  const refused = await watcher.next('sub-error')
  expect(refused).toMatchObject({ sub: 'n', code: ErrorCode.UNKNOWN_COLLECTION, error: 'UNKNOWN_COLLECTION' })

  // The surviving socket speaks first after the wake: the new instance knows
  // who it is (ann, from its attachment) and answers on it. Ann's own row is
  // outside her `author = bob` filter.
  const own = await watcher.mutate('ann-after-wake', [insertMessage('w2', 'ann')])
  expect(own).toMatchObject({ t: 'ack', id: 'ann-after-wake' })
  // A new socket writes a row inside the filter.
  const { socket: writer } = await TestSocket.connect(name, 'bob')
  expect(await writer.mutate('bob-after-wake', [insertMessage('w1', 'bob')])).toMatchObject({ t: 'ack' })
  await watcher.barrier()

  // Through the restored filtered subscription, exactly bob's row came back
  // as a row; ann's, outside the filter, at most as a removal (§5.2).
  const changes = watcher.all('changes').flatMap((f) => f.changes)
  expect(changes.filter((c) => c.row !== undefined)).toEqual([{ c: 'messages', k: 'w1', row: message('w1', 'bob') }])
  for (const removal of changes.filter((c) => c.row === undefined)) expect(removal).toEqual({ c: 'messages', k: 'w2' })
  expect(watcher.all('welcome')).toHaveLength(1) // one socket throughout
  expect(watcher.closed).toBeUndefined()
  expect(await stub().rows('messages')).toEqual([message('w1', 'bob'), message('w2', 'ann')])
  watcher.close()
  writer.close()
})
