// The browser's half of the server-rendered chat: hydrate TanStack DB with
// the state the Worker put in the page (the rows, and the cursor that covers
// them), then hydrate React over the server's markup. The messages show
// before any frame arrives; the transport's first hello resumes from the
// hydrated cursor, so the socket brings only what changed since the render.
import { DbClient, type DehydratedDbState } from '@tanstack/db'
import { DbProvider } from '@tanstack/react-db'
import { hydrateRoot } from 'react-dom/client'
import { WebSocketTransport } from 'seqsync/client'

import { ChatView } from './view'

const root = document.getElementById('root')!
const room = root.dataset.room!
const user = root.dataset.user!
const state = JSON.parse(document.getElementById('seqsync-state')!.textContent!) as DehydratedDbState

const scheme = location.protocol === 'https:' ? 'wss' : 'ws'
const transport = new WebSocketTransport({
  url: `${scheme}://${location.host}/sync/${room}`,
  // Dial when the hydrated collection starts syncing (React's first effects),
  // so the first hello carries its cursor; a socket opened before it would
  // have said hello without it, and the collection would reload its rows.
  lazy: true,
  onError: (error) => console.warn(error),
})
const db = new DbClient({ transport })
db.hydrate(state) // before the first render: the rows are there when React hydrates
// For the browser tests: the transport and the client.
Object.assign(window, { seqsync: { transport, db } })

hydrateRoot(
  root,
  <DbProvider client={db}>
    <ChatView room={room} user={user} />
  </DbProvider>,
)
