// What the transport takes from its host besides the socket: timers
// (awaitSeq's waiters; keyed timers for the reconnect, the handshake, and a
// transiently refused sub or write sent again after a backoff delay) and the
// browser's online/offline events.

import type { SeqsyncError } from './errors.js'

interface SeqWaiter {
  seq: number
  resolve: () => void
  reject: (error: SeqsyncError) => void
  timer: ReturnType<typeof setTimeout> | undefined
}

/** Promises that resolve once the cursor reaches a seq. */
export class SeqWaiters {
  #waiters: SeqWaiter[] = []

  /** Waits for `settle(≥ seq)`; rejects with `timeout()` after `timeoutMs` (unless infinite). */
  wait(seq: number, timeoutMs: number, timeout: () => SeqsyncError): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter: SeqWaiter = { seq, resolve, reject, timer: undefined }
      if (Number.isFinite(timeoutMs)) {
        waiter.timer = setTimeout(() => {
          this.#waiters = this.#waiters.filter((w) => w !== waiter)
          reject(timeout())
        }, timeoutMs)
      }
      this.#waiters.push(waiter)
    })
  }

  /** The cursor is at `appliedSeq`: resolve the waits it reached. */
  settle(appliedSeq: number): void {
    if (this.#waiters.length === 0) return
    const ready = this.#waiters.filter((w) => w.seq <= appliedSeq)
    if (ready.length === 0) return
    this.#waiters = this.#waiters.filter((w) => w.seq > appliedSeq)
    for (const w of ready) {
      if (w.timer !== undefined) clearTimeout(w.timer)
      w.resolve()
    }
  }

  /** Rejects every wait. */
  rejectAll(error: SeqsyncError): void {
    const waiters = this.#waiters
    this.#waiters = []
    for (const w of waiters) {
      if (w.timer !== undefined) clearTimeout(w.timer)
      w.reject(error)
    }
  }
}

/** At most one pending timer per key. */
export class RetryTimers<K> {
  readonly #timers = new Map<K, ReturnType<typeof setTimeout>>()

  has(key: K): boolean {
    return this.#timers.has(key)
  }

  /** Runs `fn` after `ms`, replacing the key's pending timer. */
  schedule(key: K, ms: number, fn: () => void): void {
    this.cancel(key)
    this.#timers.set(
      key,
      setTimeout(() => {
        this.#timers.delete(key)
        fn()
      }, ms),
    )
  }

  cancel(key: K): void {
    clearTimeout(this.#timers.get(key))
    this.#timers.delete(key)
  }

  cancelAll(): void {
    for (const timer of this.#timers.values()) clearTimeout(timer)
    this.#timers.clear()
  }
}

/**
 * Calls `online`/`offline` on the host's network events (browsers: window
 * and navigator.onLine). Returns the function that stops, or undefined
 * where the host has no such events.
 */
export function watchNetwork(online: () => void, offline: () => void): (() => void) | undefined {
  const target = globalThis as {
    addEventListener?: (type: string, listener: () => void) => void
    removeEventListener?: (type: string, listener: () => void) => void
  }
  if (typeof target.addEventListener !== 'function' || typeof target.removeEventListener !== 'function') return undefined
  if (typeof navigator === 'undefined' || typeof (navigator as { onLine?: unknown }).onLine !== 'boolean') return undefined
  target.addEventListener('online', online)
  target.addEventListener('offline', offline)
  return () => {
    target.removeEventListener?.('online', online)
    target.removeEventListener?.('offline', offline)
  }
}
