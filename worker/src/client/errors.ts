// The client's error classes. One root, SeqsyncError, carrying the wire `code`
// (docs/protocol.md §6) and its name. Client-side failures that have no wire
// frame reuse the closest wire code and say so in their doc comment:
//
//   TimeoutError      INTERNAL (18)      awaitSeq / a wait ran out of time
//   ClosedError       INTERNAL (18)      the transport closed (user close or 44xx)
//                                        before the write was ever sent, or
//                                        under a wait; `closeCode` holds the
//                                        WebSocket code
//   OutcomeUnknownError INTERNAL (18)    the transport closed after the write
//                                        was sent and before its answer: it
//                                        may have committed (not a refusal)
//   OutOfScopeError   INVALID_FIELD (3)  an insert outside the collection's
//                                        `where`, refused before it is sent
//   ProtocolError     the wire code      the server sent an `error` frame, or a
//                                        frame the client cannot parse
//   PresenceError     the wire code      the server refused a presence frame
//                                        (`presence-error`); nothing changed

import { ErrorCode, errorName } from '../protocol/index.js'
import type { CallFrame, ErrorName, MutFrame, PageErrorFrame, PresenceErrorFrame, RejectFrame, SubErrorFrame } from '../protocol/index.js'

/** The root of every error this client throws or rejects with. */
export class SeqsyncError extends Error {
  /** The wire error code (docs/protocol.md §6). */
  readonly code: number
  /** The wire name of `code`. */
  readonly codeName: ErrorName

  constructor(code: number, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'SeqsyncError'
    this.code = code
    this.codeName = errorName(code)
  }
}

/** The server refused a mutation or command (`reject` frame). Nothing was applied. */
export class RejectedError extends SeqsyncError {
  /** The mutation or call id. */
  readonly id: string
  constructor(frame: Pick<RejectFrame, 'id' | 'code' | 'message'>) {
    super(frame.code, `[seqsync] write ${frame.id} rejected: ${errorName(frame.code)}: ${frame.message}`)
    this.name = 'RejectedError'
    this.id = frame.id
  }
}

/** The server refused a subscription (`sub-error` frame). Nothing is held for it. */
export class SubscriptionError extends SeqsyncError {
  /** The subscription id. */
  readonly sub: string
  constructor(frame: Pick<SubErrorFrame, 'sub' | 'code' | 'message'>, collection?: string) {
    super(
      frame.code,
      `[${collection ?? frame.sub}] subscription refused: ${errorName(frame.code)}: ${frame.message}`,
    )
    this.name = 'SubscriptionError'
    this.sub = frame.sub
  }
}

/** The server refused a presence set or watch (`presence-error`): the tab keeps its last accepted state. */
export class PresenceError extends SeqsyncError {
  /** The tab of the refused set; undefined for a refused watch. */
  readonly tab: string | undefined
  constructor(frame: Pick<PresenceErrorFrame, 'tab' | 'code' | 'message'>) {
    super(frame.code, `[presence${frame.tab === undefined ? '' : ` ${frame.tab}`}] refused: ${errorName(frame.code)}: ${frame.message}`)
    this.name = 'PresenceError'
    this.tab = frame.tab
  }
}

/** The server refused a page (`page-error` frame): nothing was read. Distinct from an empty page. */
export class PageError extends SeqsyncError {
  /** The page id. */
  readonly id: string
  constructor(frame: Pick<PageErrorFrame, 'id' | 'code' | 'message'>, collection: string) {
    super(frame.code, `[${collection}] page refused: ${errorName(frame.code)}: ${frame.message}`)
    this.name = 'PageError'
    this.id = frame.id
  }
}

/** A wait (`awaitSeq`) ran out of time. Code INTERNAL (client-only failure). */
export class TimeoutError extends SeqsyncError {
  constructor(message: string) {
    super(ErrorCode.INTERNAL, message)
    this.name = 'TimeoutError'
  }
}

/**
 * The transport closed for good: the application called `close()`, or the
 * server closed with a terminal 44xx code. Code INTERNAL; the WebSocket close
 * code is in `closeCode` (undefined for an application close).
 */
export class ClosedError extends SeqsyncError {
  readonly closeCode: number | undefined
  readonly reason: string
  constructor(closeCode: number | undefined, reason: string) {
    super(
      ErrorCode.INTERNAL,
      closeCode === undefined
        ? `[seqsync] transport closed: ${reason}`
        : `[seqsync] transport closed by the server (${closeCode}${reason ? `: ${reason}` : ''})`,
    )
    this.name = 'ClosedError'
    this.closeCode = closeCode
    this.reason = reason
  }
}

/**
 * The transport closed for good after a write was sent and before its ack
 * or reject arrived: the DO may have committed it, or not. It is not a
 * refusal. If it committed, any later transport on the same DO syncs its
 * rows (the optimistic state is rolled back meanwhile); to settle it, send
 * `frame` again under the same `id` on a later transport
 * (`transport.mutate(frame.ops, { id })`): the DO's dedup answers a
 * committed id with its recorded ack, so nothing is applied twice (within
 * the DO's dedupRetentionMs, 2 days by default). Code INTERNAL.
 */
export class OutcomeUnknownError extends SeqsyncError {
  /** The mutation or call id. */
  readonly id: string
  /** The frame as it was sent. */
  readonly frame: MutFrame | CallFrame
  /** The WebSocket close code that ended the transport; undefined for `close()`. */
  readonly closeCode: number | undefined
  readonly reason: string
  constructor(frame: MutFrame | CallFrame, closed: ClosedError) {
    super(
      ErrorCode.INTERNAL,
      `[seqsync] write ${frame.id}: the transport closed before its answer arrived (${closed.reason}); ` +
        'it may have committed. A later transport on this DO syncs it if it did; send it again with the same id to settle it',
    )
    this.name = 'OutcomeUnknownError'
    this.id = frame.id
    this.frame = frame
    this.closeCode = closed.closeCode
    this.reason = closed.reason
  }
}

/**
 * An insert into a collection with a `where` whose row would not match it:
 * the collection could never see the confirmed row, so the insert is refused
 * before it is sent. (An update that moves a row out of the `where` is sent;
 * once confirmed, the row leaves the collection.) Code INVALID_FIELD.
 */
export class OutOfScopeError extends SeqsyncError {
  readonly collection: string
  readonly key: string
  constructor(collection: string, key: string) {
    super(
      ErrorCode.INVALID_FIELD,
      `[${collection}] write to key ${JSON.stringify(key)} is outside the collection's where: the row would not match it`,
    )
    this.name = 'OutOfScopeError'
    this.collection = collection
    this.key = key
  }
}

/** The server sent an `error` frame, or a frame this client cannot use. */
export class ProtocolError extends SeqsyncError {
  constructor(code: number, message: string) {
    super(code, `[seqsync] protocol error ${errorName(code)}: ${message}`)
    this.name = 'ProtocolError'
  }
}
