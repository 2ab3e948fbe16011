// The client's side of the wire encoding (docs/protocol.md §2, §5): server
// frames in, client frames out. Pure: no socket, no state.
//
// * decodeServerFrame turns one WebSocket message into a ServerFrame, or a
//   ProtocolError (MALFORMED_FRAME) for a message that is not a JSON object
//   with a string `t`, or whose fields the cursor and the units rely on are
//   wrong. Such a frame is reported and dropped by the transport: it must
//   not move the cursor or throw out of onmessage.
// * encodeClientFrame is the one place a client frame becomes text. The
//   core reads any member order, so this is plain JSON.stringify, and the
//   golden vectors (tests/vectors/session.json) pin its bytes.

import { ErrorCode } from '../protocol/index.js'
import type { ChangesFrame, ClientFrame, CompactChangesFrame, ServerFrame, WireChange } from '../protocol/index.js'
import { ProtocolError } from './errors.js'

const decoder = new TextDecoder()
/** Where a frame's text holds a tagged value (`{"$int":…}` or `{"$date":…}`). */
const TAGGED = /"\$(?:int|date)"/

export type Decoded = { frame: ServerFrame; error?: undefined } | { frame?: undefined; error: ProtocolError }

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

const isSeq = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0

/** What is wrong with the fields of a server frame the client relies on, or undefined. */
export function malformedServerFrame(frame: ServerFrame): string | undefined {
  const f = frame as unknown as Record<string, unknown>
  switch (frame.t) {
    case 'welcome':
    case 'synced':
      return isSeq(f.seq) ? undefined : 'seq is not a non-negative integer'
    case 'changes':
      if (!isSeq(f.seq)) return 'seq is not a non-negative integer'
      if (f.ack !== undefined && (typeof f.ack !== 'string' || f.more !== undefined)) return 'ack is not a string on the frame that ends the unit'
      if (f.rows !== undefined) return malformedCompactChanges(f)
      return Array.isArray(f.changes) && f.changes.every((c) => isObject(c) && typeof c.c === 'string' && typeof c.k === 'string')
        ? undefined
        : 'changes is not a list of {c, k}'
    case 'snapshot':
      if (!isSeq(f.seq)) return 'seq is not a non-negative integer'
      return typeof f.sub === 'string' && Array.isArray(f.rows) && f.rows.every(isObject) ? undefined : 'sub or rows missing'
    case 'page':
      if (!isSeq(f.seq)) return 'seq is not a non-negative integer'
      return typeof f.id === 'string' && Array.isArray(f.rows) && f.rows.every(isObject) ? undefined : 'id or rows missing'
    case 'page-error':
      return typeof f.id === 'string' && typeof f.code === 'number' ? undefined : 'id or code missing'
    case 'ack':
      return typeof f.id === 'string' && isSeq(f.seq) ? undefined : 'id or seq missing'
    case 'reject':
    case 'sub-error':
    case 'error':
      return typeof f.code === 'number' ? undefined : 'code missing'
    default:
      return undefined // a frame type from a later protocol minor: the transport ignores it
  }
}

/** What is wrong with a changes frame in the compact form, or undefined. */
function malformedCompactChanges(f: Record<string, unknown>): string | undefined {
  if (f.changes !== undefined) return 'changes and rows both'
  const pk = f.pk
  if (typeof f.c !== 'string' || typeof pk !== 'string' || !Array.isArray(f.rows)) return 'c, pk or rows missing'
  return f.rows.every((r) => typeof r === 'string' || (isObject(r) && typeof r[pk] === 'string'))
    ? undefined
    : 'rows is not a list of rows with a string pk, and removed keys'
}

/** Appends the changes `frame` carries, in either form, to `out`; returns `out`. */
export function appendChanges(frame: ChangesFrame | CompactChangesFrame, out: WireChange[]): WireChange[] {
  if ('changes' in frame) {
    for (const change of frame.changes) out.push(change)
    return out
  }
  const { c, pk } = frame
  for (const r of frame.rows) out.push(typeof r === 'string' ? { c, k: r } : { c, k: r[pk] as string, row: r })
  return out
}

