// A storage reset under live sockets: the epoch changes, and every client
// is told at once with a retryable close, then resyncs from a snapshot.
import { env } from 'cloudflare:test'
import { expect, it } from 'vitest'

import { CloseCode } from '../../worker/src/protocol/index.js'
import type { Env } from './fixture.js'
import { freshRoom, insertMessage, TestSocket } from './socket.js'

const testEnv = env as unknown as Env
const room = (name: string) => testEnv.TEST_DO.get(testEnv.TEST_DO.idFromName(name))

it('deleteAll() and a fresh registerSync close live sockets retryably; a reconnect gets the new epoch and only new rows', async () => {
  const name = freshRoom('epoch')
  const { socket, welcome } = await TestSocket.connect(name, 'ann', { subs: [{ id: 'm', c: 'messages' }] })
  await socket.next('synced')
  for (let i = 0; i < 5; i++) expect((await socket.mutate(`old-${i}`, [insertMessage(`old-${i}`)])).t).toBe('ack')
  const before = await room(name).whoAmI()
  await room(name).resetStorage()
  expect(await room(name).whoAmI()).toBe(before) // the same instance, new storage
  await expect(socket.next('error', () => false)).rejects.toThrow(/socket closed/)
  expect(socket.closed?.code).toBe(CloseCode.RESET)
  // A new write in the new incarnation, then the client's resume.
  const writer = await TestSocket.connect(name, 'ann')
  expect((await writer.socket.mutate('new-1', [insertMessage('new-1')])).t).toBe('ack')
  const again = await TestSocket.connect(name, 'ann', {
    epoch: welcome.epoch, since: welcome.seq + 5, subs: [{ id: 'm', c: 'messages', resume: true }],
  })
  expect(again.welcome.epoch).not.toBe(welcome.epoch)
  await again.socket.next('synced')
  expect(again.socket.all('snapshot').flatMap((f) => f.rows).map((r) => r.id)).toEqual(['new-1'])
  again.socket.close()
  writer.socket.close()
})
