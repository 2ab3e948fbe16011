// examples/chat in Chromium with sessions that last SESSION_SECONDS: at the
// claims' `exp` the Durable Object closes the page's socket 4001 REAUTH; the
// page's url function renews the session, the transport dials again and
// resumes by cursor (no snapshot on the new socket), and a message whose ack
// the close cut off is sent again and applied once.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { openTab, startExample, statusOf, waitFor } from './support.mjs'

// Long enough for the page to go live and send a message on its first socket on a busy machine.
const SESSION_SECONDS = 5
let env

before(async () => {
  env = await startExample('chat', { vars: { SESSION_SECONDS } })
})

after(async () => {
  await env?.stop()
})

/**
 * An init script: records in window.__sockets, per socket the page opens,
 * the frames it sent and received (by type) and its close code. While
 * window.__dropAcks is true, the frames that carry an ack (an `ack`, or the
 * `changes` frame an inline ack rides in) are kept from the page (this listener is the socket's first), as if the close came
 * before they did.
 */
function watchSockets() {
  window.__sockets = []
  window.__dropAcks = false
  const Native = window.WebSocket
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args)
      const seen = { sent: [], received: [], closeCode: undefined }
      this.seen = seen
      window.__sockets.push(seen)
      this.addEventListener('message', (ev) => {
        const frame = JSON.parse(ev.data)
        seen.received.push(frame.t)
        const carriesAck = frame.t === 'ack' || (frame.t === 'changes' && frame.ack !== undefined)
        if (carriesAck && window.__dropAcks) ev.stopImmediatePropagation()
      })
      this.addEventListener('close', (ev) => { seen.closeCode = ev.code })
    }

    send(data) {
      const frame = JSON.parse(data)
      this.seen.sent.push(frame.t === 'mut' ? `mut ${frame.id}` : frame.t)
      super.send(data)
    }
  }
}

const messageTexts = (page) => page.$$eval('[data-testid=message]', (els) => els.map((e) => e.textContent))
const sockets = (page) => page.evaluate(() => window.__sockets)
const count = (list, type) => list.filter((t) => t === type).length

test('at the session’s expiry the page is closed 4001, redials with a fresh session, resumes by cursor, and applies a cut-off write once', { timeout: 120_000 }, async () => {
  const room = `reauth-${Date.now().toString(36)}`
  const context = await env.browser.newContext()
  await context.addInitScript(watchSockets)
  const page = await context.newPage()
  page.on('pageerror', (error) => console.error('[ann] page error:', error))
  await page.goto(`${env.server.url}/?room=${room}&user=ann`)
  await waitFor(async () => (await statusOf(page)) === 'live', 'live')
  // 'live' shows at the welcome; the snapshot is in the resume unit the `synced` ends.
  await waitFor(async () => (await sockets(page))[0].received.includes('synced'), 'the first resume unit ended')
  const first = (await sockets(page))[0]
  assert.equal(count(first.received, 'snapshot'), 1, 'the first socket got the room by snapshot')

  // Sent on the first socket; the server applies it, but its ack never reaches the page.
  await page.evaluate(() => { window.__dropAcks = true })
  const text = `before expiry ${Date.now()}`
  await page.fill('[data-testid=draft]', text)
  await page.press('[data-testid=draft]', 'Enter')
  await waitFor(async () => (await sockets(page))[0].sent.some((t) => t.startsWith('mut ')), 'the write went out on the first socket')

  await waitFor(async () => (await sockets(page))[0].closeCode !== undefined, 'the first socket closed', 3 * SESSION_SECONDS * 1000)
  assert.equal((await sockets(page))[0].closeCode, 4001, 'closed 4001 REAUTH at the claims’ exp')
  await page.evaluate(() => { window.__dropAcks = false })
  await waitFor(async () => (await sockets(page)).length >= 2 && (await statusOf(page)) === 'live', 'live again on a new socket')
  await waitFor(async () => (await sockets(page))[1].received.includes('ack'), 'the write acked on the new socket')

  const [before, again] = await sockets(page)
  const mutId = before.sent.find((t) => t.startsWith('mut '))
  assert.ok(again.sent.includes(mutId), 'the unacked write was sent again on the new socket')
  assert.equal(count(again.received, 'snapshot'), 0, 'the new socket resumed by cursor: no snapshot')
  console.log(`reauth: first socket sent ${JSON.stringify(before.sent)} received ${JSON.stringify(before.received)}; `
    + `second sent ${JSON.stringify(again.sent)} received ${JSON.stringify(again.received)}`)

  // What the server holds, read by a fresh tab's snapshot: the message, once.
  const bob = await openTab(env, `/?room=${room}&user=bob`, 'bob')
  await waitFor(async () => (await messageTexts(bob)).some((t) => t.includes(text)), 'bob sees the message')
  assert.equal((await messageTexts(bob)).filter((t) => t.includes(text)).length, 1, 'applied once')
  assert.equal((await messageTexts(page)).filter((t) => t.includes(text)).length, 1, 'and shown once to its author')
  await context.close()
})
