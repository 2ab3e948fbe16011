// The golden session (tests/vectors/session.json), replayed by the client as
// the C++ core replays it (tests/cpp/session_test.cc): every server frame in
// it decodes with the client's decoder and re-encodes to the same bytes, and
// every client frame in it that the client would send is sent byte for byte.
import { readFileSync } from 'node:fs'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import { decodeServerFrame } from '../../worker/src/client/codec.js'
import { buildOps, doCollectionOptions } from '../../worker/src/client/collection.js'
import { RejectedError, SeqsyncError, SubscriptionError } from '../../worker/src/client/errors.js'
import { WebSocketTransport } from '../../worker/src/client/transport.js'
import type { SubscriptionHandler } from '../../worker/src/client/transport.js'
import { toPredicateIR } from '../../worker/src/client/where.js'
import { FakeSocket, until } from './fake-socket.js'

interface Step {
  socket: string
  send: string
  expect: Record<string, string[]>
}
const session = JSON.parse(readFileSync(new URL('../vectors/session.json', import.meta.url), 'utf8')) as { steps: Step[] }
const steps = session.steps

type Message = { id: string; author: string; content: string; created_at: number }

let transports: WebSocketTransport[] = []
const errors: SeqsyncError[] = []
function client() {
  const t = new WebSocketTransport({
    url: 'ws://do/sync/room',
    WebSocket: FakeSocket,
    backoff: { initialMs: 1, maxMs: 2 },
    watchNetwork: false,
    lazy: true,
    onError: (e) => errors.push(e),
  })
  transports.push(t)
  return t
}
const quiet: SubscriptionHandler = { applyUnit: () => {}, onError: () => {} }

/** The wire ops the client builds for a TanStack mutation of `messages` on `transport`. */
function opsFor(transport: WebSocketTransport, m: { type: 'insert' | 'update' | 'delete'; key: string; modified?: Message; changes?: Partial<Message> }) {
  const collection = { config: doCollectionOptions<Message>({ transport, table: 'messages', getKey: (r) => r.id }) }
  return buildOps(transport, [{ type: m.type, key: m.key, modified: m.modified ?? {}, changes: m.changes ?? {}, collection }])
}

beforeEach(() => {
  FakeSocket.reset()
  errors.length = 0
})
afterEach(() => {
  for (const t of transports) t.close()
  transports = []
  vi.restoreAllMocks()
})

describe('golden session: server frames', () => {
  it('every server frame decodes with the client decoder and re-encodes to the same bytes', () => {
    let n = 0
    for (const step of steps) {
      for (const texts of Object.values(step.expect)) {
        for (const text of texts) {
          const decoded = decodeServerFrame(text)
          expect(decoded.error, text).toBeUndefined()
          expect(JSON.stringify(decoded.frame)).toBe(text)
          n += 1
        }
      }
    }
    expect(n).toBeGreaterThanOrEqual(20)
  })
})

