// A storage reset under a real TanStack DB client: ctx.storage.deleteAll()
// and a fresh registerSync in the same instance start a new epoch. The DO
// closes live sockets with 1012 (RESET); the client reconnects with its old
// epoch and cursor, is answered with snapshots of the new incarnation, and
// must end up holding exactly its rows (the old ones gone), with writes
// working.
import { afterEach, expect, it } from 'vitest'

import { admin, type Client, connectClient, freshRoom, message, rowsOf, serverRows, until } from './harness.js'

const open: Client[] = []
afterEach(() => {
  for (const c of open.splice(0)) c.transport.close()
})

it('after deleteAll() the client holds exactly the new incarnation’s rows, and its writes work', async () => {
  const room = freshRoom('epoch')
  const ann = connectClient(room, 'ann')
  open.push(ann)
  await ann.messages.preload()
  for (let i = 0; i < 3; i++) await ann.messages.insert(message(`old-${i}`, 'ann')).isPersisted.promise
  expect(ann.messages.size).toBe(3)
  const oldEpoch = ann.transport.epoch
  const oldCursor = ann.transport.appliedSeq
  expect(oldEpoch).toBeTruthy()

  const reset = await admin('sync', room, 'reset-storage')
  expect(reset.epoch).not.toBe(oldEpoch)
  // A row of the new incarnation, written by the server.
  await admin('sync', room, 'server-insert', message('new-1', 'agent'))

  await until(
    () => ann.transport.epoch === reset.epoch && ann.transport.status === 'live' && ann.messages.has('new-1') && ann.messages.size === 1,
    'the client resyncs to the new epoch',
  )
  expect(rowsOf(ann.messages)).toEqual([message('new-1', 'agent')])
  // The new incarnation's seqs start again: the cursor follows them, not the old one.
  const { head } = await admin('sync', room, 'state')
  expect(ann.transport.appliedSeq).toBe(head)
  expect(head).toBeLessThan(oldCursor)

  await ann.messages.insert(message('new-2', 'ann')).isPersisted.promise
  const server = (await serverRows(room)).messages
  expect(server).toEqual([message('new-1', 'agent'), message('new-2', 'ann')])
  expect(rowsOf(ann.messages)).toEqual(server)
})
