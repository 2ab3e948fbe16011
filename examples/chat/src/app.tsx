// The chat page: one room's messages, synced eagerly, live in every tab,
// and who is here and who is typing (presence, on the same socket).
// Local-first: the messages and the unsent ones are kept in IndexedDB, so a
// reload shows them at once (and the unsent ones as pending until the server
// confirms them), and the tabs of the browser share one socket.
import { createCollection, eq } from '@tanstack/db'
import { useLiveQuery } from '@tanstack/react-db'
import { useSyncExternalStore } from 'react'
import { createRoot } from 'react-dom/client'
import { doCollectionOptions, presenceCollectionOptions, WebSocketTransport } from 'seqsync/client'

import { ChatRoomView, newMessageId } from '../../common/chat-room'
import { signIn } from '../../common/sign-in'
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
  // Called before every dial. The session ends (the claims' `exp`, see
  // ../../common/auth.ts), and the Durable Object then closes the socket with
  // 4001 REAUTH: every dial renews the session first, and the transport
  // resumes from its cursor with its unsent messages. DEMO: signing in again
  // stands in for refreshing a token.
  url: async () => {
    await whoAmI(user)
    return `${scheme}://${location.host}/sync/${room}`
  },
  // The local copy is the user's: another user signed in on this browser gets their own.
  local: { name: `seqsync-chat ${room} ${user}` },
  onError: (error) => console.warn(error),
})
const messages = createCollection(
  doCollectionOptions<Message>({ transport, table: 'messages', getKey: (m) => m.id }),
)
// Everyone's presence in the room, one row per tab; this tab sets its own.
// A refused state (too large, too fast, or not what the room allows) changes nothing; the tests read the refusals.
const presenceErrors: Array<{ name: string; codeName: string }> = []
const presence = createCollection(
  presenceCollectionOptions<{ typing: boolean }>({
    transport,
    onError: (e) => presenceErrors.push({ name: e.name, codeName: e.codeName }),
  }),
)
// Here from the start, not typing: being online is having an entry.
presence.utils.set({ typing: false })
// For the browser tests: the transport and what the client holds.
Object.assign(window, { seqsync: { transport, messages, presence }, presenceErrors })

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

function WhoIsHere() {
  const { data } = useLiveQuery((q) => q.from({ p: presence }).orderBy(({ p }) => p.user, 'asc'))
  const typing = data.filter((p) => p.state.typing && !p.self).map((p) => p.user)
  return (
    <aside>
      <ul data-testid="online">
        {data.map((p) => (
          <li key={p.key} data-testid="online-user" data-typing={String(p.state.typing)}>
            {p.user}
            {p.self ? ' (you)' : ''}
          </li>
        ))}
      </ul>
      <p data-testid="typing">{typing.length > 0 ? `${[...new Set(typing)].join(', ')} typing…` : '\u00a0'}</p>
    </aside>
  )
}

function ChatRoom() {
  const { data } = useLiveQuery((q) =>
    q.from({ m: messages }).orderBy(({ m }) => m.created_at, 'asc'),
  )
  const send = (content: string) => {
    presence.utils.set({ typing: false })
    messages.insert({ id: newMessageId(), author: user, content, created_at: Date.now() })
  }
  return (
    <ChatRoomView
      room={room}
      user={user}
      status={<ConnectionStatus />}
      aside={<WhoIsHere />}
      messages={data}
      onSend={send}
      onDraft={(draft) => presence.utils.set({ typing: draft !== '' })}
    />
  )
}

createRoot(document.getElementById('root')!).render(<ChatRoom />)
