// The public types of WebSocketTransport: the socket it takes, its options,
// and what a write takes and gives.

import type { BackoffConfig } from './connection.js'
import type { SeqsyncError } from './errors.js'
import type { LocalOptions } from './local-store.js'

/** The part of a WebSocket this transport uses: the browser's, or `ws`'s in Node. */
export interface WebSocketLike {
  readonly readyState: number
  binaryType?: string
  send(data: string): void
  close(code?: number, reason?: string): void
  // Handlers are typed `(ev: never) => void` so that both the DOM's and `ws`'s
  // event types are assignable; the transport reads only `data`, `code`, `reason`.
  onopen: ((ev: never) => void) | null
  onmessage: ((ev: never) => void) | null
  onclose: ((ev: never) => void) | null
  onerror: ((ev: never) => void) | null
}

/** A WebSocket constructor: `globalThis.WebSocket`, or `WebSocket` from the `ws` package. */
export type WebSocketConstructor = new (url: string) => WebSocketLike

/**
 * Where to dial: the URL itself, or a function (sync or async) called
 * before every dial, so each reconnect can carry a fresh token, as the one
 * after a 4001 REAUTH close (the socket's claims expired) must.
 */
export type TransportUrl = string | (() => string | Promise<string>)

export interface WebSocketTransportOptions {
  /**
   * The `ws://` or `wss://` URL of the DO's sync endpoint, or a function
   * returning it, called before every dial (a throw or a rejection counts
   * as a failed dial, retried with backoff).
   */
  url: TransportUrl
  /** Defaults to `globalThis.WebSocket`. In Node < 22 pass `WebSocket` from `ws`. */
  WebSocket?: WebSocketConstructor
  /** Reconnect backoff (also the delay before a transiently refused sub or write is sent again). Default `{ initialMs: 250, maxMs: 30000 }`. */
  backoff?: Partial<BackoffConfig>
  /** Uniform random in [0, 1) for the backoff jitter. Default `Math.random`. */
  random?: () => number
  /** Errors that belong to no caller: `error` frames, unparsable frames, a collection that failed to apply a unit. */
  onError?: (error: SeqsyncError) => void
  /** Don't dial until the first collection registers or the first write. Default false. */
  lazy?: boolean
  /** Listen to the host's `online`/`offline` events (browsers). Default true when available. */
  watchNetwork?: boolean
  /** Give up on a dial that has no `welcome` after this long, and retry. Default 10 000. */
  handshakeTimeoutMs?: number
  /**
   * Local-first (docs/local-first.md): keep the collections' rows, the
   * cursor and the unanswered writes in IndexedDB, so a reload renders at
   * once, resumes by cursor and sends pending writes again under their ids;
   * and share one socket among the tabs of the origin. `true` for the
   * defaults. Where IndexedDB is missing or refused the transport runs in
   * memory, with one console warning.
   */
  local?: boolean | LocalOptions
  /** At most one presence set per tab this often (last write wins). Default 100. */
  presenceThrottleMs?: number
  /** This transport's presence tab slot. Default: a random id. */
  presenceTab?: string
  /**
   * One JSON line per connect, resume (delta or snapshot, how many rows),
   * refusal (code, reason), close and mutation outcome (with the mutation
   * id). `true` logs with console.log; a function gets each line. Default off.
   */
  debug?: boolean | ((line: string) => void)
}

/** The result of a confirmed write: the seq the DO gave it. */
export interface WriteResult {
  seq: number
}

export interface WriteOptions {
  /**
   * The mutation id (≤ 128 bytes). Default: a fresh UUID. Pass the id of an
   * OutcomeUnknownError to send that write again: the DO applies an id at
   * most once and answers a committed one with its recorded ack.
   */
  id?: string
}
