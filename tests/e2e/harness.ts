// Helpers for the e2e tests: a client (transport + collections) per user,
// a network that can be cut, and the fixture's admin hooks.
import { createCollection } from '@tanstack/db'
import { inject } from 'vitest'
import WebSocket from 'ws'

import { doCollectionOptions, type TransportUrl, WebSocketTransport, type WebSocketConstructor, type WebSocketTransportOptions } from '../../worker/src/client/index.js'
import type { ClientFrame } from '../../worker/src/protocol/index.js'

export interface Message {
  id: string
  author: string
  content: string
  created_at: number
}
export interface Task {
  id: string
  title: string | null
  done: number | null
  rank: number | null
  category: string | null
}

export const baseUrl = () => inject('baseUrl')

let counter = 0
export function freshRoom(prefix = 'e2e'): string {
  return `${prefix}-${Date.now().toString(36)}-${counter++}`
}

/**
 * A network between one client and the server that a test can cut: cut()
 * kills the client's live sockets (as a dropped connection would) and makes
 * new dials fail until restore(). dropNext(match) loses the next frame from
 * the server that matches, and the connection with it, as a connection that
 * dies while the frame is on its way would.
 */
export class Network {
  #sockets = new Set<WebSocket>()
  #cut = false
  #drop: ((frame: { t: string; [k: string]: unknown }) => boolean) | undefined
  /** Every frame the client received, in order, as text. */
  readonly received: string[] = []
  /** Every frame the client sent, in order, as text. */
  readonly sent: string[] = []
  /** The frames dropNext lost, as text. */
  readonly dropped: string[] = []
  readonly WebSocket: WebSocketConstructor

  constructor() {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const network = this
    class CuttableWebSocket extends WebSocket {
      constructor(url: string) {
        // While cut, dial a port nothing listens on: the open fails for real.
        super(network.#cut ? 'ws://127.0.0.1:9/' : url)
        network.#sockets.add(this)
        this.on('close', () => network.#sockets.delete(this))
        this.on('message', (data) => network.received.push(String(data)))
      }
      // Every 'message' listener (the transport's onmessage included) is
      // reached through emit, so a frame lost here reaches none of them.
      override emit(event: string | symbol, ...args: unknown[]): boolean {
        if (event === 'message' && network.#lose(String(args[0]))) return false
        return super.emit(event, ...args)
      }
      override send(data: unknown, ...rest: unknown[]): void {
        network.sent.push(String(data))
        ;(super.send as (...args: unknown[]) => void)(data, ...rest)
      }
    }
    this.WebSocket = CuttableWebSocket as unknown as WebSocketConstructor
  }

  cut(): void {
    this.#cut = true
    for (const ws of this.#sockets) ws.terminate()
  }

  restore(): void {
    this.#cut = false
  }

  /** Loses the next server frame that matches, and cuts the network at that moment (restore() to reconnect). */
  dropNext(match: (frame: { t: string; [k: string]: unknown }) => boolean): void {
    this.#drop = match
  }

  /** The frames of type `t` the client sent, parsed. */
  sentFrames<T extends ClientFrame['t']>(t: T): Array<Extract<ClientFrame, { t: T }>> {
    return this.sent.map((f) => JSON.parse(f) as ClientFrame).filter((f): f is Extract<ClientFrame, { t: T }> => f.t === t)
  }

  #lose(text: string): boolean {
    const match = this.#drop
    if (!match) return false
    let frame: { t: string }
    try {
      frame = JSON.parse(text) as { t: string }
    } catch {
      return false
    }
    if (!match(frame)) return false
    this.#drop = undefined
    this.dropped.push(text)
    this.cut()
    return true
  }
}

/** The socket URL of `room` for `user` (`query` appended). */
export function socketUrl(room: string, user: string, kind: 'sync' | 'short' = 'sync', query = ''): string {
  return `${baseUrl().replace('http', 'ws')}/${kind}/${room}?user=${user}${query}`
}

/** A client of `room` as `user`; `url` (a function, called before every dial) replaces the plain URL. */
export function connectClient(
  room: string,
  user: string,
  kind: 'sync' | 'short' = 'sync',
  url?: TransportUrl,
  extra: Pick<WebSocketTransportOptions, 'debug'> = {},
) {
  const network = new Network()
  const transport = new WebSocketTransport({
    url: url ?? socketUrl(room, user, kind),
    WebSocket: network.WebSocket,
    backoff: { initialMs: 50, maxMs: 500 },
    watchNetwork: false,
    ...extra,
  })
  const messages = createCollection(
    doCollectionOptions<Message>({ transport, table: 'messages', getKey: (m) => m.id, id: `messages-${user}-${counter++}` }),
  )
  const tasks = createCollection(
    doCollectionOptions<Task>({ transport, table: 'tasks', getKey: (t) => t.id, id: `tasks-${user}-${counter++}` }),
  )
  return { transport, network, messages, tasks, user }
}

export type Client = ReturnType<typeof connectClient>

export function message(id: string, author: string, content = `hello ${id}`): Message {
  return { id, author, content, created_at: 1 }
}

export async function admin(kind: 'sync' | 'short', room: string, action: string, body?: unknown) {
  const res = await fetch(`${baseUrl()}/admin/${kind}/${room}/${action}`, {
    method: body === undefined ? 'GET' : 'POST',
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  if (!res.ok) throw new Error(`${action}: ${res.status} ${await res.text()}`)
  return res.json() as Promise<Record<string, unknown>>
}

export async function serverRows(room: string, kind: 'sync' | 'short' = 'sync') {
  return (await admin(kind, room, 'rows')) as { messages: Message[]; tasks: Task[] }
}

/** The collection's rows, sorted by key, without TanStack's virtual props. */
export function rowsOf<T extends { id: string }>(collection: { toArray: T[] }): T[] {
  return collection.toArray
    .map((row) => Object.fromEntries(Object.entries(row).filter(([k]) => !k.startsWith('$'))) as T)
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
}

export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