/** The changes `frame` carries: the frame's own array in the full form. */
export function changesIn(frame: ChangesFrame | CompactChangesFrame): WireChange[] {
  return 'changes' in frame ? frame.changes : appendChanges(frame, [])
}

/** One WebSocket message (text, or UTF-8 bytes) → a server frame, or why it is not one. */
export function decodeServerFrame(data: unknown): Decoded {
  let text: string
  if (typeof data === 'string') text = data
  else if (data instanceof ArrayBuffer) text = decoder.decode(data)
  else if (ArrayBuffer.isView(data)) text = decoder.decode(data)
  else return { error: new ProtocolError(ErrorCode.MALFORMED_FRAME, 'a frame that is neither text nor bytes') }
  let frame: ServerFrame
  try {
    const parsed: unknown = JSON.parse(text)
    if (!isObject(parsed) || typeof parsed.t !== 'string') throw new Error('not an object with a string t')
    frame = parsed as unknown as ServerFrame
  } catch (error) {
    return { error: new ProtocolError(ErrorCode.MALFORMED_FRAME, `unparsable server frame: ${String(error)}`) }
  }
  const wrong = malformedServerFrame(frame)
  if (wrong !== undefined) return { error: new ProtocolError(ErrorCode.MALFORMED_FRAME, `server frame ${frame.t}: ${wrong}`) }
  // Only a frame that holds a tagged value pays for decoding its rows. One
  // regex pass costs a tenth of two includes() on a catch-up's frames.
  if (TAGGED.test(text)) decodeTaggedRows(frame)
  return { frame }
}

/**
 * A tagged value of a row or a predicate (docs/protocol.md §2): `{"$int":"…"}`
 * an integer beyond ±(2^53 − 1), exact as a bigint; `{"$date":ms}` a value
 * of a column declared `date`.
 */
function decodeTagged(value: Record<string, unknown>): unknown {
  const int = value.$int
  if (typeof int === 'string') {
    try {
      return BigInt(int)
    } catch {
      return value // not the server's: left as sent
    }
  }
  return typeof value.$date === 'number' ? new Date(value.$date) : value
}

/**
 * Decodes the tagged column values of a frame's rows in place. Only a row's
 * own values are tags: a JSON column's content is left as sent, except a
 * value that is itself an object with a `$int` or `$date` member (a
 * JSON.parse reviver would cost ~20 µs a row, on every value).
 */
function decodeTaggedRows(frame: ServerFrame): void {
  // Checks kept to typeof: a regex or Object.keys per value costs ~10 µs a row.
  const decodeRow = (row: Record<string, unknown>) => {
    for (const key in row) {
      const v = row[key]
      if (typeof v === 'object' && v !== null) row[key] = decodeTagged(v as Record<string, unknown>)
    }
  }
  if (frame.t === 'snapshot') for (const row of frame.rows) decodeRow(row as Record<string, unknown>)
  if (frame.t !== 'changes') return
  if ('rows' in frame) {
    for (const row of frame.rows) if (typeof row === 'object') decodeRow(row)
  } else {
    for (const change of frame.changes) if (change.row !== undefined) decodeRow(change.row as Record<string, unknown>)
  }
}

/** A JS value as the wire carries it: a bigint tagged `{"$int":"…"}` (JSON numbers are doubles), a Date as epoch ms. */
function encodeTyped(this: unknown, key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return { $int: value.toString() }
  const raw = (this as Record<string, unknown>)[key]
  if (raw instanceof Date) return raw.getTime() // JSON.stringify would give toJSON's ISO text
  return value
}

/** A client frame as the text sent on the socket. */
export function encodeClientFrame(frame: ClientFrame): string {
  return JSON.stringify(frame, encodeTyped)
}
