// The server-rendered chat: the chat example's room (../../chat/src/worker.ts),
// with its page rendered in the Worker. For `/?room=<room>`, the Worker reads
// the room's messages from the Durable Object over RPC (readSyncSnapshot: the
// same authenticate, and the rows a socket of these claims would get, with
// the seq and epoch that cover them), dehydrates them into TanStack DB's
// state, renders the view with React's renderToString over a DbClient
// hydrated with that state, and sends the HTML with the state inside. The
// browser (app.tsx) hydrates the same state and resumes from its cursor.
import { DbClient, type DehydratedDbState } from '@tanstack/db'
import { DbProvider } from '@tanstack/react-db'
import { renderToString } from 'react-dom/server'
import { readSyncSnapshot, routeSyncRequest, type RouteSyncOptions } from 'seqsync'
import { ClosedError, dehydrateSnapshot, WebSocketTransport, type WebSocketLike } from 'seqsync/client'

import { type AuthEnv, authenticate, type Claims, login } from '../../common/auth'
import type { ChatRoom, Message } from '../../chat/src/worker'
import { ChatView } from './view'

export { ChatRoom } from '../../chat/src/worker'

export interface Env extends AuthEnv {
  CHAT_ROOM: DurableObjectNamespace<ChatRoom>
  ASSETS: Fetcher
}

const ROOM = /^[A-Za-z0-9_-]{1,64}$/

function syncRoutes(env: Env): RouteSyncOptions<Env, Claims> {
  return { namespace: env.CHAT_ROOM, authenticate: (req, { room }) => authenticate(req, env, room) }
}

/**
 * The server's DbClient needs a transport for the descriptor to
 * materialize, but a render never starts a sync (TanStack defers it to the
 * browser's subscription): this one is lazy, and refuses to dial.
 */
class NoDialFromTheServer {
  constructor() {
    throw new Error('a server render must not open a sync socket')
  }
}
const renderTransport = () =>
  new WebSocketTransport({
    url: 'ws://server-render.invalid/',
    lazy: true,
    watchNetwork: false,
    WebSocket: NoDialFromTheServer as unknown as new (url: string) => WebSocketLike,
  })

async function renderRoom(req: Request, env: Env, room: string): Promise<Response> {
  let state: DehydratedDbState
  try {
    const snapshot = await readSyncSnapshot(req, env, syncRoutes(env), { room, subs: [{ c: 'messages' }] })
    state = dehydrateSnapshot(snapshot, { messages: { id: 'messages', getKey: (m: Message) => m.id } })
  } catch (error) {
    // Not signed in: the sign-in page. A member-only room: refused, as its socket would be.
    if (error instanceof ClosedError && error.closeCode === 4401) return signInPage()
    if (error instanceof ClosedError) return new Response(error.reason, { status: 403 })
    throw error
  }
  const user = (await authenticate(req, env, room)) as Claims
  const db = new DbClient({ transport: renderTransport() })
  db.hydrate(state)
  const html = renderToString(
    <DbProvider client={db}>
      <ChatView room={room} user={user.userId} />
    </DbProvider>,
  )
  // No db.cleanup(): nothing was started (no sync, no socket), and the render's live
  // queries still hold the collection, which cleanup() would report as an error.
  return new Response(page(html, state, room, user.userId), {
    headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' },
  })
}

/** JSON inside a <script> element: `<` escaped, so no text in a message can close the element. */
const scriptJson = (value: unknown) => JSON.stringify(value).replace(/</g, '\\u003c')
const attr = (text: string) => text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;')

function page(html: string, state: DehydratedDbState, room: string, user: string): string {
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>seqsync chat, server-rendered</title>
    <style>${STYLE}</style>
  </head>
  <body>
    <div id="root" data-room="${attr(room)}" data-user="${attr(user)}">${html}</div>
    <script id="seqsync-state" type="application/json">${scriptJson(state)}</script>
    <script type="module" src="/app.js"></script>
  </body>
</html>
`
}

/** Signs in (demo: `?user=` or a guest name), then loads the page again. */
function signInPage(): Response {
  // The demo login of ../../common/sign-in.ts, inline: this page has no script bundle.
  const script = `
    const user = new URLSearchParams(location.search).get('user') ?? 'guest' + Math.floor(Math.random() * 1e4)
    const res = await fetch('/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user }) })
    if (res.ok) location.reload()
    else document.body.textContent = 'sign-in failed: ' + (await res.text())`
  return new Response(`<!doctype html><meta charset="utf-8"><title>signing in…</title><script type="module">${script}</script>`, {
    headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' },
  })
}

const STYLE = `
  body { font: 15px/1.4 system-ui, sans-serif; margin: 0; background: #f4f4f6; }
  main { max-width: 640px; margin: 0 auto; padding: 16px; }
  header { display: flex; justify-content: space-between; align-items: center; }
  .status { font-size: 13px; padding: 2px 8px; border-radius: 10px; background: #ddd; }
  .status[data-status='live'] { background: #c8f0c8; }
  ul { list-style: none; padding: 0; min-height: 200px; background: #fff; border-radius: 8px; }
  li { padding: 6px 12px; border-bottom: 1px solid #eee; }
  li b { margin-right: 6px; }
  form { display: flex; gap: 8px; }
  input { flex: 1; padding: 8px; }`

export default {
  async fetch(req: Request, env: Env): Promise<Response> {
    const url = new URL(req.url)
    if (url.pathname === '/auth/login') return login(req, env)
    const routed = await routeSyncRequest(req, env, syncRoutes(env))
    if (routed) return routed
    if (url.pathname === '/') {
      const room = url.searchParams.get('room') ?? 'lobby'
      if (!ROOM.test(room)) return new Response('bad room name', { status: 400 })
      return renderRoom(req, env, room)
    }
    return env.ASSETS.fetch(req)
  },
} satisfies ExportedHandler<Env>
