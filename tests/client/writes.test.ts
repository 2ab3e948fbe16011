// The write queue (worker/src/client/writes.ts), without a socket.
import { describe, expect, it } from 'vitest'

import { ClosedError, OutcomeUnknownError, RejectedError, SeqsyncError } from '../../worker/src/client/errors.js'
import { WriteQueue } from '../../worker/src/client/writes.js'
import type { WriteFrame } from '../../worker/src/client/writes.js'

const limits = { maxInFlight: 2, maxFrameBytes: 1024 }
const mut = (id: string, k = id): WriteFrame => ({ t: 'mut', id, ops: [{ c: 'm', op: 'delete', k }] })
const ids = (texts: string[]) => texts.map((t) => (JSON.parse(t) as { id: string }).id)

function queue(...frames: WriteFrame[]) {
  const q = new WriteQueue()
  const settled = frames.map((f) => q.add(f, JSON.stringify(f)).then((v) => ({ ok: v }), (e: unknown) => ({ error: e })))
  return { q, settled }
}

describe('WriteQueue', () => {
  it('hands out writes oldest first within the in-flight window, each once per socket', () => {
    const { q } = queue(mut('a'), mut('b'), mut('c'))
    expect(ids(q.next(limits))).toEqual(['a', 'b'])
    expect(q.next(limits)).toEqual([])
    expect(q.inFlight).toBe(2)
    q.ack({ t: 'ack', id: 'a', seq: 1 })
    expect(ids(q.next(limits))).toEqual(['c'])
  })

  it('an ack resolves with the seq and result; a reject rejects with RejectedError; unknown ids are ignored', async () => {
    const { q, settled } = queue(mut('a'), { t: 'call', id: 'b', name: 'echo' })
    q.next(limits)
    expect(q.ack({ t: 'ack', id: 'zz', seq: 3 })).toBe(false)
    expect(q.ack({ t: 'ack', id: 'b', seq: 3, result: { ok: 1 } })).toBe(true)
    expect(q.reject({ t: 'reject', id: 'a', code: 10, error: 'UNAUTHORIZED', message: 'no' })).toBe('refused')
    const [a, b] = await Promise.all(settled)
    expect((a as { error: unknown }).error).toBeInstanceOf(RejectedError)
    expect(b).toEqual({ ok: { seq: 3, result: { ok: 1 } } })
    expect(q.size).toBe(0)
  })

  it('a lost socket makes every unsettled write unsent, to be sent again under the same id', () => {
    const { q } = queue(mut('a'), mut('b'))
    const first = q.next(limits)
    q.socketLost()
    expect(q.inFlight).toBe(0)
    expect(q.next(limits)).toEqual(first)
  })

  it('a write over the server\'s maxFrameBytes is refused TOO_LARGE and never handed out', async () => {
    const { q, settled } = queue(mut('big', 'x'.repeat(2000)), mut('ok'))
    expect(ids(q.next(limits))).toEqual(['ok'])
    const big = await settled[0]
    expect((big as { error: SeqsyncError }).error.codeName).toBe('TOO_LARGE')
  })

  it('refuses a second write with the id of a pending one', async () => {
    const q = new WriteQueue()
    void q.add(mut('a'), '{}')
    await expect(q.add(mut('a'), '{}')).rejects.toThrow(/already pending/)
  })

  it('close rejects a write never sent ClosedError, one sent OutcomeUnknownError with its id', async () => {
    const { q, settled } = queue(mut('a'), mut('b'), mut('c'))
    q.next(limits) // a and b sent
    q.socketLost() // still: they may have committed
    q.close(new ClosedError(undefined, 'closed'))
    const [a, b, c] = (await Promise.all(settled)) as Array<{ error: unknown }>
    expect(a!.error).toBeInstanceOf(OutcomeUnknownError)
    expect(b!.error).toMatchObject({ id: 'b', frame: mut('b') })
    expect(c!.error).toBeInstanceOf(ClosedError)
  })

  it('a reject TOO_MANY for the in-flight caps holds the write until another settles; it is then known not applied', async () => {
    const { q, settled } = queue(mut('a'), mut('b'), mut('c'))
    expect(ids(q.next(limits))).toEqual(['a', 'b'])
    const tooMany = { t: 'reject' as const, id: 'b', code: 6, error: 'TOO_MANY', message: 'more than 32 mutations in flight on this socket' }
    expect(q.reject(tooMany)).toBe('retry')
    expect(q.held).toBe(1)
    expect(ids(q.next(limits))).toEqual(['c']) // b waits; c takes the free slot
    q.ack({ t: 'ack', id: 'a', seq: 1 })
    expect(q.held).toBe(0)
    expect(q.reject({ ...tooMany, id: 'b' })).toBe('retry') // still unsent: held again
    q.close(new ClosedError(undefined, 'closed'))
    const [, b] = (await Promise.all(settled)) as Array<{ error: unknown }>
    expect(b!.error).toBeInstanceOf(ClosedError) // refused before it ran: not applied
  })

  it('hold (too many sockets waiting on the id) keeps the write unsettled and unsent until released', () => {
    const { q } = queue(mut('a'))
    expect(q.hold('a')).toBe(false) // not in flight yet
    q.next(limits)
    expect(q.hold('a')).toBe(true)
    expect(q.next(limits)).toEqual([])
    q.release()
    expect(ids(q.next(limits))).toEqual(['a'])
  })
})
