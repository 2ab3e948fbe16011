// Flow control, the client's half (docs/protocol.md §4.6): the DO cannot see
// a socket's send buffer, so the client tells it what it has read. Every
// quarter of the welcome's maxUnreadBytesPerSocket received, it sends
// `{"t":"recv","bytes":n}` with the UTF-8 bytes of the frames since its last
// report, so a client that keeps reading never nears the bound.

const DEFAULT_MAX_UNREAD_BYTES = 8 * 1024 * 1024

export class ReadCredit {
  #unreported = 0
  #every = DEFAULT_MAX_UNREAD_BYTES / 4

  /** A new socket: the count starts over (the DO counts per socket). */
  reset(): void {
    this.#unreported = 0
  }

  /** The limit from a welcome. */
  setLimit(maxUnreadBytes: number | undefined): void {
    if (typeof maxUnreadBytes === 'number' && maxUnreadBytes > 0) this.#every = Math.max(1, Math.floor(maxUnreadBytes / 4))
  }

  /** Counts a received frame; returns the recv frame to send, if one is due. */
  received(data: unknown): string | undefined {
    this.#unreported += typeof data === 'string' ? utf8Length(data) : data instanceof ArrayBuffer ? data.byteLength : 0
    if (this.#unreported < this.#every) return undefined
    const bytes = this.#unreported
    this.#unreported = 0
    return `{"t":"recv","bytes":${bytes}}`
  }
}

// TextEncoder.encodeInto counts natively, about 25 times faster than a
// charCodeAt loop on a catch-up's frames, but it needs somewhere to write:
// the text goes through in windows small enough for one reused buffer.
const encoder = new TextEncoder()
const WINDOW_UNITS = 64 * 1024
/** A UTF-16 unit encodes to at most 3 bytes (a surrogate pair, 2 units, to 4). */
const scratch = new Uint8Array(3 * WINDOW_UNITS)

/** The UTF-8 size of `text`, the unit the DO counts in. */
export function utf8Length(text: string): number {
  let bytes = 0
  for (let start = 0; start < text.length; ) {
    let end = Math.min(text.length, start + WINDOW_UNITS)
    // A window must not split a surrogate pair: each half alone would count as U+FFFD's 3 bytes.
    const last = text.charCodeAt(end - 1)
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end -= 1
    bytes += encoder.encodeInto(start === 0 && end === text.length ? text : text.slice(start, end), scratch).written
    start = end
  }
  return bytes
}
