import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { WebSocketTransport } from '../../worker/src/client/transport.js'
import type { AppliedUnit, SubscriptionHandler } from '../../worker/src/client/transport.js'
import { ClosedError, OutcomeUnknownError, RejectedError, SeqsyncError, SubscriptionError, TimeoutError } from '../../worker/src/client/errors.js'
import type { MutFrame } from '../../worker/src/protocol/index.js'
import { ErrorCode } from '../../worker/src/protocol/index.js'
import { FakeSocket, LIMITS, tick, until } from './fake-socket.js'

function recorder() {
  const units: AppliedUnit[] = []
  const errors: SubscriptionError[] = []
  const handler: SubscriptionHandler = {
    applyUnit: (u) => units.push(u),
    onError: (e) => errors.push(e),
  }
  return { units, errors, handler }
}

let transports: WebSocketTransport[] = []
function make(extra: Partial<ConstructorParameters<typeof WebSocketTransport>[0]> = {}) {
  const t = new WebSocketTransport({
    url: 'ws://do/sync/room',
    WebSocket: FakeSocket,
    backoff: { initialMs: 2, maxMs: 4 },
    watchNetwork: false,
    ...extra,
  })
  transports.push(t)
  return t
}

beforeEach(() => FakeSocket.reset())
afterEach(() => {
  for (const t of transports) t.close()
  transports = []
})

describe('WebSocketTransport: handshake', () => {
  it('dials at once, forces arraybuffer, sends hello with the registered subs', () => {
    const t = make()
    const a = recorder()
    t.register({ id: 's1', c: 'messages' }, a.handler)
    t.register({ id: 's2', c: 'rooms', where: { type: 'func', name: 'isNull', args: [{ type: 'ref', path: ['x'] }] } }, recorder().handler)
    const ws = FakeSocket.last
    expect(FakeSocket.instances).toHaveLength(1)
    expect(ws.binaryType).toBe('arraybuffer')
    expect(t.status).toBe('connecting')
    ws.open()
    expect(ws.sent).toEqual([
      {
        t: 'hello',
        v: 1,
        inlineAcks: true,
        compactChanges: true,
        subs: [
          { id: 's1', c: 'messages' },
          { id: 's2', c: 'rooms', where: { type: 'func', name: 'isNull', args: [{ type: 'ref', path: ['x'] }] } },
        ],
      },
    ])
    ws.deliver({ t: 'welcome', v: 1, epoch: 'e1', seq: 0, limits: {} as never })
    expect(t.status).toBe('live')
    expect(t.epoch).toBe('e1')
  })

  it('a sub registered after hello goes out as a sub frame; unregister sends unsub', () => {
    const t = make()
    FakeSocket.last.handshake()
    const off = t.register({ id: 's9', c: 'messages' }, recorder().handler)
    off()
    expect(FakeSocket.last.sent.slice(1)).toEqual([
      { t: 'sub', id: 's9', c: 'messages' },
      { t: 'unsub', id: 's9' },
    ])
  })

  it('notifies subscribers of status changes', () => {
    const t = make()
    const seen: string[] = []
    const off = t.subscribe(() => seen.push(t.status))
    FakeSocket.last.handshake()
    off()
    t.close()
    expect(seen).toEqual(['live'])
    expect(t.status).toBe('closed')
  })

  it('lazy: dials on the first registration', () => {
    const t = make({ lazy: true })
    expect(FakeSocket.instances).toHaveLength(0)
    t.register({ id: 's1', c: 'messages' }, recorder().handler)
    expect(FakeSocket.instances).toHaveLength(1)
  })
})

