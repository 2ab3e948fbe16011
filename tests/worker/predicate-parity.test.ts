// The client's predicate evaluator (worker/src/client/where.ts) must select
// exactly what the core selects: the client uses it to keep a collection's
// `where` exact and to refuse writes outside it. Random predicates over rows
// of mixed kinds (NULLs, numbers, text), fixed seed; the core's answer is the
// snapshot the DO sends.
import { expect, it } from 'vitest'

import { evaluate } from '../../worker/src/client/where.js'
import type { PredicateIR } from '../../worker/src/protocol/index.js'
import { seededRandom } from '../support/prng.js'
import { freshRoom, TestSocket } from './socket.js'


it('the client evaluator selects exactly the rows the core selects (600 random predicates, with ilike and the functions)', async () => {
  const random = seededRandom(20261123)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!
  // With the letters JS's toLowerCase folds and SQLite's lower does not (É,
  // İ, K as Kelvin) and a character of two UTF-16 units.
  const texts = ['', 'a', 'ab', 'abc', 'B', 'b%', 'a_c', 'é', '10', '9', 'Hello', 'hello', 'CAFÉ', 'İx', '\u212a', '😀b', 'AbC']
  const ascii = ['', 'a', 'ab', 'abc', 'b%', 'a_c', '10', 'hello', 'ix', 'k', 'i']
  const numbers = [0, 1, -1, 2.5, 10, 9, 1000, -0.5]
  const value = () => (random() < 0.2 ? null : random() < 0.5 ? pick(texts) : pick(numbers))
  const name = freshRoom('parity')
  let { socket } = await TestSocket.connect(name, 'ann')
  // tasks: title TEXT, done INTEGER, rank REAL, category TEXT — values of any kind.
  const rows = Array.from({ length: 40 }, (_, i) => ({ id: `r${i}`, title: value(), done: value(), rank: value(), category: value() }))
  const ack = await socket.mutate('seed', rows.map((r) => ({ c: 'tasks', op: 'insert', k: r.id, cols: r })))
  expect(ack.t).toBe('ack')
  // What SQLite stored (affinity converts some values), as the client would receive it.
  socket.send({ t: 'sub', id: 'all', c: 'tasks' })
  const stored = (await socket.next('snapshot', (f) => f.sub === 'all')).rows as Array<Record<string, unknown>>
  socket.send({ t: 'unsub', id: 'all' })

  const ref = (c: string): PredicateIR => ({ type: 'ref', path: [c] })
  const val = (v: unknown): PredicateIR => ({ type: 'val', value: v })
  const fn = (n: string, ...args: PredicateIR[]) => ({ type: 'func', name: n, args }) as PredicateIR
  const asciiValue = () => (random() < 0.3 ? pick(numbers) : pick(ascii))
  // A function of the row, and whether it folds case (then it compares with ASCII text only).
  const operand = (col: string, depth: number): [PredicateIR, boolean] => {
    if (depth > 2) return [ref(col), false]
    switch (Math.floor(random() * 8)) {
      case 0: return [fn('lower', operand(col, depth + 1)[0]), true]
      case 1: return [fn('length', ref(col)), false]
      case 2: {
        const [inner, folds] = operand(col, depth + 1)
        return [fn('coalesce', inner, val(asciiValue())), folds]
      }
      case 3: return [fn(pick(['add', 'subtract', 'multiply', 'divide']), ref(col), val(pick(numbers))), false]
      case 4: return [fn(pick(['add', 'divide']), ref(col), ref(pick(['done', 'rank']))), false]
      default: return [ref(col), false]
    }
  }
  const gen = (depth: number): PredicateIR => {
    const col = pick(['title', 'done', 'rank', 'category', 'id'])
    switch (Math.floor(random() * (depth > 2 ? 7 : 10))) {
      case 5: {
        const [e, folds] = operand(col, 0)
        return fn(pick(['eq', 'gt', 'gte', 'lt', 'lte']), e, val(folds ? asciiValue() : value()))
      }
      case 6: {
        const [e] = operand(col, 1)
        const pattern = val(pick(['a%', '%b%', '_', 'a_c', '%', 'H%', 'i_', '%k', '_b', 'caf_']))
        return random() < 0.5 ? fn('ilike', e, pattern) : fn('like', fn('lower', e), pattern)
      }
      case 0: return fn(pick(['eq', 'gt', 'gte', 'lt', 'lte']), ref(col), val(value()))
      case 1: return fn('like', ref(col), val(pick(['a%', '%b%', '_', 'a_c', '%', 'H%', 'h%'])))
      case 2: return fn('in', ref(col), val([value(), value()]))
      case 3: return fn(pick(['isNull', 'isNull', 'isUndefined']), ref(col))
      case 4: return fn('eq', ref(col), val(value()))
      case 7: return fn('not', gen(depth + 1))
      case 8: return fn('and', gen(depth + 1), gen(depth + 1))
      default: return fn('or', gen(depth + 1), gen(depth + 1), gen(depth + 1))
    }
  }
  let nonEmpty = 0
  for (let i = 0; i < 600; i++) {
    // A fresh socket every 50 predicates keeps each under the per-socket
    // sub/unsub rate limit (a burst of 128) without depending on the clock.
    if (i > 0 && i % 50 === 0) {
      socket.close()
      ;({ socket } = await TestSocket.connect(name, 'ann'))
    }
    const where = gen(0)
    const id = `p${i}`
    socket.send({ t: 'sub', id, c: 'tasks', where })
    const answer = await Promise.race([
      socket.next('snapshot', (f) => f.sub === id),
      socket.next('sub-error', (f) => f.sub === id),
    ])
    expect(answer.t, JSON.stringify(where)).toBe('snapshot')
    const server = (answer.t === "snapshot" ? answer.rows : []).map((r) => String(r.id)).sort()
    const client = stored.filter((r) => evaluate(where, r) === true).map((r) => r.id as string).sort()
    expect(client, JSON.stringify(where)).toEqual(server)
    nonEmpty += server.length > 0 ? 1 : 0
    socket.send({ t: 'unsub', id })
  }
  expect(nonEmpty).toBeGreaterThan(150)
  socket.close()
}, 120_000)
