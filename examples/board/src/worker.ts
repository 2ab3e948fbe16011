// The board example: 5,000 tasks on one Durable Object, ranked by votes.
// The page shows a window of the top tasks (useLiveInfiniteQuery over an
// on-demand collection), so only the rows on screen reach the browser; a
// vote that lifts a task into the window moves it in live.
import { refuseConnection, SyncDurableObject, SyncRegistry } from 'seqsync'

import { type Task, TASK_COUNT, taskId } from './shared'

export interface Env {
  BOARD: DurableObjectNamespace<Board>
  ASSETS: Fetcher
}

interface Claims {
  userId: string
}

export class Board extends SyncDurableObject<Env, Claims> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    ctx.blockConcurrencyWhile(async () => {
      this.sql.exec(`CREATE TABLE IF NOT EXISTS tasks (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        votes INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      )`)
      // Windows are resolved with ORDER BY votes: keep that an index walk.
      this.sql.exec('CREATE INDEX IF NOT EXISTS tasks_by_votes ON tasks(votes)')
      this.registerSync(
        new SyncRegistry<Claims, Env, { tasks: Task }>()
          .defineCollection({ table: 'tasks', pk: 'id' })
          .defineMutation({
            collection: 'tasks',
            type: 'update',
            authorize: ({ op }) => {
              const allowed = ['votes', 'updated_at']
              if (Object.keys(op.cols).some((c) => !allowed.includes(c))) throw new Error('only votes change')
            },
            execute: ({ op, sql }) => {
              sql.exec('UPDATE tasks SET votes = ?, updated_at = ? WHERE id = ?',
                op.cols.votes ?? 0, op.cols.updated_at ?? Date.now(), op.key)
            },
          })
          // The firehose and the "bump" button vote server-side: an atomic
          // increment, on any task, loaded or not.
          .defineCommand<{ id: string; amount?: number }, { votes: number }>({
            name: 'vote',
            authorize: ({ args }) => {
              if (typeof args?.id !== 'string') throw new Error('vote needs a task id')
            },
            execute: ({ args, sql }) => {
              const amount = Math.max(-1_000_000, Math.min(1_000_000, Math.trunc(args.amount ?? 1)))
              const row = sql
                .exec<{ votes: number }>('UPDATE tasks SET votes = votes + ?, updated_at = ? WHERE id = ? RETURNING votes',
                  amount, Date.now(), args.id)
                .toArray()[0]
              if (!row) throw new Error('no such task')
              return { votes: row.votes }
            },
          }),
      )
      this.#seedOnce()
    })
  }

  protected parseAttachment(req: Request): Claims {
    return JSON.parse(req.headers.get('x-claims') ?? '{}') as Claims
  }

  // TASK_COUNT tasks with distinct vote counts (7919 is coprime with 5,000).
  #seedOnce(): void {
    if (this.sql.exec<{ n: number }>('SELECT COUNT(*) AS n FROM tasks').one().n > 0) return
    this.runSyncedWrite((sql) => {
      for (let n = 0; n < TASK_COUNT; n++) {
        sql.exec('INSERT INTO tasks(id, title, votes, updated_at) VALUES (?, ?, ?, ?)',
          taskId(n), `Task ${n}`, (n * 7919) % TASK_COUNT, 0)
      }
    })
  }
}

export default {
  async fetch(req: Request, env: Env): Promise<Response> {
    const url = new URL(req.url)
    const match = url.pathname.match(/^\/sync\/([A-Za-z0-9_-]{1,64})$/)
    if (!match) return env.ASSETS.fetch(req)
    const user = url.searchParams.get('user') ?? ''
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(user)) return refuseConnection(req)
    const headers = new Headers(req.headers)
    headers.set('x-claims', JSON.stringify({ userId: user }))
    const stub = env.BOARD.get(env.BOARD.idFromName(match[1]!))
    return stub.fetch(new Request(req, { headers }))
  },
} satisfies ExportedHandler<Env>
