// The board example: 5,000 tasks on one Durable Object, ranked by votes.
// The page shows a window of the top tasks (useLiveInfiniteQuery over an
// on-demand collection), so only the rows on screen reach the browser; a
// vote that lifts a task into the window moves it in live. Sign-in and
// room access are decided in ../../common/auth.ts, as in the chat example.
// Votes change only through the `vote` command, by one at a time. A
// client update may change only a title; any member may delete a task (done).
import { routeSyncRequest, SyncDenied, SyncDurableObject, SyncRegistry } from 'seqsync'

import { type AuthEnv, authenticate, type Claims, login } from '../../common/auth'
import { type Task, TASK_COUNT, taskId, type VoteArgs } from './shared'

export interface Env extends AuthEnv {
  BOARD: DurableObjectNamespace<Board>
  ASSETS: Fetcher
}

// Arguments arrive as whatever JSON the client sent: check their shape, not
// just their TypeScript type.
function isVote(args: unknown): args is VoteArgs {
  const a = args as { id?: unknown; delta?: unknown } | null
  return typeof a?.id === 'string' && a.id.length <= 64 && (a.delta === 1 || a.delta === -1)
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
            // Any member of the board (authenticate() checked the room) may rename
            // a task. Nothing else is a client's to set: votes move only by
            // `vote`, and updated_at is the server's clock.
            authorize: ({ op }) => {
              if (Object.keys(op.cols).some((c) => c !== 'title')) throw new SyncDenied("only a task's title may be edited")
              const { title } = op.cols
              if (typeof title !== 'string' || title.trim().length < 1 || title.length > 200) {
                throw new SyncDenied('title must be a string of 1 to 200 characters')
              }
            },
            execute: ({ op, sql }) => {
              sql.exec('UPDATE tasks SET title = ?, updated_at = ? WHERE id = ?', op.cols.title, Date.now(), op.key)
            },
          })
          // Any member may mark a task done, which deletes it.
          .defineMutation({
            collection: 'tasks',
            type: 'delete',
            execute: ({ op, sql }) => {
              sql.exec('DELETE FROM tasks WHERE id = ?', op.key)
            },
          })
          // Votes are cast server-side as an atomic increment, on any task,
          // loaded or not. Each call is exactly one vote, up or down.
          .defineCommand<VoteArgs, { votes: number }>({
            name: 'vote',
            authorize: ({ args }) => {
              if (!isVote(args)) throw new SyncDenied('a vote is { id: string, delta: 1 or -1 }')
            },
            execute: ({ args, sql }) => {
              const row = sql
                .exec<{ votes: number }>('UPDATE tasks SET votes = votes + ?, updated_at = ? WHERE id = ? RETURNING votes',
                  args.delta, Date.now(), args.id)
                .toArray()[0]
              if (!row) throw new SyncDenied('no such task')
              return { votes: row.votes }
            },
          }),
      )
      this.#seedOnce()
    })
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
    if (new URL(req.url).pathname === '/auth/login') return login(req, env)
    // /sync/<room>: authenticate, forge the claims, forward to the room's DO; anything else is the page.
    const routed = await routeSyncRequest(req, env, {
      namespace: env.BOARD,
      authenticate: (req, { room }) => authenticate(req, env, room),
    })
    return routed ?? env.ASSETS.fetch(req)
  },
} satisfies ExportedHandler<Env>
