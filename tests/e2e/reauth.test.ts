// Auth that outlives a token, end to end: a real client whose `url` is a
// function (a fresh token before every dial) against the fixture DO in local
// workerd. At the claims' expiry the DO closes the socket 4001 REAUTH; the
// client dials again with a fresh URL, resumes from its cursor (a catch-up,
// no snapshot) and keeps its pending write; a refused re-authentication is
// terminal and says so. The DO's clock is injected (admin advance-clock).
import { afterEach, expect, it } from 'vitest'

import { ClosedError, CloseCode } from '../../worker/src/client/index.js'
import type { HelloFrame } from '../../worker/src/protocol/index.js'
import { admin, type Client, connectClient, freshRoom, message, serverRows, socketUrl, until } from './harness.js'

const open: Client[] = []
afterEach(() => {
  for (const c of open.splice(0)) c.transport.close()
})

const HOUR_MS = 3600_000
const parsed = (frames: string[]) => frames.map((f) => JSON.parse(f) as { t: string; [k: string]: unknown })

it('at the token’s expiry the socket closes 4001; the client dials a fresh URL, resumes by cursor and keeps its pending write', async () => {
  const room = freshRoom('reauth')
  const dials: string[] = []
  let user = 'ann'
  // Each dial gets a token that expires an hour (on the DO's clock) after the last one.
  const url = async () => {
    await Promise.resolve() // async on purpose: a token fetch
    const exp = Math.floor(Date.now() / 1000) + (dials.length + 1) * 3600
    const next = socketUrl(room, user, 'sync', `&exp=${exp}`)
    dials.push(next)
    return next
  }
  const ann = connectClient(room, 'ann', 'sync', url)
  open.push(ann)
  await ann.messages.preload()
  await ann.tasks.preload()
  await ann.messages.insert(message('before', 'ann')).isPersisted.promise
  expect(dials).toHaveLength(1)

  // A write in flight when the token expires: its authorize is held.
  const held = ann.tasks.insert({ id: 'held-1', title: 'held', done: 0, rank: 1, category: 'a' })
  await until(() => ann.network.sentFrames('mut').some((f) => f.ops.some((op) => op.k === 'held-1')), 'the held write was sent')
  const cursor = ann.transport.appliedSeq
  const receivedBefore = ann.network.received.length
  const sentBefore = ann.network.sent.length

  await admin('sync', room, 'advance-clock', { ms: HOUR_MS + 1000 })
  await until(() => dials.length === 2 && ann.transport.status === 'live', 'the client dialled again and is live')
  expect(new URL(dials[1]!).searchParams.get('exp')).not.toBe(new URL(dials[0]!).searchParams.get('exp'))

  // The new socket's hello resumes from the cursor: a catch-up, no snapshot.
  const hello = ann.network.sentFrames('hello').at(-1) as HelloFrame
  expect(hello.since).toBe(cursor)
  expect(hello.subs?.every((s) => s.resume === true)).toBe(true)
  // The pending write is sent again under its id on the new socket.
  const resent = parsed(ann.network.sent.slice(sentBefore)).filter((f) => f.t === 'mut')
  expect(resent).toHaveLength(1)
  // Released until it settles: the replay may reach the DO after a first
  // release (the closed socket's write then ran alone), and wait on the next.
  let persisted = false
  void held.isPersisted.promise.then(() => (persisted = true))
  await until(async () => {
    await admin('sync', room, 'release-held')
    return persisted
  }, 'the held write is confirmed')
  expect(ann.tasks.has('held-1')).toBe(true)
  const after = parsed(ann.network.received.slice(receivedBefore))
  expect(after.some((f) => f.t === 'snapshot')).toBe(false)
  expect((await serverRows(room)).tasks.map((t) => t.id)).toEqual(['held-1'])

  // Live on the new token: a write confirms.
  await ann.messages.insert(message('after', 'ann')).isPersisted.promise
  expect((await serverRows(room)).messages.map((m) => m.id)).toEqual(['after', 'before'])

  // The next re-authentication is refused (the Worker's authenticate says no): terminal, and it says so.
  user = '!refused!'
  await admin('sync', room, 'advance-clock', { ms: 2 * HOUR_MS })
  await until(() => ann.transport.status === 'closed', 'the transport closes for good')
  expect(dials).toHaveLength(3)
  const error = await ann.transport.awaitSeq(Number.MAX_SAFE_INTEGER).catch((e: unknown) => e)
  expect(error).toBeInstanceOf(ClosedError)
  expect((error as ClosedError).closeCode).toBe(CloseCode.UNAUTHORIZED)
  expect((error as ClosedError).message).toMatch(/re-authentication refused/)
})
