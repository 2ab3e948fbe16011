// The Durable Objects the workerd tests talk to. TestDO is a small chat-and-
// tasks app with one of each thing a test needs to provoke: messages
// (authorize checks the author), tasks (handlers that await, hold, deny or
// fail on purpose), insert-only notes and `echo`/`incr` commands.
// ProbeDO registers whatever schema a test hands it.
import { DurableObject } from 'cloudflare:workers'

import {
  type PresenceContext,
  readSyncSnapshot,
  refuseConnection,
  routeSyncRequest,
  type SnapshotSub,
  SyncDenied,
  SyncDurableObject,
  type SyncJson,
  SyncRegistry,
  type RouteSyncOptions,
  type SyncOptions,
} from 'seqsync'

export interface Env {
  TEST_DO: DurableObjectNamespace<TestDO>
  PROBE_DO: DurableObjectNamespace<ProbeDO>
  SHORT_DO: DurableObjectNamespace<ShortRetentionDO>
  HUGE_DO: DurableObjectNamespace<HugeFramesDO>
  UNREGISTERED_DO: DurableObjectNamespace<UnregisteredDO>
}

interface Claims {
  userId: string
  exp?: number
}
interface Message {
  id: string
  author: string
  content: string
  created_at: number
}
interface Task {
  id: string
  title: string | null
  done: number | null
  rank: number | null
  category: string | null
}
interface Note {
  id: string
  body: string
}
/** Typed columns (docs/protocol.md §5.3): SQLite holds 0/1, epoch ms, JSON text and 64-bit integers. */
export interface Account {
  id: string
  active: boolean
  created_at: Date
  meta: unknown
  counter: bigint
}

export class TestDO extends SyncDurableObject<Env, Claims> {
  readonly instanceId = crypto.randomUUID()
  afterCommitted: string[] = []

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    ctx.blockConcurrencyWhile(async () => this.#setUp())
  }