describe('WebSocketTransport: units and the cursor', () => {
  it('buffers more:true parts and applies the unit whole on its final frame', () => {
    const t = make()
    const a = recorder()
    t.register({ id: 's1', c: 'messages' }, a.handler)
    const ws = FakeSocket.last
    ws.handshake()
    ws.deliver({ t: 'snapshot', sub: 's1', c: 'messages', seq: 5, rows: [{ id: 'a' }], more: true })
    ws.deliver({ t: 'snapshot', sub: 's1', c: 'messages', seq: 5, rows: [{ id: 'b' }], more: true })
    expect(a.units).toEqual([])
    expect(t.appliedSeq).toBe(0)
    ws.deliver({ t: 'synced', seq: 5 })
    expect(a.units).toEqual([{ seq: 5, sub: 's1', changes: [], snapshot: [{ id: 'a' }, { id: 'b' }] }])
    expect(t.appliedSeq).toBe(5)

    ws.deliver({ t: 'changes', seq: 6, changes: [{ c: 'messages', k: 'c', row: { id: 'c' } }], more: true })
    expect(t.appliedSeq).toBe(5)
    ws.deliver({ t: 'changes', seq: 6, changes: [{ c: 'messages', k: 'a' }, { c: 'other', k: 'z' }] })
    expect(a.units[1]).toEqual({
      seq: 6,
      sub: 's1',
      changes: [{ c: 'messages', k: 'c', row: { id: 'c' } }, { c: 'messages', k: 'a' }],
      snapshot: undefined,
    })
    expect(t.appliedSeq).toBe(6)
  })

  it('never moves the cursor backwards', () => {
    const t = make()
    t.register({ id: 's1', c: 'm' }, recorder().handler)
    const ws = FakeSocket.last
    ws.handshake()
    ws.deliver({ t: 'synced', seq: 9 })
    ws.deliver({ t: 'synced', seq: 4 })
    expect(t.appliedSeq).toBe(9)
  })

  it('ignores changes for a sub still waiting for its snapshot', () => {
    const t = make()
    const a = recorder()
    const ws = FakeSocket.last
    ws.handshake()
    t.register({ id: 's1', c: 'm' }, a.handler)
    ws.deliver({ t: 'changes', seq: 3, changes: [{ c: 'm', k: 'x', row: { id: 'x' } }] })
    expect(a.units).toEqual([])
    expect(t.appliedSeq).toBe(3)
    ws.deliver({ t: 'snapshot', sub: 's1', c: 'm', seq: 4, rows: [] })
    expect(a.units).toEqual([{ seq: 4, sub: 's1', changes: [], snapshot: [] }])
  })

  it('discards a partial unit on drop and resumes from the unmoved cursor; a sub whose snapshot was cut asks for a fresh one', async () => {
    const t = make()
    const a = recorder()
    const b = recorder()
    t.register({ id: 's1', c: 'm' }, a.handler)
    t.register({ id: 's2', c: 'n' }, b.handler)
    let ws = FakeSocket.last
    ws.handshake('e1', 10)
    // s1's snapshot completes; s2's is cut mid-unit.
    ws.deliver({ t: 'snapshot', sub: 's1', c: 'm', seq: 10, rows: [{ id: 'a' }] })
    ws.deliver({ t: 'snapshot', sub: 's2', c: 'n', seq: 11, rows: [{ id: 'p' }], more: true })
    ws.drop(1006)
    expect(t.status).toBe('offline')
    expect(b.units).toEqual([])
    expect(t.appliedSeq).toBe(10)
    await until(() => FakeSocket.instances.length === 2)
    ws = FakeSocket.last
    ws.open()
    expect(ws.sent[0]).toEqual({
      t: 'hello',
      v: 1,
      inlineAcks: true,
      compactChanges: true,
      epoch: 'e1',
      since: 10,
      subs: [
        { id: 's1', c: 'm', resume: true },
        { id: 's2', c: 'n' },
      ],
    })
  })

  it('a storage reset (new epoch) resets the cursor and re-snapshots', async () => {
    const t = make()
    const a = recorder()
    t.register({ id: 's1', c: 'm' }, a.handler)
    let ws = FakeSocket.last
    ws.handshake('e1', 50)
    ws.deliver({ t: 'snapshot', sub: 's1', c: 'm', seq: 50, rows: [{ id: 'a' }] })
    ws.drop(1011)
    await until(() => FakeSocket.instances.length === 2)
    ws = FakeSocket.last
    ws.handshake('e2', 3)
    expect(t.epoch).toBe('e2')
    expect(t.appliedSeq).toBe(0)
    ws.deliver({ t: 'snapshot', sub: 's1', c: 'm', seq: 3, rows: [], more: true }, { t: 'synced', seq: 3 })
    expect(t.appliedSeq).toBe(3)
    expect(a.units[1]).toEqual({ seq: 3, sub: 's1', changes: [], snapshot: [] })
    ws.drop(1006)
    await until(() => FakeSocket.instances.length === 3)
    FakeSocket.last.open()
    expect(FakeSocket.last.sent[0]).toMatchObject({ epoch: 'e2', since: 3, subs: [{ id: 's1', resume: true }] })
  })

  it('a handler that throws does not lose its unit: its sub resyncs (fresh snapshot) and never resumes past the unit', async () => {
    const errors: SeqsyncError[] = []
    const t = make({ onError: (e) => errors.push(e) })
    const ok = recorder()
    let throwing = true
    const failed: SeqsyncError[] = []
    const bad: SubscriptionHandler = {
      applyUnit: (u) => {
        if (throwing && u.snapshot === undefined) throw new Error('boom')
      },
      abortUnit: (e) => failed.push(e),
      onError: () => {},
    }
    t.register({ id: 'bad', c: 'm' }, bad)
    t.register({ id: 'ok', c: 'n' }, ok.handler)
    let ws = FakeSocket.last
    ws.handshake('e1', 5)
    ws.deliver({ t: 'snapshot', sub: 'bad', c: 'm', seq: 5, rows: [], more: true }, { t: 'snapshot', sub: 'ok', c: 'n', seq: 5, rows: [] })
    ws.deliver({ t: 'changes', seq: 6, changes: [{ c: 'm', k: 'x', row: { id: 'x' } }, { c: 'n', k: 'y', row: { id: 'y' } }] })
    // The error surfaces on the handler (and the transport's onError); the sub asks for a fresh snapshot.
    expect(failed.map((e) => e.message)).toEqual([expect.stringMatching(/seq 6.*boom/)])
    expect(errors.map((e) => e.codeName)).toEqual(['INTERNAL'])
    expect(ws.framesOf('sub')).toEqual([{ t: 'sub', id: 'bad', c: 'm' }])
    expect(ok.units.at(-1)?.changes).toEqual([{ c: 'n', k: 'y', row: { id: 'y' } }])
    // Changes for it are superseded by the coming snapshot; a reconnect before
    // it asks for a fresh snapshot, never a catch-up past the lost unit.
    ws.deliver({ t: 'changes', seq: 7, changes: [{ c: 'm', k: 'z', row: { id: 'z' } }] })
    ws.drop(1006)
    await until(() => FakeSocket.instances.length === 2)
    ws = FakeSocket.last
    ws.open()
    expect(ws.sent[0]).toEqual({ t: 'hello', v: 1, inlineAcks: true, compactChanges: true, epoch: 'e1', since: 7, subs: [{ id: 'bad', c: 'm' }, { id: 'ok', c: 'n', resume: true }] })
  })

  it('a sub whose resync snapshot fails too is dropped: unsub, and a SubscriptionError', () => {
    const t = make()
    const refused: SubscriptionError[] = []
    t.register({ id: 'bad', c: 'm' }, { applyUnit: () => { throw new Error('always') }, onError: (e) => refused.push(e) })
    const ws = FakeSocket.last
    ws.handshake('e1', 1)
    ws.deliver({ t: 'snapshot', sub: 'bad', c: 'm', seq: 1, rows: [] })
    expect(ws.framesOf('sub')).toEqual([{ t: 'sub', id: 'bad', c: 'm' }])
    expect(refused).toEqual([])
    ws.deliver({ t: 'snapshot', sub: 'bad', c: 'm', seq: 2, rows: [] })
    expect(ws.framesOf('unsub')).toEqual([{ t: 'unsub', id: 'bad' }])
    expect(refused.map((e) => [e.sub, e.codeName])).toEqual([['bad', 'INTERNAL']])
    expect(t.appliedSeq).toBe(2)
  })

  it('sub-error reaches the handler and drops the sub', async () => {
    const t = make()
    const a = recorder()
    t.register({ id: 's1', c: 'nope' }, a.handler)
    const ws = FakeSocket.last
    ws.handshake()
    ws.deliver({ t: 'sub-error', sub: 's1', code: 7, error: 'UNKNOWN_COLLECTION', message: 'no table nope' })
    expect(a.errors).toHaveLength(1)
    expect(a.errors[0]).toBeInstanceOf(SubscriptionError)
    expect(a.errors[0]?.codeName).toBe('UNKNOWN_COLLECTION')
    ws.drop(1006)
    await until(() => FakeSocket.instances.length === 2)
    FakeSocket.last.open()
    expect(FakeSocket.last.sent[0]).not.toHaveProperty('subs')
  })

  it('a RATE_LIMITED sub-error is retried after a backoff delay, not reported as a refusal', async () => {
    const errors: SeqsyncError[] = []
    const t = make({ onError: (e) => errors.push(e), backoff: { initialMs: 20, maxMs: 20 } })
    const a = recorder()
    const ws = FakeSocket.last
    ws.handshake()
    t.register({ id: 's1', c: 'm' }, a.handler)
    ws.deliver({ t: 'sub-error', sub: 's1', code: 19, error: 'RATE_LIMITED', message: 'slow down' })
    expect(a.errors).toEqual([])
    expect(errors).toEqual([])
    expect(ws.framesOf('sub')).toHaveLength(1)
    await new Promise((r) => setTimeout(r, 5))
    expect(ws.framesOf('sub')).toHaveLength(1) // not before the delay
    await until(() => ws.framesOf('sub').length === 2)
    ws.deliver({ t: 'snapshot', sub: 's1', c: 'm', seq: 1, rows: [] })
    expect(a.units).toHaveLength(1)
  })

  it('reports error frames and garbage through onError', () => {
    const errors: SeqsyncError[] = []
    make({ onError: (e) => errors.push(e) })
    const ws = FakeSocket.last
    ws.handshake()
    ws.deliver({ t: 'error', code: 1, error: 'MALFORMED_FRAME', message: 'bad at 17' })
    ws.onmessage?.({ data: '{nope' })
    expect(errors.map((e) => e.codeName)).toEqual(['MALFORMED_FRAME', 'MALFORMED_FRAME'])
  })

  it('a well-formed JSON frame with wrong fields is reported and dropped: no throw, no cursor move', () => {
    const errors: SeqsyncError[] = []
    const t = make({ onError: (e) => errors.push(e) })
    const a = recorder()
    t.register({ id: 's1', c: 'm' }, a.handler)
    const ws = FakeSocket.last
    ws.handshake('e1', 5)
    ws.deliver({ t: 'snapshot', sub: 's1', c: 'm', seq: 5, rows: [], more: true }, { t: 'synced', seq: 5 })
    for (const bad of ['{"t":"changes","seq":9}', '{"t":"ack","id":"x","seq":"9"}', '{"t":"synced","seq":-1}',
      '{"t":"snapshot","seq":9,"sub":"s1"}', '{"t":"changes","seq":9,"changes":[{"c":"m"}]}']) {
      expect(() => ws.onmessage?.({ data: bad })).not.toThrow()
    }
    expect(errors.map((e) => e.codeName)).toEqual(Array(5).fill('MALFORMED_FRAME'))
    expect(t.appliedSeq).toBe(5)
    expect(a.units).toHaveLength(1) // the first snapshot unit only
  })
})

