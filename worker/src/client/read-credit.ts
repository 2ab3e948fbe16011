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

/** The UTF-8 size of `text`, the unit the DO counts in, without encoding it. */
export function utf8Length(text: string): number {
  let bytes = text.length
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x80) continue
    if (c < 0x800) bytes += 1
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1)
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 2 // a pair: 2 units, 4 bytes
        i += 1
      } else bytes += 2
    } else bytes += 2
  }
  return bytes
}
