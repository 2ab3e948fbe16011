// The on-demand page: one panel per category. An open panel's live query is
// what asks the Durable Object for rows (syncMode 'on-demand' → loadSubset);
// closing it releases them. Unopened categories never sync.
import { createCollection, eq } from '@tanstack/db'
import { useLiveQuery } from '@tanstack/react-db'
import { useEffect, useState, useSyncExternalStore } from 'react'
import { createRoot } from 'react-dom/client'
import { doCollectionOptions, WebSocketTransport } from 'seqsync/client'

import { signIn } from '../../common/sign-in'
import { CATEGORIES, type Item } from './shared'

const params = new URLSearchParams(location.search)
const room = params.get('room') ?? 'shop'
// The demo sign-in (see ../../common/auth.ts): the upgrade carries its cookie.
const user = await signIn(params.get('user') ?? 'guest')
const scheme = location.protocol === 'https:' ? 'wss' : 'ws'

// Local-first: an opened panel's rows are kept in IndexedDB, so after a
// reload it renders at once and is revalidated.
const transport = new WebSocketTransport({
  url: `${scheme}://${location.host}/sync/${room}`,
  local: { name: `seqsync-on-demand ${room} ${user}` },
})
const items = createCollection(
  doCollectionOptions<Item>({ transport, table: 'items', getKey: (i) => i.id, syncMode: 'on-demand' }),
)
// For the browser tests: what the client holds, and the transport.
Object.assign(window, { seqsync: { transport, items } })

// How many rows this tab holds. Polled rather than subscribed: on an
// on-demand collection a change subscription with its initial state would
// itself ask the server for every row.
function useSyncedRowCount(): number {
  const [count, setCount] = useState(items.size)
  useEffect(() => {
    const timer = setInterval(() => setCount(items.size), 100)
    return () => clearInterval(timer)
  }, [])
  return count
}

function Panel({ category }: { category: string }) {
  const { data, isReady } = useLiveQuery(
    (q) => q.from({ i: items }).where(({ i }) => eq(i.category, category)).orderBy(({ i }) => i.name, 'asc'),
    [category],
  )
  const [name, setName] = useState('')
  const add = (e: React.FormEvent) => {
    e.preventDefault()
    if (!name.trim()) return
    items.insert({
      id: `${category}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`,
      category,
      name: name.trim(),
      price: 9.99,
      owner: user,
      created_at: Date.now(),
    })
    setName('')
  }
  return (
    <section data-testid={`panel-${category}`} data-ready={String(isReady)}>
      <ul>
        {data.map((item) => (
          <li key={item.id} data-testid="item">
            {item.name} <small>${item.price.toFixed(2)}</small>
            {item.owner === user && (
              <button data-testid="delete" onClick={() => items.delete(item.id)} aria-label="Delete">×</button>
            )}
          </li>
        ))}
      </ul>
      <form onSubmit={add}>
        <input data-testid={`new-${category}`} value={name} onChange={(e) => setName(e.target.value)} placeholder={`New ${category} item`} />
        <button data-testid={`add-${category}`}>Add</button>
      </form>
    </section>
  )
}

function Catalog() {
  const [open, setOpen] = useState<string[]>([])
  const status = useSyncExternalStore((cb) => transport.subscribe(cb), () => transport.status)
  const synced = useSyncedRowCount()
  const toggle = (c: string) => setOpen((o) => (o.includes(c) ? o.filter((x) => x !== c) : [...o, c]))
  return (
    <main>
      <header>
        <h1>Catalog</h1>
        <span className="status" data-testid="status" data-status={status}>{status}</span>
      </header>
      <p>
        Rows held by this tab: <b data-testid="synced-count">{synced}</b> (of {CATEGORIES.length} categories, only
        the open ones sync)
      </p>
      {CATEGORIES.map((c) => (
        <div key={c} className="category">
          <button data-testid={`toggle-${c}`} onClick={() => toggle(c)} aria-expanded={open.includes(c)}>
            {open.includes(c) ? '▾' : '▸'} {c}
          </button>
          {open.includes(c) && <Panel category={c} />}
        </div>
      ))}
    </main>
  )
}

createRoot(document.getElementById('root')!).render(<Catalog />)