describe('WebSocketTransport: writes', () => {
  it('a queued write over the server\'s smaller maxFrameBytes is refused TOO_LARGE, not left waiting', async () => {
    const t = make()
    const ws = FakeSocket.last
    const p = t.mutate([{ c: 'm', op: 'insert', k: 'a', cols: { id: 'a', body: 'x'.repeat(2000) } }]) // checked against the 4 MiB default
    ws.open()
    ws.deliver({ t: 'welcome', v: 1, epoch: 'e1', seq: 0, limits: { ...LIMITS, maxFrameBytes: 1024 } })
    const error = await p.catch((e: unknown) => e)
    expect(error).toBeInstanceOf(SeqsyncError)
    expect((error as SeqsyncError).codeName).toBe('TOO_LARGE')
    expect(ws.framesOf('mut')).toHaveLength(0)
  })

  it('mutate resolves after the ack once the cursor passed its seq', async () => {
    const t = make()
    t.register({ id: 's1', c: 'm' }, recorder().handler)
    const ws = FakeSocket.last
    ws.handshake('e1', 41)
    ws.deliver({ t: 'synced', seq: 41 })
    let done: { seq: number } | undefined
    const p = t.mutate([{ c: 'm', op: 'insert', k: 'a', cols: { id: 'a' } }]).then((r) => (done = r))
    const mut = ws.framesOf('mut')[0]
    expect(mut).toMatchObject({ t: 'mut', ops: [{ c: 'm', op: 'insert', k: 'a', cols: { id: 'a' } }] })
    expect(mut?.id).toMatch(/^[0-9a-f-]{36}$/)
    ws.deliver({ t: 'changes', seq: 42, changes: [{ c: 'm', k: 'a', row: { id: 'a' } }] })
    await tick()
    expect(done).toBeUndefined()
    ws.deliver({ t: 'ack', id: mut!.id, seq: 42 })
    await p
    expect(done).toEqual({ seq: 42 })
    expect(t.appliedSeq).toBe(42)
  })

  it('an ack inside the changes frame that ends the unit confirms the write once its rows are applied', async () => {
    const t = make()
    const rec = recorder()
    t.register({ id: 's1', c: 'm' }, rec.handler)
    const ws = FakeSocket.last
    ws.handshake('e1', 41)
    ws.deliver({ t: 'snapshot', sub: 's1', c: 'm', seq: 41, rows: [], more: true }, { t: 'synced', seq: 41 })
    let rowsWhenDone = -1
    const p = t.mutate([{ c: 'm', op: 'insert', k: 'a', cols: { id: 'a' } }]).then((r) => {
      rowsWhenDone = rec.units.length
      return r
    })
    const id = ws.framesOf('mut')[0]!.id
    const before = rec.units.length
    ws.deliver({ t: 'changes', seq: 42, changes: [{ c: 'm', k: 'a', row: { id: 'a' } }], ack: id })
    await expect(p).resolves.toEqual({ seq: 42 })
    expect(rowsWhenDone).toBe(before + 1)
    expect(t.appliedSeq).toBe(42)
  })

  it('refuses an inline ack on a frame that does not end its unit, and keeps the write in flight', async () => {
    const errors: SeqsyncError[] = []
    const t = make({ onError: (e) => errors.push(e) })
    t.register({ id: 's1', c: 'm' }, recorder().handler)
    const ws = FakeSocket.last
    ws.handshake('e1', 41)
    ws.deliver({ t: 'synced', seq: 41 })
    let done = false
    void t.mutate([{ c: 'm', op: 'insert', k: 'a', cols: { id: 'a' } }]).then(() => (done = true), () => {}) // the close at the end leaves it unknown
    const id = ws.framesOf('mut')[0]!.id
    ws.onmessage?.({ data: JSON.stringify({ t: 'changes', seq: 42, changes: [], more: true, ack: id }) })
    ws.onmessage?.({ data: JSON.stringify({ t: 'changes', seq: 42, changes: [], ack: 7 }) })
    await tick()
    expect(done).toBe(false)
    expect(errors.map((e) => e.codeName)).toEqual(['MALFORMED_FRAME', 'MALFORMED_FRAME'])
    expect(t.appliedSeq).toBe(41)
  })

  it('an ack alone moves the cursor (write to a table this socket does not watch)', async () => {
    const t = make()
    const ws = FakeSocket.last
    ws.handshake('e1', 7)
    const p = t.mutate([{ c: 'm', op: 'delete', k: 'a' }])
    ws.deliver({ t: 'ack', id: ws.framesOf('mut')[0]!.id, seq: 8 })
    await expect(p).resolves.toEqual({ seq: 8 })
    expect(t.appliedSeq).toBe(8)
  })

  it('reject rejects with RejectedError carrying the wire code', async () => {
    const t = make()
    const ws = FakeSocket.last
    ws.handshake()
    const p = t.mutate([{ c: 'm', op: 'delete', k: 'a' }])
    const id = ws.framesOf('mut')[0]!.id
    ws.deliver({ t: 'reject', id, code: 10, error: 'UNAUTHORIZED', message: 'author mismatch' })
    const err = await p.catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RejectedError)
    expect(err).toBeInstanceOf(SeqsyncError)
    expect(err).toMatchObject({ code: 10, codeName: 'UNAUTHORIZED', id })
  })

  it('writes made while offline are sent after the next welcome', async () => {
    const t = make()
    const ws = FakeSocket.last
    const p = t.mutate([{ c: 'm', op: 'delete', k: 'a' }])
    ws.open()
    expect(ws.framesOf('mut')).toEqual([]) // not before the welcome
    ws.deliver({ t: 'welcome', v: 1, epoch: 'e1', seq: 0, limits: {} as never })
    const [mut] = ws.framesOf('mut')
    expect(mut).toBeDefined()
    ws.deliver({ t: 'ack', id: mut!.id, seq: 1 })
    await expect(p).resolves.toEqual({ seq: 1 })
  })

  it('an in-flight write whose ack was lost is re-sent with the same id', async () => {
    const t = make()
    t.register({ id: 's1', c: 'm' }, recorder().handler)
    let ws = FakeSocket.last
    ws.handshake()
    const p = t.mutate([{ c: 'm', op: 'delete', k: 'a' }])
    const id = ws.framesOf('mut')[0]!.id
    ws.drop(1006)
    await until(() => FakeSocket.instances.length === 2)
    ws = FakeSocket.last
    ws.handshake()
    expect(ws.framesOf('mut')).toEqual([{ t: 'mut', id, ops: [{ c: 'm', op: 'delete', k: 'a' }] }])
    ws.deliver({ t: 'synced', seq: 3 }, { t: 'ack', id, seq: 3 })
    await expect(p).resolves.toEqual({ seq: 3 })
  })

  it('call resolves with the result', async () => {
    const t = make()
    const ws = FakeSocket.last
    ws.handshake()
    const p = t.call<{ n: number }>('rename', { to: 'x' })
    const [call] = ws.framesOf('call')
    expect(call).toMatchObject({ name: 'rename', args: { to: 'x' } })
    ws.deliver({ t: 'ack', id: call!.id, seq: 2, result: { n: 1 } })
    await expect(p).resolves.toEqual({ n: 1 })
  })

  it('refuses a frame over maxFrameBytes before sending (UTF-8 bytes)', async () => {
    const t = make()
    const ws = FakeSocket.last
    ws.handshake()
    const big = '€'.repeat(1_500_000) // 4.5 MB in UTF-8, 1.5 M UTF-16 units
    const err = await t.mutate([{ c: 'm', op: 'insert', k: 'a', cols: { body: big } }]).catch((e: unknown) => e)
    expect(err).toMatchObject({ codeName: 'TOO_LARGE' })
    expect(ws.framesOf('mut')).toEqual([])
  })

  it('refuses an empty mutation', async () => {
    const t = make()
    await expect(t.mutate([])).rejects.toMatchObject({ code: ErrorCode.INVALID_FIELD })
  })
})

