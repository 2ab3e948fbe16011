// Randomized convergence under faults. Twenty clients with real TanStack DB
// collections over two collections of one DO write at random (inserts,
// updates, deletes, two-collection transactions, non-idempotent commands,
// writes that must be refused) while the harness drops and restores their
// sockets, resets the DO, expires the change log under clients that are away
// and writes from the server. At the end every client must equal the
// server, every confirmed write must be reflected unless a later confirmed
// write to the same key superseded it, no refused write may be present, and
// no write may be applied twice. Seeds are fixed and printed; rerun one with
// CHAOS_SEEDS=<seed>.
import { mkdirSync, writeFileSync } from 'node:fs'

import { type Collection, createTransaction } from '@tanstack/db'
import { expect, it } from 'vitest'

import { persistTransaction, RejectedError, type SeqsyncUtils } from '../../worker/src/client/index.js'
import { admin, type Client, connectClient, type Message, rowsOf, serverRows, type Task, until } from '../e2e/harness.js'
import { seededRandom } from '../support/prng.js'

const SHORT = process.env.CHAOS_MODE === 'short'
const SEEDS = (process.env.CHAOS_SEEDS ?? (SHORT ? '1' : '1,2,3,4,5')).split(',').map(Number)
const OPS = Number(process.env.CHAOS_OPS ?? (SHORT ? 150 : 600))
const CLIENTS = Number(process.env.CHAOS_CLIENTS ?? 20)
const COUNTERS = 4


type Table = 'messages' | 'tasks'
interface Op {
  table: Table
  key: string
  type: 'insert' | 'update' | 'delete'
  cols?: Record<string, unknown>
}
interface Write {
  ops: Op[]
  seq?: number
  outcome: 'pending' | 'confirmed' | 'rejected' | 'failed'
  mustBeRefused: boolean
  error?: unknown
}

