// The transport's debug lines (WebSocketTransportOptions.debug): one JSON
// line per connect, resume (delta or snapshot, how many rows), refusal
// (code, reason), close and mutation outcome. A line names the transport's
// socket by `connection`, its count of sockets opened, and a write by its
// mutation id. Made only when debug is on: off, the transport holds none
// and pays one optional call per frame.
import type { HelloFrame, ServerFrame } from '../protocol/index.js'

export class DebugLog {
  readonly #write: (line: string) => void
  #connection = 0
  // Between a hello and its synced frame: what the resume unit carried.
  #resume: { since: number | null; subs: number; changes: number; snapshotRows: number; kinds: Set<string> } | undefined

  constructor(debug: true | ((line: string) => void)) {
    this.#write = debug === true ? (line) => console.log(line) : debug
  }

  connect(url: string): void {
    this.#connection += 1
    // Without its query: a URL may carry a token there.
    this.#line({ event: 'connect', url: url.split('?')[0] })
  }

  hello(frame: HelloFrame): void {
    this.#resume = { since: frame.since ?? null, subs: frame.subs?.length ?? 0, changes: 0, snapshotRows: 0, kinds: new Set() }
  }

  frame(frame: ServerFrame): void {
    const resume = this.#resume
    switch (frame.t) {
      case 'changes':
        if (resume) {
          resume.kinds.add('changes')
          resume.changes += 'changes' in frame ? frame.changes.length : frame.rows.length
        }
        if (frame.ack !== undefined) this.#line({ event: 'mutation', mutation: frame.ack, outcome: 'committed', seq: frame.seq })
        return
      case 'snapshot':
        if (resume) {
          resume.kinds.add('snapshot')
          resume.snapshotRows += frame.rows.length
        }
        return
      case 'synced': {
        if (!resume) return
        this.#resume = undefined
        const delta = resume.kinds.has('changes')
        const mode = resume.kinds.has('snapshot') ? (delta ? 'delta+snapshot' : 'snapshot') : delta ? 'delta' : 'none'
        this.#line({ event: 'resume', since: resume.since, seq: frame.seq, subs: resume.subs, mode, changes: resume.changes, snapshotRows: resume.snapshotRows })
        return
      }
      case 'ack':
        return this.#line({ event: 'mutation', mutation: frame.id, outcome: 'committed', seq: frame.seq })
      case 'reject':
        return this.#line({ event: 'mutation', mutation: frame.id, outcome: 'rejected', code: frame.code, error: frame.error, reason: frame.message })
      case 'sub-error':
        return this.#line({ event: 'refusal', frame: 'sub-error', sub: frame.sub, code: frame.code, error: frame.error, reason: frame.message })
      case 'error':
        return this.#line({ event: 'refusal', frame: 'error', code: frame.code, error: frame.error, reason: frame.message })
      default:
        return
    }
  }

  close(code: number | undefined, reason: string | undefined): void {
    this.#resume = undefined
    this.#line({ event: 'close', code: code ?? null, reason: reason ?? '' })
  }

  #line(fields: { event: string } & Record<string, unknown>): void {
    const { event, ...rest } = fields
    this.#write(JSON.stringify({ seqsync: event, connection: this.#connection, ...rest, at: Date.now() }))
  }
}