describe('WebSocketTransport: awaitSeq', () => {
  it('resolves at once, later, or times out', async () => {
    const t = make()
    const ws = FakeSocket.last
    ws.handshake()
    t.register({ id: 's1', c: 'm' }, recorder().handler)
    await expect(t.awaitSeq(0)).resolves.toBeUndefined()
    const later = t.awaitSeq(5, 1000)
    ws.deliver({ t: 'snapshot', sub: 's1', c: 'm', seq: 5, rows: [] })
    await expect(later).resolves.toBeUndefined()
    await expect(t.awaitSeq(6, 10)).rejects.toBeInstanceOf(TimeoutError)
  })
})

describe('WebSocketTransport: closing', () => {
  it('a terminal close rejects pending writes and never redials', async () => {
    const t = make()
    const a = recorder()
    t.register({ id: 's1', c: 'm' }, a.handler)
    const ws = FakeSocket.last
    ws.handshake()
    const p = t.mutate([{ c: 'm', op: 'delete', k: 'a' }])
    const w = t.awaitSeq(100, 10_000)
    ws.drop(4401, 'unauthorized')
    const err = await p.catch((e: unknown) => e)
    expect(err).toBeInstanceOf(OutcomeUnknownError) // it was sent before the close
    expect(err).toMatchObject({ closeCode: 4401 })
    await expect(w).rejects.toBeInstanceOf(ClosedError)
    expect(t.status).toBe('closed')
    expect(a.errors).toHaveLength(1)
    await new Promise((r) => setTimeout(r, 20))
    expect(FakeSocket.instances).toHaveLength(1)
    await expect(t.mutate([{ c: 'm', op: 'delete', k: 'b' }])).rejects.toBeInstanceOf(ClosedError)
  })

  it('close() settles every write and wait: a write never sent rejects ClosedError, one sent may have committed', async () => {
    const t = make()
    const ws = FakeSocket.last
    ws.handshake()
    const sent = t.mutate([{ c: 'm', op: 'delete', k: 'a' }])
    const sentId = ws.framesOf('mut')[0]!.id
    const awaited = t.awaitSeq(50, 10_000)
    ws.drop(1006)
    const queued = t.mutate([{ c: 'm', op: 'delete', k: 'b' }]) // offline: waits in memory
    expect(ws.framesOf('mut')).toHaveLength(1)
    t.close()
    const [s, q, a] = await Promise.allSettled([sent, queued, awaited])
    // The sent write reached the socket: the DO may have committed it. Its
    // error must not look like a refusal, and it names the write.
    expect((s as PromiseRejectedResult).reason).toBeInstanceOf(OutcomeUnknownError)
    expect((s as PromiseRejectedResult).reason).not.toBeInstanceOf(ClosedError)
    expect((s as PromiseRejectedResult).reason).toMatchObject({ id: sentId, frame: { t: 'mut', id: sentId } })
    expect((s as PromiseRejectedResult).reason.message).toMatch(/may have committed/)
    expect((q as PromiseRejectedResult).reason).toBeInstanceOf(ClosedError)
    expect((a as PromiseRejectedResult).reason).toBeInstanceOf(ClosedError)
    expect(t.status).toBe('closed')
  })

  it('a write whose outcome is unknown can be sent again under its id on a later transport: it settles once', async () => {
    const first = make()
    FakeSocket.last.handshake()
    const lost = first.mutate([{ c: 'm', op: 'insert', k: 'a', cols: { id: 'a' } }]).catch((e: unknown) => e)
    first.close()
    const error = (await lost) as OutcomeUnknownError
    const later = make()
    const replay = later.mutate((error.frame as MutFrame).ops, { id: error.id })
    const ws = FakeSocket.last
    ws.handshake()
    expect(ws.framesOf('mut')).toEqual([error.frame])
    ws.deliver({ t: 'ack', id: error.id, seq: 1 }) // the recorded ack of the first send
    await expect(replay).resolves.toEqual({ seq: 1 })
  })

  it('close() during the first handshake rejects that subscription with a typed error', () => {
    const t = make()
    const a = recorder()
    t.register({ id: 's1', c: 'm' }, a.handler)
    FakeSocket.last.open() // hello sent, no welcome yet
    t.close()
    expect(a.errors).toHaveLength(1)
    expect(a.errors[0]).toBeInstanceOf(SubscriptionError)
    expect(a.units).toHaveLength(0)
  })

  it('a subscription released while the connect is in flight is never sent', () => {
    const t = make()
    const release = t.register({ id: 's1', c: 'm' }, recorder().handler)
    const ws = FakeSocket.last
    release()
    ws.open()
    ws.deliver({ t: 'welcome', v: 1, epoch: 'e1', seq: 0, limits: {} as never })
    expect(ws.framesOf('hello')[0]).not.toHaveProperty('subs.0')
    expect(ws.framesOf('sub')).toHaveLength(0)
    expect(ws.framesOf('unsub')).toHaveLength(0)
  })

  it('close() during the reconnect window cancels the retry', async () => {
    const t = make({ backoff: { initialMs: 20, maxMs: 20 } })
    FakeSocket.last.handshake()
    FakeSocket.last.drop(1006)
    t.close()
    await new Promise((r) => setTimeout(r, 40))
    expect(FakeSocket.instances).toHaveLength(1)
    expect(t.status).toBe('closed')
  })

  it('close() closes the socket with 1000 and ignores its late events', () => {
    const t = make()
    const ws = FakeSocket.last
    ws.handshake()
    t.close()
    expect(ws.closedByClient).toEqual({ code: 1000, reason: 'client closed' })
    ws.drop(1006)
    expect(t.status).toBe('closed')
  })

  it('a stale socket cannot disturb the live one', async () => {
    const t = make()
    t.register({ id: 's1', c: 'm' }, recorder().handler)
    const first = FakeSocket.last
    first.handshake()
    first.onerror?.({})
    await until(() => FakeSocket.instances.length === 2)
    const second = FakeSocket.last
    second.handshake()
    first.drop(1006) // late close of the errored socket
    first.deliver({ t: 'synced', seq: 99 })
    expect(t.status).toBe('live')
    expect(t.appliedSeq).toBe(0)
  })
})