describe('golden session: the client sends the same bytes', () => {
  it('replays the session: hellos, subs and muts as the client encodes them; every answer is taken without error', async () => {
    const uuid = vi.spyOn(crypto, 'randomUUID')
    const answers = (i: number, socket: string) => steps[i]!.expect[socket] ?? []

    // s1: a plain subscription.
    const t1 = client()
    t1.register({ id: 'm', c: 'messages' }, quiet)
    const ws1 = FakeSocket.last
    ws1.open()
    expect(ws1.raw).toEqual([steps[0]!.send])
    ws1.deliverText(...answers(0, 's1'))

    // s2: the same table with an eager where, as doCollectionOptions compiles { author: 'ann' }.
    const t2 = client()
    t2.register({ id: 'm', c: 'messages', where: toPredicateIR({ author: 'ann' }) }, quiet)
    const ws2 = FakeSocket.last
    ws2.open()
    expect(ws2.raw).toEqual([steps[1]!.send])
    ws2.deliverText(...answers(1, 's2'))
    expect(t1.status).toBe('live')
    expect(t2.status).toBe('live')

    const write = async (i: number, t: WebSocketTransport, ws: FakeSocket, id: string, ops: ReturnType<typeof opsFor>) => {
      uuid.mockReturnValueOnce(id as `${string}-${string}-${string}-${string}-${string}`)
      const settled = t.mutate(ops)
      expect(ws.raw.at(-1)).toBe(steps[i]!.send)
      ws1.deliverText(...answers(i, 's1'))
      ws2.deliverText(...answers(i, 's2'))
      return settled
    }
    const row = (id: string, author: string, content: string, created_at: number): Message => ({ id, author, content, created_at })
    await expect(write(2, t1, ws1, 'm1', opsFor(t1, { type: 'insert', key: '01JA', modified: row('01JA', 'ann', 'hi', 1) }))).resolves.toEqual({ seq: 1 })
    await expect(write(3, t2, ws2, 'm2', opsFor(t2, { type: 'insert', key: '01JB', modified: row('01JB', 'bob', 'yo', 2) }))).resolves.toEqual({ seq: 2 })
    await expect(
      write(4, t1, ws1, 'm3', opsFor(t1, { type: 'update', key: '01JA', modified: row('01JA', 'ann', 'hello', 1), changes: { content: 'hello' } })),
    ).resolves.toEqual({ seq: 3 })
    await expect(write(6, t2, ws2, 'm4', opsFor(t2, { type: 'delete', key: '01JA' }))).resolves.toEqual({ seq: 4 })
    expect([t1.appliedSeq, t2.appliedSeq]).toEqual([4, 4])

    // Step 5 replays m1: the client sends it again, the same bytes, when the
    // socket was lost before the ack.
    const replayer = client()
    uuid.mockReturnValueOnce('m1' as `${string}-${string}-${string}-${string}-${string}`)
    const replayed = replayer.mutate(opsFor(replayer, { type: 'insert', key: '01JA', modified: row('01JA', 'ann', 'hi', 1) }))
    FakeSocket.last.handshake('epoch-1', 0)
    expect(FakeSocket.last.raw.at(-1)).toBe(steps[2]!.send)
    FakeSocket.last.drop(1006)
    await until(() => FakeSocket.instances.length === 4)
    FakeSocket.last.handshake('epoch-1', 4)
    expect(FakeSocket.last.raw.at(-1)).toBe(steps[5]!.send)
    FakeSocket.last.deliverText(...answers(5, 's1'))
    await expect(replayed).resolves.toEqual({ seq: 1 })

    // s3: a client that held `m` at seq 1 resumes it.
    const t3 = client()
    t3.register({ id: 'm', c: 'messages' }, quiet)
    const first = FakeSocket.last
    first.open()
    first.deliverText(...answers(0, 's1'), answers(2, 's1')[0]!)
    expect(t3.appliedSeq).toBe(1)
    first.drop(1006)
    await until(() => FakeSocket.last !== first)
    const ws3 = FakeSocket.last
    ws3.open()
    expect(ws3.raw).toEqual([steps[7]!.send])
    ws3.deliverText(...answers(7, 's3'))
    expect(t3.appliedSeq).toBe(4)

    const refused: SubscriptionError[] = []
    t3.register({ id: 'x', c: 'nope' }, { applyUnit: () => {}, onError: (e) => refused.push(e) })
    expect(ws3.raw.at(-1)).toBe(steps[8]!.send)
    ws3.deliverText(...answers(8, 's3'))
    expect(refused.map((e) => e.codeName)).toEqual(['UNKNOWN_COLLECTION'])

    uuid.mockReturnValueOnce('m5' as `${string}-${string}-${string}-${string}-${string}`)
    const bad = t3.mutate([{ c: 'messages', op: 'insert', k: '', cols: { id: '' } }]).catch((e: unknown) => e)
    expect(ws3.raw.at(-1)).toBe(steps[9]!.send)
    ws3.deliverText(...answers(9, 's3'))
    expect(await bad).toBeInstanceOf(RejectedError)

    // Step 10 (an empty ops list) is one the client never sends: it refuses it first.
    const sentBefore = ws3.raw.length
    await expect(t3.mutate([])).rejects.toMatchObject({ codeName: 'INVALID_FIELD' })
    expect(ws3.raw).toHaveLength(sentBefore)
    ws3.deliverText(...answers(10, 's3'), ...answers(11, 's3'), ...answers(12, 's3'))

    // Step 11's hello is what a client with no subscriptions sends first.
    const bare = client()
    void bare.call('noop').catch(() => {})
    FakeSocket.last.open()
    expect(FakeSocket.last.raw[0]).toBe(steps[11]!.send)

    // The refusal of step 8 and the error frames of steps 11 and 12 are reported; nothing else was.
    expect(errors.map((e) => e.codeName)).toEqual(['UNKNOWN_COLLECTION', 'PROTOCOL_ORDER', 'MALFORMED_FRAME'])
  })
})

describe('golden pages (tests/vectors/page.json)', () => {
  const pages = JSON.parse(readFileSync(new URL('../vectors/page.json', import.meta.url), 'utf8')) as { steps: Step[] }

  it('every server frame decodes; the client sends each page frame byte for byte', async () => {
    for (const step of pages.steps) {
      for (const text of step.expect.s1 ?? []) {
        const decoded = decodeServerFrame(text)
        expect(decoded.error, text).toBeUndefined()
        expect(decoded.frame).toEqual(JSON.parse(text)) // REALs such as 3.0 re-encode as 3 in JS
      }
    }
    // The page frames, as transport.page() sends them (its ids are its own: compare without them).
    const t = client()
    t.page({ c: 'tasks', limit: 1 }).catch(() => {})
    await until(() => FakeSocket.instances.length === 1)
    FakeSocket.last.handshake()
    for (const step of pages.steps.filter((s) => s.send.startsWith('{"t":"page"'))) {
      const { t: _t, id, ...request } = JSON.parse(step.send) as { t: 'page'; id: string; c: string; limit: number }
      const before = FakeSocket.last.raw.length
      t.page(request).catch(() => {})
      const sent = FakeSocket.last.raw.slice(before)
      expect(sent).toHaveLength(1)
      expect(sent[0]!.replace(/"id":"[^"]*"/, `"id":"${id}"`)).toBe(step.send)
    }
  })
})
