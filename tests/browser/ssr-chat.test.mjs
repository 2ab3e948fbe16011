// The server-rendered chat (examples/ssr-chat) in real headless Chromium:
// the Worker's first HTML response already holds the messages; the page
// shows them before its script runs and never goes empty; once it hydrates,
// its socket resumes from the rendered cursor and receives only the delta
// (the frames are counted from the page's own WebSocket); a write then works
// and the page stays live. What it costs on the wire goes to
// test-output/ssr-chat-wire.json.
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { after, before, test } from 'node:test'

import WebSocket from 'ws'

import { sessionCookie, startExample, statusOf, waitFor } from './support.mjs'

let env

before(async () => {
  env = await startExample('ssr-chat')
})

after(async () => {
  await env?.stop()
})

/** A raw socket of the signed-in user (its `Cookie`) to `room`, after its welcome. */
async function rawSocket(cookie, room, hello = {}) {
  const ws = new WebSocket(`${env.server.wsUrl}/sync/${room}`, { headers: { Cookie: cookie } })
  const frames = []
  const waiters = []
  ws.on('message', (data) => {
    frames.push(String(data))
    for (const w of waiters.splice(0)) w()
  })
  await new Promise((resolve, reject) => {
    ws.on('open', resolve)
    ws.on('error', reject)
  })
  ws.send(JSON.stringify({ t: 'hello', v: 1, ...hello }))
  const until = async (check) => {
    for (;;) {
      const found = frames.map((f) => JSON.parse(f)).find(check)
      if (found) return found
      await new Promise((resolve) => waiters.push(resolve))
    }
  }
  await until((f) => f.t === 'welcome')
  return { ws, frames, until }
}

let ids = 0
/** Writes messages as `author` through a raw socket; resolves once each is acked. */
async function writeMessages(cookie, room, author, texts) {
  const { ws, until } = await rawSocket(cookie, room)
  for (const content of texts) {
    const id = `${Date.now().toString(36).padStart(10, '0')}-${ids++}`
    ws.send(JSON.stringify({ t: 'mut', id, ops: [{ c: 'messages', op: 'insert', k: id, cols: { id, author, content, created_at: Date.now() } }] }))
    const answer = await until((f) => (f.t === 'ack' || f.t === 'reject') && f.id === id)
    assert.equal(answer.t, 'ack', JSON.stringify(answer))
  }
  ws.close()
}

const messageTexts = (page) => page.locator('[data-testid=message]').allTextContents()