describe('WebSocketTransport: in-flight window', () => {
  it('keeps at most maxInFlightPerSocket writes unanswered', async () => {
    const t = make()
    const ws = FakeSocket.last
    ws.open()
    ws.deliver({ t: 'welcome', v: 1, epoch: 'e1', seq: 0, limits: { maxInFlightPerSocket: 2 } as never })
    const ps = [1, 2, 3, 4, 5].map((n) => t.mutate([{ c: 'm', op: 'delete', k: String(n) }]))
    expect(ws.framesOf('mut').map((f) => f.ops[0]?.k)).toEqual(['1', '2'])
    ws.deliver({ t: 'ack', id: ws.framesOf('mut')[0]!.id, seq: 1 })
    expect(ws.framesOf('mut').map((f) => f.ops[0]?.k)).toEqual(['1', '2', '3'])
    ws.deliver({ t: 'reject', id: ws.framesOf('mut')[1]!.id, code: 12, error: 'EXECUTE_FAILED', message: 'x' })
    expect(ws.framesOf('mut').map((f) => f.ops[0]?.k)).toEqual(['1', '2', '3', '4'])
    for (const f of ws.framesOf('mut').slice(2)) ws.deliver({ t: 'ack', id: f.id, seq: 2 })
    ws.deliver({ t: 'ack', id: ws.framesOf('mut')[4]!.id, seq: 3 })
    const results = await Promise.allSettled(ps)
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled'])
  })
})

