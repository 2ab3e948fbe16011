// The chat room's markup, shared by the chat example (a page rendered in
// the browser) and the ssr-chat example (rendered by the Worker, then
// hydrated): the header with a status, what goes beside it, the messages,
// and the form. The
// browser tests read it by its data-testid attributes.
import { type ReactNode, useState } from 'react'

export interface ChatMessage {
  id: string
  author: string
  content: string
  $hasPendingWrites?: boolean
}

/** Time-ordered ids (like ULIDs): the client mints the key, so the optimistic row and the confirmed row are the same row. */
export function newMessageId(): string {
  return Date.now().toString(36).padStart(10, '0') + crypto.randomUUID().slice(0, 8)
}

export function ChatRoomView(props: {
  room: string
  user: string
  status: ReactNode
  /** Shown between the header and the messages (who is here). */
  aside?: ReactNode
  messages: readonly ChatMessage[]
  onSend: (content: string) => void
  /** Told of every edit of the draft (typing presence). */
  onDraft?: (draft: string) => void
}) {
  const [draft, setDraft] = useState('')
  const send = (e: React.FormEvent) => {
    e.preventDefault()
    const content = draft.trim()
    if (!content) return
    setDraft('')
    props.onSend(content)
  }
  return (
    <main>
      <header>
        <h1>
          #{props.room} <small>as {props.user}</small>
        </h1>
        {props.status}
      </header>
      {props.aside}
      <ul data-testid="messages">
        {props.messages.map((m) => (
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
          onChange={(e) => {
            setDraft(e.target.value)
            props.onDraft?.(e.target.value)
          }}
          placeholder="Say something"
        />
        <button data-testid="send">Send</button>
      </form>
    </main>
  )
}
