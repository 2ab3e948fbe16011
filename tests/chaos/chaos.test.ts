// Randomized convergence under faults. Twenty clients with real TanStack DB
// collections over two collections of one DO write at random (inserts,
// updates, deletes, two-collection transactions, non-idempotent commands,
// writes that must be refused) while the harness drops and restores their
// sockets, resets the DO, expires the change log under clients that are away
// and writes from the server. At the end every client must equal the
// server, every confirmed write must be reflected unless a later confirmed
// write to the same key superseded it, no refused write may be present, and
// no write may be applied twice. The faults must really have happened: every
// kind at least once, an expiry that pruned the log past an away client's
// cursor, that client's resume from snapshots, confirmed commands and
// refused ones (each seed also runs one scripted episode of all of these, so
// no seed passes by luck of its draws). Seeds are fixed and printed; rerun
// one with CHAOS_SEEDS=<seed>.
import { mkdirSync, writeFileSync } from 'node:fs'

import { type Collection, createTransaction } from '@tanstack/db'
import { expect, it } from 'vitest'

import { persistTransaction, RejectedError, type SeqsyncUtils } from '../../worker/src/client/index.js'
import { ErrorCode } from '../../worker/src/protocol/index.js'
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
  const stats = {
    seed, ops: 0, writes: 0, confirmed: 0, refused: 0, mustBeRefused: 0, commands: 0, commandsConfirmed: 0, commandFailures: 0,
    mustRefuseCommands: 0, refusedCommands: 0, drops: 0, resets: 0, expiries: 0, prunedPastCursor: 0, snapshotResumes: 0, serverWrites: 0,
    // The scripted episode: its expiry pruned past the away client's cursor, and that client resumed from snapshots of both collections.
    episodePrunedPastCursor: false, episodeSnapshotResume: false,
  }

  const counters: Task[] = Array.from({ length: COUNTERS }, (_, i) => ({ id: `counter-${i}`, title: 'counter', done: 0, rank: 0, category: 'counter' }))
  const ledger: Write[] = [{ ops: counters.map((t) => ({ table: 'tasks', key: t.id, type: 'insert', cols: { ...t } })), outcome: 'confirmed', mustBeRefused: false }]
  ledger[0]!.seq = Number((await admin('short', room, 'server-insert-tasks', { tasks: counters })).seq)

  const clients: Client[] = Array.from({ length: CLIENTS }, (_, i) => connectClient(room, `c${i}`, 'short'))
  await Promise.all(clients.flatMap((c) => [c.messages.preload(), c.tasks.preload()]))
  const incrConfirmed = new Map<string, number>()
  const pending: Promise<unknown>[] = []
  // Clients whose connection is cut, with a restore scheduled.
  const away = new Set<Client>()
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

  /** A confirmed incr is counted; a failed one is a failure (the counters always exist). */
  function incr(c: Client, id: string) {
    stats.commands++
    return c.transport.call('incr', { id }).then(
      () => {
        stats.commandsConfirmed++
        incrConfirmed.set(id, (incrConfirmed.get(id) ?? 0) + 1)
      },
      (error: unknown) => {
        stats.commandFailures++
        console.error(`seed ${seed}: incr ${id} by ${c.user} failed:`, error)
      },
    )
  }
  /** incr on a task that does not exist: execute throws SyncDenied, so EXECUTE_FAILED with its message. */
  function refusedCommand(c: Client) {
    stats.mustRefuseCommands++
    return c.transport.call('incr', { id: 'no-such-task' }).then(
      () => console.error(`seed ${seed}: incr of a missing task by ${c.user} was confirmed`),
      (error: unknown) => {
        if (error instanceof RejectedError && error.code === ErrorCode.EXECUTE_FAILED && error.message.endsWith(': no such task')) {
          stats.refusedCommands++
        } else {
          console.error(`seed ${seed}: incr of a missing task by ${c.user} failed otherwise:`, error)
        }
      },
    )
  }
  /** Housekeeping `aheadMs` in the future; counts the clients that are away with a cursor below the new floor. */
  async function expire(aheadMs: number): Promise<{ floor: number; head: number }> {
    stats.expiries++
    const cursors = clients.filter((c) => c.transport.status !== 'live').map((c) => c.transport.appliedSeq)
    const state = (await admin('short', room, 'housekeep', { aheadMs })) as { floor: number; head: number }
    stats.prunedPastCursor += cursors.filter((cursor) => cursor < state.floor).length
    return state
  }
  /**
   * The scripted fault episode: a client is cut, the server writes, the DO
   * resets, the log expires past the away client's cursor, and that client
   * must come back through a snapshot resume; a command is confirmed and one
   * refused meanwhile.
   */
  async function episode(): Promise<void> {
    const candidates = () => clients.filter((x) => !away.has(x) && x.transport.status === 'live')
    await until(() => candidates().length > 0, 'a client is live to take away', 20_000) // a reset just before drops them all
    const c = pick(candidates())
    stats.drops++
    c.network.cut()
    await until(() => c.transport.status !== 'live', `${c.user} is offline`)
    const cursor = c.transport.appliedSeq
    stats.serverWrites++
    const op = newMessage(c)
    op.cols!.author = 'server'
    ledger.push({ ops: [op], outcome: 'confirmed', mustBeRefused: false, seq: Number((await admin('short', room, 'server-insert', op.cols)).seq) })
    stats.resets++
    await admin('short', room, 'crash')
    const other = pick(clients.filter((x) => x !== c))
    await Promise.all([incr(other, 'counter-0'), refusedCommand(other)])
    // 10 s ahead of a 1 s retention: the whole log is pruned, however the
    // writes fell between the retention marks.
    const { floor } = await expire(10_000)
    stats.episodePrunedPastCursor = floor > cursor
    if (floor <= cursor) console.error(`seed ${seed}: the expiry left the floor at ${floor}, not past ${c.user}'s cursor ${cursor}`)
    const from = c.network.received.length
    c.network.restore()
    await until(() => c.network.received.slice(from).some((f) => f.startsWith('{"t":"synced"')), `${c.user} resumes`, 20_000)
    // Its resume unit: the welcome, then snapshots (the log it would catch up from is gone), then synced.
    const frames = c.network.received.slice(from).map((f) => JSON.parse(f) as { t: string; c?: string })
    const unit = frames.slice(frames.findIndex((f) => f.t === 'welcome'), frames.findIndex((f) => f.t === 'synced'))
    stats.episodeSnapshotResume = unit[0]?.t === 'welcome' &&
      (['messages', 'tasks'] as const).every((table) => unit.some((f) => f.t === 'snapshot' && f.c === table))
    if (!stats.episodeSnapshotResume) console.error(`seed ${seed}: ${c.user} resumed without snapshots: ${unit.map((f) => f.t).join(',')}`)
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
    } else if (roll < 0.74) {
      // Must be refused: a command on a task that does not exist.
      pending.push(refusedCommand(c))
    } else if (roll < 0.8) {
      pending.push(incr(c, `counter-${Math.floor(random() * COUNTERS)}`))
    } else if (roll < 0.9) {
      // Drop a client's connection for 20 ms to 2 s.
      stats.drops++
      c.network.cut()
      away.add(c)
      setTimeout(() => {
        c.network.restore()
        away.delete(c)
      }, 20 + random() * 2000)
    } else if (roll < 0.94) {
      stats.serverWrites++
      const op = newMessage(c)
      op.cols!.author = 'server'
      const record: Write = { ops: [op], outcome: 'confirmed', mustBeRefused: false }
      record.seq = Number((await admin('short', room, 'server-insert', op.cols)).seq)
      ledger.push(record)
    } else if (roll < 0.97) {
      // Expire the change log: clients that are away come back to snapshots.
      await expire(5_000)
    } else {
      stats.resets++
      await admin('short', room, 'crash')
    }
    if (i === Math.floor(OPS / 2)) await episode()
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

  // Resumes answered with snapshots: after a client's first welcome (its
  // initial sync), a unit that begins with a welcome and holds a snapshot.
  for (const c of clients) {
    let welcomes = 0
    let inResume = false
    let sawSnapshot = false
    for (const text of c.network.received) {
      const f = JSON.parse(text) as { t: string; more?: boolean }
      if (f.t === 'welcome') {
        welcomes++
        inResume = welcomes > 1
        sawSnapshot = false
      } else if (inResume && f.t === 'snapshot') {
        sawSnapshot = true
      } else if (inResume && f.t === 'synced') {
        if (sawSnapshot) stats.snapshotResumes++
        inResume = false
      }
    }
  }
  const wronglyRefused = ledger.filter((w) => w.mustBeRefused && !(w.error instanceof RejectedError && w.error.code === ErrorCode.UNAUTHORIZED))
  for (const w of wronglyRefused.slice(0, 5)) console.error(`seed ${seed}: a write in someone else's name was not refused UNAUTHORIZED:`, w.ops, w.outcome, w.error)

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
  stats.mustBeRefused = ledger.filter((w) => w.mustBeRefused).length
  return {
    ...stats, stillPending, lostConfirmed: lost, refusedPresent, wronglyRefused: wronglyRefused.length,
    unexpectedFailures: unexpectedFailures.length, divergentClients: divergent,
  }
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
    expect(r, `seed ${r.seed}`).toMatchObject({
      stillPending: 0, lostConfirmed: 0, refusedPresent: 0, wronglyRefused: 0, unexpectedFailures: 0, divergentClients: 0, commandFailures: 0,
      episodePrunedPastCursor: true, episodeSnapshotResume: true,
    })
    // Every refusal was the expected one, and each kind of fault and effect happened.
    expect(r.refused, `seed ${r.seed}: refused writes`).toBe(r.mustBeRefused)
    expect(r.refusedCommands, `seed ${r.seed}: refused commands`).toBe(r.mustRefuseCommands)
    expect(r.commandsConfirmed, `seed ${r.seed}: confirmed commands`).toBe(r.commands)
    const atLeastOnce = ['mustBeRefused', 'mustRefuseCommands', 'commandsConfirmed', 'drops', 'resets', 'expiries', 'prunedPastCursor', 'snapshotResumes', 'serverWrites'] as const
    for (const key of atLeastOnce) expect(r[key], `seed ${r.seed}: ${key}`).toBeGreaterThan(0)
  }
})