  /** The app's migrations and registerSync, as a constructor runs them. */
  #setUp(): void {
    {
      this.sql.exec(`CREATE TABLE IF NOT EXISTS messages (
        id TEXT PRIMARY KEY, author TEXT NOT NULL, content TEXT NOT NULL, created_at INTEGER NOT NULL)`)
      // tests/vectors/schema.sql, plus a category column for tasks.
      this.sql.exec(`CREATE TABLE IF NOT EXISTS tasks (
        id TEXT PRIMARY KEY, title TEXT, done INTEGER, rank REAL, category TEXT)`)
      this.sql.exec(`CREATE TABLE IF NOT EXISTS notes (id TEXT PRIMARY KEY, body TEXT)`)
      this.sql.exec(`CREATE TABLE IF NOT EXISTS accounts (
        id TEXT PRIMARY KEY, active INTEGER, created_at INTEGER, meta TEXT, counter INTEGER, plain INTEGER)`)
      this.sql.exec('CREATE TABLE IF NOT EXISTS test_dropped_collections (name TEXT PRIMARY KEY)')
      this.sql.exec('CREATE TABLE IF NOT EXISTS test_clock (id INTEGER PRIMARY KEY CHECK (id = 1), offset_ms INTEGER NOT NULL)')
      this.#clockOffsetMs = this.count('SELECT offset_ms FROM test_clock')
      const dropped = this.sql.exec<{ name: string }>('SELECT name FROM test_dropped_collections').toArray().map((r) => r.name)
      this.registerSync(
        asDeployedWithout(dropped, new SyncRegistry<Claims, Env, { messages: Message; tasks: Task; notes: Note; accounts: Account }>()
          .defineCollection({ table: 'messages', pk: 'id' })
          .defineCollection({ table: 'tasks', pk: 'id' })
          .defineCollection({ table: 'notes', pk: 'id' })
          .defineCollection({
            table: 'accounts',
            pk: 'id',
            columns: { active: 'boolean', created_at: 'date', meta: 'json', counter: 'bigint' },
          })
          .defineMutation({
            collection: 'accounts',
            type: 'insert',
            // The core hands over storage values: a bigint as its decimal string
            // (INTEGER affinity stores it exactly), a boolean as 0/1, JSON as its text.
            execute: ({ op, sql }) => {
              const a = op.cols as unknown as Record<string, unknown>
              sql.exec('INSERT INTO accounts(id, active, created_at, meta, counter) VALUES (?, ?, ?, ?, ?)',
                a.id as string, a.active as number, a.created_at as number, a.meta as string, a.counter as string)
            },
          })
          .defineMutation({
            collection: 'messages',
            type: 'insert',
            authorize: ({ user, op }) => {
              if (op.cols.author !== user.userId) throw new SyncDenied('author mismatch')
            },
            execute: ({ op, sql }) => {
              const m = op.cols
              sql.exec('INSERT INTO messages(id, author, content, created_at) VALUES (?, ?, ?, ?)',
                m.id, m.author, m.content, m.created_at)
            },
            afterCommit: ({ op, seq }) => {
              this.afterCommitted.push(`${op.key}@${seq}`)
              // An `audit-` message gets an audit note, written as a synced
              // write, as an app's side effect would be: its changes frame
              // shows subscribers of notes when afterCommit ran (after the ack).
              if (op.key.startsWith('audit-')) {
                this.runSyncedWrite((sql) => {
                  sql.exec('INSERT INTO notes(id, body) VALUES (?, ?)', `note-of-${op.key}`, `committed at ${seq}`)
                })
              }
            },
          })
          .defineMutation({
            collection: 'messages',
            type: 'update',
            execute: ({ op, sql }) => {
              if (op.cols.content !== undefined) {
                sql.exec('UPDATE messages SET content = ? WHERE id = ?', op.cols.content, op.key)
              }
            },
          })
          .defineMutation({
            collection: 'messages',
            type: 'delete',
            execute: ({ op, sql }) => {
              sql.exec('DELETE FROM messages WHERE id = ?', op.key)
            },
          })
          .defineMutation({
            collection: 'tasks',
            type: 'insert',
            // Async on purpose: authorize may await (a lookup, a fetch).
            authorize: async ({ op }) => {
              await scheduler.wait(1)
              // Held until a test calls releaseHeld(): a write that is in flight for as long as the test needs.
              if (op.cols.title === 'held') await this.#waitHeld()
              if (op.cols.title === 'forbidden') throw new SyncDenied('no forbidden tasks')
            },
            execute: ({ op, sql }) => {
              sql.exec('INSERT INTO tasks(id, title, done, rank, category) VALUES (?, ?, ?, ?, ?)',
                op.cols.id, op.cols.title ?? null, op.cols.done ?? null, op.cols.rank ?? null, op.cols.category ?? null)
              if (op.cols.title === 'explode') throw new Error('boom after writing')
            },
          })
          .defineMutation({
            collection: 'tasks',
            type: 'update',
            execute: ({ op, sql }) => {
              for (const [col, value] of Object.entries(op.cols)) {
                if (col === 'title' || col === 'done' || col === 'rank' || col === 'category') {
                  sql.exec(`UPDATE tasks SET ${col} = ? WHERE id = ?`, value as SqlStorageValue, op.key)
                }
              }
            },
          })
          .defineMutation({
            collection: 'tasks',
            type: 'delete',
            execute: ({ op, sql }) => {
              sql.exec('DELETE FROM tasks WHERE id = ?', op.key)
            },
          })
          .defineMutation({
            collection: 'notes',
            type: 'insert',
            // Buggy on purpose, as apps ship them: an id starting 'buggy'
            // makes it read a field of undefined (a TypeError, not a verdict).
            authorize: ({ op }) => {
              if (op.cols.id.startsWith('buggy')) void (op.cols as unknown as { meta: { size: number } }).meta.size
            },
            execute: ({ op, sql }) => {
              sql.exec('INSERT INTO notes(id, body) VALUES (?, ?)', op.cols.id, op.cols.body)
            },
          })
          .defineCommand<{ id: string }, void>({
            // Wrong on purpose: execute must be synchronous.
            name: 'asyncWrite',
            execute: (async ({ args, sql }: { args: { id: string }; sql: SqlStorage }) => {
              sql.exec('INSERT INTO notes(id, body) VALUES (?, ?)', args.id, 'before await')
              await Promise.resolve()
              sql.exec('INSERT INTO notes(id, body) VALUES (?, ?)', `${args.id}-late`, 'after await')
            }) as unknown as () => void,
          })
          // Not idempotent on purpose: the chaos test counts confirmed calls
          // and checks each was applied exactly once.
          .defineCommand<{ id: string }, { rank: number }>({
            name: 'incr',
            execute: ({ args, sql }) => {
              const row = sql
                .exec<{ rank: number }>('UPDATE tasks SET rank = coalesce(rank, 0) + 1 WHERE id = ? RETURNING rank', args.id)
                .toArray()[0]
              if (!row) throw new SyncDenied('no such task')
              return { rank: row.rank }
            },
          })
          .defineCommand<{ text: string }, { echoed: string; by: string }>({
            name: 'echo',
            execute: ({ args, user }) => ({ echoed: args.text, by: (user as Claims).userId }),
          })),
        this.syncOptions(),
      )
    }
  }

  /** Wipes the storage in place and sets up again in the same instance, as an app's reset would. */
  async resetStorage(): Promise<void> {
    await this.ctx.storage.deleteAll()
    this.#setUp()
  }

  protected override parseAttachment(req: Request): Claims {
    const claims = super.parseAttachment(req) // the header routeSyncRequest forged
    if (claims.userId === 'banned') throw new Response('banned', { status: 403 })
    this.upgradeCredentials = { cookie: req.headers.get('Cookie'), authorization: req.headers.get('Authorization') }
    return claims
  }

  /** The credentials the last upgrade still carried when it reached this DO (the Worker strips them). */
  upgradeCredentials: { cookie: string | null; authorization: string | null } | undefined
  lastUpgradeCredentials() {
    return this.upgradeCredentials
  }

  protected syncOptions(): SyncOptions {
    return {}
  }

  // Injected time: syncNow runs this far ahead of the wall clock. Kept in
  // SQL, so an instance woken from hibernation keeps it.
  #clockOffsetMs = 0
  protected override syncNow(): number {
    return Date.now() + this.#clockOffsetMs
  }
  /** Moves the object's clock `ms` forward and (unless `ring` is false) rings its alarm now: sockets whose claims expired close 4001. */
  async advanceClock(ms: number, { ring = true } = {}): Promise<void> {
    this.#clockOffsetMs += ms
    this.sql.exec('INSERT OR REPLACE INTO test_clock(id, offset_ms) VALUES (1, ?)', this.#clockOffsetMs)
    if (ring) await this.ctx.storage.setAlarm(Date.now())
  }
  /** When the alarm rings (ms since the epoch, wall clock), or null. */
  alarmAt(): Promise<number | null> {
    return this.ctx.storage.getAlarm()
  }

  // The app's presence hook: a state that says it is someone else is refused.
  protected override presenceValidate({ user, state }: PresenceContext<Claims, Env>): void {
    const claimed = (state as { as?: unknown } | null)?.as
    if (claimed !== undefined && claimed !== user.userId) throw new SyncDenied('you can only be present as yourself')
  }

  // ---- RPC used by the tests ----
  /** From the next wake on, register as a deploy that dropped `table` would. */
  dropCollectionOnWake(table: string): void {
    this.sql.exec('INSERT OR IGNORE INTO test_dropped_collections(name) VALUES (?)', table)
  }
  /** Returns the seq of the write. */
  serverInsertMessage(m: Message): number {
    this.runSyncedWrite((sql) => {
      sql.exec('INSERT INTO messages(id, author, content, created_at) VALUES (?, ?, ?, ?)',
        m.id, m.author, m.content, m.created_at)
    })
    return this.syncState().head
  }
  /** Inserts tasks server-side (counters for the chaos test); returns the seq. */
  serverInsertTasks(tasks: Task[]): number {
    this.runSyncedWrite((sql) => {
      for (const t of tasks) {
        sql.exec('INSERT INTO tasks(id, title, done, rank, category) VALUES (?, ?, ?, ?, ?)',
          t.id, t.title, t.done, t.rank, t.category)
      }
    })
    return this.syncState().head
  }
  /** Resets the object, as an eviction or a crash would: sockets drop, memory is lost. */
  crash(): void {
    this.ctx.abort('test: reset the Durable Object')
  }
  serverDeleteMessage(id: string): number {
    this.runSyncedWrite((sql) => {
      sql.exec('DELETE FROM messages WHERE id = ?', id)
    })
    return this.syncState().head
  }
  /** Inserts `count` tasks in one synced write: id `${prefix}00001`…, rank = i, category a/b/c. */
  /** Accounts whose counters straddle 2^53 (written as SQL literals, so exact), and one plain column beyond it. */
  seedAccounts(): void {
    this.runSyncedWrite((sql) => {
      sql.exec(`INSERT INTO accounts(id, active, created_at, meta, counter, plain) VALUES
        ('a', 1, 1767225600000, '{"tier":"gold","tags":[1,2]}', 9007199254740993, 9007199254740993),
        ('b', 0, 1767312000000, 'not json', 9007199254740992, 5),
        ('c', 1, 1767398400000, NULL, 5, NULL)`)
    })
  }
  seedTasks(count: number, prefix: string): void {
    this.runSyncedWrite((sql) => {
      for (let i = 1; i <= count; i++) {
        sql.exec('INSERT INTO tasks(id, title, done, rank, category) VALUES (?, ?, ?, ?, ?)',
          `${prefix}${String(i).padStart(5, '0')}`, `task ${i}`, 0, i, ['a', 'b', 'c'][i % 3]!)
      }
    })
  }
  addColumn(): void {
    this.runSyncedWrite((sql) => {
      sql.exec('ALTER TABLE messages ADD COLUMN mood TEXT')
      sql.exec("UPDATE messages SET mood = 'happy'")
    })
  }
  #held = gate()
  #heldWaiting = 0
  async #waitHeld(): Promise<void> {
    this.#heldWaiting++
    try {
      await this.#held.promise
    } finally {
      this.#heldWaiting--
    }
  }
  /** Lets every `held` task insert's authorize finish; one that reaches the gate later waits for the next release. */
  releaseHeld(): void {
    this.#held.resolve()
    this.#held = gate()
  }
  /** How many `held` task inserts wait at the gate: a test releases them once they are there. */
  heldWaiting(): number {
    return this.#heldWaiting
  }

  /** The single number `query` selects (a COUNT, say). */
  count(query: string): number {
    return Number(this.sql.exec(query).raw().next().value?.[0] ?? 0)
  }

  rows(table: 'messages' | 'tasks' | 'notes'): Record<string, SqlStorageValue>[] {
    return this.sql.exec(`SELECT * FROM ${table} ORDER BY id`).toArray()
  }
  state() {
    return this.syncState()
  }
  housekeepAt(nowMs: number): void {
    this.syncHousekeep(nowMs)
  }
  afterCommits(): string[] {
    return this.afterCommitted
  }
  whoAmI(): string {
    return this.instanceId
  }
  /** registerSync again over the same storage in this instance, as a deploy's second call would. */
  registerAgain(): void {
    this.#setUp()
  }
  stats() {
    return this.syncStats()
  }
  inspect() {
    return this.syncInspect()
  }
  /** Turns debug lines on, collected for debugLines(). */
  collectDebugLines(): void {
    this.debug = (line) => this.#debugLines.push(line)
  }
  #debugLines: string[] = []
  debugLines(): string[] {
    return this.#debugLines
  }
  protected override redactClaims(claims: Claims): SyncJson {
    return { userId: claims.userId }
  }
}

