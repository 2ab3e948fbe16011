// syncStats(), syncInspect() and the DO's debug lines, in real workerd: the
// counters the core keeps as frames leave, the sizes read when asked, and
// one JSON line per connect, resume, refusal and mutation outcome.
import { env } from 'cloudflare:workers'
import { expect, it } from 'vitest'

import { ErrorCode } from '../../worker/src/protocol/index.js'
import type { SyncInspection } from '../../worker/src/do/index.js'
import type { Env } from './fixture.js'
import { freshRoom, insertMessage, TestSocket } from './socket.js'

const testEnv = env as unknown as Env
const room = (name: string) => testEnv.TEST_DO.get(testEnv.TEST_DO.idFromName(name))
const SUBS = [{ id: 'm', c: 'messages' }, { id: 't', c: 'tasks' }]

function task(id: string, title: string) {
  return { c: 'tasks', op: 'insert', k: id, cols: { id, title } }
}

it('syncStats counts outcomes, refusals by code, writes in flight and latency, and reads the sizes', async () => {
  const name = freshRoom('stats')
  const { socket: ann } = await TestSocket.connect(name, 'ann', { subs: SUBS })
  const { socket: bob } = await TestSocket.connect(name, 'bob', { subs: SUBS })
  await ann.next('synced')
  await bob.next('synced')
  for (let i = 0; i < 3; i++) expect((await ann.mutate(`m${i}`, [insertMessage(`k${i}`)])).t).toBe('ack')
  expect((await ann.mutate('m0', [insertMessage('k0')])).t).toBe('ack') // a replay
  expect((await bob.mutate('denied', [insertMessage('x', 'ann')])).t).toBe('reject') // bob posts as ann
  bob.send('{')
  await bob.next('error')
  // A write held in authorize is in flight until released.
  ann.send({ t: 'mut', id: 'held', ops: [task('h', 'held')] })
  await expect.poll(async () => (await room(name).stats()).writesInFlight).toBe(1)
  await scheduler.wait(30)
  await room(name).releaseHeld()
  expect((await ann.settle('held')).t).toBe('ack')

  const stats = await room(name).stats()
  expect(stats.head).toBe(4)
  expect(stats.log.rows).toBe(4)
  expect(stats.log.bytes).toBeGreaterThan(4 * 16)
  expect(stats.tables).toMatchObject({ messages: 3, notes: 0, tasks: 1 }) // and every other registered table
  expect(stats.sockets).toBe(2)
  expect(stats.subscriptions).toEqual({ messages: 2, tasks: 2 })
  expect(stats.writesInFlight).toBe(0)
  expect(stats.mutations).toEqual({ committed: 4, rejected: 1, replayed: 1 })
  const refusals = Object.fromEntries(stats.refusals.map((r) => [r.error, r.count]))
  expect(refusals).toMatchObject({ UNAUTHORIZED: 1, MALFORMED_FRAME: 1 })
  expect(stats.refusals.find((r) => r.error === 'UNAUTHORIZED')?.code).toBe(ErrorCode.UNAUTHORIZED)
  expect(stats.latencyMs.execute.samples).toBe(4)
  expect(stats.latencyMs.commitToAck.samples).toBe(4)
  // The held write waited at least the 30 ms this test waited before releasing it.
  expect(stats.latencyMs.execute.p99).toBeGreaterThanOrEqual(30)
  expect(stats.sent.deliveries).toBeGreaterThan(stats.sent.frames) // each change went to both sockets in one frame
  expect(stats.sent.bytes).toBeGreaterThan(0)
  expect(stats.lastHousekeepingMs).toBeGreaterThan(0)
  expect(stats.housekeepingFailures).toBe(0)
  expect(stats.wasmMemoryBytes).toBeGreaterThan(0)
  expect(stats.wasmMemoryBytes % 65536).toBe(0) // whole wasm pages
  expect(stats.databaseBytes).toBeGreaterThan(0)
  expect(typeof stats.epoch).toBe('string')
  ann.close()
  bob.close()
})