test('the first HTML holds the messages; after hydration only the delta arrives; a write works and the page stays live', { timeout: 120_000 }, async () => {
  const room = `ssr-${Date.now().toString(36)}`
  const cookie = await sessionCookie(env, 'ann')
  const bob = await sessionCookie(env, 'bob')
  const texts = Array.from({ length: 40 }, (_, i) => `message ${i} ${'·'.repeat(i % 7)}`)
  await writeMessages(cookie, room, 'ann', texts)

  // The Worker's first response, as a crawler (or a browser before any script) gets it.
  const res = await fetch(`${env.server.url}/?room=${room}`, { headers: { Cookie: cookie } })
  assert.equal(res.status, 200)
  const html = await res.text()
  for (const text of texts) assert.ok(html.includes(`<b>ann</b>${text}</li>`), `the HTML holds "${text}"`)
  const state = html.match(/<script id="seqsync-state" type="application\/json">(.*?)<\/script>/s)[1]
  const markup = html.match(/<div id="root"[^>]*>(.*?)<\/div>\s*<script/s)[1]

  // What a socket pays for the same rows without a render: its welcome, snapshot and synced.
  const fresh = await rawSocket(cookie, room, { subs: [{ id: 's', c: 'messages' }] })
  await fresh.until((f) => f.t === 'synced')
  fresh.ws.close()
  const socketSnapshotBytes = fresh.frames.reduce((n, f) => n + Buffer.byteLength(f), 0)

  // The page: its script is held until one more message is written, so the
  // socket it opens has a delta to resume.
  const context = await env.browser.newContext({ viewport: { width: 720, height: 900 } })
  await context.addCookies([{ name: cookie.split('=')[0], value: cookie.slice(cookie.indexOf('=') + 1), url: env.server.url }])
  const page = await context.newPage()
  const errors = []
  page.on('pageerror', (error) => errors.push(String(error)))
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(msg.text())
  })
  const received = []
  const sent = []
  page.on('websocket', (ws) => {
    ws.on('framereceived', (f) => received.push(String(f.payload)))
    ws.on('framesent', (f) => sent.push(String(f.payload)))
  })
  // Records the fewest messages the list ever showed, from its first parse on.
  await page.addInitScript(() => {
    window.fewestMessages = Infinity
    const count = () => {
      const list = document.querySelector('[data-testid=messages]')
      if (list) window.fewestMessages = Math.min(window.fewestMessages, list.querySelectorAll('[data-testid=message]').length)
    }
    new MutationObserver(count).observe(document, { childList: true, subtree: true, characterData: true })
  })
  let releaseScript
  const scriptHeld = new Promise((resolve) => (releaseScript = resolve))
  await page.route('**/app.js', async (route) => {
    await scriptHeld
    await route.continue()
  })
  await page.goto(`${env.server.url}/?room=${room}`, { waitUntil: 'commit' })
  await waitFor(async () => (await messageTexts(page)).length === texts.length, 'the rendered messages, before the script')
  assert.equal(received.length, 0, 'no socket before the script')
  await writeMessages(bob, room, 'bob', ['written after the render'])
  releaseScript()

  await waitFor(async () => (await statusOf(page)) === 'live', 'the page is live')
  await waitFor(async () => (await messageTexts(page)).some((t) => t.includes('written after the render')), 'the delta')
  const framesAfterHydration = received.map((f) => JSON.parse(f))
  assert.deepEqual(framesAfterHydration.map((f) => f.t), ['welcome', 'changes', 'synced'], 'only the delta, never a snapshot')
  // The client asks for the compact form (docs/protocol.md §5.2): the frame's rows.
  assert.deepEqual(framesAfterHydration[1].rows.map((row) => row.content), ['written after the render'])
  const hello = JSON.parse(sent[0])
  const rendered = JSON.parse(state).collections[0].syncMeta
  assert.equal(hello.since, rendered.seq)
  assert.equal(hello.epoch, rendered.epoch)
  assert.deepEqual(hello.subs.map((s) => s.resume), [true])
  const wire = {
    messages: texts.length,
    htmlBytes: Buffer.byteLength(html),
    stateBytes: Buffer.byteLength(state),
    markupBytes: Buffer.byteLength(markup),
    socketSnapshotBytes,
    framesAfterHydration: framesAfterHydration.length,
    bytesAfterHydration: received.reduce((n, f) => n + Buffer.byteLength(f), 0),
  }
  const shown = await messageTexts(page)
  assert.equal(shown.length, texts.length + 1, 'no duplicate row')
  assert.equal(new Set(shown).size, shown.length)
  assert.equal(await page.evaluate(() => window.fewestMessages), texts.length, 'never fewer messages than rendered: no flash of empty content')
  await page.screenshot({ path: 'test-output/ssr-chat-hydrated.png' })

  // A write from the page, and a write from elsewhere: the page stays live.
  await page.fill('[data-testid=draft]', 'sent from the page')
  await page.click('[data-testid=send]')
  await waitFor(() => received.some((f) => JSON.parse(f).t === 'ack' || JSON.parse(f).ack !== undefined), 'the ack of the page write')
  await writeMessages(bob, room, 'bob', ['live after the write'])
  await waitFor(async () => (await messageTexts(page)).some((t) => t.includes('live after the write')), 'a live change')
  assert.equal((await messageTexts(page)).length, texts.length + 3)
  assert.equal(received.filter((f) => JSON.parse(f).t === 'snapshot').length, 0)
  assert.deepEqual(errors, [], 'no page error (a hydration mismatch is one)')
  writeFileSync('test-output/ssr-chat-wire.json', `${JSON.stringify(wire, null, 2)}\n`)
  console.log('ssr-chat wire:', JSON.stringify(wire))
  await context.close()
})

test('a page without a session signs in first; a member-only room is refused as its socket is', { timeout: 60_000 }, async () => {
  const anonymous = await fetch(`${env.server.url}/?room=lobby`)
  assert.equal(anonymous.status, 200)
  assert.match(await anonymous.text(), /\/auth\/login/)
  const cookie = await sessionCookie(env, 'carol')
  const refused = await fetch(`${env.server.url}/?room=private-ann-bob`, { headers: { Cookie: cookie } })
  assert.equal(refused.status, 403)
})
