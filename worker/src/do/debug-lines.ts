// The DO's debug lines: one JSON line per connect, resume (delta or
// snapshot, how many rows), refusal and mutation outcome, with socket and
// mutation ids. Written only while the object's `debug` is on; the shell
// checks it before calling here, so nothing is built when it is off.

/** Where the lines go: console.log (true), a function of the line, or nowhere (false). */
export type DebugSink = boolean | ((line: string) => void)

export class DebugLines {
  readonly #sink: () => DebugSink
  // While a hello is being answered: the frames its socket got.
  #resumeFrames: { socket: string; frames: string[] } | undefined

  constructor(sink: () => DebugSink) {
    this.#sink = sink
  }

  /** Starts collecting what a hello from `socket` is answered with. */
  startResume(socket: string): void {
    this.#resumeFrames = { socket, frames: [] }
  }

  write(fields: Record<string, unknown>): void {
    const line = JSON.stringify({ seqsync: fields.event, ...fields, event: undefined, at: Date.now() })
    const sink = this.#sink()
    if (typeof sink === 'function') sink(line)
    else console.log(line)
  }

  /** A refusal or a mutation's outcome, read off the frame that tells the client. */
  frame(to: string, frame: string): void {
    if (this.#resumeFrames && to === this.#resumeFrames.socket) this.#resumeFrames.frames.push(frame)
    const inlineAck = frame.startsWith('{"t":"changes"') ? /,"ack":("(?:[^"\\]|\\.)*")\}$/.exec(frame)?.[1] : undefined
    if (inlineAck !== undefined) {
      const seq = (JSON.parse(frame) as { seq: number }).seq
      this.write({ event: 'mutation', socket: to, mutation: JSON.parse(inlineAck) as string, outcome: 'committed', seq })
      return
    }
    const type = /^\{"t":"(ack|reject|error|sub-error)"/.exec(frame)?.[1]
    if (!type) return
    const f = JSON.parse(frame) as { id?: string; sub?: string; seq?: number; code?: number; error?: string; message?: string }
    for (const socket of to.split('\n')) {
      if (type === 'ack') this.write({ event: 'mutation', socket, mutation: f.id, outcome: 'committed', seq: f.seq })
      else if (type === 'reject') {
        this.write({ event: 'mutation', socket, mutation: f.id, outcome: 'rejected', code: f.code, error: f.error, reason: f.message })
      } else this.write({ event: 'refusal', socket, frame: type, sub: f.sub, code: f.code, error: f.error, reason: f.message })
    }
  }

  /** How a hello was answered: a delta from its cursor, snapshots, or both, and how many rows. */
  endResume(socket: string, hello: { since?: number; subs?: unknown[] }): void {
    const frames = this.#resumeFrames?.frames ?? []
    this.#resumeFrames = undefined
    let changes = 0
    let snapshotRows = 0
    let head: number | undefined
    const kinds = new Set<string>()
    for (const text of frames) {
      const f = JSON.parse(text) as { t: string; seq?: number; changes?: unknown[]; rows?: unknown[] }
      kinds.add(f.t)
      if (f.t === 'welcome') head = f.seq
      else if (f.t === 'changes') changes += f.changes?.length ?? f.rows?.length ?? 0
      else if (f.t === 'snapshot') snapshotRows += f.rows?.length ?? 0
    }
    const delta = kinds.has('changes')
    const mode = kinds.has('snapshot') ? (delta ? 'delta+snapshot' : 'snapshot') : delta ? 'delta' : 'none'
    this.write({ event: 'resume', socket, since: hello.since ?? null, head, subs: hello.subs?.length ?? 0, mode, changes, snapshotRows })
  }
}

/** The hello in `message`, if it is one (read only while debug is on). */
export function helloOf(message: string | ArrayBuffer): { since?: number; subs?: unknown[] } | undefined {
  if (typeof message !== 'string' || !message.includes('"hello"')) return undefined
  try {
    const frame = JSON.parse(message) as { t?: unknown; since?: number; subs?: unknown[] }
    return frame.t === 'hello' ? frame : undefined
  } catch {
    return undefined
  }
}
