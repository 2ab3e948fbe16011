// `in` is one set test in the DO's SQLite (docs/protocol.md §7): a join's
// on-demand side asks for its keys as one list, and a list of 100 used to be
// refused INTERNAL (SQLite's expression depth, 100 in the DO).
import { env } from 'cloudflare:test'
import { expect, it } from 'vitest'

import type { PredicateIR } from '../../worker/src/protocol/index.js'
import type { Env } from './fixture.js'
import { freshRoom, TestSocket } from './socket.js'

const testEnv = env as unknown as Env
const id = (i: number) => `t${String(i).padStart(5, '0')}`
const inIds = (ids: string[]): PredicateIR => ({
  type: 'func',
  name: 'in',
  args: [{ type: 'ref', path: ['id'] }, { type: 'val', value: ids }],
})

/** Every row of sub `sub`'s snapshot (its frames up to the one without `more`), or the sub-error. */
async function snapshot(socket: TestSocket, sub: string) {
  const rows: Array<Record<string, unknown>> = []
  for (;;) {
    const f = await socket.nextOf(['snapshot', 'sub-error'], (f) => f.sub === sub)
    if (f.t !== 'snapshot') return { error: f, ids: [] }
    rows.push(...f.rows)
    if (f.more !== true) return { error: undefined, ids: rows.map((r) => String(r.id)).sort() }
  }
}

it('an in list of 100 to 4,000 keys (past maxPredicateNodes) selects its rows, in a snapshot, a window and live changes', async () => {
  const name = freshRoom('in-list')
  await testEnv.TEST_DO.get(testEnv.TEST_DO.idFromName(name)).seedTasks(1500, 't')
  const { socket } = await TestSocket.connect(name, 'ann')
  for (const n of [100, 101, 257, 1000, 4000]) {
    // Every other id, some of them past the table's end.
    const ids = Array.from({ length: n }, (_, i) => id(2 * i + 1))
    const expected = ids.filter((k) => Number(k.slice(1)) <= 1500).sort()
    socket.send({ t: 'sub', id: `in${n}`, c: 'tasks', where: inIds(ids) })
    const answer = await snapshot(socket, `in${n}`)
    expect(answer.error).toBeUndefined()
    expect(answer.ids).toEqual(expected)
    socket.send({ t: 'unsub', id: `in${n}` })
  }
  // A window over the list: the 10 highest ranks among 1,000 keys.
  const keys = Array.from({ length: 1000 }, (_, i) => id(i + 1))
  socket.send({ t: 'sub', id: 'top', c: 'tasks', where: inIds(keys), orderBy: [{ col: 'rank', dir: 'desc' }], limit: 10 })
  expect((await snapshot(socket, 'top')).ids).toEqual(keys.slice(990).sort())
  // Live: the core's own evaluator tests each change against the list.
  socket.send({ t: 'sub', id: 'live', c: 'tasks', where: inIds(keys) })
  expect((await snapshot(socket, 'live')).ids).toEqual(keys)
  const ack = await socket.mutate('w1', [
    { c: 'tasks', op: 'update', k: id(500), cols: { title: 'in the list' } },
    { c: 'tasks', op: 'update', k: id(1200), cols: { title: 'outside it' } },
  ])
  expect(ack.t).toBe('ack')
  const changes = await socket.next('changes', (f) => f.changes.some((c) => c.k === id(500)))
  expect(changes.changes.find((c) => c.k === id(500))?.row?.title).toBe('in the list')
  expect(changes.changes.find((c) => c.k === id(1200))?.row).toBeUndefined()
  socket.close()
}, 60_000)
