// The connection state machine of WebSocketTransport: pure, no sockets, no
// timers, no clock. `transition(state, event, config)` returns the next state
// and the effects the I/O shell (transport.ts) must perform, in order.
//
//                 open          welcome
//   ┌──────────┐ ─────▶ (hello sent) ─────▶ ┌──────┐
//   │connecting│                            │ live │
//   └──────────┘ ◀───────────┐              └──────┘
//      │  ▲   close/error     │ retry          │ close / error
//      │  │  (non-terminal)   │ (online)       │ (non-terminal)
//      │  │                 ┌─┴───────┐        │
//      │  └─── online ───── │ offline │ ◀──────┘
//      └──────────────────▶ └─────────┘
//                              │  ▲ navigator offline: no retry until online
//   any state ── close(44xx) or user close ──▶ ┌────────┐
//                                             │ closed │  (absorbing)
//                                             └────────┘
//
// Backoff: after the n-th consecutive failure (n ≥ 1) the retry waits
//   ceiling(n) = min(maxMs, initialMs · 2^(n−1))
//   delay(n)   = ceiling(n) · (1 + random()) / 2        ("equal jitter")
// so a delay is always in [ceiling/2, ceiling]: never a hot loop at 0 ms, and
// clients that dropped together spread over half the window. A `welcome`
// resets n to 0 (a reconnect after a live session starts from initialMs).
// An initialMs above maxMs is not truncated: the cap bounds growth only.

import { isTerminalClose } from '../protocol/index.js'

export type ConnectionStatus = 'connecting' | 'live' | 'offline' | 'closed'

export interface BackoffConfig {
  /** Ceiling of the first retry delay, in milliseconds. Default 250. */
  initialMs: number
  /** Cap of the retry delay ceiling, in milliseconds. Default 30 000. */
  maxMs: number
}

export const DEFAULT_BACKOFF: Readonly<BackoffConfig> = Object.freeze({
  initialMs: 250,
  maxMs: 30_000,
})

export interface MachineConfig {
  backoff: BackoffConfig
  /** Uniform in [0, 1). Injected so tests can pin the jitter. */
  random: () => number
}

export type ConnectionState =
  | {
      readonly status: 'connecting'
      /** Consecutive failed attempts before this one (0 on the first dial). */
      readonly failures: number
      /** The socket has opened and `hello` was sent; waiting for `welcome`. */
      readonly open: boolean
    }
  | { readonly status: 'live' }
  | {
      readonly status: 'offline'
      readonly failures: number
      /** A retry timer is armed. False while the network is known offline. */
      readonly retryScheduled: boolean
      /** The host reported the network offline (navigator.onLine false). */
      readonly networkDown: boolean
    }
  | {
      readonly status: 'closed'
      /** The close code that ended the transport; undefined for a user close. */
      readonly code: number | undefined
      readonly reason: string
    }

export type ConnectionEvent =
  | { readonly type: 'open' }
  | { readonly type: 'welcome' }
  | { readonly type: 'close'; readonly code?: number; readonly reason?: string }
  | { readonly type: 'error' }
  | { readonly type: 'retry' }
  /** No `welcome` within the handshake timeout of a dial: give up on that socket. */
  | { readonly type: 'handshake-timeout' }
  | { readonly type: 'online' }
  | { readonly type: 'offline' }
  | { readonly type: 'user-close' }

export type ConnectionEffect =
  /** Dial a new socket (the previous one, if any, is already gone). */
  | { readonly type: 'open-socket' }
  /** Close the current socket and stop listening to it. */
  | { readonly type: 'close-socket'; readonly code: number; readonly reason: string }
  /** Send `hello` on the socket that just opened. */
  | { readonly type: 'send-hello' }
  /** The handshake completed: flush queued subs and writes. */
  | { readonly type: 'session-live' }
  /** The socket is gone: discard any partial unit, mark writes for resend. */
  | { readonly type: 'session-lost' }
  | { readonly type: 'schedule-retry'; readonly ms: number }
  | { readonly type: 'cancel-retry' }
  /** The transport ended for good: settle every waiter. */
  | { readonly type: 'terminal'; readonly code: number | undefined; readonly reason: string }

export interface Transition {
  readonly state: ConnectionState
  readonly effects: readonly ConnectionEffect[]
}

/** The ceiling of the delay before retry number `failures` (≥ 1). */
export function backoffCeiling(failures: number, backoff: BackoffConfig): number {
  const n = Math.max(1, failures)
  // 2^(n−1) overflows to Infinity for huge n; min() then yields the cap.
  const grown = backoff.initialMs * Math.pow(2, n - 1)
  return backoff.initialMs > backoff.maxMs ? backoff.initialMs : Math.min(backoff.maxMs, grown)
}

