// The benchmark Worker: /sync/<room> is a seqsync DO, /floor/<room> the
// plain-JS floor (floor.ts). /admin/<sync|floor>/<room>/<action> seeds rows
// server-side and reports state — bench-only hooks a real app never exposes.
import { routeSyncRequest, SyncDurableObject, SyncRegistry } from 'seqsync'

import { benchRow, FloorDO } from './floor.js'

export { FloorDO }

export interface Env {
  SYNC_DO: DurableObjectNamespace<SeqsyncBenchDO>
  FLOOR_DO: DurableObjectNamespace<FloorDO>
}

interface Claims {
  userId: string
}
interface Message {
  id: string
  author: string
  content: string
  created_at: number
}

// Bench-only instrumentation: remember the last wasm instance created, so a
// DO can report the size of its core's linear memory. Nothing else changes.
let lastWasmInstance: WebAssembly.Instance | undefined
try {
  const Original = WebAssembly.Instance
  const Wrapped = function (module: WebAssembly.Module, imports?: WebAssembly.Imports) {
    const instance = new Original(module, imports)
    lastWasmInstance = instance
    return instance
  } as unknown as typeof WebAssembly.Instance
  Wrapped.prototype = Original.prototype
  ;(WebAssembly as { Instance: typeof WebAssembly.Instance }).Instance = Wrapped
} catch {
  // read-only in this runtime: memory is then reported as 0
}

/** The key under which sqlTrace reports the rows its statements wrote. */
const ROWS_WRITTEN = '(rows written)'

export class SeqsyncBenchDO extends SyncDurableObject<Env, Claims> {
  readonly bornAt = Date.now()
  readonly startupSql: string[] = []
  #wasm: WebAssembly.Instance | undefined

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    ctx.blockConcurrencyWhile(async () => {
      this.sql.exec(`CREATE TABLE IF NOT EXISTS messages (
        id TEXT PRIMARY KEY, author TEXT NOT NULL, content TEXT NOT NULL, created_at INTEGER NOT NULL)`)
      // Bench-only: record the SQL statements registerSync runs (the start-up
      // cost of a new or woken DO), then put exec back.
      const sql = this.sql as SqlStorage & { exec: SqlStorage['exec'] }
      const exec = sql.exec
      const startup: string[] = this.startupSql
      sql.exec = function (this: SqlStorage, query: string, ...bindings: SqlStorageValue[]) {
        startup.push(query.replace(/\s+/g, ' ').slice(0, 100))
        return exec.call(this, query, ...bindings)
      } as SqlStorage['exec']
      try {
        this.#register()
      } finally {
        delete (sql as { exec?: unknown }).exec
        if (sql.exec !== exec) sql.exec = exec
      }
      this.#wasm = lastWasmInstance
    })
  }

  #register(): void {
    this.registerSync(
      new SyncRegistry<Claims, Env, { messages: Message }>()
        .defineCollection({ table: 'messages', pk: 'id' })
        .defineMutation({
          collection: 'messages',
          type: 'insert',
          execute: ({ op, sql }) => {
            const m = op.cols
            sql.exec('INSERT INTO messages(id, author, content, created_at) VALUES (?, ?, ?, ?)',
              m.id, m.author, m.content, m.created_at)
          },
        }),
      // The fairness scenario's rooms (tight-…) bound unread bytes at the
      // minimum, so a stalled reader is closed within the run.
      this.ctx.id.name?.startsWith('tight-') ? { maxUnreadBytesPerSocket: 64 * 1024 } : {},
    )
  }

  // ---- bench admin (RPC) ----
  /** Inserts n generated rows in one runSyncedWrite (one transaction, broadcast once). */
  seed(n: number, prefix: string): { head: number } {
    this.runSyncedWrite((sql) => {
      for (let i = 0; i < n; i++) {
        const r = benchRow(prefix, i)
        sql.exec('INSERT INTO messages(id, author, content, created_at) VALUES (?, ?, ?, ?)', r.id, r.author, r.content, r.created_at)
      }
    })
    return { head: this.syncState().head }
  }
  /**
   * Bench-only: counts the SQL statements the DO runs (shell, core and
   * handlers alike) from now on, and the rows they write (under
   * ROWS_WRITTEN); `sqlTrace(false)` returns and resets them.
   */
  sqlTrace(on: boolean): Record<string, number> {
    const sql = this.sql as SqlStorage & {
      __exec?: SqlStorage['exec']
      __counts?: Record<string, number>
      __cursors?: SqlStorageCursor<Record<string, SqlStorageValue>>[]
    }
    const counts = sql.__counts ?? {}
    // Rows written as the platform bills them (an index entry is a row),
    // read once every cursor was consumed.
    const written = (sql.__cursors ?? []).reduce((n, cursor) => n + cursor.rowsWritten, 0)
    if (sql.__cursors) counts[ROWS_WRITTEN] = written
    if (on && !sql.__exec) {
      const exec = sql.exec
      sql.__exec = exec
      sql.__counts = {}
      sql.__cursors = []
      sql.exec = function (this: SqlStorage, query: string, ...bindings: SqlStorageValue[]) {
        let key = query.replace(/\s+/g, ' ').slice(0, 120)
        try {
          const cursor = exec.call(this, query, ...bindings)
          sql.__cursors!.push(cursor)
          return cursor
        } catch (error) {
          key += ` [threw: ${String(error).slice(0, 80)}]`
          throw error
        } finally {
          sql.__counts![key] = (sql.__counts![key] ?? 0) + 1
        }
      } as SqlStorage['exec']
    } else if (!on && sql.__exec) {
      sql.exec = sql.__exec
      delete sql.__exec
      delete sql.__counts
      delete sql.__cursors
    }
    return counts
  }
  state() {
    const rows = this.sql.exec<{ n: number }>('SELECT count(*) AS n FROM messages').one().n
    // Emscripten may minify export names: find the Memory by type.
    const memory = Object.values(this.#wasm?.exports ?? {}).find((e) => e instanceof WebAssembly.Memory) as WebAssembly.Memory | undefined
    return {
      ...this.syncState(),
      rows,
      bornAt: this.bornAt,
      sockets: this.ctx.getWebSockets().length,
      wasmMemoryBytes: memory?.buffer.byteLength ?? 0,
      startupSql: this.startupSql,
    }
  }
}

