// The chat example's Worker and Durable Object: the README's quick start,
// runnable. Who the user is and which rooms they may open is decided in one
// place, ../../common/auth.ts. This Worker routes /auth/login there, lets
// routeSyncRequest serve every /sync/<room> upgrade (authenticate(), then
// the forged claims header), and serves the page otherwise.
import { type PresenceContext, routeSyncRequest, SyncDenied, SyncDurableObject, syncInspector, type SyncJson, SyncRegistry } from 'seqsync'

import { type AuthEnv, authenticate, type Claims, login } from '../../common/auth'

export interface Env extends AuthEnv {
  CHAT_ROOM: DurableObjectNamespace<ChatRoom>
  ASSETS: Fetcher
  /** User ids (comma-separated) who may open /sync/<room>/inspect. Unset: no one. */
  INSPECTORS?: string
  /** "1": the DO writes a JSON line per connect, resume, refusal and mutation outcome. */
  SEQSYNC_DEBUG?: string
}

export interface Message {
  id: string
  author: string
  content: string
  created_at: number
}

export class ChatRoom extends SyncDurableObject<Env, Claims> {
  /** How many sockets the room holds (the browser tests check that a profile's tabs share one). */
  sockets(): number {
    return this.ctx.getWebSockets().length
  }

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    this.debug = env.SEQSYNC_DEBUG === '1'
    ctx.blockConcurrencyWhile(async () => {
      this.sql.exec(`CREATE TABLE IF NOT EXISTS messages (
        id TEXT PRIMARY KEY,
        author TEXT NOT NULL,
        content TEXT NOT NULL,
        created_at INTEGER NOT NULL
      )`)
      this.registerSync(
        new SyncRegistry<Claims, Env, { messages: Message }>()
          .defineCollection({ table: 'messages', pk: 'id' })
          .defineMutation({
            collection: 'messages',
            type: 'insert',
            // op.cols holds whatever JSON the client sent, whatever its
            // TypeScript type says. Check each field, so that a bad write is
            // refused with a reason, not a TypeError.
            authorize: ({ user, op }) => {
              const m = op.cols
              if (m.author !== user.userId) throw new SyncDenied('author must be the signed-in user')
              if (typeof m.content !== 'string' || m.content.length < 1 || m.content.length > 2000) {
                throw new SyncDenied('content must be a string of 1 to 2000 characters')
              }
              if (!Number.isSafeInteger(m.created_at)) throw new SyncDenied('created_at must be an integer (ms since the epoch)')
            },
            execute: ({ op, sql }) => {
              const m = op.cols
              sql.exec(
                'INSERT INTO messages(id, author, content, created_at) VALUES (?, ?, ?, ?)',
                m.id,
                m.author,
                m.content,
                m.created_at,
              )
            },
          })
          .defineMutation({
            collection: 'messages',
            type: 'delete',
            authorize: ({ user, op, sql }) => {
              const row = sql.exec<{ author: string }>('SELECT author FROM messages WHERE id = ?', op.key).toArray()[0]
              if (row && row.author !== user.userId) throw new SyncDenied('only the author may delete a message')
            },
            // The author condition is repeated here, so the rule holds even if
            // the row changed after authorize looked at it.
            execute: ({ user, op, sql }) => {
              sql.exec('DELETE FROM messages WHERE id = ? AND author = ?', op.key, user.userId)
            },
          }),
      )
    })
  }

  // Presence in this room is only "typing or not": anything else is refused.
  protected override presenceValidate({ state }: PresenceContext<Claims, Env>): void {
    const typing = (state as { typing?: unknown } | null)?.typing
    if (typeof typing !== 'boolean' || Object.keys(state as object).length !== 1) {
      throw new SyncDenied('presence is {typing: boolean}')
    }
  }

  // What the inspector shows of a socket's user: here the claims are only the user id.
  protected override redactClaims(claims: Claims): SyncJson {
    return { userId: claims.userId }
  }
}

export default {
  async fetch(req: Request, env: Env): Promise<Response> {
    if (new URL(req.url).pathname === '/auth/login') return login(req, env)
    // /sync/<room>: authenticate, forge the claims, forward to the room's DO; anything else is the page.
    const routed = await routeSyncRequest(req, env, {
      namespace: env.CHAT_ROOM,
      authenticate: (req, { room }) => authenticate(req, env, room),
      endpoints: {
        // /sync/<room>/stats, for a member of the room: its socket count.
        stats: async ({ stub }) => Response.json({ sockets: await (stub as DurableObjectStub<ChatRoom>).sockets() }),
        // /sync/<room>/inspect: a live view of the room's DO, for the users INSPECTORS names.
        inspect: syncInspector<Env, Claims>({
          authorize: ({ claims }) => (env.INSPECTORS ?? '').split(',').includes(claims.userId),
        }),
      },
    })
    return routed ?? env.ASSETS.fetch(req)
  },
} satisfies ExportedHandler<Env>