describe('WebSocketTransport: transient refusals of a write', () => {
  it("an error TOO_MANY (too many sockets waiting on the id) does not settle the write: it is sent again later, same id", async () => {
    const errors: SeqsyncError[] = []
    const t = make({ onError: (e) => errors.push(e), backoff: { initialMs: 20, maxMs: 20 } })
    const ws = FakeSocket.last
    ws.handshake()
    let settled = false
    const p = t.mutate([{ c: 'm', op: 'delete', k: 'a' }]).finally(() => (settled = true))
    const id = ws.framesOf('mut')[0]!.id
    ws.deliver({ t: 'error', code: 6, error: 'TOO_MANY', message: `mutation '${id}' already has 8 sockets waiting on it` })
    await tick()
    expect(settled).toBe(false)
    await until(() => ws.framesOf('mut').length === 2)
    expect(ws.framesOf('mut').map((f) => f.id)).toEqual([id, id])
    ws.deliver({ t: 'ack', id, seq: 1 })
    await expect(p).resolves.toEqual({ seq: 1 })
    expect(errors).toEqual([])
  })

  it('a reject TOO_MANY for the in-flight caps is transient: the write is sent again, same id, once another settles', async () => {
    const t = make()
    const ws = FakeSocket.last
    ws.handshake()
    const big = t.mutate([{ c: 'm', op: 'insert', k: 'a', cols: { body: 'x' } }])
    const next = t.mutate([{ c: 'm', op: 'insert', k: 'b', cols: { body: 'y' } }])
    const [first, second] = ws.framesOf('mut')
    ws.deliver({ t: 'reject', id: second!.id, code: 6, error: 'TOO_MANY', message: 'more than 8388608 bytes of mutations in flight on this socket' })
    expect(ws.framesOf('mut')).toHaveLength(2) // not at once: the other is still in flight
    ws.deliver({ t: 'ack', id: first!.id, seq: 1 })
    expect(ws.framesOf('mut').map((f) => f.id)).toEqual([first!.id, second!.id, second!.id])
    ws.deliver({ t: 'ack', id: second!.id, seq: 2 })
    await expect(big).resolves.toEqual({ seq: 1 })
    await expect(next).resolves.toEqual({ seq: 2 })
  })

  it('a reject TOO_MANY for the op count is final', async () => {
    const t = make()
    const ws = FakeSocket.last
    ws.handshake()
    const p = t.mutate([{ c: 'm', op: 'delete', k: 'a' }])
    ws.deliver({ t: 'reject', id: ws.framesOf('mut')[0]!.id, code: 6, error: 'TOO_MANY', message: 'mutation has 600 ops; the limit is 500' })
    await expect(p).rejects.toBeInstanceOf(RejectedError)
  })
})

