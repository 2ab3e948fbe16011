// The inspector: a live page of one Durable Object, served by the Worker as
// one of routeSyncRequest's endpoints. The page (plain HTML and a small
// script, no build) polls the same URL with ?format=json, which the
// endpoint answers with the object's syncInspect(): stats, the sockets with
// their identities (as the DO's redactClaims leaves them) and
// subscriptions, the newest change-log entries, and the recent mutations
// and refusals.
//
// It is never public by default: `authorize` is required, and it runs after
// routeSyncRequest's own authenticate, with the claims that returned.
import type { SyncEndpointContext } from './route.js'
import type { SyncInspection } from './stats.js'

export interface SyncInspectorOptions<Env, Claims> {
  /**
   * Who may inspect this room: true admits, false answers 403. Runs after
   * authenticate, with its claims. Required: there is no public inspector.
   */
  authorize: (ctx: SyncEndpointContext<Env, Claims>) => boolean | Promise<boolean>
  /** How often the page refreshes, ms. Default 1000. */
  refreshMs?: number
}

/** What the endpoint calls on the room's object: SyncDurableObject's RPC method. */
interface Inspectable {
  syncInspect(): Promise<SyncInspection>
}

/**
 * An endpoint for routeSyncRequest that serves the inspector page of a room
 * at `/<route>/<room>/<name>` (its data at the same path with
 * `?format=json`).
 *
 * @example
 * routeSyncRequest(req, env, {
 *   namespace: env.CHAT_ROOM,
 *   authenticate,
 *   endpoints: { inspect: syncInspector({ authorize: ({ claims }) => claims.role === 'ops' }) },
 * }) // → /sync/<room>/inspect
 */
export function syncInspector<Env, Claims>(
  options: SyncInspectorOptions<Env, Claims>,
): (ctx: SyncEndpointContext<Env, Claims>) => Promise<Response> {
  if (typeof options?.authorize !== 'function') {
    throw new TypeError('seqsync: syncInspector needs an authorize function (the inspector is never public)')
  }
  const refreshMs = Math.max(200, options.refreshMs ?? 1000)
  return async (ctx) => {
    if (ctx.req.method !== 'GET') return new Response('method not allowed', { status: 405, headers: { Allow: 'GET' } })
    if (!(await options.authorize(ctx))) return new Response('forbidden', { status: 403, headers: NO_STORE })
    if (new URL(ctx.req.url).searchParams.get('format') === 'json') {
      const inspection = await (ctx.stub as unknown as Inspectable).syncInspect()
      return Response.json(inspection, { headers: NO_STORE })
    }
    const nonce = crypto.randomUUID().replaceAll('-', '')
    return new Response(inspectorPage(ctx.room, refreshMs, nonce), {
      headers: {
        ...NO_STORE,
        'Content-Type': 'text/html; charset=utf-8',
        // The page runs its own script only, fetches only its own origin, and is never framed.
        'Content-Security-Policy': `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; frame-ancestors 'none'`,
        'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': 'no-referrer',
      },
    })
  }
}

const NO_STORE = { 'Cache-Control': 'no-store' }

