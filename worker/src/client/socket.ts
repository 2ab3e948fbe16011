// The transport's socket: one dial at a time, from resolving the URL to the
// close. Each dial has a generation; events of an older socket are ignored.
// What the socket reports (open, close, error) goes to the connection
// machine; a frame goes to the transport, then is reported read
// (read-credit.ts). A 4001 REAUTH close makes the next dial ask the url
// function for fresh credentials, and a terminal close before the next
// welcome says the re-authentication was refused.

import { CloseCode, ErrorCode, isTerminalClose } from '../protocol/index.js'
import type { ConnectionEvent } from './connection.js'
import type { DebugLog } from './debug-log.js'
import { SeqsyncError } from './errors.js'
import type { TransportUrl, WebSocketConstructor, WebSocketLike } from './options.js'
import { ReadCredit } from './read-credit.js'

/** What the socket tells the transport. */
export interface SocketEvents {
  /** An event for the connection machine. */
  event(event: ConnectionEvent): void
  /** A frame of the current socket, before it is reported read. */
  message(data: unknown): void
  report(error: SeqsyncError): void
}

export class TransportSocket {
  readonly #url: TransportUrl
  readonly #WebSocket: WebSocketConstructor
  readonly #debug: DebugLog | undefined
  readonly #events: SocketEvents
  /** The URL of the last dial (before the first, the option when it is a string). */
  #dialledUrl: string
  /** The last socket closed 4001 REAUTH and no welcome came since: a terminal close now refuses the re-authentication. */
  #reauthenticating = false
  #ws: WebSocketLike | null = null
  /** Bumped for every socket; events of an older socket are ignored. */
  #generation = 0
  readonly #readCredit = new ReadCredit()

  constructor(url: TransportUrl, WebSocket: WebSocketConstructor, debug: DebugLog | undefined, events: SocketEvents) {
    this.#url = url
    this.#dialledUrl = typeof url === 'string' ? url : ''
    this.#WebSocket = WebSocket
    this.#debug = debug
    this.#events = events
  }

  /** The URL of the last dial ('' before the first when `url` is a function). */
  get url(): string {
    return this.#dialledUrl
  }

  /** The current socket, if any. */
  get current(): WebSocketLike | null {
    return this.#ws
  }

  /** Starts a new dial: returns whether it is still the current one. */
  begin(): () => boolean {
    this.#generation += 1
    const generation = this.#generation
    return () => generation === this.#generation
  }

  /** Dials the dial `live` names: through `link` (a tab holding the socket), or to the URL. */
  connect(live: () => boolean, link: WebSocketLike | undefined): void {
    const failed = (what: string, error: unknown) => {
      this.#events.report(new SeqsyncError(ErrorCode.INTERNAL, `[seqsync] ${what}: ${String(error)}`, { cause: error }))
      queueMicrotask(() => {
        if (live()) this.#events.event({ type: 'error' })
      })
    }
    if (link) return this.#use(link, live)
    const option = this.#url
    if (typeof option === 'string') return this.#dial(option, live, failed)
    let url: string | Promise<string>
    try {
      url = option()
    } catch (error) {
      return failed('the url function threw', error)
    }
    if (typeof url === 'string') return this.#dial(url, live, failed)
    Promise.resolve(url).then(
      (resolved) => {
        if (live()) this.#dial(resolved, live, failed)
      },
      (error: unknown) => {
        if (live()) failed('the url function rejected', error)
      },
    )
  }

  /** A welcome came: the credentials were accepted. Sets the unread-bytes limit it gives. */
  welcomed(maxUnreadBytes: number | undefined): void {
    this.#reauthenticating = false
    this.#readCredit.setLimit(maxUnreadBytes)
  }

  /** The socket is gone (the machine said so): forget it. */
  lost(): void {
    this.#ws = null
    this.#generation += 1
  }

  close(code: number, reason: string): void {
    const ws = this.#ws
    this.lost()
    if (!ws) return
    try {
      ws.close(code, reason)
    } catch {
      // Closing a socket that never opened may throw in some implementations.
    }
  }

  send(text: string): void {
    const ws = this.#ws
    if (!ws) return
    try {
      ws.send(text)
    } catch (error) {
      // The socket is unusable; the machine reconnects and writes are resent.
      this.#events.report(new SeqsyncError(ErrorCode.INTERNAL, `[seqsync] send failed: ${String(error)}`, { cause: error }))
      const generation = this.#generation
      queueMicrotask(() => {
        if (generation === this.#generation) this.#events.event({ type: 'error' })
      })
    }
  }

  /** Opens the socket of the dial that `live` names. */
  #dial(url: unknown, live: () => boolean, failed: (what: string, error: unknown) => void): void {
    if (typeof url !== 'string') return failed('the url function returned no string', url)
    this.#dialledUrl = url
    let ws: WebSocketLike
    try {
      ws = new this.#WebSocket(url)
    } catch (error) {
      return failed(`could not open ${url}`, error)
    }
    this.#use(ws, live)
  }

  /** Makes `ws` the socket of the dial that `live` names. */
  #use(ws: WebSocketLike, live: () => boolean): void {
    this.#ws = ws
    this.#readCredit.reset()
    try {
      ws.binaryType = 'arraybuffer'
    } catch {
      // Some implementations have a read-only binaryType; text frames don't need it.
    }
    // Handlers stay attached after the socket is replaced (a `ws` socket emits
    // `error` while closing, and an EventEmitter without a listener throws);
    // the generation check silences a stale socket instead.
    ws.onopen = () => {
      if (!live()) return
      this.#debug?.connect(this.url)
      this.#events.event({ type: 'open' })
    }
    ws.onmessage = (ev: { data: unknown }) => {
      if (!live()) return
      this.#events.message(ev.data)
      // After the frame is handled: reporting it read frees the DO to send more.
      const recv = this.#readCredit.received(ev.data)
      if (recv && live()) this.send(recv)
    }
    ws.onclose = (ev: { code?: number; reason?: string }) => {
      if (!live()) return
      this.#debug?.close(ev.code, ev.reason)
      const event: { type: 'close'; code?: number; reason?: string } = { type: 'close' }
      if (typeof ev.code === 'number') event.code = ev.code
      if (typeof ev.reason === 'string') event.reason = ev.reason
      // 4001: the claims expired; the next dial asks the url function for fresh credentials.
      if (ev.code === CloseCode.REAUTH) this.#reauthenticating = true
      else if (this.#reauthenticating && event.code !== undefined && isTerminalClose(event.code)) {
        event.reason = `re-authentication refused${event.reason ? `: ${event.reason}` : ''}`
      }
      this.#events.event(event)
    }
    ws.onerror = () => {
      if (live()) this.#events.event({ type: 'error' })
    }
  }
}