describe('WebSocketTransport: windows (on-demand)', () => {
  const rankGte = { type: 'func' as const, name: 'gte' as const, args: [{ type: 'ref' as const, path: ['rank'] }, { type: 'val' as const, value: 7 }] }

  it('sends a window whole, and resumes it as the predicate its snapshot resolved to', async () => {
    const t = make()
    const a = recorder()
    t.register({ id: 'w1', c: 'tasks', orderBy: [{ col: 'rank', dir: 'desc' }], limit: 2, offset: 1 }, a.handler)
    const ws = FakeSocket.last
    ws.handshake('e1', 0)
    expect(ws.framesOf('hello')[0]!.subs).toEqual([{ id: 'w1', c: 'tasks', orderBy: [{ col: 'rank', dir: 'desc' }], limit: 2, offset: 1 }])
    ws.deliver({ t: 'snapshot', sub: 'w1', c: 'tasks', seq: 3, rows: [{ id: 'a', rank: 8 }], where: rankGte })
    expect(a.units).toEqual([{ seq: 3, sub: 'w1', changes: [], snapshot: [{ id: 'a', rank: 8 }], where: rankGte }])
    ws.drop()
    await until(() => FakeSocket.instances.length === 2)
    FakeSocket.last.open()
    expect(FakeSocket.last.sent[0]).toEqual({
      t: 'hello',
      v: 1,
      inlineAcks: true,
      compactChanges: true,
      epoch: 'e1',
      since: 3,
      subs: [{ id: 'w1', c: 'tasks', where: rankGte, resume: true }],
    })
  })

  it('calls unitDone once per handler per unit, and hands every sub of a table the same changes array', () => {
    const t = make()
    const units: AppliedUnit[] = []
    let done = 0
    const shared: SubscriptionHandler = { applyUnit: (u) => units.push(u), unitDone: () => (done += 1), onError: () => {} }
    t.register({ id: 'a', c: 'tasks' }, shared)
    t.register({ id: 'b', c: 'tasks', where: rankGte }, shared)
    const ws = FakeSocket.last
    ws.handshake('e1', 0)
    ws.deliver({ t: 'snapshot', sub: 'a', c: 'tasks', seq: 1, rows: [], more: true }, { t: 'snapshot', sub: 'b', c: 'tasks', seq: 1, rows: [] })
    expect(done).toBe(1)
    ws.deliver({ t: 'changes', seq: 2, changes: [{ c: 'tasks', k: 'x' }] })
    expect(done).toBe(2)
    expect(units.slice(2).map((u) => u.sub)).toEqual(['a', 'b'])
    expect(units[2]!.changes).toBe(units[3]!.changes)
  })
})

