// One-off pages (docs/protocol.md §4.8, §5.12): reads that hold no
// subscription. These are the transport's pages in flight: each is sent
// when the session is live, its frames are joined by id, and
// it settles on its last frame or its page-error. A page lost with its
// socket is asked again on the next session (a read: asking twice is
// harmless); one refused RATE_LIMITED is asked again after a backoff.

import type { PageErrorFrame, PageFrame, PageRequestFrame, WireRow } from '../protocol/index.js'
import { ErrorCode } from '../protocol/index.js'
import { PageError } from './errors.js'
import type { SeqsyncError } from './errors.js'
import { RetryTimers } from './host.js'

/** A page's answer: its rows in page order, and the seq it was read at. */
export interface PageResult {
  rows: WireRow[]
  /** Every change up to this seq was read into the rows; a later change to one of their keys is newer than its row. */
  seq: number
  /** The boundary's ties filled the page (MAX_PAGE_ROWS) and more remain: ask again from the last row. */
  cut: boolean
}

/** What a page asks for: the `page` frame without its type and id. */
export type PageRequest = Omit<PageRequestFrame, 't' | 'id'>

export interface PendingPage {
  frame: PageRequestFrame
  rows: WireRow[]
  /** Sent on the current socket. */
  sent: boolean
  /** Times it was refused RATE_LIMITED in a row (the retry backoff). */
  rateLimited: number
  resolve: (result: PageResult) => void
  reject: (error: unknown) => void
}

/** What the pages need of the transport. */
export interface PagesHost {
  /** The session is live: pages may be sent. */
  live(): boolean
  send(frame: PageRequestFrame): void
  /** The backoff delay before the `attempt`th retry. */
  backoff(attempt: number): number
}

export class Pages {
  readonly #host: PagesHost
  readonly #pending = new Map<string, PendingPage>()
  #next = 0
  /** Pages refused RATE_LIMITED waiting to be asked again. */
  readonly #retries = new RetryTimers<PendingPage>()

  constructor(host: PagesHost) {
    this.#host = host
  }

  /**
   * A new page in flight, not sent yet. `tab` names the tab when tabs share
   * one socket (every tab hears every answer), so ids never collide.
   */
  add(request: PageRequest, tab = ''): { page: PendingPage; settled: Promise<PageResult> } {
    const frame: PageRequestFrame = { t: 'page', id: `page-${++this.#next}${tab}`, ...request }
    let page!: PendingPage
    const settled = new Promise<PageResult>((resolve, reject) => {
      page = { frame, rows: [], sent: false, rateLimited: 0, resolve, reject }
    })
    this.#pending.set(frame.id, page)
    return { page, settled }
  }

  /** Sends the pages not sent on this socket, once the session is live. */
  send(): void {
    if (!this.#host.live()) return
    for (const page of [...this.#pending.values()].filter((p) => !p.sent)) {
      page.sent = true
      this.#host.send(page.frame)
    }
  }

  holds(page: PendingPage): boolean {
    return this.#pending.get(page.frame.id) === page
  }

  /** One frame of a page's answer; settles the page on its last. */
  onFrame(frame: PageFrame): void {
    const page = this.#pending.get(frame.id)
    if (!page) return
    for (const row of frame.rows) page.rows.push(row)
    if (frame.more) return
    this.#pending.delete(frame.id)
    page.resolve({ rows: page.rows, seq: frame.seq, cut: frame.cut === true })
  }

  /** A refusal: asked again after a backoff delay (RATE_LIMITED), else the page rejects. */
  onError(frame: PageErrorFrame): void {
    const page = this.#pending.get(frame.id)
    if (!page) return
    if (frame.code === ErrorCode.RATE_LIMITED) {
      page.sent = true // not again on this socket until the backoff releases it
      page.rateLimited += 1
      this.#retries.schedule(page, this.#host.backoff(page.rateLimited), () => {
        if (!this.holds(page)) return
        page.sent = false
        this.send()
      })
      return
    }
    this.#pending.delete(frame.id)
    page.reject(new PageError(frame, page.frame.c))
  }

  /** The socket is gone: every page in flight is asked again, whole, on the next one. */
  socketLost(): void {
    this.#retries.cancelAll()
    for (const page of this.#pending.values()) {
      page.rows = []
      page.sent = false
    }
  }

  /** The transport closed for good. */
  close(error: SeqsyncError): void {
    this.#retries.cancelAll()
    for (const page of this.#pending.values()) page.reject(error)
    this.#pending.clear()
  }
}