/** The jittered delay before retry number `failures`, in [ceiling/2, ceiling]. */
export function backoffDelay(failures: number, config: MachineConfig): number {
  const ceiling = backoffCeiling(failures, config.backoff)
  let r = config.random()
  if (!(r >= 0)) r = 0
  if (r > 1) r = 1
  return Math.round((ceiling * (1 + r)) / 2)
}

/** The state a new transport starts in, with the effects that start it. */
export function initialTransition(networkDown = false): Transition {
  if (networkDown) {
    return {
      state: { status: 'offline', failures: 0, retryScheduled: false, networkDown: true },
      effects: [],
    }
  }
  return { state: { status: 'connecting', failures: 0, open: false }, effects: [{ type: 'open-socket' }] }
}

function lost(failures: number, config: MachineConfig, closeSocket: boolean): Transition {
  const n = failures + 1
  const ms = backoffDelay(n, config)
  const effects: ConnectionEffect[] = []
  if (closeSocket) effects.push({ type: 'close-socket', code: 1000, reason: 'socket error' })
  effects.push({ type: 'session-lost' }, { type: 'schedule-retry', ms })
  return {
    state: { status: 'offline', failures: n, retryScheduled: true, networkDown: false },
    effects,
  }
}

function failuresOf(state: ConnectionState): number {
  return state.status === 'connecting' || state.status === 'offline' ? state.failures : 0
}

/**
 * The next state and effects for `event`. Pure: the same inputs (including the
 * values `config.random` returns) always give the same output. Events that do
 * not apply to the current state (a late close after the socket was replaced,
 * a retry after `online` already redialled) yield no effects.
 */
export function transition(
  state: ConnectionState,
  event: ConnectionEvent,
  config: MachineConfig,
): Transition {
  const same: Transition = { state, effects: [] }
  if (state.status === 'closed') return same

  switch (event.type) {
    case 'user-close':
      return {
        state: { status: 'closed', code: undefined, reason: 'closed by the application' },
        effects: [
          ...(state.status === 'offline' ? [] : ([{ type: 'close-socket', code: 1000, reason: 'client closed' }] as const)),
          ...(state.status === 'offline' && state.retryScheduled ? ([{ type: 'cancel-retry' }] as const) : []),
          ...(state.status === 'offline' ? [] : ([{ type: 'session-lost' }] as const)),
          { type: 'terminal', code: undefined, reason: 'closed by the application' },
        ],
      }

    case 'open':
      if (state.status !== 'connecting' || state.open) return same
      return { state: { ...state, open: true }, effects: [{ type: 'send-hello' }] }

    case 'welcome':
      if (state.status !== 'connecting' || !state.open) return same
      return { state: { status: 'live' }, effects: [{ type: 'session-live' }] }

    case 'close': {
      if (state.status === 'offline') return same // a late close of a socket already dropped
      const code = event.code
      if (code !== undefined && isTerminalClose(code)) {
        const reason = event.reason ?? ''
        return {
          state: { status: 'closed', code, reason },
          effects: [{ type: 'session-lost' }, { type: 'terminal', code, reason }],
        }
      }
      return lost(failuresOf(state), config, false)
    }

    case 'error':
      // Browsers follow `error` with `close`; treat the socket as gone now and
      // let the machine ignore the late close (it arrives in `offline`).
      if (state.status === 'offline') return same
      return lost(failuresOf(state), config, true)

    case 'handshake-timeout':
      // A dial or a hello that never completes (a DO reset mid-handshake, a
      // half-open TCP connection) must not leave the transport connecting forever.
      if (state.status !== 'connecting') return same
      return lost(state.failures, config, true)

    case 'retry':
      if (state.status !== 'offline' || !state.retryScheduled || state.networkDown) return same
      return {
        state: { status: 'connecting', failures: state.failures, open: false },
        effects: [{ type: 'open-socket' }],
      }

    case 'offline':
      if (state.status === 'offline') {
        if (state.networkDown) return same
        return {
          state: { ...state, retryScheduled: false, networkDown: true },
          effects: state.retryScheduled ? [{ type: 'cancel-retry' }] : [],
        }
      }
      return {
        state: { status: 'offline', failures: failuresOf(state), retryScheduled: false, networkDown: true },
        effects: [
          { type: 'close-socket', code: 1000, reason: 'network offline' },
          { type: 'session-lost' },
        ],
      }

    case 'online':
      if (state.status !== 'offline') return same
      return {
        state: { status: 'connecting', failures: state.failures, open: false },
        effects: [...(state.retryScheduled ? ([{ type: 'cancel-retry' }] as const) : []), { type: 'open-socket' }],
      }
  }
}
