// The chat page: one room's messages, synced eagerly, live in every tab.
// Local-first: the messages and the unsent ones are kept in IndexedDB, so a
// reload shows them at once (and the unsent ones as pending until the server
// confirms them), and the tabs of the browser share one socket.
import { createCollection, eq } from '@tanstack/db'
import { useLiveQuery } from '@tanstack/react-db'
import { useState, useSyncExternalStore } from 'react'
import { createRoot } from 'react-dom/client'
import { doCollectionOptions, WebSocketTransport } from 'seqsync/client'

import { signIn } from '../../shared/sign-in'
import type { Message } from './worker'

const params = new URLSearchParams(location.search)
const room = params.get('room') ?? 'lobby'
// The demo sign-in stands in for a login form: `?user=` picks the name.
// The server signs that name into a session cookie, and the upgrade
// carries the cookie.
const user = await whoAmI(params.get('user') ?? localStorage.getItem('seqsync-user') ?? `guest${Math.floor(Math.random() * 1e4)}`)
localStorage.setItem('seqsync-user', user)

/** Signs in; offline (the request cannot reach the server), goes on as the user signed in last. */
async function whoAmI(wanted: string): Promise<string> {
  try {
    return await signIn(wanted)
  } catch (error) {
    // The session cookie of that sign-in still goes with the upgrade once the server is back.
    if (error instanceof TypeError && localStorage.getItem('seqsync-user') === wanted) return wanted
    throw error
  }
}

const scheme = location.protocol === 'https:' ? 'wss' : 'ws'
const transport = new WebSocketTransport({
  url: `${scheme}://${location.host}/sync/${room}`,
  // The local copy is the user's: another user signed in on this browser gets their own.
  local: { name: `seqsync-chat ${room} ${user}` },
  onError: (error) => console.warn(error),
})
const messages = createCollection(
  doCollectionOptions<Message>({ transport, table: 'messages', getKey: (m) => m.id }),
)
// For the browser tests: the transport and what the client holds.
Object.assign(window, { seqsync: { transport, messages } })

// Time-ordered ids (like ULIDs): the client mints the key, so the optimistic
// row and the confirmed row are the same row.
function newId(): string {
  return Date.now().toString(36).padStart(10, '0') + crypto.randomUUID().slice(0, 8)
}

function ConnectionStatus() {
  const status = useSyncExternalStore(
    (onChange) => transport.subscribe(onChange),
    () => transport.status,
  )
  const pending = useLiveQuery((q) => q.from({ m: messages }).where(({ m }) => eq(m.$hasPendingWrites, true))).data.length
  return (
    <span className="status" data-testid="status" data-status={status}>
      {status === 'live' ? 'live' : `offline (${status})`}
      {pending > 0 ? ` · ${pending} waiting to send` : ''}
    </span>
  )
}

function ChatRoom() {
  const { data } = useLiveQuery((q) =>
    q.from({ m: messages }).orderBy(({ m }) => m.created_at, 'asc'),
  )
  const [draft, setDraft] = useState('')
  const send = (e: React.FormEvent) => {
    e.preventDefault()
    const content = draft.trim()
    if (!content) return
    setDraft('')
    messages.insert({ id: newId(), author: user, content, created_at: Date.now() })
  }
  return (
    <main>
      <header>
        <h1>
          #{room} <small>as {user}</small>
        </h1>
        <ConnectionStatus />
      </header>
      <ul data-testid="messages">
        {data.map((m) => (
          <li key={m.id} data-testid="message" data-pending={String(m.$hasPendingWrites ?? false)}>
            <b>{m.author}</b>
            {m.content}
          </li>
        ))}
      </ul>
      <form onSubmit={send}>
        <input
          data-testid="draft"
          value={draft}
          onChange={(e) => setDraft(e.target.value)}
          placeholder="Say something"
        />
        <button data-testid="send">Send</button>
      </form>
    </main>
  )
}

createRoot(document.getElementById('root')!).render(<ChatRoom />)