/** The page. Everything it shows is set as text (never as HTML), so nothing a client wrote can run in it. */
function inspectorPage(room: string, refreshMs: number, nonce: string): string {
  const roomJson = JSON.stringify(room).replaceAll('<', '\\u003c')
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>seqsync inspector</title>
<style nonce="${nonce}">
  body { font: 13px/1.4 system-ui, sans-serif; margin: 16px; color: #1d2430; background: #f6f7f9 }
  h1 { font-size: 18px; margin: 0 0 4px } h2 { font-size: 14px; margin: 18px 0 6px }
  .meta { color: #5b6473; margin-bottom: 12px } .meta [data-state=error] { color: #b3261e }
  .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 8px }
  .card { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; padding: 8px 10px }
  .card b { display: block; font-size: 16px; font-variant-numeric: tabular-nums }
  .card span { color: #5b6473; font-size: 12px }
  table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid #dde1e7 }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eceff3; vertical-align: top }
  th { background: #eef1f5; font-weight: 600 } td { font-variant-numeric: tabular-nums }
  code { font: 12px ui-monospace, monospace; word-break: break-all; white-space: pre-wrap }
  .empty { color: #8a93a1; font-style: italic }
</style>
</head>
<body>
<h1>seqsync inspector</h1>
<div class="meta">room <code data-testid="room"></code> · epoch <code data-testid="epoch"></code> · <span data-testid="updated" data-state="loading">loading…</span></div>
<div class="grid" data-testid="stats"></div>
<h2>Sockets</h2><table data-testid="sockets"></table>
<h2>Recent mutations</h2><table data-testid="mutations"></table>
<h2>Recent refusals</h2><table data-testid="refusals"></table>
<h2>Recent changes</h2><table data-testid="changes"></table>
<script nonce="${nonce}">
const room = ${roomJson}
const refreshMs = ${refreshMs}
const $ = (id) => document.querySelector('[data-testid=' + id + ']')
$('room').textContent = room
const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); if (cls) e.className = cls; return e }
const bytes = (n) => n >= 1048576 ? (n / 1048576).toFixed(1) + ' MiB' : n >= 1024 ? (n / 1024).toFixed(1) + ' KiB' : n + ' B'
const ms = (v) => v === null || v === undefined ? '–' : v + ' ms'
const time = (t) => t === null || t === undefined ? '–' : new Date(t).toISOString().slice(11, 23)
const json = (v) => v === null || v === undefined ? '–' : JSON.stringify(v)
const OPS = { 1: 'insert', 2: 'update', 3: 'delete' }

function card(label, value, detail) {
  const c = el('div', undefined, 'card')
  c.dataset.stat = label
  c.append(el('span', label), el('b', value))
  if (detail) c.append(el('span', detail))
  return c
}

function table(id, head, rows) {
  const t = $(id)
  t.replaceChildren()
  const tr = el('tr')
  for (const h of head) tr.append(el('th', h))
  t.append(tr)
  if (rows.length === 0) {
    const r = el('tr'); const td = el('td', 'none', 'empty'); td.colSpan = head.length; r.append(td); t.append(r)
    return
  }
  for (const row of rows) {
    const r = el('tr')
    for (const cell of row) { const td = el('td'); td.append(cell instanceof Node ? cell : el('code', cell)); r.append(td) }
    t.append(r)
  }
}

function render(s) {
  $('epoch').textContent = s.epoch
  const tables = Object.entries(s.tables).map(([t, n]) => t + ' ' + n).join(', ') || 'none'
  const subs = Object.entries(s.subscriptions).map(([c, n]) => c + ' ' + n).join(', ') || 'none'
  const refusals = s.refusals.map((r) => r.error + ' ' + r.count).join(', ') || 'none'
  $('stats').replaceChildren(
    card('head', s.head, 'floor ' + s.floor),
    card('change log', s.log.rows + ' rows', bytes(s.log.bytes)),
    card('tables', Object.values(s.tables).reduce((a, b) => a + b, 0) + ' rows', tables),
    card('sockets', s.sockets, 'subscriptions: ' + subs),
    card('writes in flight', s.writesInFlight),
    card('mutations', s.mutations.committed + ' committed', s.mutations.rejected + ' rejected, ' + s.mutations.replayed + ' replayed'),
    card('refusals', s.refusals.reduce((a, r) => a + r.count, 0), refusals),
    card('execute p50 / p99', ms(s.latencyMs.execute.p50) + ' / ' + ms(s.latencyMs.execute.p99), s.latencyMs.execute.samples + ' samples'),
    card('commit → ack p50 / p99', ms(s.latencyMs.commitToAck.p50) + ' / ' + ms(s.latencyMs.commitToAck.p99), s.latencyMs.commitToAck.samples + ' samples'),
    card('sent', s.sent.deliveries + ' deliveries', bytes(s.sent.bytes) + ' in ' + s.sent.frames + ' frames'),
    card('last housekeeping', time(s.lastHousekeepingMs)),
    card('memory', bytes(s.wasmMemoryBytes) + ' wasm', bytes(s.databaseBytes) + ' SQLite'),
  )
  table('sockets', ['socket', 'identity', 'subscriptions (where)', 'unread'], s.socketList.map((k) => [
    k.id, json(k.identity), k.subs.map((x) => x.id + ' → ' + x.collection + (x.where ? ' where ' + JSON.stringify(x.where) : '')).join('\\n') || 'none', bytes(k.unreadBytes),
  ]))
  table('mutations', ['at', 'id', 'outcome', 'execute', 'commit → ack'],
    [...s.recentMutations].reverse().map((m) => [time(m.atMs), m.id, m.outcome, ms(m.executeMs), ms(m.commitToAckMs)]))
  table('refusals', ['at', 'socket', 'code', 'frame'],
    [...s.recentRefusals].reverse().map((r) => [time(r.atMs), r.socket, r.code + ' ' + r.error, r.frame]))
  table('changes', ['seq', 'table', 'key', 'op'], s.recentChanges.map((c) => [c.seq, c.table, c.key, OPS[c.op] ?? c.op]))
}

async function refresh() {
  const updated = $('updated')
  try {
    const res = await fetch(location.pathname + '?format=json', { cache: 'no-store', credentials: 'same-origin' })
    if (!res.ok) throw new Error(res.status + ' ' + (await res.text()))
    render(await res.json())
    updated.dataset.state = 'live'
    updated.textContent = 'updated ' + new Date().toISOString().slice(11, 19) + ' UTC'
  } catch (error) {
    updated.dataset.state = 'error'
    updated.textContent = 'refresh failed: ' + error.message
  }
  setTimeout(refresh, refreshMs)
}
refresh()
</script>
</body>
</html>
`
}
