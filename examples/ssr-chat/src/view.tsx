// The chat view, rendered twice from the same code: to a string by the
// Worker (worker.tsx) and hydrated in the browser (app.tsx). Both resolve
// the `messages` descriptor against the DbClient of their DbProvider, so the
// server's render and the browser's first render read the same hydrated rows.
import { collectionOptions } from '@tanstack/db'
import { useDbClient, useLiveQuery } from '@tanstack/react-db'
import { useSyncExternalStore } from 'react'
import { doCollectionOptions, type WebSocketTransport } from 'seqsync/client'

import type { Message } from '../../chat/src/worker'
import { ChatRoomView, newMessageId } from '../../common/chat-room'

/** The room's messages: one descriptor, materialized per DbClient (one per request, one per page). */
export const messagesOptions = collectionOptions('messages', (db) =>
  doCollectionOptions<Message>({
    id: 'messages',
    transport: db.requireDependency<WebSocketTransport>('transport'),
    table: 'messages',
    getKey: (m) => m.id,
  }),
)

function ConnectionStatus() {
  const transport = useDbClient().requireDependency<WebSocketTransport>('transport')
  const status = useSyncExternalStore(
    (onChange) => transport.subscribe(onChange),
    () => transport.status,
    () => 'connecting' as const, // the server's render, and the browser's hydration of it
  )
  return (
    <span className="status" data-testid="status" data-status={status}>
      {status === 'live' ? 'live' : `offline (${status})`}
    </span>
  )
}

export function ChatView({ room, user }: { room: string; user: string }) {
  const db = useDbClient()
  const { data } = useLiveQuery((q) => q.from({ m: messagesOptions }).orderBy(({ m }) => m.created_at, 'asc'))
  const send = (content: string) =>
    db.collection(messagesOptions).insert({ id: newMessageId(), author: user, content, created_at: Date.now() })
  return <ChatRoomView room={room} user={user} status={<ConnectionStatus />} messages={data} onSend={send} />
}
