import { describe, expect, it } from 'vitest'
import {
  DEFAULT_BACKOFF,
  backoffCeiling,
  backoffDelay,
  initialTransition,
  transition,
} from '../../worker/src/client/connection.js'
import type {
  ConnectionEffect,
  ConnectionEvent,
  ConnectionState,
  MachineConfig,
} from '../../worker/src/client/connection.js'
import { seededRandom } from '../support/prng.js'


const pinned = (r: number): MachineConfig => ({ backoff: { ...DEFAULT_BACKOFF }, random: () => r })

/** Feed events from a state; return the final state and every effect. */
function run(state: ConnectionState, events: ConnectionEvent[], config: MachineConfig) {
  const effects: ConnectionEffect[] = []
  for (const e of events) {
    const t = transition(state, e, config)
    state = t.state
    effects.push(...t.effects)
  }
  return { state, effects }
}

const types = (effects: readonly ConnectionEffect[]) => effects.map((e) => e.type)
const retries = (effects: readonly ConnectionEffect[]) =>
  effects.flatMap((e) => (e.type === 'schedule-retry' ? [e.ms] : []))

function liveState(config: MachineConfig): ConnectionState {
  const start = initialTransition()
  return run(start.state, [{ type: 'open' }, { type: 'welcome' }], config).state
}

describe('connection machine: handshake', () => {
  it('starts connecting and dials a socket', () => {
    const t = initialTransition()
    expect(t.state).toEqual({ status: 'connecting', failures: 0, open: false })
    expect(types(t.effects)).toEqual(['open-socket'])
  })

  it('starts offline without dialling when the network is down', () => {
    const t = initialTransition(true)
    expect(t.state.status).toBe('offline')
    expect(t.effects).toEqual([])
  })

  it('sends hello on open and goes live on welcome', () => {
    const c = pinned(1)
    const a = transition(initialTransition().state, { type: 'open' }, c)
    expect(a.state).toEqual({ status: 'connecting', failures: 0, open: true })
    expect(types(a.effects)).toEqual(['send-hello'])
    const b = transition(a.state, { type: 'welcome' }, c)
    expect(b.state).toEqual({ status: 'live' })
    expect(types(b.effects)).toEqual(['session-live'])
  })

  it('gives up on a handshake that times out, before or after open, and retries with backoff', () => {
    const c = pinned(1)
    for (const events of [[], [{ type: 'open' }]] as ConnectionEvent[][]) {
      const r = run(initialTransition().state, [...events, { type: 'handshake-timeout' }], c)
      expect(r.state).toMatchObject({ status: 'offline', failures: 1, retryScheduled: true })
      expect(types(r.effects).slice(-3)).toEqual(['close-socket', 'session-lost', 'schedule-retry'])
    }
    // A late timer after the session went live does nothing.
    const live = liveState(c)
    expect(transition(live, { type: 'handshake-timeout' }, c)).toEqual({ state: live, effects: [] })
  })

  it('ignores a welcome before open and a second open', () => {
    const c = pinned(1)
    const s0 = initialTransition().state
    expect(transition(s0, { type: 'welcome' }, c)).toEqual({ state: s0, effects: [] })
    const s1 = transition(s0, { type: 'open' }, c).state
    expect(transition(s1, { type: 'open' }, c).effects).toEqual([])
  })
})

