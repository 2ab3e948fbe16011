// The chat example's Worker and Durable Object: seed 000's quick start,
// runnable. Every /sync/<room> WebSocket upgrade is authenticated here, the
// claims header is forged (overwriting anything the client sent), and the
// request goes to the room's Durable Object. Everything else is the page.
import { refuseConnection, SyncDurableObject, SyncRegistry } from 'seqsync'

export interface Env {
  CHAT_ROOM: DurableObjectNamespace<ChatRoom>
  ASSETS: Fetcher
}

interface Claims {
  userId: string
}

export interface Message {
  id: string
  author: string
  content: string
  created_at: number
}

export class ChatRoom extends SyncDurableObject<Env, Claims> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
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
            authorize: ({ user, op }) => {
              if (op.cols.author !== user.userId) throw new Error('author mismatch')
              if (op.cols.content.length > 2000) throw new Error('message too long')
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
            authorize: ({ user, op }) => {
              const row = this.sql
                .exec<{ author: string }>('SELECT author FROM messages WHERE id = ?', op.key)
                .toArray()[0]
              if (row && row.author !== user.userId) throw new Error('only the author may delete')
            },
            execute: ({ op, sql }) => {
              sql.exec('DELETE FROM messages WHERE id = ?', op.key)
            },
          }),
      )
    })
  }

  protected parseAttachment(req: Request): Claims {
    return JSON.parse(req.headers.get('x-claims') ?? '{}') as Claims
  }
}

// Demo authentication: the `user` query parameter names the user. A real app
// verifies a token here; what matters is that the claims are set by the
// Worker, never taken from the client.
function verifyUser(req: Request): Claims | null {
  const user = new URL(req.url).searchParams.get('user') ?? ''
  return /^[A-Za-z0-9_-]{1,32}$/.test(user) ? { userId: user } : null
}

export default {
  async fetch(req: Request, env: Env): Promise<Response> {
    const match = new URL(req.url).pathname.match(/^\/sync\/([A-Za-z0-9_-]{1,64})$/)
    if (!match) return env.ASSETS.fetch(req)
    const claims = verifyUser(req)
    if (!claims) return refuseConnection(req) // a terminal 4401 close: the client stops retrying
    const headers = new Headers(req.headers)
    headers.set('x-claims', JSON.stringify(claims)) // overwrites any client-sent value
    const stub = env.CHAT_ROOM.get(env.CHAT_ROOM.idFromName(match[1]!))
    return stub.fetch(new Request(req, { headers }))
  },
} satisfies ExportedHandler<Env>
