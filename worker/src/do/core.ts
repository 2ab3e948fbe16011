// The C++ core, typed. The core is an Emscripten module (worker/build/
// core.{mjs,wasm}, built from cpp/); every call crosses the JS/wasm boundary
// with whole frames and returns plain objects, errors included, as
// {code, message}. This file is the one place that reads those statuses:
// Core turns them into typed errors (SyncRegistrationError, CoreRefusal,
// CoreError) or error frames, so the shell never compares a code to OK.
//
// Each Durable Object instantiates its own module: DOs of one isolate share
// module scope, and a separate heap per DO keeps one object's memory and
// faults away from another's. Instantiation is synchronous (the .wasm is
// imported as a precompiled WebAssembly.Module) and takes a few ms: so that
// a hibernated DO's first frame does not wait for it, a DO that has served a
// frame leaves one spare instance behind, made after the frame's work is
// done, for the next DO of this isolate to open (keepSpareCoreModule).
import createCoreModule, {
  type CoreModule,
  type RawCore,
  type RawDelivery,
  type RawRemainder,
  type SqlBridge,
} from '../../build/core.mjs'
import coreWasm from '../../build/core.wasm'
import { CloseCode, ErrorCode, errorName } from '../protocol/codes.js'

export type { RawDelivery }

/**
 * What a core call leaves the shell to do: its frames already left through
 * the bridge (a plan the shell makes itself carries them in `deliveries`).
 */
export type RawPlan = RawRemainder & { deliveries?: RawDelivery[] }

const NOTHING_LEFT: RawPlan = Object.freeze({})

const utf8 = new TextEncoder()
const fromUtf8 = new TextDecoder()
// A text longer than this (UTF-16 units) is encoded before it is written,
// so the heap is not asked for 3 bytes a unit.
const ENCODE_FIRST_FROM = 16 * 1024

function remainder(text: string): RawPlan {
  return text === '' ? NOTHING_LEFT : (JSON.parse(text) as RawPlan)
}
/** Thrown by registerSync when the core refuses the options or the registration. */
export class SyncRegistrationError extends Error {
  readonly code: number
  constructor(code: number, message: string) {
    super(`seqsync: registerSync failed: ${message}`)
    this.name = 'SyncRegistrationError'
    this.code = code
  }
}

/** The core refused a call (a storage failure, say): the call did nothing, the core lives on. */
export class CoreError extends Error {
  constructor(readonly code: number, message: string) {
    super(message)
    this.name = 'CoreError'
  }
}

/** The core could not record a mutation's outcome: the shell rejects it with `code` and rolls back. */
export class CoreRefusal extends CoreError {}

/** An `error` frame, byte for byte as the core writes one (docs/protocol.md §5). */
export function errorFrame(code: number, message: string): string {
  return JSON.stringify({ t: 'error', code, error: errorName(code), message })
}

/** The answer to a frame on a Durable Object that never called registerSync: say so, then close. */
export function notRegisteredPlan(socketId: string): RawPlan {
  const frame = errorFrame(ErrorCode.NOT_REGISTERED, 'the Durable Object did not call registerSync before accepting frames')
  return {
    deliveries: [{ to: socketId, frame }],
    closeCode: CloseCode.INTERNAL,
    closeReason: 'registerSync was not called',
  }
}

export interface OpenArgs {
  sql: SqlStorage
  /** Sends `frame` to the sockets `to` (ids one per line) while a call is still building its plan. */
  send: (to: string, frame: string) => void
  optionsJson: string
  registrationJson: string
  /** Used only if the storage has no epoch yet. */
  freshEpoch: string
  /** The sockets still open (after a wake): their subscriptions are restored. */
  liveSocketIds: string[]
  /** The presence their attachments kept (a plan's keepPresence), restored with them. */
  livePresence: Array<{ socket: string; presence: string }>
  /**
   * Called when a core call throws: the wasm trapped (its heap exhausted, or
   * a bug), so neither what it was deciding nor its memory can be trusted.
   * The core is never called again. Must throw.
   */
  onTrap: (error: unknown) => never
}

/** The bridge's address of a snapshot read's frames: never a socket id (those are UUIDs). */
const READER = 'seqsync:snapshot-read'

/** A registered core, restored after a wake. Made only by Core.open. */
export class Core {
  /** The epoch of the storage it serves (fixed for its life). */
  readonly epoch: string
  /** The core's frame limit, for the shell to check before a frame is copied into wasm. */
  readonly maxFrameBytes: number
  #raw: RawCore | undefined
  readonly #module: CoreModule
  readonly #onTrap: (error: unknown) => never
  // Where the bridge puts the frames for READER while a read runs.
  readonly #read: { frames: string[] | undefined }
  // The heap addresses of the core's inbox (and its room) and registers.
  #inbox = 0
  #inboxRoom = 0
  readonly #registers: number

