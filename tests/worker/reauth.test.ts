// Auth that outlives a token (docs/protocol.md §8, 4001 REAUTH): a socket's
// claims bound its life. At the expiry they carry (`exp`, seconds) the DO
// closes it 4001 (an alarm does it, in a woken instance too: the attachment
// holds the expiry); a frame that beats the alarm is not served; claims
// already expired at the upgrade are refused 4401. Time is injected: the
// fixture's clock runs ahead by what advanceClock adds.
import { env, runDurableObjectAlarm } from 'cloudflare:test'
import { expect, it } from 'vitest'

import { CloseCode } from '../../worker/src/protocol/index.js'
import type { Env } from './fixture.js'
import { freshRoom, insertMessage, TestSocket, untilEvicted } from './socket.js'

const testEnv = env as unknown as Env
const stub = (name: string) => testEnv.TEST_DO.get(testEnv.TEST_DO.idFromName(name))
const SUB = { id: 'm', c: 'messages' }
const HOUR_MS = 3600_000
/** `exp` (seconds) `ms` from now on the wall clock. */
const expIn = (ms: number) => Math.floor((Date.now() + ms) / 1000)

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

it('at its claims’ exp a socket is closed 4001 REAUTH by the alarm; sockets whose claims last longer stay, and the alarm is armed for the next', async () => {
  const name = freshRoom('reauth')
  const { socket: expiring } = await TestSocket.connect(name, 'ann', { subs: [SUB] }, 'sync', `&exp=${expIn(HOUR_MS)}`)
  const { socket: later } = await TestSocket.connect(name, 'bob', { subs: [SUB] }, 'sync', `&exp=${expIn(3 * HOUR_MS)}`)
  const { socket: forever } = await TestSocket.connect(name, 'cy', { subs: [SUB] })
  // The alarm rings at the first expiry, not before.
  const armed = await stub(name).alarmAt()
  expect(armed).not.toBeNull()
  expect(Math.abs(armed! - expIn(HOUR_MS) * 1000)).toBeLessThan(2000)

  await stub(name).advanceClock(HOUR_MS + 1000)
  await runDurableObjectAlarm(stub(name))
  await until(() => expiring.closed !== undefined, 'the expired socket closes')
  expect(expiring.closed!.code).toBe(CloseCode.REAUTH)
  // Nothing is sent to it after its claims expired; the others are served.
  const ack = await later.mutate('after-expiry', [insertMessage('after-expiry', 'bob')])
  expect(ack.t).toBe('ack')
  await forever.next('changes', (f) => f.changes.some((c) => c.k === 'after-expiry'))
  expect(expiring.all('changes').some((f) => f.changes.some((c) => c.k === 'after-expiry'))).toBe(false)
  expect(later.closed).toBeUndefined()
  expect(forever.closed).toBeUndefined()
  // Armed again, for bob's expiry (on the fixture's clock, now an hour ahead).
  const next = await stub(name).alarmAt()
  expect(Math.abs(next! - (expIn(3 * HOUR_MS) * 1000 - HOUR_MS - 1000))).toBeLessThan(2000)
  later.close()
  forever.close()
})

it('a frame that arrives after the expiry, before the alarm rang, is not served: the socket closes 4001 and nothing is written', async () => {
  const name = freshRoom('reauth-frame')
  const { socket } = await TestSocket.connect(name, 'ann', { subs: [SUB] }, 'sync', `&exp=${expIn(HOUR_MS)}`)
  await socket.next('synced')
  await stub(name).advanceClock(2 * HOUR_MS, { ring: false })
  socket.send({ t: 'mut', id: 'late', ops: [insertMessage('late', 'ann')] })
  await until(() => socket.closed !== undefined, 'the socket closes')
  expect(socket.closed!.code).toBe(CloseCode.REAUTH)
  expect(socket.all('ack')).toHaveLength(0)
  expect(await stub(name).rows('messages')).toHaveLength(0)
})

it('claims already expired at the upgrade are refused 4401 (terminal), not accepted and closed 4001', async () => {
  const name = freshRoom('reauth-upgrade')
  const socket = await TestSocket.open(name, 'ann', 'sync', {}, `&exp=${expIn(-60_000)}`)
  await until(() => socket.closed !== undefined, 'the refused socket closes')
  expect(socket.closed).toEqual({ code: CloseCode.UNAUTHORIZED, reason: 'credentials expired' })
})

it('a hibernated object’s alarm closes the expired socket: the woken instance reads the expiry from the attachment', { timeout: 90_000 }, async () => {
  const name = freshRoom('reauth-evict')
  const { socket } = await TestSocket.connect(name, 'ann', { subs: [SUB] }, 'sync', `&exp=${expIn(HOUR_MS)}`)
  await socket.next('synced')
  const before = await stub(name).whoAmI()
  await untilEvicted(() => stub(name).whoAmI(), before)
  expect(socket.closed).toBeUndefined() // hibernation kept it open
  await stub(name).advanceClock(HOUR_MS + 1000)
  await runDurableObjectAlarm(stub(name))
  await until(() => socket.closed !== undefined, 'the expired socket closes')
  expect(socket.closed!.code).toBe(CloseCode.REAUTH)
})