describe('WebSocketTransport: a url function and 4001 REAUTH', () => {
  it('calls the url function before every dial, sync or async; a rejection is a failed dial, retried', async () => {
    let calls = 0
    const t = make({
      url: () => {
        calls += 1
        if (calls === 2) return Promise.reject(new Error('token service down'))
        return calls === 1 ? `ws://do/sync/room?token=${calls}` : Promise.resolve(`ws://do/sync/room?token=${calls}`)
      },
    })
    expect(FakeSocket.last.url).toBe('ws://do/sync/room?token=1')
    expect(t.url).toBe('ws://do/sync/room?token=1')
    FakeSocket.last.handshake()
    FakeSocket.last.drop(1006)
    await until(() => FakeSocket.instances.length === 2)
    expect(calls).toBe(3) // the rejected call dialled nothing and was retried
    expect(FakeSocket.last.url).toBe('ws://do/sync/room?token=3')
  })

  it('4001 REAUTH is not terminal: the client dials a fresh URL, resumes from its cursor and resends its pending write', async () => {
    let token = 0
    const t = make({ url: () => `ws://do/sync/room?token=${++token}` })
    t.register({ id: 's1', c: 'm' }, recorder().handler)
    const first = FakeSocket.last
    first.handshake('e1', 0)
    first.deliver({ t: 'snapshot', sub: 's1', c: 'm', seq: 7, rows: [] })
    const pending = t.mutate([{ c: 'm', op: 'delete', k: 'a' }])
    const id = first.framesOf('mut')[0]!.id
    first.drop(4001, 'credentials expired; reconnect with fresh ones')
    await until(() => FakeSocket.instances.length === 2)
    const second = FakeSocket.last
    expect(second.url).toBe('ws://do/sync/room?token=2')
    second.handshake('e1', 7)
    expect(second.framesOf('hello')[0]).toMatchObject({ since: 7, subs: [{ id: 's1', c: 'm', resume: true }] })
    expect(second.framesOf('mut').map((f) => f.id)).toEqual([id])
    second.deliver({ t: 'ack', id, seq: 8 })
    await expect(pending).resolves.toEqual({ seq: 8 })
  })

  it('a refused re-authentication is terminal and says so', async () => {
    const t = make({ url: () => 'ws://do/sync/room' })
    FakeSocket.last.handshake()
    FakeSocket.last.drop(4001, 'credentials expired')
    await until(() => FakeSocket.instances.length === 2)
    FakeSocket.last.open()
    FakeSocket.last.drop(4401, 'unauthorized')
    expect(t.status).toBe('closed')
    const error = await t.awaitSeq(1).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ClosedError)
    expect(error).toMatchObject({ closeCode: 4401, reason: 're-authentication refused: unauthorized' })
  })

  it('a 4401 that follows no REAUTH says nothing about re-authentication', async () => {
    const t = make()
    FakeSocket.last.open()
    FakeSocket.last.drop(4401, 'unauthorized')
    expect(await t.awaitSeq(1).catch((e: unknown) => e)).toMatchObject({ closeCode: 4401, reason: 'unauthorized' })
  })
})