  private constructor(module: CoreModule, raw: RawCore, onTrap: (error: unknown) => never, read: { frames: string[] | undefined }) {
    this.#module = module
    this.#raw = raw
    this.#onTrap = onTrap
    this.#read = read
    this.#registers = this.#call((core) => core.registers())
    this.epoch = this.#call((core) => core.epoch())
    this.maxFrameBytes = (JSON.parse(this.#call((core) => core.limitsJson())) as { maxFrameBytes: number }).maxFrameBytes
  }

  /**
   * Opens a core in a fresh wasm instance: checks the options, registers,
   * loads the log's state and restores the live sockets. Throws
   * SyncRegistrationError if the core refuses, or whatever onTrap throws.
   * Returns the refusals of stored subscriptions a deploy made invalid, to send.
   */
  static open(args: OpenArgs): { core: Core; refusals: RawDelivery[] } {
    const module = takeCoreModule()
    const read: { frames: string[] | undefined } = { frames: undefined }
    const send = (to: string, frame: string) => {
      if (to === READER && read.frames) read.frames.push(frame)
      else args.send(to, frame)
    }
    let opened: ReturnType<CoreModule['RawCore']['open']>
    try {
      module.seqsyncBridge = coreBridge(module, args.sql, send)
      opened = module.RawCore.open(args.optionsJson, args.registrationJson, args.freshEpoch, args.liveSocketIds,
        args.livePresence)
    } catch (error) {
      return args.onTrap(error)
    }
    if (opened.code !== ErrorCode.OK || !opened.core) {
      opened.core?.delete()
      throw new SyncRegistrationError(opened.code, opened.message)
    }
    return { core: new Core(module, opened.core, args.onTrap, read), refusals: opened.deliveries }
  }

  // The calls that plan send their frames as they return (through the
  // bridge's send); what they return is the rest.
  onMessage(socket: string, scope: string, frame: string | Uint8Array, nowMs: number): RawPlan {
    return this.#planned((core) => {
      const [a, b, c] = this.#write(socket, scope, frame)
      core.onMessage(a!, b!, c!, nowMs)
    })
  }

