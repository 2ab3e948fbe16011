// An app as a user writes it against the installed package: one Durable
// Object class with one collection, fronted by routeSyncRequest.
import { routeSyncRequest, SyncDurableObject, SyncRegistry } from 'seqsync'

export class Room extends SyncDurableObject {
  constructor(ctx, env) {
    super(ctx, env)
    ctx.blockConcurrencyWhile(async () => {
      this.sql.exec('CREATE TABLE IF NOT EXISTS notes (id TEXT PRIMARY KEY, body TEXT NOT NULL)')
      this.registerSync(
        new SyncRegistry().defineCollection({ table: 'notes', pk: 'id' }).defineMutation({
          collection: 'notes',
          type: 'insert',
          execute: ({ op, sql }) => {
            sql.exec('INSERT INTO notes(id, body) VALUES (?, ?)', op.cols.id, String(op.cols.body))
          },
        }),
      )
    })
  }
}

export default {
  async fetch(req, env) {
    // A test app: everyone is the same user. A real one verifies a credential here.
    const routed = await routeSyncRequest(req, env, { namespace: env.ROOM, authenticate: () => ({ userId: 'app' }) })
    return routed ?? new Response('not found', { status: 404 })
  },
}
