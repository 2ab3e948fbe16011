// One-off pages (docs/protocol.md §4.8, §5.12): reads that hold no
// subscription. This is the transport's bookkeeping of the pages in flight:
// each is sent when the session is live, its frames are joined by id, and
// it settles on its last frame or its page-error. A page lost with its
// socket is asked again on the next session (a read: asking twice is
// harmless); one refused RATE_LIMITED is asked again after a backoff.

import type { PageErrorFrame, PageFrame, PageRequestFrame, WireRow } from '../protocol/index.js'
import { ErrorCode } from '../protocol/index.js'
import { PageError } from './errors.js'
import type { SeqsyncError } from './errors.js'

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

export class Pages {
  readonly #pending = new Map<string, PendingPage>()
  #next = 0

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

  /** The pages to send now: not sent on this socket. */
  unsent(): PendingPage[] {
    return [...this.#pending.values()].filter((p) => !p.sent)
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

  /** A refusal: the page to ask again later (RATE_LIMITED), or undefined once it was rejected. */
  onError(frame: PageErrorFrame): PendingPage | undefined {
    const page = this.#pending.get(frame.id)
    if (!page) return undefined
    if (frame.code === ErrorCode.RATE_LIMITED) {
      page.sent = true // not again on this socket until the backoff releases it
      page.rateLimited += 1
      return page
    }
    this.#pending.delete(frame.id)
    page.reject(new PageError(frame, page.frame.c))
    return undefined
  }

  /** The socket is gone: every page in flight is asked again, whole, on the next one. */
  socketLost(): void {
    for (const page of this.#pending.values()) {
      page.rows = []
      page.sent = false
    }
  }

  /** The transport closed for good. */
  close(error: SeqsyncError): void {
    for (const page of this.#pending.values()) page.reject(error)
    this.#pending.clear()
  }
}