  /** Records the mutation's outcome (inside its transaction); returns its seq. Throws CoreRefusal. */
  commitMutation(scope: string, id: string, resultJson: string, nowMs: number): number {
    const seq = this.#call((core) => {
      const [a, b, c] = this.#write(scope, id, resultJson)
      return core.commitMutation(a!, b!, c!, nowMs)
    })
    if (seq < 0) throw new CoreRefusal(-seq, this.#call((core) => core.lastError()))
    return seq
  }

  finishMutation(scope: string, id: string, nowMs: number): RawPlan {
    return this.#planned((core) => {
      const [a, b] = this.#write(scope, id)
      core.finishMutation(a!, b!, nowMs)
    })
  }

  rejectMutation(scope: string, id: string, code: number, message: string, nowMs: number): RawPlan {
    return this.#planned((core) => {
      const [a, b, c] = this.#write(scope, id, message)
      core.rejectMutation(a!, b!, c!, code, nowMs)
    })
  }

  drain(nowMs: number): RawPlan {
    return this.#planned((core) => core.drain(nowMs))
  }

  /** Forgets a closed socket; the plan removes its presence for the others. */
  onClose(socket: string): RawPlan {
    return this.#planned((core) => {
      const [a] = this.#write(socket)
      core.onClose(a!)
    })
  }

  /** Applies the presence set the last onMessage of `socket` returned, under `user`. */
  commitPresence(socket: string, user: string): RawPlan {
    return remainder(this.#call((core) => core.commitPresence(socket, user)))
  }

  /** Drops that set and tells the socket why (a presence-error). */
  refusePresence(socket: string, code: number, message: string): RawPlan {
    return remainder(this.#call((core) => core.refusePresence(socket, code, message)))
  }

  /**
   * The frames a hello with `helloFrame`'s subs would get after its welcome,
   * read for no socket (snapshots or sub-errors, then synced; or one error):
   * cpp/include/seqsync/core.h, Core::ReadSnapshot.
   */
  readSnapshot(helloFrame: string): string[] {
    const frames: string[] = []
    this.#read.frames = frames
    try {
      this.#call((core) => core.readSnapshot(READER, helloFrame))
    } finally {
      this.#read.frames = undefined
    }
    return frames
  }

  /** Compaction and retention, now. Throws CoreError. */
  housekeep(nowMs: number): void {
    const status = this.#call((core) => core.housekeep(nowMs))
    if (status.code !== ErrorCode.OK) throw new CoreError(status.code, `seqsync: housekeeping failed: ${status.message}`)
  }

  /** Head, retention floor and log size. Throws CoreError. */
  state(): { head: number; floor: number; rows: number } {
    const { code, message, head, floor, rows } = this.#call((core) => core.state())
    if (code !== ErrorCode.OK) throw new CoreError(code, `seqsync: reading the log's state failed: ${message}`)
    return { head, floor, rows }
  }

  /**
   * The core's stats as Core::StatsJson writes them, with wasmMemoryBytes
   * (with `detail`, what the inspector shows too). Throws CoreError.
   */
  statsJson(detail: boolean): string {
    const text = this.#call((core) => core.statsJson(detail))
    if (text.startsWith('{"code":')) {
      const { code, message } = JSON.parse(text) as { code: number; message: string }
      throw new CoreError(code, `seqsync: reading the stats failed: ${message}`)
    }
    return text
  }

  /** Frees the core's wasm objects; it cannot be called again. */
  delete(): void {
    const raw = this.#raw
    this.#raw = undefined
    raw?.delete()
  }

  /**
   * Writes `texts` into the core's inbox, one after another, as UTF-8;
   * returns their byte lengths. A string of n UTF-16 units takes at most 3n
   * bytes; a long one is encoded first, so the inbox grows only by what it needs.
   */
  #write(...texts: Array<string | Uint8Array>): number[] {
    const bytes = texts.map((t) => (typeof t === 'string' && t.length > ENCODE_FIRST_FROM ? utf8.encode(t) : t))
    let room = 0
    for (const t of bytes) room += typeof t === 'string' ? t.length * 3 : t.length
    if (room > this.#inboxRoom) {
      this.#inbox = this.#raw!.inbox(room) // may grow the memory: the heap is read after
      this.#inboxRoom = room
    }
    const heap = this.#module.HEAPU8
    const lengths: number[] = []
    let at = this.#inbox
    for (const t of bytes) {
      let n: number
      if (typeof t === 'string') {
        n = utf8.encodeInto(t, heap.subarray(at, at + t.length * 3)).written
      } else {
        heap.set(t, at)
        n = t.length
      }
      lengths.push(n)
      at += n
    }
    return lengths
  }

  /** Runs a plan call, then reads the remainder it left (registers: address, length). */
  #planned(call: (core: RawCore) => void): RawPlan {
    return this.#call((core) => {
      call(core)
      const registers = this.#module.HEAP32
      const at = registers[this.#registers >> 2]!
      const length = registers[(this.#registers >> 2) + 1]!
      return length === 0 ? NOTHING_LEFT : (JSON.parse(fromUtf8.decode(this.#module.HEAPU8.subarray(at, at + length))) as RawPlan)
    })
  }

  #call<T>(call: (core: RawCore) => T): T {
    const raw = this.#raw
    if (!raw) throw new Error('seqsync: this core was stopped')
    try {
      return call(raw)
    } catch (error) {
      this.#raw = undefined // never called again
      return this.#onTrap(error)
    }
  }
}

// An instance no core has opened yet, or undefined.
let spareModule: CoreModule | undefined
let spareScheduled = false

/** The spare instance if there is one, else a fresh one. A module serves one core only. */
function takeCoreModule(): CoreModule {
  const module = spareModule ?? instantiateCoreModule()
  spareModule = undefined
  return module
}

/**
 * Makes a spare instance once the current event's work is done, unless one
 * is waiting. A failure here is only logged: the next open instantiates
 * (and reports) for itself.
 */
export function keepSpareCoreModule(): void {
  if (spareModule || spareScheduled) return
  spareScheduled = true
  setTimeout(() => {
    spareScheduled = false
    if (spareModule) return
    try {
      spareModule = instantiateCoreModule()
    } catch (error) {
      console.error('seqsync: could not prepare a spare core instance', error)
    }
  }, 0)
}

/** Instantiates a fresh core module. Throws if the wasm cannot start. */
function instantiateCoreModule(): CoreModule {
  const args: Record<string, unknown> = {
    // workerd forbids WebAssembly.compile(bytes); instantiate the imported
    // Module synchronously, so the factory has filled `args` when it returns.
    instantiateWasm(imports: WebAssembly.Imports, done: (i: WebAssembly.Instance, m: WebAssembly.Module) => void) {
      const instance = new WebAssembly.Instance(coreWasm, imports)
      done(instance, coreWasm)
      return instance.exports
    },
    // import.meta.url is undefined in workerd; the glue must not build a URL.
    locateFile: (path: string) => path,
    printErr: (text: string) => console.error(`[seqsync core] ${text}`),
  }
  void createCoreModule(args as never)
  const module = args as unknown as Partial<CoreModule>
  if (typeof module.RawCore?.open !== 'function') {
    throw new Error('seqsync: the wasm core did not initialise synchronously')
  }
  return module as CoreModule
}

/**
 * The DO's SQLite as the core sees it, and its sockets. A statement crosses
 * once each way: its text is named once (prepare), and its params and rows
 * travel as UTF-8 text in the heap (cpp/src/bridge_codec.h): the core reads
 * a result with one copy (take). A JS exception must never unwind through
 * C++ frames (it would leak), so errors come back as values. SQLite's own
 * message is logged here, in the DO: the core sends clients a fixed
 * sentence for INTERNAL errors.
 */
function coreBridge(module: CoreModule, sql: SqlStorage, send: (to: string, frame: string) => void): SqlBridge {
  const statements: string[] = []
  const text = (at: number, length: number) =>
    length === 0 ? '' : fromUtf8.decode(module.HEAPU8.subarray(at, at + length))
  // The last result's bytes, until take copies them into the heap. Short
  // ones are encoded into one reused buffer.
  let scratch = new Uint8Array(4096)
  let result: Uint8Array = scratch.subarray(0, 0)
  const keep = (out: string): number => {
    if (out.length > ENCODE_FIRST_FROM) {
      result = utf8.encode(out)
    } else {
      if (scratch.length < out.length * 3) scratch = new Uint8Array(out.length * 3)
      result = scratch.subarray(0, utf8.encodeInto(out, scratch).written)
    }
    return result.length
  }
  const run = (query: string, params: string): number => {
    try {
      return keep(encodeRows(sql.exec(query, ...decodeParams(params))))
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error)
      console.error(`seqsync: SQL failed: ${message} (in: ${query.slice(0, 200)})`)
      return keep(`E${message}`)
    }
  }
  return {
    prepare(query: number, queryLength: number) {
      return statements.push(text(query, queryLength)) - 1
    },
    exec(statement: number, params: number, paramsLength: number) {
      return run(statements[statement] ?? '', text(params, paramsLength))
    },
    execText(query: number, queryLength: number, params: number, paramsLength: number) {
      return run(text(query, queryLength), text(params, paramsLength))
    },
    take(into: number) {
      module.HEAPU8.set(result, into)
      result = scratch.subarray(0, 0)
    },
    send(to: number, toLength: number, frame: number, frameLength: number) {
      try {
        send(text(to, toLength), text(frame, frameLength))
      } catch (error) {
        console.error('seqsync: send failed:', error)
      }
    },
  }
}

/** The rows of `cursor` in the bridge's result format. */
function encodeRows(cursor: SqlStorageCursor<Record<string, SqlStorageValue>>): string {
  let out = ''
  let rows = 0
  let columns = 0
  let only: SqlStorageValue | undefined
  for (const row of cursor.raw()) {
    rows += 1
    columns = row.length
    if (rows === 1 && columns === 1) only = row[0]
    for (const value of row) {
      if (typeof value === 'string') out += `t${value.length}:${value}`
      else if (typeof value === 'number') out += `${Number.isSafeInteger(value) ? 'i' : 'f'}${value};`
      else out += 'n' // NULL, and BLOBs, which the core's queries turn into hex
    }
  }
  if (rows === 1 && columns === 1 && typeof only === 'string') return `T${only}`
  return `R${rows},${columns};${out}`
}

/** The params the core sent, from the bridge's params format. */
function decodeParams(text: string): SqlStorageValue[] {
  const params: SqlStorageValue[] = []
  for (let i = 0; i < text.length;) {
    const tag = text.charCodeAt(i)
    if (tag === 110 /* n */) {
      params.push(null)
      i += 1
    } else if (tag === 116 /* t */) {
      const colon = text.indexOf(':', i)
      const start = colon + 1
      const end = start + Number(text.slice(i + 1, colon))
      params.push(text.slice(start, end))
      i = end
    } else {
      const semicolon = text.indexOf(';', i)
      params.push(Number(text.slice(i + 1, semicolon)))
      i = semicolon + 1
    }
  }
  return params
}