/** A promise and the function that resolves it. */
function gate(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {}
  const promise = new Promise<void>((r) => (resolve = r))
  return { promise, resolve }
}

/** `registry` as a later deploy that no longer registers the `dropped` tables would register it. */
function asDeployedWithout<R extends { toRegistrationJson(): string }>(dropped: string[], registry: R): R {
  if (dropped.length === 0) return registry
  return new Proxy(registry, {
    get(target, property) {
      if (property === 'toRegistrationJson') {
        return () => {
          const registration = JSON.parse(target.toRegistrationJson()) as { collections: Array<{ table: string }> }
          registration.collections = registration.collections.filter((c) => !dropped.includes(c.table))
          return JSON.stringify(registration)
        }
      }
      const value: unknown = Reflect.get(target, property, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}

/**
 * TestDO whose frame limits are raised to their ceilings, so that one frame
 * can exhaust the wasm heap: the trap-and-reset path.
 */
export class HugeFramesDO extends TestDO {
  protected override syncOptions(): SyncOptions {
    return { maxJsonValues: 1_000_000, maxFrameBytes: 32 << 20 }
  }
}

/**
 * TestDO with a 1-second change log, for resumes from before the window.
 * Committed outcomes are kept for the default 2 days, said explicitly: a
 * client that was away while the log expired still replays its unconfirmed
 * writes and must get their recorded acks, not run them again.
 */
export class ShortRetentionDO extends TestDO {
  protected override syncOptions(): SyncOptions {
    return { retentionMs: 1000, dedupRetentionMs: 2 * 24 * 3600 * 1000 }
  }
}

export class ProbeDO extends SyncDurableObject<Env, Claims> {
  protected override parseAttachment(): Claims {
    return { userId: 'probe' }
  }
  /** Runs `ddl`, then registers `table` with `pk`; returns the error's message, if any. */
  tryRegister(ddl: string, table: string, pk: string): string | null {
    return this.registrationError(ddl, table, pk)?.message ?? null
  }
  /** As tryRegister, with the error's class name and wire code (a SyncRegistrationError's). */
  registrationError(ddl: string, table: string, pk: string): { name: string; code: number | undefined; message: string } | null {
    this.sql.exec(ddl)
    try {
      this.registerSync(
        new SyncRegistry<Claims, Env, Record<string, Record<string, unknown>>>().defineCollection({ table, pk }),
      )
      return null
    } catch (error) {
      if (!(error instanceof Error)) return { name: typeof error, code: undefined, message: String(error) }
      return { name: error.name, code: (error as { code?: number }).code, message: error.message }
    }
  }
  triggers(): string[] {
    return this.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
      .toArray().map((r) => r.name)
  }
  exec(sql: string): void {
    this.sql.exec(sql)
  }
}

/** A DO that forgot to call registerSync: every frame must say so. */
export class UnregisteredDO extends SyncDurableObject<Env, Claims> {
  protected override parseAttachment(): Claims {
    return { userId: 'someone' }
  }
}

// Test-only authentication: `?user=` names the user (the examples show a
// real credential check); `?exp=` stands for a token's expiry, which changes
// at every refresh. routeSyncRequest always overwrites the claims header, so
// a client cannot forge it.
function testClaims(req: Request): Claims | null {
  const url = new URL(req.url)
  const user = url.searchParams.get('user') ?? ''
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(user)) return null
  const exp = url.searchParams.get('exp')
  return exp ? { userId: user, exp: Number(exp) } : { userId: user }
}

export default {
  async fetch(req: Request, env: Env): Promise<Response> {
    const url = new URL(req.url)
    const admin = url.pathname.match(/^\/admin\/(sync|short)\/([A-Za-z0-9_-]{1,64})\/([a-z-]+)$/)
    if (admin) {
      const namespace = (admin[1] === 'short' ? env.SHORT_DO : env.TEST_DO) as DurableObjectNamespace<TestDO>
      return adminRequest(namespace, admin[2]!, admin[3]!, req)
    }
    const seedStyle = url.pathname.match(/^\/seed-style\/([A-Za-z0-9_-]{1,64})$/)
    if (seedStyle) return seedStyleWorker(req, env, seedStyle[1]!)
    const routed = await routeSyncRequest(req, env, syncRoutes(env))
    return routed ?? new Response('not found', { status: 404 })
  },
} satisfies ExportedHandler<Env>

/** The fixture's sync routes: its namespaces, its test authentication, one endpoint. */
export function syncRoutes(env: Env): RouteSyncOptions<Env, Claims> {
  return {
    namespace: { sync: env.TEST_DO, short: env.SHORT_DO, huge: env.HUGE_DO, unregistered: env.UNREGISTERED_DO },
    authenticate: testClaims,
    endpoints: {
      // An endpoint beside the socket: answers with the claims it was authenticated with.
      claims: ({ claims, room, route }) => Response.json({ claims, room, route }),
      // A server render's read, as JSON (?subs=[…]): for the clients outside workerd.
      snapshot: async ({ req, room, route }) => {
        const subs = JSON.parse(new URL(req.url).searchParams.get('subs') ?? '[]') as SnapshotSub[]
        try {
          return Response.json(await readSyncSnapshot(req, env, syncRoutes(env), { room, route, subs }))
        } catch (error) {
          const { name, code, closeCode } = error as { name: string; code?: number; closeCode?: number }
          return Response.json({ name, code, closeCode }, { status: 400 })
        }
      },
    },
  }
}

/**
 * A Worker written by hand, as apps wrote them before routeSyncRequest:
 * verify, forge the claims header, forward. It must keep working.
 */
async function seedStyleWorker(req: Request, env: Env, room: string): Promise<Response> {
  const claims = testClaims(req)
  if (!claims) return refuseConnection(req)
  const headers = new Headers(req.headers)
  headers.set('x-claims', JSON.stringify(claims))
  return env.TEST_DO.get(env.TEST_DO.idFromName(room)).fetch(new Request(req, { headers }))
}

// Test-only HTTP hooks into a room, for harnesses outside workerd (the
// client tests in Node). A real app would never expose these.
async function adminRequest(
  namespace: DurableObjectNamespace<TestDO>,
  name: string,
  action: string,
  req: Request,
): Promise<Response> {
  const stub = namespace.get(namespace.idFromName(name))
  const body = req.method === 'POST' ? ((await req.json()) as Record<string, unknown>) : {}
  switch (action) {
    case 'server-insert':
      return Response.json({ seq: await stub.serverInsertMessage(body as unknown as Message) })
    case 'server-delete':
      return Response.json({ seq: await stub.serverDeleteMessage(String(body.id)) })
    case 'server-insert-tasks':
      return Response.json({ seq: await stub.serverInsertTasks(body.tasks as Task[]) })
    case 'crash': {
      const before = await stub.whoAmI()
      try {
        await stub.crash()
      } catch {
        // abort() rejects the call that made it
      }
      // Prove the reset happened: the next call (on a new stub: the old one
      // saw the abort) meets a new instance.
      const after = await namespace.get(namespace.idFromName(name)).whoAmI()
      if (after === before) return new Response('the Durable Object was not reset', { status: 500 })
      return Response.json({ ok: true })
    }
    case 'seed-accounts':
      await stub.seedAccounts()
      return Response.json({ ok: true })
    case 'seed-tasks':
      await stub.seedTasks(Number(body.count ?? 0), String(body.prefix ?? 't'))
      return Response.json({ ok: true })
    case 'housekeep':
      await stub.housekeepAt(Date.now() + Number(body.aheadMs ?? 0))
      return Response.json(await stub.state())
    case 'state':
      return Response.json(await stub.state())
    case 'advance-clock':
      await stub.advanceClock(Number(body.ms ?? 0))
      return Response.json({ ok: true })
    case 'release-held':
      await stub.releaseHeld()
      return Response.json({ ok: true })
    case 'whoami':
      // Which instance serves the room: a new id means the old one was evicted or reset.
      return Response.json({ instanceId: await stub.whoAmI() })
    case 'reset-storage':
      // ctx.storage.deleteAll() and a fresh registerSync in the same instance:
      // a new epoch, and live sockets are closed with 1012 (RESET).
      await stub.resetStorage()
      return Response.json(await stub.state())
    case 'rows':
      return Response.json({
        messages: await stub.rows('messages'),
        tasks: await stub.rows('tasks'),
        notes: await stub.rows('notes'),
      })
    default:
      return new Response('unknown admin action', { status: 404 })
  }
}

// Keep DurableObject referenced so the import is not dropped in type-only builds.
export type { DurableObject }