/** Applies `op` to `collection` inside the current transaction's mutate(). */
function applyOp<T extends object>(collection: Collection<T, string | number, SeqsyncUtils, never, T>, op: Op): void {
  if (op.type === 'insert') collection.insert(op.cols as T)
  else if (op.type === 'delete') collection.delete(op.key)
  else collection.update(op.key, (draft) => { Object.assign(draft, op.cols) })
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function runSeed(seed: number) {
  const random = seededRandom(seed)
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!
  const room = `chaos-${seed}-${Date.now().toString(36)}`
  const stats = { seed, ops: 0, writes: 0, confirmed: 0, refused: 0, commands: 0, drops: 0, resets: 0, expiries: 0, serverWrites: 0 }

  const counters: Task[] = Array.from({ length: COUNTERS }, (_, i) => ({ id: `counter-${i}`, title: 'counter', done: 0, rank: 0, category: 'counter' }))
  const ledger: Write[] = [{ ops: counters.map((t) => ({ table: 'tasks', key: t.id, type: 'insert', cols: { ...t } })), outcome: 'confirmed', mustBeRefused: false }]
  ledger[0]!.seq = Number((await admin('short', room, 'server-insert-tasks', { tasks: counters })).seq)

  const clients: Client[] = Array.from({ length: CLIENTS }, (_, i) => connectClient(room, `c${i}`, 'short'))
  await Promise.all(clients.flatMap((c) => [c.messages.preload(), c.tasks.preload()]))
  const incrConfirmed = new Map<string, number>()
  const pending: Promise<unknown>[] = []
  let unique = 0
  const freshId = (prefix: string) => `${prefix}-${seed}-${unique++}`

  // One client write as an explicit transaction, so its confirmed seq is known.
  function write(c: Client, ops: Op[], mustBeRefused = false) {
    const record: Write = { ops, outcome: 'pending', mustBeRefused }
    ledger.push(record)
    stats.writes++
    const tx = createTransaction({
      autoCommit: false,
      mutationFn: async ({ transaction }) => {
        // What goes on the wire: an update carries only the fields that
        // changed in this client's view, so record those.
        record.ops = transaction.mutations.map((m) => ({
          table: m.collection.id === c.messages.id ? 'messages' : 'tasks',
          key: String(m.key),
          type: m.type,
          cols: m.type === 'delete' ? undefined : { ...(m.changes as Record<string, unknown>) },
        }))
        record.seq = (await persistTransaction(c.transport, transaction)).seq
      },
    })
    tx.mutate(() => {
      for (const op of ops) {
        if (op.table === 'messages') applyOp(c.messages, op)
        else applyOp(c.tasks, op)
      }
    })
    pending.push(
      tx.commit().then(
        () => { record.outcome = 'confirmed' },
        (error: unknown) => {
          record.outcome = error instanceof RejectedError ? 'rejected' : 'failed'
          record.error = error
        },
      ),
    )
  }

  const newMessage = (c: Client): Op => {
    const id = freshId('m')
    return { table: 'messages', key: id, type: 'insert', cols: { id, author: c.user, content: `hello ${id}`, created_at: unique } }
  }
  const newTask = (): Op => {
    const id = freshId('t')
    return { table: 'tasks', key: id, type: 'insert', cols: { id, title: `task ${id}`, done: 0, rank: null, category: pick(['a', 'b', 'c']) } }
  }
  // A key this client holds right now (never a counter for deletes).
  const heldKey = (c: Client, table: Table, forDelete: boolean) => {
    const keys = [...(table === 'messages' ? c.messages : c.tasks).keys()].map(String)
      .filter((k) => !(forDelete && k.startsWith('counter-')))
    return keys.length ? pick(keys) : undefined
  }

  for (let i = 0; i < OPS; i++) {
    stats.ops++
    const c = pick(clients)
    const roll = random()
    if (roll < 0.2) {
      write(c, [newMessage(c)])
    } else if (roll < 0.32) {
      write(c, [newTask()])
    } else if (roll < 0.42) {
      const key = heldKey(c, 'messages', false)
      if (key) write(c, [{ table: 'messages', key, type: 'update', cols: { content: `edit ${i} by ${c.user}` } }])
    } else if (roll < 0.52) {
      const key = heldKey(c, 'tasks', false)
      if (key) write(c, [{ table: 'tasks', key, type: 'update', cols: { title: `retitled ${i}`, done: i % 2 } }])
    } else if (roll < 0.6) {
      const table = pick(['messages', 'tasks'] as const)
      const key = heldKey(c, table, true)
      if (key) write(c, [{ table, key, type: 'delete' }])
    } else if (roll < 0.68) {
      write(c, [newMessage(c), newTask()]) // one transaction over two collections
    } else if (roll < 0.72) {
      // Must be refused: a message in someone else's name.
      const op = newMessage(c)
      op.cols!.author = 'someone-else'
      write(c, [op], true)
    } else if (roll < 0.8) {
      const id = `counter-${Math.floor(random() * COUNTERS)}`
      stats.commands++
      pending.push(
        c.transport.call('incr', { id }).then(() => incrConfirmed.set(id, (incrConfirmed.get(id) ?? 0) + 1)),
      )
    } else if (roll < 0.9) {
      // Drop a client's connection for 20 ms to 2 s.
      stats.drops++
      c.network.cut()
      const away = 20 + random() * 2000
      setTimeout(() => c.network.restore(), away)
    } else if (roll < 0.94) {
      stats.serverWrites++
      const op = newMessage(c)
      op.cols!.author = 'server'
      const record: Write = { ops: [op], outcome: 'confirmed', mustBeRefused: false }
      record.seq = Number((await admin('short', room, 'server-insert', op.cols)).seq)
      ledger.push(record)
    } else if (roll < 0.97) {
      // Expire the change log: clients that are away come back to snapshots.
      stats.expiries++
      await admin('short', room, 'housekeep', { aheadMs: 5_000 })
    } else {
      stats.resets++
      await admin('short', room, 'crash')
    }
    await sleep(random() * 4)
  }

  // Heal everything and let every write settle.
  for (const c of clients) c.network.restore()
  await Promise.race([Promise.allSettled(pending), sleep(90_000)])
  const stillPending = ledger.filter((w) => w.outcome === 'pending').length
  const { head } = (await admin('short', room, 'state')) as { head: number }
  try {
    await until(() => clients.every((c) => c.transport.status === 'live' && c.transport.appliedSeq >= head), 'every client caught up', 60_000)
  } catch (error) {
    const behind = clients.filter((c) => c.transport.status !== 'live' || c.transport.appliedSeq < head)
    console.error(`seed ${seed}: head ${head}; behind: ${behind.map((c) => `${c.user} ${c.transport.status} at ${c.transport.appliedSeq}`).join(', ')}`)
    throw error
  }

  // The server's final state, and what the confirmed writes imply for it.
  const server = await serverRows(room, 'short')
  const expected = { messages: new Map<string, Record<string, unknown>>(), tasks: new Map<string, Record<string, unknown>>() }
  const confirmed = ledger.filter((w) => w.outcome === 'confirmed' && w.seq !== undefined)
  confirmed.sort((a, b) => a.seq! - b.seq!) // stable: one mutation's ops stay in order
  for (const w of confirmed) {
    for (const op of w.ops) {
      const table = expected[op.table]
      if (op.type === 'insert') table.set(op.key, { ...op.cols })
      else if (op.type === 'delete') table.delete(op.key)
      else if (table.has(op.key)) table.set(op.key, { ...table.get(op.key), ...op.cols })
    }
  }
  for (const [id, n] of incrConfirmed) expected.tasks.set(id, { ...expected.tasks.get(id), rank: n })

  let lost = 0
  for (const table of ['messages', 'tasks'] as const) {
    const actual = new Map<string, Record<string, unknown>>(server[table].map((r: Message | Task) => [r.id, { ...r }]))
    for (const [key, cols] of expected[table]) {
      const row = actual.get(key)
      if (!row || Object.entries(cols).some(([k, v]) => row[k] !== v)) {
        lost++
        console.error(`seed ${seed}: ${table}/${key}: expected ${JSON.stringify(cols)}, server has ${JSON.stringify(row)}`)
      }
    }
    for (const key of actual.keys()) {
      if (!expected[table].has(key)) {
        lost++
        console.error(`seed ${seed}: ${table}/${key} is on the server but no confirmed write explains it`)
      }
    }
  }
  const refusedPresent = ledger.filter((w) => w.mustBeRefused).filter((w) =>
    w.outcome === 'confirmed' || server.messages.some((m) => m.id === w.ops[0]!.key)).length
  const unexpectedFailures = ledger.filter((w) => !w.mustBeRefused && w.outcome !== 'confirmed')
  for (const w of unexpectedFailures.slice(0, 5)) console.error(`seed ${seed}: write not confirmed:`, w.ops, w.error)

  let divergent = 0
  for (const c of clients) {
    const same =
      JSON.stringify(rowsOf(c.messages)) === JSON.stringify(rowsOf({ toArray: server.messages })) &&
      JSON.stringify(rowsOf(c.tasks)) === JSON.stringify(rowsOf({ toArray: server.tasks }))
    if (!same) divergent++
  }
  for (const c of clients) c.transport.close()

  stats.confirmed = ledger.filter((w) => w.outcome === 'confirmed').length
  stats.refused = ledger.filter((w) => w.outcome === 'rejected').length
  return { ...stats, stillPending, lostConfirmed: lost, refusedPresent, unexpectedFailures: unexpectedFailures.length, divergentClients: divergent }
}

it(`converges under faults: ${SEEDS.length} seed(s) × ${OPS} ops × ${CLIENTS} clients`, async () => {
  const results = []
  for (const seed of SEEDS) {
    const result = await runSeed(seed)
    console.log(`chaos ${JSON.stringify(result)}`)
    results.push(result)
  }
  mkdirSync('test-output', { recursive: true })
  writeFileSync(`test-output/chaos${SHORT ? '-short' : ''}.json`, JSON.stringify(results, null, 2))
  for (const r of results) {
    expect(r, `seed ${r.seed}`).toMatchObject({ stillPending: 0, lostConfirmed: 0, refusedPresent: 0, unexpectedFailures: 0, divergentClients: 0 })
  }
})
