// A test client that speaks protocol v1 by hand over a real WebSocket to the
// fixture Worker, so each test sees exactly the frames the DO sends.
import { exports } from 'cloudflare:workers'

import type { FullServerFrame } from '../../worker/src/protocol/index.js'

// A test socket says hello without compactChanges: changes frames take the full form.
type Frame = FullServerFrame & Record<string, unknown>

export class TestSocket {
  readonly frames: Frame[] = []
  /** The frames exactly as received. */
  readonly raw: string[] = []
  #taken = new WeakSet<object>()
  closed: { code: number; reason: string } | undefined
  #cursor = 0
  #waiters: Array<() => void> = []

  private constructor(readonly ws: WebSocket) {
    ws.addEventListener('message', (event) => {
      this.raw.push(event.data as string)
      if (event.data === 'pong') return // the runtime's keepalive answer, not a frame
      this.frames.push(JSON.parse(event.data as string) as Frame)
      this.#wake()
    })
    ws.addEventListener('close', (event) => {
      this.closed = { code: event.code, reason: event.reason }
      this.#wake()
    })
  }

  /** Opens /<kind>/<room>?user=<user> through the fixture Worker. */
  static async open(room: string, user = 'ann', kind: 'sync' | 'short' | 'huge' | 'unregistered' = 'sync', headers: Record<string, string> = {}, query = '') {
    return TestSocket.openPath(`/${kind}/${room}?user=${user}${query}`, headers)
  }

  /** Opens `path` (with its query) through the fixture Worker. */
  static async openPath(path: string, headers: Record<string, string> = {}) {
    const res = await exports.default.fetch(`http://test${path}`, {
      headers: { Upgrade: 'websocket', ...headers },
    })
    if (res.status !== 101 || !res.webSocket) throw new Error(`upgrade failed: ${res.status} ${await res.text()}`)
    res.webSocket.accept()
    return new TestSocket(res.webSocket)
  }

  /** Opens a socket and completes the hello; returns it with the welcome frame. */
  static async connect(room: string, user = 'ann', hello: Record<string, unknown> = {}, kind: 'sync' | 'short' | 'huge' = 'sync', query = '') {
    const socket = await TestSocket.open(room, user, kind, {}, query)
    socket.send({ t: 'hello', v: 1, ...hello })
    const welcome = await socket.next('welcome')
    return { socket, welcome }
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame))
  }

  /** The next unread frame of type `t` (optionally matching `where`); earlier unread frames of other types are kept. */
  async next<T extends Frame["t"]>(t: T, where: (f: Extract<Frame, { t: T }>) => boolean = () => true, timeoutMs = 10_000) {
    return this.nextOf([t], where as (f: Extract<Frame, { t: T }>) => boolean, timeoutMs)
  }

  /** The next unread frame whose type is one of `types` (optionally matching `where`). */
  async nextOf<T extends Frame["t"]>(types: readonly T[], where: (f: Extract<Frame, { t: T }>) => boolean = () => true, timeoutMs = 10_000) {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      for (let i = this.#cursor; i < this.frames.length; i++) {
        const f = this.frames[i]!
        if (this.#taken.has(f)) continue
        if ((types as readonly string[]).includes(f.t) && where(f as Extract<Frame, { t: T }>)) {
          this.#taken.add(f) // never returned twice
          while (this.#cursor < this.frames.length && this.#taken.has(this.frames[this.#cursor]!)) this.#cursor++
          return f as Extract<Frame, { t: T }>
        }
      }
      const what = types.join(' or ')
      if (this.closed) throw new Error(`socket closed (${this.closed.code}) while waiting for ${what}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.frames.slice(-5))}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  /**
   * A round trip: an `echo` call and its ack. Frames to one socket keep
   * their order, so every frame the DO sent this socket before it handled
   * the call has arrived once this resolves.
   */
  async barrier(id = `barrier-${barriers++}`): Promise<void> {
    this.send({ t: 'call', id, name: 'echo', args: { text: id } })
    await this.next('ack', (f) => f.id === id)
  }

  /** Sends a mutation and waits for its ack or reject. */
  async mutate(id: string, ops: unknown[]) {
    this.send({ t: 'mut', id, ops })
    return this.settle(id)
  }

  /** The ack or reject for mutation `id`, whichever comes. */
  async settle(id: string, timeoutMs = 10_000): Promise<Extract<Frame, { t: 'ack' | 'reject' }>> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const f = this.frames.find((x) => (x.t === 'ack' || x.t === 'reject') && x.id === id && !this.#taken.has(x))
      if (f) {
        this.#taken.add(f)
        return f as Extract<Frame, { t: 'ack' | 'reject' }>
      }
      if (this.closed) throw new Error(`socket closed (${this.closed.code}) while waiting for ${id}`)
      if (Date.now() > deadline) throw new Error(`timed out waiting for the outcome of ${id}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50)
        this.#waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  /** Frames received so far of type `t`. */
  all<T extends Frame['t']>(t: T): Array<Extract<Frame, { t: T }>> {
    return this.frames.filter((f) => f.t === t) as Array<Extract<Frame, { t: T }>>
  }

  close(): void {
    try {
      this.ws.close(1000, 'test done')
    } catch {
      // already closed
    }
  }

  #wake() {
    const waiters = this.#waiters
    this.#waiters = []
    for (const w of waiters) w()
  }
}

let counter = 0
let barriers = 0
/** A fresh room name per test, so every test gets a new DO. */
export function freshRoom(prefix = 'room'): string {
  return `${prefix}-${Date.now().toString(36)}-${counter++}`
}

export function message(id: string, author = 'ann', content = `hello ${id}`) {
  return { id, author, content, created_at: 1 }
}

export function insertMessage(id: string, author = 'ann', content?: string) {
  return { c: 'messages', op: 'insert', k: id, cols: message(id, author, content) }
}

/**
 * Resolves with the new instance id once `instanceId()` no longer returns
 * `before`: local workerd evicts a Durable Object whose only connections are
 * hibernatable sockets once it has been idle for about 10 s. Each check is a
 * request to the object, which wakes it (or keeps it awake) and restarts that
 * idle clock, so the checks are spaced further apart than it; the wait ends
 * on the condition, or fails after `timeoutMs`.
 */
export async function untilEvicted(
  instanceId: () => Promise<string>,
  before: string,
  { spacingMs = 11_000, timeoutMs = 60_000 } = {},
): Promise<string> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(spacingMs, deadline - Date.now()))))
    const now = await instanceId()
    if (now !== before) return now
    if (Date.now() >= deadline) throw new Error(`the Durable Object was not evicted within ${timeoutMs} ms (still instance ${before})`)
  }
}
