// The client's debug lines (WebSocketTransportOptions.debug), from a real
// transport and real TanStack DB collections against the fixture DO.
import { afterEach, expect, it } from 'vitest'

import { ErrorCode } from '../../worker/src/protocol/index.js'
import { type Client, connectClient, freshRoom, message, until } from './harness.js'

const open: Client[] = []
afterEach(() => {
  for (const c of open.splice(0)) c.transport.close()
})

it('debug lines: one JSON line per connect, resume, refusal and mutation outcome, with mutation ids', async () => {
  const room = freshRoom('debug')
  const lines: Array<Record<string, unknown>> = []
  const ann = connectClient(room, 'ann', 'sync', undefined, { debug: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) })
  open.push(ann)
  await ann.messages.preload()
  await ann.messages.insert(message('a', 'ann')).isPersisted.promise
  const denied = ann.messages.insert(message('b', 'bob')) // ann posting as bob: refused
  await expect(denied.isPersisted.promise).rejects.toThrow()
  // Another client writes while ann is away; ann resumes by cursor: a delta of one change.
  ann.network.cut()
  await until(() => ann.transport.status !== 'live', 'ann is offline')
  const bob = connectClient(room, 'bob')
  open.push(bob)
  await bob.messages.insert(message('c', 'bob')).isPersisted.promise
  ann.network.restore()
  await until(() => ann.messages.has('c'), 'ann resumed')

  const of = (kind: string) => lines.filter((l) => l.seqsync === kind)
  expect(of('connect').map((l) => l.connection)).toEqual([1, 2])
  expect(of('resume')).toEqual([
    expect.objectContaining({ connection: 1, mode: 'snapshot', since: null, subs: 1 }),
    expect.objectContaining({ connection: 2, mode: 'delta', changes: 1, since: 1 }),
  ])
  const mutations = of('mutation')
  expect(mutations).toEqual([
    expect.objectContaining({ outcome: 'committed', seq: 1 }),
    expect.objectContaining({ outcome: 'rejected', code: ErrorCode.UNAUTHORIZED, reason: 'author mismatch' }),
  ])
  // Each names the write by the id the transport sent it under.
  const sentIds = ann.network.sentFrames('mut').map((f) => f.id)
  expect(mutations.map((m) => m.mutation)).toEqual(sentIds)
  expect(of('close')).toHaveLength(1)
  for (const line of lines) expect(typeof line.at).toBe('number')
})

it('debug is off by default: the transport writes no line', async () => {
  const logged: unknown[] = []
  const original = console.log
  console.log = (...args: unknown[]) => void logged.push(args)
  try {
    const ann = connectClient(freshRoom('quiet'), 'ann')
    open.push(ann)
    await ann.messages.preload()
    await ann.messages.insert(message('a', 'ann')).isPersisted.promise
  } finally {
    console.log = original
  }
  expect(logged.filter((args) => String((args as unknown[])[0]).includes('"seqsync"'))).toEqual([])
})
