// afterCommit runs once per op of a committed mutation, after its ack, with
// that op's own execute result.
import { env, runInDurableObject } from 'cloudflare:test'
import { expect, it } from 'vitest'

import { SyncRegistry } from 'seqsync'

import type { Env, ProbeDO } from './fixture.js'

const testEnv = env as unknown as Env

interface Item {
  id: string
  label: string
}

it('each op of a mutation gets its own execute result in afterCommit, not the last op’s', async () => {
  const stub = testEnv.PROBE_DO.get(testEnv.PROBE_DO.idFromName(`after-commit-${Date.now()}`))
  const seen: Array<{ key: string; result: unknown; seq: number }> = []
  // ProbeDO registers what a test hands it: here a table whose insert
  // returns a result per op, and an afterCommit that records what it got.
  const ack = await runInDurableObject(stub, async (instance: ProbeDO) => {
    instance.exec('CREATE TABLE items (id TEXT PRIMARY KEY, label TEXT)')
    const registry = new SyncRegistry<unknown, Env, { items: Item }>()
      .defineCollection({ table: 'items', pk: 'id' })
      .defineMutation({
        collection: 'items',
        type: 'insert',
        execute: ({ op, sql }) => {
          sql.exec('INSERT INTO items(id, label) VALUES (?, ?)', op.cols.id, op.cols.label)
          return `${op.key} executed` as unknown as void
        },
        afterCommit: (ctx) => {
          seen.push({ key: ctx.op.key, result: (ctx as { result?: unknown }).result, seq: ctx.seq })
        },
      })
    ;(instance as unknown as { registerSync(r: unknown): void }).registerSync(registry)
    // The socket's client end belongs to this object's I/O context, so the
    // whole exchange runs in it.
    const res = await instance.fetch(new Request('http://probe/', { headers: { Upgrade: 'websocket' } }))
    const ws = res.webSocket!
    ws.accept()
    const frames: Array<Record<string, unknown>> = []
    ws.addEventListener('message', (event) => {
      frames.push(JSON.parse(event.data as string) as Record<string, unknown>)
    })
    ws.send(JSON.stringify({ t: 'hello', v: 1 }))
    const insert = (id: string) => ({ c: 'items', op: 'insert', k: id, cols: { id, label: `label ${id}` } })
    ws.send(JSON.stringify({ t: 'mut', id: 'three', ops: [insert('a'), insert('b'), insert('c')] }))
    const deadline = Date.now() + 10_000
    let ack: Record<string, unknown> | undefined
    while (!(ack = frames.find((f) => f.t === 'ack' && f.id === 'three')) || seen.length < 3) {
      if (Date.now() > deadline) throw new Error(`no ack and three afterCommits: ${JSON.stringify(frames)}`)
      await scheduler.wait(10)
    }
    ws.close(1000, 'test done')
    return ack
  })
  expect(seen).toEqual([
    { key: 'a', result: 'a executed', seq: ack.seq },
    { key: 'b', result: 'b executed', seq: ack.seq },
    { key: 'c', result: 'c executed', seq: ack.seq },
  ])
})
