// The floor: a plain-JS Durable Object doing the minimum a synced insert
// needs, for `npm run bench` to measure seqsync against in the same run.
//
//   insert   one transactionSync: INSERT the row + INSERT a log entry (the
//            log's INTEGER PRIMARY KEY is the seq); the row's JSON to every
//            socket; then the confirmation to the sender.
//   hello    {since} present: catch-up from the log; else a snapshot of the
//            table. Either way 1,000 rows a frame, then `synced`.
//
// Wire (JSON text frames; a minimal protocol, not seqsync's):
//   client → {"t":"hello","since"?:n}
//            {"t":"ins","id":"m1","row":{id,author,content,created_at}}
//   server → {"t":"rows","rows":[row…]}            (part of a sync unit)
//            {"t":"synced","seq":n}                (ends the unit)
//            {"t":"row","seq":n,"row":row}         (a live insert)
//            {"t":"ok","id":"m1","seq":n}          (the insert committed)
//            {"t":"err","id":"m1","message":"…"}
// No auth, no validation beyond SQLite's, no dedup, no retention, no deletes:
// everything seqsync does beyond this is what the ratios price.
import { DurableObject } from 'cloudflare:workers'

interface Row {
  id: string
  author: string
  content: string
  created_at: number
}

const PAGE = 1000

export class FloorDO extends DurableObject {
  readonly sql: SqlStorage
  readonly bornAt = Date.now()

  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env)
    this.sql = ctx.storage.sql
    this.sql.exec(`CREATE TABLE IF NOT EXISTS messages (
      id TEXT PRIMARY KEY, author TEXT NOT NULL, content TEXT NOT NULL, created_at INTEGER NOT NULL)`)
    this.sql.exec('CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY AUTOINCREMENT, k TEXT NOT NULL)')
  }

  override async fetch(req: Request): Promise<Response> {
    if (req.headers.get('Upgrade')?.toLowerCase() !== 'websocket') return new Response('expected a WebSocket', { status: 426 })
    const { 0: client, 1: server } = new WebSocketPair()
    this.ctx.acceptWebSocket(server)
    return new Response(null, { status: 101, webSocket: client })
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const frame = JSON.parse(typeof message === 'string' ? message : new TextDecoder().decode(message)) as
      | { t: 'ins'; id: string; row: Row }
      | { t: 'hello'; since?: number }
    if (frame.t === 'ins') {
      const r = frame.row
      let seq: number
      try {
        seq = this.ctx.storage.transactionSync(() => {
          this.sql.exec('INSERT INTO messages(id, author, content, created_at) VALUES (?, ?, ?, ?)',
            r.id, r.author, r.content, r.created_at)
          return this.sql.exec<{ seq: number }>('INSERT INTO log(k) VALUES (?) RETURNING seq', r.id).one().seq
        })
      } catch (error) {
        ws.send(JSON.stringify({ t: 'err', id: frame.id, message: String(error) }))
        return
      }
      const out = `{"t":"row","seq":${seq},"row":${JSON.stringify(r)}}`
      for (const s of this.ctx.getWebSockets()) {
        try { s.send(out) } catch { /* closed */ }
      }
      ws.send(`{"t":"ok","id":${JSON.stringify(frame.id)},"seq":${seq}}`)
    } else if (frame.t === 'hello') {
      this.#sync(ws, frame.since)
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    try { ws.close(code === 1005 || code === 1006 ? 1000 : code, reason) } catch { /* closed */ }
  }

  /** Snapshot (no `since`) or catch-up from the log, PAGE rows a frame, then `synced`. */
  #sync(ws: WebSocket, since: number | undefined): void {
    const head = this.#head()
    if (since === undefined) {
      let after = ''
      for (;;) {
        const rows = this.sql.exec<Row & Record<string, SqlStorageValue>>(
          'SELECT id, author, content, created_at FROM messages WHERE id > ? ORDER BY id LIMIT ?', after, PAGE).toArray()
        if (rows.length === 0) break
        ws.send(`{"t":"rows","rows":${JSON.stringify(rows)}}`)
        if (rows.length < PAGE) break
        after = rows[rows.length - 1]!.id
      }
    } else {
      let after = since
      for (;;) {
        const rows = this.sql.exec<Row & { seq: number } & Record<string, SqlStorageValue>>(
          `SELECT l.seq AS seq, m.id AS id, m.author AS author, m.content AS content, m.created_at AS created_at
             FROM log l JOIN messages m ON m.id = l.k WHERE l.seq > ? AND l.seq <= ? ORDER BY l.seq LIMIT ?`,
          after, head, PAGE).toArray()
        if (rows.length === 0) break
        after = rows[rows.length - 1]!.seq
        for (const r of rows) delete (r as Partial<typeof r>).seq
        ws.send(`{"t":"rows","rows":${JSON.stringify(rows)}}`)
        if (rows.length < PAGE) break
      }
    }
    ws.send(`{"t":"synced","seq":${head}}`)
  }

  #head(): number {
    return this.sql.exec<{ s: number | null }>('SELECT max(seq) AS s FROM log').one().s ?? 0
  }

  // ---- bench admin (RPC) ----
  /** Inserts n generated rows in one transaction, as seqsync's seed does. */
  seed(n: number, prefix: string): { head: number } {
    this.ctx.storage.transactionSync(() => {
      for (let i = 0; i < n; i++) {
        const r = benchRow(prefix, i)
        this.sql.exec('INSERT INTO messages(id, author, content, created_at) VALUES (?, ?, ?, ?)', r.id, r.author, r.content, r.created_at)
        this.sql.exec('INSERT INTO log(k) VALUES (?)', r.id)
      }
    })
    return { head: this.#head() }
  }
  state(): { head: number; rows: number; bornAt: number; sockets: number } {
    const rows = this.sql.exec<{ n: number }>('SELECT count(*) AS n FROM messages').one().n
    return { head: this.#head(), rows, bornAt: this.bornAt, sockets: this.ctx.getWebSockets().length }
  }
}

/** The generated row both DOs seed: ~100 bytes of JSON, like a chat message. */
export function benchRow(prefix: string, i: number): Row {
  return {
    id: `${prefix}-${String(i).padStart(7, '0')}`,
    author: 'seed',
    content: `seeded message number ${i} with some text`,
    created_at: 1_700_000_000_000 + i,
  }
}