describe('connection machine: backoff', () => {
  it('grows exponentially from initialMs with jitter pinned at max', () => {
    const c = pinned(1)
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(n, c))).toEqual([250, 500, 1000, 2000, 4000])
  })

  it('is capped at maxMs, even for attempt 1000', () => {
    const c = pinned(1)
    expect(backoffDelay(8, c)).toBe(30_000)
    expect(backoffDelay(1000, c)).toBe(30_000)
    expect(backoffCeiling(5000, DEFAULT_BACKOFF)).toBe(30_000)
  })

  it('does not truncate an initialMs above the cap', () => {
    expect(backoffCeiling(1, { initialMs: 60_000, maxMs: 30_000 })).toBe(60_000)
    expect(backoffCeiling(7, { initialMs: 60_000, maxMs: 30_000 })).toBe(60_000)
  })

  it('jitter 0 gives half the ceiling, 0.5 three quarters', () => {
    expect(backoffDelay(3, pinned(0))).toBe(500)
    expect(backoffDelay(3, pinned(0.5))).toBe(750)
  })

  it('keeps every jittered delay within [ceiling/2, ceiling] (seeded random)', () => {
    const config: MachineConfig = { backoff: { initialMs: 100, maxMs: 10_000 }, random: seededRandom(42) }
    const seen = new Set<number>()
    for (let n = 1; n <= 20; n++) {
      const ceiling = backoffCeiling(n, config.backoff)
      for (let i = 0; i < 200; i++) {
        const d = backoffDelay(n, config)
        expect(d).toBeGreaterThanOrEqual(Math.floor(ceiling / 2))
        expect(d).toBeLessThanOrEqual(ceiling)
        seen.add(d)
      }
    }
    expect(seen.size).toBeGreaterThan(100) // the jitter actually spreads
  })

  it('clamps a misbehaving random into range', () => {
    expect(backoffDelay(1, pinned(5))).toBe(250)
    expect(backoffDelay(1, pinned(-1))).toBe(125)
    expect(backoffDelay(1, pinned(Number.NaN))).toBe(125)
  })

  it('counts failures across failed dials and schedules growing retries', () => {
    const c = pinned(1)
    let s = initialTransition().state
    const delays: number[] = []
    for (let i = 0; i < 4; i++) {
      const closed = transition(s, { type: 'close', code: 1006 }, c)
      expect(closed.state.status).toBe('offline')
      delays.push(...retries(closed.effects))
      const retried = transition(closed.state, { type: 'retry' }, c)
      expect(retried.state.status).toBe('connecting')
      expect(types(retried.effects)).toEqual(['open-socket'])
      s = retried.state
    }
    expect(delays).toEqual([250, 500, 1000, 2000])
    expect(s).toEqual({ status: 'connecting', failures: 4, open: false })
  })

  it('resets the backoff after a welcome', () => {
    const c = pinned(1)
    let s = initialTransition().state
    for (let i = 0; i < 5; i++) {
      s = transition(s, { type: 'close', code: 1006 }, c).state
      s = transition(s, { type: 'retry' }, c).state
    }
    s = run(s, [{ type: 'open' }, { type: 'welcome' }], c).state
    const dropped = transition(s, { type: 'close', code: 1011 }, c)
    expect(retries(dropped.effects)).toEqual([250])
    expect(dropped.state).toEqual({ status: 'offline', failures: 1, retryScheduled: true, networkDown: false })
  })

  it('an open without a welcome does not reset the backoff', () => {
    const c = pinned(1)
    let s = initialTransition().state
    s = transition(s, { type: 'close' }, c).state
    s = transition(s, { type: 'retry' }, c).state
    s = transition(s, { type: 'open' }, c).state
    const dropped = transition(s, { type: 'close', code: 1000 }, c)
    expect(retries(dropped.effects)).toEqual([500])
  })
})

describe('connection machine: drops', () => {
  it.each([1000, 1006, 1009, 1011, undefined])('close %s while live: session lost, retry', (code) => {
    const c = pinned(1)
    const t = transition(liveState(c), code === undefined ? { type: 'close' } : { type: 'close', code }, c)
    expect(t.state.status).toBe('offline')
    expect(types(t.effects)).toEqual(['session-lost', 'schedule-retry'])
  })

  it.each([4400, 4401, 4403, 4499])('terminal close %s: closed, no retry', (code) => {
    const c = pinned(1)
    const t = transition(liveState(c), { type: 'close', code, reason: 'nope' }, c)
    expect(t.state).toEqual({ status: 'closed', code, reason: 'nope' })
    expect(types(t.effects)).toEqual(['session-lost', 'terminal'])
    // closed is absorbing
    for (const e of [{ type: 'retry' }, { type: 'online' }, { type: 'open' }, { type: 'close', code: 1006 }] as const) {
      expect(transition(t.state, e, c)).toEqual({ state: t.state, effects: [] })
    }
  })

  it('a terminal close during the handshake is terminal too', () => {
    const c = pinned(1)
    const t = transition(initialTransition().state, { type: 'close', code: 4401 }, c)
    expect(t.state.status).toBe('closed')
    expect(retries(t.effects)).toEqual([])
  })

  it('4500 is not terminal', () => {
    const c = pinned(1)
    expect(transition(liveState(c), { type: 'close', code: 4500 }, c).state.status).toBe('offline')
  })

  it('error closes the socket and schedules a retry; the late close is ignored', () => {
    const c = pinned(1)
    const t = transition(liveState(c), { type: 'error' }, c)
    expect(types(t.effects)).toEqual(['close-socket', 'session-lost', 'schedule-retry'])
    expect(transition(t.state, { type: 'close', code: 1006 }, c).effects).toEqual([])
  })

  it('a retry that is not armed does nothing', () => {
    const c = pinned(1)
    const live = liveState(c)
    expect(transition(live, { type: 'retry' }, c).effects).toEqual([])
  })
})

