// Typed columns (docs/protocol.md §5.3): declared once in defineCollection,
// the rows carry their types on the wire, integers beyond 2^53 are exact
// (DO SQLite hands them to JS as doubles; the core reads them inside SQLite),
// and predicate literals of those types select the same rows as the client's
// evaluator does on the decoded rows.
import { env } from 'cloudflare:test'
import { expect, it } from 'vitest'

import { decodeServerFrame, encodeClientFrame } from '../../worker/src/client/codec.js'
import { evaluate } from '../../worker/src/client/where.js'
import type { ClientFrame, PredicateIR } from '../../worker/src/protocol/index.js'
import type { Env } from './fixture.js'
import { freshRoom, TestSocket } from './socket.js'

const testEnv = env as unknown as Env
const ref = (c: string): PredicateIR => ({ type: 'ref', path: [c] })
const val = (value: unknown): PredicateIR => ({ type: 'val', value })
const fn = (name: string, ...args: PredicateIR[]) => ({ type: 'func', name, args }) as PredicateIR

it('boolean, date, json and bigint columns arrive typed; 2^53 + 1 stays exact in rows and in predicates', async () => {
  const name = freshRoom('typed')
  await testEnv.TEST_DO.get(testEnv.TEST_DO.idFromName(name)).seedAccounts()
  const { socket } = await TestSocket.connect(name, 'ann')
  socket.send({ t: 'sub', id: 'all', c: 'accounts' })
  await socket.next('snapshot', (f) => f.sub === 'all')
  const text = socket.raw.find((r) => r.includes('"sub":"all"'))!
  const decoded = decodeServerFrame(text).frame
  expect(decoded?.t).toBe('snapshot')
  const rows = (decoded?.t === 'snapshot' ? decoded.rows : []) as unknown as Array<Record<string, unknown>>
  const a = rows.find((r) => r.id === 'a')!
  const b = rows.find((r) => r.id === 'b')!
  expect(a.active).toBe(true)
  expect(b.active).toBe(false)
  expect(a.created_at).toEqual(new Date(1767225600000))
  expect(a.meta).toEqual({ tier: 'gold', tags: [1, 2] })
  expect(b.meta).toBe('not json') // text that is not JSON stays text
  expect(a.counter).toBe(9007199254740993n)
  expect(b.counter).toBe(9007199254740992n)
  expect(rows.find((r) => r.id === 'c')!.counter).toBe(5n) // a declared bigint is a bigint however small
  // An undeclared column: exact beyond 2^53, a plain number within.
  expect(a.plain).toBe(9007199254740993n)
  expect(b.plain).toBe(5)

  // Predicates with typed literals, encoded as the client sends them.
  const cases: Array<[PredicateIR, string[]]> = [
    [fn('eq', ref('counter'), val(9007199254740993n)), ['a']],
    [fn('in', ref('counter'), val([9007199254740993n, 5n])), ['a', 'c']],
    [fn('gt', ref('counter'), val(9007199254740992n)), ['a']],
    [fn('eq', ref('active'), val(true)), ['a', 'c']],
    [fn('gt', ref('created_at'), val(new Date(1767225600000))), ['b', 'c']],
    [fn('eq', ref('plain'), val(9007199254740993n)), ['a']],
  ]
  for (const [i, [where, expected]] of cases.entries()) {
    const frame = JSON.parse(encodeClientFrame({ t: 'sub', id: `q${i}`, c: 'accounts', where } as ClientFrame)) as Record<string, unknown>
    socket.send(frame)
    const answer = await socket.nextOf(['snapshot', 'sub-error'], (f) => f.sub === `q${i}`)
    expect(answer.t, JSON.stringify(answer)).toBe('snapshot')
    const server = (answer.t === 'snapshot' ? answer.rows : []).map((r) => String(r.id)).sort()
    expect(server, JSON.stringify(frame)).toEqual(expected)
    const client = rows.filter((r) => evaluate(where, r) === true).map((r) => String(r.id)).sort()
    expect(client).toEqual(expected)
  }
  // A window's bound on a value beyond 2^53 is exact: ordered by counter
  // (5, 2^53, 2^53 + 1), the third row is 'a' alone (a bound rounded to 2^53
  // would hold 'b' instead).
  socket.send({ t: 'sub', id: 'third', c: 'accounts', orderBy: [{ col: 'counter' }], offset: 2, limit: 1 })
  const third = await socket.next('snapshot', (f) => f.sub === 'third')
  expect(third.rows.map((r) => r.id)).toEqual(['a'])
  // Beyond 64 bits exactness cannot be kept: refused, not rounded.
  socket.send({ t: 'sub', id: 'huge', c: 'accounts', where: fn('eq', ref('counter'), val({ $int: '9223372036854775808' })) })
  expect((await socket.next('sub-error', (f) => f.sub === 'huge')).code).toBeGreaterThan(0)
  socket.close()
})

it('a client bigint write reaches the handler as its decimal string and is stored exactly', async () => {
  const name = freshRoom('typed-write')
  const { socket } = await TestSocket.connect(name, 'ann')
  const cols = { id: 'w', active: true, created_at: new Date(1767225600000), meta: { a: 1 }, counter: 9007199254740995n }
  const frame = JSON.parse(
    encodeClientFrame({ t: 'mut', id: 'm1', ops: [{ c: 'accounts', op: 'insert', k: 'w', cols }] } as unknown as ClientFrame),
  ) as { ops: unknown[] }
  const ack = await socket.mutate('m1', frame.ops)
  expect(ack.t).toBe('ack')
  socket.send({ t: 'sub', id: 'w', c: 'accounts', where: fn('eq', ref('counter'), val({ $int: '9007199254740995' })) })
  await socket.next('snapshot', (f) => f.sub === 'w')
  const text = socket.raw.find((r) => r.includes('"sub":"w"'))!
  const decoded = decodeServerFrame(text).frame
  const row = (decoded?.t === 'snapshot' ? decoded.rows[0] : undefined) as unknown as Record<string, unknown>
  expect(row).toEqual({ id: 'w', active: true, created_at: new Date(1767225600000), meta: { a: 1 }, counter: 9007199254740995n, plain: null })
  socket.close()
})
