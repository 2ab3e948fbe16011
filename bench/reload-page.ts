// The reload scenario's page (bench/run.ts, scenario `reload`): one eager
// collection of the bench table over a local-first transport, instrumented.
// It reports, in ms since navigation start: when the collection first held
// the rows expected from the local copy (`cached`), and when it held every
// row with the cursor at `head` (caught up); when this script started
// (`scriptMs`: the page's own load); and the bytes and rows its socket
// received. Served by the bench runner on loopback, never deployed.
import { createCollection } from '@tanstack/db'

import { doCollectionOptions, WebSocketTransport } from '../worker/src/client/index.js'

interface Row {
  id: string
  author: string
  content: string
  created_at: number
}

const params = new URLSearchParams(location.search)
const n = Number(params.get('n'))
const cached = Number(params.get('cached') ?? '0')
const head = Number(params.get('head'))
const result = { scriptMs: performance.now(), firstRenderMs: -1, caughtUpMs: -1, firstFrameMs: -1, bytes: 0, frames: 0, rows: 0, local: '', tanstackWriteMs: -1 }
Object.assign(window, { benchResult: result })

const encoder = new TextEncoder()
const Native = window.WebSocket
window.WebSocket = class extends Native {
  constructor(url: string | URL, protocols?: string | string[]) {
    super(url, protocols)
    this.addEventListener('message', (ev: MessageEvent) => {
      if (result.frames++ === 0) result.firstFrameMs = performance.now()
      const text = String(ev.data)
      result.bytes += encoder.encode(text).length
      const frame = JSON.parse(text) as { t: string; rows?: unknown[]; changes?: unknown[] }
      result.rows += frame.rows?.length ?? frame.changes?.length ?? 0
    })
  }
}

const transport = new WebSocketTransport({ url: params.get('ws')!, local: { name: `bench ${params.get('room')}` } })
const messages = createCollection(doCollectionOptions<Row>({ transport, table: 'messages', getKey: (m) => m.id, startSync: true }))
Object.assign(window, { bench: { transport, messages } })

const check = () => {
  if (result.firstRenderMs < 0 && cached > 0 && messages.size >= cached) result.firstRenderMs = performance.now()
  if (result.caughtUpMs < 0 && messages.size === n && transport.appliedSeq >= head) {
    result.caughtUpMs = performance.now()
    result.local = transport.local
    for (const m of performance.getEntriesByType('mark')) Object.assign(result, { [m.name]: m.startTime })
    if (cached > 0) setTimeout(timeTanStackWrite, 0)
  }
}

/**
 * What any reload of these rows costs at least: TanStack DB itself writing
 * the same rows (copies, in one sync transaction) into an empty collection
 * with one change listener, as the page's collection has. No IndexedDB, no
 * socket, no seqsync code.
 */
function timeTanStackWrite(): void {
  const rows = [...messages.values()].map((m) => ({ ...m }))
  let write: ((rows: Row[]) => void) | undefined
  const plain = createCollection<Row, string>({
    id: 'tanstack-write-floor',
    getKey: (m) => m.id,
    startSync: true,
    sync: {
      sync: ({ begin, write: put, commit, markReady }) => {
        write = (values) => {
          begin()
          for (const value of values) put({ type: 'insert', value })
          commit()
        }
        markReady()
      },
    },
  })
  let doneAt = -1
  plain.subscribeChanges(() => {
    if (doneAt < 0 && plain.size === rows.length) doneAt = performance.now()
  })
  const start = performance.now()
  write!(rows)
  result.tanstackWriteMs = (doneAt < 0 ? performance.now() : doneAt) - start
}
messages.subscribeChanges(check)
transport.subscribe(check)
check()