describe('connection machine: network', () => {
  it('offline while live closes the socket and arms no retry', () => {
    const c = pinned(1)
    const t = transition(liveState(c), { type: 'offline' }, c)
    expect(t.state).toEqual({ status: 'offline', failures: 0, retryScheduled: false, networkDown: true })
    expect(types(t.effects)).toEqual(['close-socket', 'session-lost'])
    // a retry event (stale timer) does not dial while the network is down
    expect(transition(t.state, { type: 'retry' }, c).effects).toEqual([])
  })

  it('offline while waiting to retry cancels the retry', () => {
    const c = pinned(1)
    const dropped = transition(liveState(c), { type: 'close', code: 1006 }, c).state
    const t = transition(dropped, { type: 'offline' }, c)
    expect(types(t.effects)).toEqual(['cancel-retry'])
    expect(t.state).toMatchObject({ status: 'offline', retryScheduled: false, networkDown: true })
  })

  it('online dials at once (cancelling an armed retry)', () => {
    const c = pinned(1)
    const dropped = transition(liveState(c), { type: 'close', code: 1006 }, c).state
    const t = transition(dropped, { type: 'online' }, c)
    expect(types(t.effects)).toEqual(['cancel-retry', 'open-socket'])
    expect(t.state.status).toBe('connecting')
    const down = transition(liveState(c), { type: 'offline' }, c).state
    expect(types(transition(down, { type: 'online' }, c).effects)).toEqual(['open-socket'])
  })

  it('online while live or connecting does nothing', () => {
    const c = pinned(1)
    expect(transition(liveState(c), { type: 'online' }, c).effects).toEqual([])
    expect(transition(initialTransition().state, { type: 'online' }, c).effects).toEqual([])
  })
})

describe('connection machine: user close', () => {
  it('from live: closes the socket, terminal', () => {
    const c = pinned(1)
    const t = transition(liveState(c), { type: 'user-close' }, c)
    expect(t.state).toMatchObject({ status: 'closed', code: undefined })
    expect(types(t.effects)).toEqual(['close-socket', 'session-lost', 'terminal'])
  })

  it('during the reconnect window: cancels the retry', () => {
    const c = pinned(1)
    const dropped = transition(liveState(c), { type: 'close', code: 1006 }, c).state
    const t = transition(dropped, { type: 'user-close' }, c)
    expect(types(t.effects)).toEqual(['cancel-retry', 'terminal'])
    // a stale timer firing afterwards cannot resurrect it
    expect(transition(t.state, { type: 'retry' }, c).effects).toEqual([])
  })

  it('a second close does nothing', () => {
    const c = pinned(1)
    const closed = transition(liveState(c), { type: 'user-close' }, c).state
    expect(transition(closed, { type: 'user-close' }, c).effects).toEqual([])
  })

  it('is pure: the same input gives the same output', () => {
    const c: MachineConfig = { backoff: DEFAULT_BACKOFF, random: seededRandom(7) }
    const c2: MachineConfig = { backoff: DEFAULT_BACKOFF, random: seededRandom(7) }
    const s = liveState(c)
    const frozen = JSON.stringify(s)
    const a = transition(s, { type: 'close', code: 1006 }, c)
    const b = transition(s, { type: 'close', code: 1006 }, c2)
    expect(a).toEqual(b)
    expect(JSON.stringify(s)).toBe(frozen)
  })
})
