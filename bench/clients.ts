// The three clients every scenario runs, behind one interface:
//   seqsync        WebSocketTransport + doCollectionOptions (a real TanStack DB collection)
//   floor-bare     a bare `ws` client of the floor: rows in a Map
//   floor-tanstack a real TanStack DB collection fed from the floor through a
//                  minimal sync adapter (begin/write/commit; confirm on the ack)
import { createCollection } from '@tanstack/db'
import WebSocket from 'ws'

import { doCollectionOptions, WebSocketTransport, type WebSocketConstructor } from '../worker/src/client/index.js'

export type System = 'seqsync' | 'floor-bare' | 'floor-tanstack'
export const SYSTEMS: System[] = ['seqsync', 'floor-tanstack', 'floor-bare']

export interface Row {
  id: string
  author: string
  content: string
  created_at: number
}

/** Milliseconds on CLOCK_MONOTONIC: one clock for every process on the machine. */
export const now = (): number => Number(process.hrtime.bigint()) / 1e6

/** Bytes and frames in and out, as payload and as TCP bytes. */
export class Meter {
  framesIn = 0
  payloadIn = 0
  payloadOut = 0
  framesOut = 0
  #sockets = new Set<WebSocket>()
  #closedRead = 0
  #closedWritten = 0
  track(ws: WebSocket): void {
    this.#sockets.add(ws)
    ws.on('message', (data: Buffer) => {
      this.framesIn += 1
      this.payloadIn += data.length
    })
    ws.on('close', () => {
      const s = (ws as unknown as { _socket?: { bytesRead: number; bytesWritten: number } })._socket
      if (s) {
        this.#closedRead += s.bytesRead
        this.#closedWritten += s.bytesWritten
      }
      this.#sockets.delete(ws)
    })
  }
  /** TCP bytes read/written so far (live sockets plus closed ones). */
  wire(): { read: number; written: number } {
    let read = this.#closedRead
    let written = this.#closedWritten
    for (const ws of this.#sockets) {
      const s = (ws as unknown as { _socket?: { bytesRead: number; bytesWritten: number } })._socket
      if (s) {
        read += s.bytesRead
        written += s.bytesWritten
      }
    }
    return { read, written }
  }
  snapshot() {
    return { framesIn: this.framesIn, payloadIn: this.payloadIn, framesOut: this.framesOut, payloadOut: this.payloadOut, ...this.wire() }
  }
}

export interface ClientOptions {
  system: System
  /** http://127.0.0.1:port */
  base: string
  room: string
  meter?: Meter
  /** Called once per row that appears (first insert of its key). */
  onRow?: (row: Row) => void
  label?: string
}

export interface BenchClient {
  readonly system: System
  /** Resolves once the initial sync is applied. */
  ready(): Promise<void>
  /** Inserts a row; resolves once the server confirmed it. */
  insert(row: Row): Promise<void>
  has(id: string): boolean
  size(): number
  /** Drops the connection; new dials wait for restore(). */
  cut(): void
  /** Allows dialling again; resolves with the time (now()) the new socket was dialled. */
  restore(): Promise<number>
  close(): void
  /** Connection state, for error messages. */
  describe(): string
}

let counter = 0

export function createClient(options: ClientOptions): BenchClient {
  if (options.system === 'seqsync') return new SeqsyncClient(options)
  return new FloorClient(options)
}

// ---- seqsync ---------------------------------------------------------------

export class SeqsyncClient implements BenchClient {
  readonly system = 'seqsync' as const
  readonly transport: WebSocketTransport
  readonly collection
  #cut = false
  #sockets = new Set<WebSocket>()
  #dialled: ((t: number) => void) | undefined
  /** Close codes of this client's sockets, in order. */
  readonly closeCodes: number[] = []