export default {
  async fetch(req: Request, env: Env): Promise<Response> {
    const url = new URL(req.url)
    if (url.pathname === '/health') return new Response('ok')
    const admin = url.pathname.match(/^\/admin\/(sync|floor)\/([A-Za-z0-9_-]{1,64})\/(seed|state|trace-on|trace-off)$/)
    if (admin) {
      const stub = admin[1] === 'sync'
        ? env.SYNC_DO.get(env.SYNC_DO.idFromName(admin[2]!))
        : env.FLOOR_DO.get(env.FLOOR_DO.idFromName(admin[2]!))
      if (admin[3] === 'seed') {
        const n = Math.min(Number(url.searchParams.get('n') ?? '0') | 0, 200_000)
        const prefix = url.searchParams.get('prefix') ?? 'seed'
        return Response.json(await stub.seed(n, prefix))
      }
      if (admin[3]!.startsWith('trace')) {
        if (admin[1] !== 'sync') return Response.json({})
        return Response.json(await env.SYNC_DO.get(env.SYNC_DO.idFromName(admin[2]!)).sqlTrace(admin[3] === 'trace-on'))
      }
      return Response.json(await stub.state())
    }
    // Both routes do the same Worker-side work (routeSyncRequest: authenticate,
    // forge the claims header, forward), so the figures differ only by what the DOs do.
    const routed = await routeSyncRequest(req, env, {
      namespace: { sync: env.SYNC_DO, floor: env.FLOOR_DO },
      authenticate: (req) => {
        const user = new URL(req.url).searchParams.get('user') ?? 'bench'
        return /^[A-Za-z0-9_-]{1,32}$/.test(user) ? { userId: user } : null
      },
    })
    return routed ?? new Response('not found', { status: 404 })
  },
} satisfies ExportedHandler<Env>