it('syncInspect lists each socket with its redacted identity and subscriptions, and the recent changes, mutations and refusals', async () => {
  const name = freshRoom('inspect')
  const where = { type: 'func', name: 'eq', args: [{ type: 'ref', path: ['author'] }, { type: 'val', value: 'ann' }] }
  const { socket: ann } = await TestSocket.connect(name, 'ann', { subs: [{ id: 'mine', c: 'messages', where }] })
  await ann.next('synced')
  await ann.mutate('m1', [insertMessage('k1')])
  await ann.mutate('bad', [insertMessage('k2', 'bob')])

  // As the DO returned it (RPC's recursive types of a JSON value are too deep for tsc).
  const inspection = (await (room(name) as unknown as { inspect(): Promise<SyncInspection> }).inspect())
  expect(inspection.socketList).toHaveLength(1)
  expect(inspection.socketList[0]!.identity).toEqual({ userId: 'ann' }) // redactClaims dropped the rest
  expect(inspection.socketList[0]!.subs).toEqual([{ id: 'mine', collection: 'messages', where }])
  expect(inspection.recentChanges.map((c) => c.key)).toEqual(['k1'])
  expect(inspection.recentMutations.map((m) => [m.id, m.outcome])).toEqual([['m1', 'committed'], ['bad', 'UNAUTHORIZED']])
  expect(inspection.recentRefusals[0]).toMatchObject({ socket: inspection.socketList[0]!.id, error: 'UNAUTHORIZED' })
  expect(inspection.recentRefusals[0]!.frame).toContain('author mismatch')
  ann.close()
})

it('debug lines: one JSON line per connect, resume, refusal and mutation outcome, with socket and mutation ids', async () => {
  const name = freshRoom('debug')
  await room(name).collectDebugLines()
  const { socket: first } = await TestSocket.connect(name, 'ann', { subs: [SUBS[0]] })
  const synced = await first.next('synced')
  await first.mutate('m1', [insertMessage('k1')])
  await first.mutate('denied', [insertMessage('k2', 'bob')])
  first.send({ t: 'sub', id: 'nope', c: 'nowhere' })
  await first.next('sub-error')
  // A second client resumes from the first one's cursor before the write: a delta of one change.
  const { socket: second } = await TestSocket.connect(name, 'ann', {
    since: synced.seq,
    epoch: (first.all('welcome')[0] as { epoch: string }).epoch,
    subs: [{ ...SUBS[0], resume: true }],
  })
  await second.next('synced')

  const lines = (await room(name).debugLines()).map((l) => JSON.parse(l) as Record<string, unknown>)
  const of = (kind: string) => lines.filter((l) => l.seqsync === kind)
  const connects = of('connect')
  expect(connects).toHaveLength(2)
  const [firstId, secondId] = connects.map((l) => l.socket as string)
  expect(of('resume')).toEqual([
    expect.objectContaining({ socket: firstId, mode: 'snapshot', snapshotRows: 0, subs: 1 }),
    expect.objectContaining({ socket: secondId, mode: 'delta', changes: 1, since: synced.seq }),
  ])
  expect(of('mutation')).toEqual([
    expect.objectContaining({ socket: firstId, mutation: 'm1', outcome: 'committed', seq: 1 }),
    expect.objectContaining({ socket: firstId, mutation: 'denied', outcome: 'rejected', code: ErrorCode.UNAUTHORIZED, reason: 'author mismatch' }),
  ])
  expect(of('refusal')).toEqual([
    expect.objectContaining({ socket: firstId, frame: 'sub-error', sub: 'nope', code: ErrorCode.UNKNOWN_COLLECTION }),
  ])
  for (const line of lines) expect(typeof line.at).toBe('number')
  first.close()
  second.close()
})

it('debug is off by default: no line is written', async () => {
  const name = freshRoom('quiet')
  const { socket } = await TestSocket.connect(name, 'ann', { subs: [SUBS[0]] })
  await socket.next('synced')
  await socket.mutate('m1', [insertMessage('k1')])
  expect(await room(name).debugLines()).toEqual([])
  socket.close()
})