  constructor(options: ClientOptions) {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this
    const meter = options.meter
    class BenchWebSocket extends WebSocket {
      constructor(url: string) {
        // While cut, dial a port nothing listens on: the open fails for real.
        super(self.#cut ? 'ws://127.0.0.1:9/' : url)
        if (!self.#cut) {
          self.#dialled?.(now())
          self.#dialled = undefined
        }
        self.#sockets.add(this)
        this.on('close', (code: number) => {
          self.#sockets.delete(this)
          self.closeCodes.push(code)
        })
        meter?.track(this)
      }
      override send(data: string): void {
        if (meter) {
          meter.framesOut += 1
          meter.payloadOut += Buffer.byteLength(data)
        }
        super.send(data)
      }
    }
    this.transport = new WebSocketTransport({
      url: `${options.base.replace('http', 'ws')}/sync/${options.room}?user=bench`,
      WebSocket: BenchWebSocket as unknown as WebSocketConstructor,
      backoff: { initialMs: 20, maxMs: 100 },
      watchNetwork: false,
    })
    this.collection = createCollection(
      doCollectionOptions<Row>({ transport: this.transport, table: 'messages', getKey: (m) => m.id, id: `${options.label ?? 'bench'}-${counter++}` }),
    )
    const onRow = options.onRow
    if (onRow) {
      this.collection.subscribeChanges((changes) => {
        for (const c of changes) if (c.type === 'insert') onRow(c.value as Row)
      })
    }
  }
  ready(): Promise<void> {
    return this.collection.preload()
  }
  async insert(row: Row): Promise<void> {
    await this.collection.insert(row).isPersisted.promise
  }
  has(id: string): boolean {
    return this.collection.has(id)
  }
  size(): number {
    return this.collection.size
  }
  cut(): void {
    this.#cut = true
    for (const ws of this.#sockets) ws.terminate()
  }
  /** Stops reading the socket (TCP backpressure builds up), as a stalled tab would. */
  pause(): void {
    for (const ws of this.#sockets) (ws as unknown as { _socket?: { pause(): void } })._socket?.pause()
  }
  resume(): void {
    for (const ws of this.#sockets) (ws as unknown as { _socket?: { resume(): void } })._socket?.resume()
  }
  restore(): Promise<number> {
    return new Promise((resolve) => {
      this.#dialled = resolve
      this.#cut = false
    })
  }
  close(): void {
    this.transport.close()
    void this.collection.cleanup()
  }
  describe(): string {
    return `transport ${this.transport.status}, appliedSeq ${this.transport.appliedSeq}, ${this.collection.size} rows`
  }
}

// ---- the floor's clients -----------------------------------------------------

type FloorFrame =
  | { t: 'rows'; rows: Row[] }
  | { t: 'synced'; seq: number }
  | { t: 'row'; seq: number; row: Row }
  | { t: 'ok'; id: string; seq: number }
  | { t: 'err'; id: string; message: string }

/** What the floor connection feeds: a Map (bare) or a TanStack collection (adapter). */
interface FloorSink {
  rows(rows: Row[]): void
  synced(): void
  row(row: Row): void
}

/** One socket to the floor DO: hello with `since` on every (re)connect, acks by id. */
class FloorConnection {
  seq = 0
  #ws: WebSocket | undefined
  #cut = false
  #synced = false
  #pending = new Map<string, { resolve: () => void; reject: (e: Error) => void }>()
  #waiting: Array<{ frame: string }> = []
  #ids = 0
  #readyWaiters: Array<() => void> = []
  lastClose = ''
  sink: FloorSink | undefined

  constructor(readonly url: string, readonly meter: Meter | undefined) {}

  connect(): number {
    const ws = new WebSocket(this.url)
    const dialled = now()
    this.#ws = ws
    this.meter?.track(ws)
    this.#synced = false
    ws.on('open', () => {
      this.#send(ws, JSON.stringify(this.seq > 0 ? { t: 'hello', since: this.seq } : { t: 'hello' }))
    })
    ws.on('message', (data: Buffer) => this.#onFrame(JSON.parse(data.toString()) as FloorFrame))
    ws.on('close', (code: number, reason: Buffer) => {
      this.lastClose = `closed ${code} ${reason.toString()} at ${now().toFixed(0)}`
      if (this.#ws === ws) this.#ws = undefined
    })
    ws.on('error', (error: Error) => {
      this.lastClose += ` error ${error.message}`
    })
    return dialled
  }

  #send(ws: WebSocket, text: string): void {
    if (this.meter) {
      this.meter.framesOut += 1
      this.meter.payloadOut += Buffer.byteLength(text)
    }
    ws.send(text)
  }

  #onFrame(f: FloorFrame): void {
    switch (f.t) {
      case 'rows':
        this.sink?.rows(f.rows)
        return
      case 'synced':
        this.seq = Math.max(this.seq, f.seq)
        this.sink?.synced()
        this.#synced = true
        for (const w of this.#waiting.splice(0)) this.#send(this.#ws!, w.frame)
        for (const r of this.#readyWaiters.splice(0)) r()
        return
      case 'row':
        this.seq = Math.max(this.seq, f.seq)
        this.sink?.row(f.row)
        return
      case 'ok': {
        this.seq = Math.max(this.seq, f.seq)
        const p = this.#pending.get(f.id)
        this.#pending.delete(f.id)
        p?.resolve()
        return
      }
      case 'err': {
        const p = this.#pending.get(f.id)
        this.#pending.delete(f.id)
        p?.reject(new Error(f.message))
      }
    }
  }

  ready(): Promise<void> {
    if (this.#synced) return Promise.resolve()
    return new Promise((resolve) => this.#readyWaiters.push(resolve))
  }

  insert(row: Row): Promise<void> {
    const id = `m${this.#ids++}`
    const frame = `{"t":"ins","id":"${id}","row":${JSON.stringify(row)}}`
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject })
      if (this.#ws && this.#synced && !this.#cut) this.#send(this.#ws, frame)
      else this.#waiting.push({ frame })
    })
  }

  describe(): string {
    return `socket ${this.#ws ? this.#ws.readyState : 'none'}, synced ${this.#synced}, seq ${this.seq}, ${this.#pending.size} unconfirmed, ${this.#waiting.length} queued, ${this.lastClose || 'never closed'}`
  }

  cut(): void {
    this.#cut = true
    this.#ws?.terminate()
    this.#ws = undefined
  }

  restore(): number {
    this.#cut = false
    return this.connect()
  }

  close(): void {
    this.#cut = true
    this.#ws?.close()
  }
}

class FloorClient implements BenchClient {
  readonly system: 'floor-bare' | 'floor-tanstack'
  readonly conn: FloorConnection
  readonly map = new Map<string, Row>()
  readonly collection
  #readyPromise: Promise<void>

  constructor(options: ClientOptions) {
    this.system = options.system as 'floor-bare' | 'floor-tanstack'
    this.conn = new FloorConnection(`${options.base.replace('http', 'ws')}/floor/${options.room}`, options.meter)
    const onRow = options.onRow
    if (this.system === 'floor-bare') {
      const map = this.map
      this.conn.sink = {
        rows(rows) {
          for (const r of rows) {
            if (onRow && !map.has(r.id)) onRow(r)
            map.set(r.id, r)
          }
        },
        synced() {},
        row(r) {
          if (onRow && !map.has(r.id)) onRow(r)
          map.set(r.id, r)
        },
      }
      this.conn.connect()
      this.#readyPromise = this.conn.ready()
      this.collection = undefined
    } else {
      this.collection = createCollection(floorCollectionOptions(this.conn, `${options.label ?? 'floor'}-${counter++}`))
      if (onRow) {
        this.collection.subscribeChanges((changes) => {
          for (const c of changes) if (c.type === 'insert') onRow(c.value as Row)
        })
      }
      this.#readyPromise = this.collection.preload()
    }
  }
  ready(): Promise<void> {
    return this.#readyPromise
  }
  async insert(row: Row): Promise<void> {
    if (this.collection) await this.collection.insert(row).isPersisted.promise
    else await this.conn.insert(row)
  }
  has(id: string): boolean {
    return this.collection ? this.collection.has(id) : this.map.has(id)
  }
  size(): number {
    return this.collection ? this.collection.size : this.map.size
  }
  cut(): void {
    this.conn.cut()
  }
  async restore(): Promise<number> {
    return this.conn.restore()
  }
  close(): void {
    this.conn.close()
    if (this.collection) void this.collection.cleanup()
  }
  describe(): string {
    return `${this.conn.describe()}, ${this.size()} rows`
  }
}

/**
 * The minimal TanStack DB adapter for the floor: a sync unit (rows… synced)
 * is one begin/write…/commit; a live row is its own; a write is confirmed
 * when the floor's ack arrives (its row frame came first on the same socket).
 */
function floorCollectionOptions(conn: FloorConnection, id: string) {
  return {
    id,
    getKey: (r: Row) => r.id,
    sync: {
      rowUpdateMode: 'full' as const,
      sync: ({ begin, write, commit, markReady }: {
        begin: () => void
        write: (m: { type: 'insert' | 'update'; value: Row }) => void
        commit: () => void
        markReady: () => void
      }) => {
        const held = new Set<string>()
        let open = false
        let ready = false
        conn.sink = {
          rows(rows) {
            if (!open) {
              begin()
              open = true
            }
            for (const r of rows) {
              write({ type: held.has(r.id) ? 'update' : 'insert', value: r })
              held.add(r.id)
            }
          },
          synced() {
            if (open) {
              open = false
              commit()
            }
            if (!ready) {
              ready = true
              markReady()
            }
          },
          row(r) {
            begin()
            write({ type: held.has(r.id) ? 'update' : 'insert', value: r })
            held.add(r.id)
            commit()
          },
        }
        conn.connect()
        return () => conn.close()
      },
    },
    onInsert: async ({ transaction }: { transaction: { mutations: Array<{ modified: unknown }> } }) => {
      await Promise.all(transaction.mutations.map((m) => conn.insert(m.modified as Row)))
    },
  }
}

// ---- raw writers -----------------------------------------------------------------

/** A raw socket that writes one confirmed insert at a time: seqsync's `mut`, or the floor's `ins`. */
export interface RawWriter {
  /** Sends an insert of row `id` and resolves on its confirmation (rejects after 10 s). */
  write(id: string, i: number): Promise<void>
  close(): void
}

/**
 * `n` writers on raw sockets to one room, each subscribed to it, saying hello
 * as WebSocketTransport does (inline acks, compact changes) or as the floor's
 * clients do; resolves once every hello is answered.
 */
export async function openRawWriters(base: string, system: 'seqsync' | 'floor-bare', room: string, n: number): Promise<RawWriter[]> {
  const path = system === 'seqsync' ? 'sync' : 'floor'
  const hello = system === 'seqsync'
    ? { t: 'hello', v: 1, inlineAcks: true, compactChanges: true, subs: [{ id: 's', c: 'messages' }] }
    : { t: 'hello' }
  return Promise.all(Array.from({ length: n }, async () => {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/${path}/${room}`)
    let waiting: { id: string; confirmed: () => void } | undefined
    let ready = false
    ws.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString()) as { t: string; id?: string; ack?: string }
      if (frame.t === 'synced') ready = true
      // seqsync's ack rides in the changes frame (inlineAcks) or comes alone; the floor's is `ok`.
      const id = system === 'seqsync' ? (frame.t === 'ack' ? frame.id : frame.ack) : frame.t === 'ok' ? frame.id : undefined
      if (waiting && id === waiting.id) waiting.confirmed()
    })
    ws.on('error', () => {})
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
    ws.send(JSON.stringify(hello))
    await until(() => ready, 10_000, 'hello answered')
    return {
      write: (id: string, i: number) => new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no confirmation of ${id} in 10 s`)), 10_000)
        waiting = { id, confirmed: () => { waiting = undefined; clearTimeout(timer); resolve() } }
        const row: Row = { id, author: 'bench', content: `a client message of ordinary length, number ${i}`, created_at: 1_700_000_000_000 + i }
        ws.send(JSON.stringify(system === 'seqsync'
          ? { t: 'mut', id, ops: [{ c: 'messages', op: 'insert', k: id, cols: row }] }
          : { t: 'ins', id, row }))
      }),
      close: () => ws.close(),
    }
  }))
}

// ---- small helpers -------------------------------------------------------------

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[i]!
}

export function median(values: number[]): number {
  return percentile(values, 50)
}

export function mean(values: number[]): number {
  return values.length === 0 ? NaN : values.reduce((t, v) => t + v, 0) / values.length
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = now() + timeoutMs
  while (!check()) {
    if (now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`)
    await sleep(2)
  }
}
