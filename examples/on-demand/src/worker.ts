// The on-demand example's Worker and Durable Object: a catalog of items in
// categories. The page syncs a category only while its panel is open, so
// the rows of unopened categories never leave the Durable Object.
import { refuseConnection, SyncDurableObject, SyncRegistry } from 'seqsync'

import { CATEGORIES, type Item, ITEMS_PER_CATEGORY } from './shared'

export interface Env {
  CATALOG: DurableObjectNamespace<Catalog>
  ASSETS: Fetcher
}

interface Claims {
  userId: string
}

export class Catalog extends SyncDurableObject<Env, Claims> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    ctx.blockConcurrencyWhile(async () => {
      this.sql.exec(`CREATE TABLE IF NOT EXISTS items (
        id TEXT PRIMARY KEY,
        category TEXT NOT NULL,
        name TEXT NOT NULL,
        price REAL NOT NULL,
        created_at INTEGER NOT NULL
      )`)
      this.sql.exec('CREATE INDEX IF NOT EXISTS items_by_category ON items(category)')
      this.registerSync(
        new SyncRegistry<Claims, Env, { items: Item }>()
          .defineCollection({ table: 'items', pk: 'id' })
          .defineMutation({
            collection: 'items',
            type: 'insert',
            authorize: ({ op }) => {
              if (!(CATEGORIES as readonly string[]).includes(op.cols.category)) throw new Error('unknown category')
              if (!op.cols.name || op.cols.name.length > 200) throw new Error('a name of 1 to 200 characters')
            },
            execute: ({ op, sql }) => {
              const i = op.cols
              sql.exec('INSERT INTO items(id, category, name, price, created_at) VALUES (?, ?, ?, ?, ?)',
                i.id, i.category, i.name, i.price, i.created_at)
            },
          })
          .defineMutation({
            collection: 'items',
            type: 'delete',
            execute: ({ op, sql }) => {
              sql.exec('DELETE FROM items WHERE id = ?', op.key)
            },
          }),
      )
      this.#seedOnce()
    })
  }

  protected parseAttachment(req: Request): Claims {
    return JSON.parse(req.headers.get('x-claims') ?? '{}') as Claims
  }

  // A fresh catalog gets ITEMS_PER_CATEGORY items in each category.
  #seedOnce(): void {
    const count = this.sql.exec<{ n: number }>('SELECT COUNT(*) AS n FROM items').one().n
    if (count > 0) return
    this.runSyncedWrite((sql) => {
      let n = 0
      for (const category of CATEGORIES) {
        for (let i = 1; i <= ITEMS_PER_CATEGORY; i++) {
          sql.exec('INSERT INTO items(id, category, name, price, created_at) VALUES (?, ?, ?, ?, ?)',
            `${category}-${String(i).padStart(3, '0')}`, category, `${category} item ${i}`,
            Math.round((5 + ((n * 37) % 95)) * 100) / 100, n++)
        }
      }
    })
  }
}

// Demo authentication, as in the chat example: `?user=` names the user.
export default {
  async fetch(req: Request, env: Env): Promise<Response> {
    const url = new URL(req.url)
    const match = url.pathname.match(/^\/sync\/([A-Za-z0-9_-]{1,64})$/)
    if (!match) return env.ASSETS.fetch(req)
    const user = url.searchParams.get('user') ?? ''
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(user)) return refuseConnection(req)
    const headers = new Headers(req.headers)
    headers.set('x-claims', JSON.stringify({ userId: user }))
    const stub = env.CATALOG.get(env.CATALOG.idFromName(match[1]!))
    return stub.fetch(new Request(req, { headers }))
  },
} satisfies ExportedHandler<Env>
