// Flow control (docs/protocol.md §4.6): a socket that stops reporting what it
// read is closed 4008 SLOW_READER once more than maxUnreadBytesPerSocket
// (8 MiB by default) is unread, the socket that reports keeps every change,
// and the closed client resumes by cursor.
import { expect, it } from 'vitest'

import { CloseCode } from '../../worker/src/protocol/index.js'
import { freshRoom, insertMessage, TestSocket } from './socket.js'

const utf8 = new TextEncoder()
const SUB = { id: 'm', c: 'messages' }
const ROW_CHARS = 1_000_000
const LIMIT = 8 * 1024 * 1024

it('a socket that never reports reading is closed SLOW_READER after 8 MiB; the reader keeps every change; the slow one resumes by cursor', async () => {
  const room = freshRoom('slow')
  const { socket: reader } = await TestSocket.connect(room, 'ann', { subs: [SUB] })
  const { socket: slow, welcome } = await TestSocket.connect(room, 'ann', { subs: [SUB] })
  await slow.next('synced')
  await reader.next('synced')
  let reported = 0
  const reportRead = () => {
    const total = reader.raw.reduce((n, f) => n + utf8.encode(f).byteLength, 0)
    reader.send({ t: 'recv', bytes: total - reported })
    reported = total
  }
  let slowSeq = 0 // the cursor the slow client holds: the last unit it was sent whole
  const rows = Math.ceil(LIMIT / ROW_CHARS) + 3
  for (let i = 0; i < rows; i++) {
    const ack = await reader.mutate(`w${i}`, [insertMessage(`k${i}`, 'ann', String(i % 10).repeat(ROW_CHARS))])
    expect(ack.t).toBe('ack')
    reportRead()
    if (!slow.closed) await slow.next('changes', (f) => f.seq === (ack as { seq: number }).seq).then((f) => (slowSeq = f.seq)).catch(() => {})
  }
  // Closed once over the bound, not before: it was sent more than 8 MiB.
  await reader.barrier()
  expect(slow.closed?.code).toBe(CloseCode.SLOW_READER)
  const sentToSlow = slow.all('changes').reduce((n, f) => n + utf8.encode(JSON.stringify(f)).byteLength, 0)
  expect(sentToSlow).toBeGreaterThan(LIMIT)
  expect(sentToSlow).toBeLessThan(LIMIT + 2 * ROW_CHARS + 4096)
  expect(reader.closed).toBeUndefined()
  expect(reader.all('changes').length).toBe(rows)

  // Resume by cursor: only the changes after it, then synced at the head.
  const { socket: back } = await TestSocket.connect(room, 'ann', {
    epoch: welcome.epoch, since: slowSeq, subs: [{ ...SUB, resume: true }],
  })
  const synced = await back.next('synced')
  const keys = back.all('changes').flatMap((f) => f.changes.map((c) => c.k))
  expect(synced.seq).toBe(rows)
  expect(new Set(keys)).toEqual(new Set(Array.from({ length: rows - slowSeq }, (_, j) => `k${slowSeq + j}`)))
  expect(back.all('snapshot')).toEqual([])
  reader.close()
  back.close()
})
