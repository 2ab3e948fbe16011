// The on-demand example's Worker and Durable Object: a catalog of items in
// categories. The page syncs a category only while its panel is open, so
// the rows of unopened categories never leave the Durable Object. Sign-in
// and room access are decided in ../../common/auth.ts, as in the chat example.
import { routeSyncRequest, SyncDenied, SyncDurableObject, SyncRegistry } from 'seqsync'

import { type AuthEnv, authenticate, type Claims, login } from '../../common/auth'
import { CATEGORIES, type Item, ITEMS_PER_CATEGORY } from './shared'

export interface Env extends AuthEnv {
  CATALOG: DurableObjectNamespace<Catalog>
  ASSETS: Fetcher
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
        owner TEXT NOT NULL DEFAULT '',
        created_at INTEGER NOT NULL
      )`)
      // A catalog stored before items had an owner (an earlier dev database).
      if (!this.sql.exec(`SELECT 1 FROM pragma_table_info('items') WHERE name = 'owner'`).toArray().length) {
        this.sql.exec(`ALTER TABLE items ADD COLUMN owner TEXT NOT NULL DEFAULT ''`)
      }
      this.sql.exec('CREATE INDEX IF NOT EXISTS items_by_category ON items(category)')
      this.registerSync(
        new SyncRegistry<Claims, Env, { items: Item }>()
          .defineCollection({ table: 'items', pk: 'id' })
          .defineMutation({
            collection: 'items',
            type: 'insert',
            // op.cols holds whatever JSON the client sent: check each field's type.
            authorize: ({ user, op }) => {
              const i = op.cols
              if (i.owner !== user.userId) throw new SyncDenied('owner must be the signed-in user')
              if (!(CATEGORIES as readonly unknown[]).includes(i.category)) throw new SyncDenied('unknown category')
              if (typeof i.name !== 'string' || i.name.length < 1 || i.name.length > 200) {
                throw new SyncDenied('name must be a string of 1 to 200 characters')
              }
              if (typeof i.price !== 'number' || i.price < 0 || i.price > 1e6) throw new SyncDenied('price must be a number from 0 to 1,000,000')
              if (!Number.isSafeInteger(i.created_at)) throw new SyncDenied('created_at must be an integer (ms since the epoch)')
            },
            execute: ({ op, sql }) => {
              const i = op.cols
              sql.exec('INSERT INTO items(id, category, name, price, owner, created_at) VALUES (?, ?, ?, ?, ?, ?)',
                i.id, i.category, i.name, i.price, i.owner, i.created_at)
            },
          })
          .defineMutation({
            collection: 'items',
            type: 'delete',
            // Only the user who added an item may delete it. The seeded items
            // (owner '') belong to nobody. An item already gone is a no-op.
            authorize: ({ user, op, sql }) => {
              const row = sql.exec<{ owner: string }>('SELECT owner FROM items WHERE id = ?', op.key).toArray()[0]
              if (row && row.owner !== user.userId) throw new SyncDenied('only the owner may delete an item')
            },
            // The owner condition is repeated here, so the rule holds even if
            // the row changed after authorize looked at it.
            execute: ({ user, op, sql }) => {
              sql.exec('DELETE FROM items WHERE id = ? AND owner = ?', op.key, user.userId)
            },
          }),
      )
      this.#seedOnce()
    })
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

export default {
  async fetch(req: Request, env: Env): Promise<Response> {
    if (new URL(req.url).pathname === '/auth/login') return login(req, env)
    // /sync/<room>: authenticate, forge the claims, forward to the room's DO; anything else is the page.
    const routed = await routeSyncRequest(req, env, {
      namespace: env.CATALOG,
      authenticate: (req, { room }) => authenticate(req, env, room),
    })
    return routed ?? env.ASSETS.fetch(req)
  },
} satisfies ExportedHandler<Env>
