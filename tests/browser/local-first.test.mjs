// The chat example local-first, in real headless Chromium against its Worker
// + DO under `wrangler dev`. Each test keeps one browser context (one
// profile: its IndexedDB survives a reload) and checks the server's rows
// through a socket of its own, not only the page.
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { after, before, test } from 'node:test'

import WebSocket from 'ws'

import { startWrangler } from '../support/wrangler.mjs'
import { countFrames, sessionCookie, startExample, statusOf, waitFor } from './support.mjs'

let env

before(async () => {
  // A page served from the test's copy (the server down) counts as public to
  // Chromium, which would then block its socket to the loopback server.
  env = await startExample('chat', { browserArgs: ['--disable-features=LocalNetworkAccessChecks'] })
})

after(async () => {
  await env?.stop()
})

const newRoom = (what) => `${what}-${Date.now().toString(36)}`
const messageTexts = (page) => page.locator('[data-testid=message]').allTextContents()
const pendingCount = (page) => page.locator('[data-pending=true]').count()

async function send(page, text) {
  await page.fill('[data-testid=draft]', text)
  await page.click('[data-testid=send]')
}

/**
 * A browser profile whose pages load from a copy of what the server last
 * served them while the server is down (as an installed app would), so a
 * reload works offline. Sign-in requests fail then, as they would.
 */
async function offlineCapableContext() {
  const context = await env.browser.newContext({ viewport: { width: 720, height: 900 } })
  const copies = new Map()
  await context.route('**/*', async (route) => {
    const req = route.request()
    const url = new URL(req.url())
    const key = url.pathname === '/' ? '/' : url.pathname
    try {
      const response = await route.fetch()
      if (req.method() === 'GET' && response.ok()) copies.set(key, { body: await response.body(), headers: response.headers() })
      await route.fulfill({ response })
    } catch {
      const copy = req.method() === 'GET' ? copies.get(key) : undefined
      if (copy) await route.fulfill({ body: copy.body, headers: copy.headers })
      else await route.abort('connectionrefused')
    }
  })
  return context
}

async function openPage(context, path, label) {
  const page = await context.newPage()
  page.on('pageerror', (error) => console.error(`[${label}] page error:`, error))
  await page.goto(`${env.server.url}${path}`)
  return page
}

/** A socket of the test's own: hello, one subscription to messages; resolves to the server's rows. */
async function serverMessages(room, user = 'ann') {
  const cookie = await sessionCookie(env, user)
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${env.server.wsUrl}/sync/${room}`, { headers: { cookie } })
    const rows = []
    ws.on('open', () => ws.send(JSON.stringify({ t: 'hello', v: 1, subs: [{ id: 's', c: 'messages' }] })))
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data))
      if (frame.t === 'snapshot') rows.push(...frame.rows)
      if (frame.t === 'synced') {
        ws.close()
        resolve(rows)
      }
    })
    ws.on('error', reject)
  })
}

/** Writes `muts` (arrays of ops) through a socket of the test's own; resolves once each is acked. */
async function serverWrite(room, muts, user = 'ann') {
  const cookie = await sessionCookie(env, user)
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${env.server.wsUrl}/sync/${room}`, { headers: { cookie } })
    let acked = 0
    ws.on('open', () => ws.send(JSON.stringify({ t: 'hello', v: 1 })))
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data))
      if (frame.t === 'welcome') muts.forEach((ops, i) => ws.send(JSON.stringify({ t: 'mut', id: `seed-${room}-${Date.now()}-${i}`, ops })))
      if (frame.t === 'reject' || frame.t === 'error') reject(new Error(JSON.stringify(frame)))
      if (frame.t === 'ack' && ++acked === muts.length) {
        ws.close()
        resolve()
      }
    })
    ws.on('error', reject)
  })
}

const insertOp = (id, content, author = 'ann', created_at = 1) => ({
  c: 'messages',
  op: 'insert',
  k: id,
  cols: { id, author, content, created_at },
})

/** The rows and cursor the page's local copy holds, read from IndexedDB. */
function localCopy(page, room, user) {
  return page.evaluate(
    (name) =>
      new Promise((resolve) => {
        const none = { rows: [], cursor: undefined, outbox: [] }
        const req = indexedDB.open(name)
        // Not created by the page yet: leave it so (an empty database would race the page's upgrade).
        req.onupgradeneeded = () => req.transaction.abort()
        req.onerror = () => resolve(none)
        req.onsuccess = () => {
          if (!req.result.objectStoreNames.contains('images')) {
            req.result.close()
            return resolve(none)
          }
          const tx = req.result.transaction(['rows', 'images', 'meta', 'outbox'], 'readonly')
          const records = tx.objectStore('rows').getAll()
          const images = tx.objectStore('images').getAll()
          const cursor = tx.objectStore('meta').get('cursor')
          const outbox = tx.objectStore('outbox').getAll()
          tx.oncomplete = () => {
            req.result.close()
            // One scope here: its image, then the rows written since (null: removed).
            const rows = new Map(images.result.flatMap((image) => image.rows))
            for (const r of records.result) {
              if (r.r === null) rows.delete(r.k)
              else rows.set(r.k, r.r)
            }
            resolve({ rows: [...rows.values()], cursor: cursor.result, outbox: outbox.result })
          }
        }
      }),
    `seqsync-chat ${room} ${user}`,
  )
}

test('writes made offline survive a reload, show pending, and apply once when the server is back', { timeout: 180_000 }, async () => {
  const room = newRoom('outbox')
  const context = await offlineCapableContext()
  const page = await openPage(context, `/?room=${room}&user=ann`, 'ann')
  await waitFor(async () => (await statusOf(page)) === 'live', 'live')
  await send(page, 'before the cut')
  await waitFor(async () => (await messageTexts(page)).length === 1 && (await pendingCount(page)) === 0, 'the first message confirmed')

  const { port, stateDir } = env.server
  await env.server.stop({ keepState: true })
  await waitFor(async () => (await statusOf(page)) !== 'live', 'the page sees the server gone')
  for (const n of [1, 2, 3]) await send(page, `offline ${n}`)
  await waitFor(async () => (await pendingCount(page)) === 3, 'three pending')
  await waitFor(async () => (await localCopy(page, room, 'ann')).outbox.length === 3, 'the outbox holds the three')
  await page.screenshot({ path: 'test-output/local-first-offline.png' })

  await page.reload()
  await waitFor(async () => (await messageTexts(page)).length === 4, 'the reloaded page shows all four from the local copy')
  assert.equal(await pendingCount(page), 3, 'the three unsent ones are shown pending after the reload')
  assert.notEqual(await statusOf(page), 'live', 'still offline')
  await page.screenshot({ path: 'test-output/local-first-reloaded-offline.png' })

  env.server = await startWrangler({ config: env.config, port, stateDir })
  await waitFor(async () => (await statusOf(page)) === 'live', 'live again', 45_000)
  await waitFor(async () => (await pendingCount(page)) === 0, 'the three confirmed', 20_000)
  const rows = await serverMessages(room)
  for (const n of [1, 2, 3]) {
    assert.equal(rows.filter((r) => r.content === `offline ${n}`).length, 1, `offline ${n} applied once on the server`)
  }
  assert.equal(rows.length, 4)
  assert.deepEqual((await localCopy(page, room, 'ann')).outbox, [], 'the outbox is empty once every write settled')
  await context.close()
})

test('a write refused after the reload rolls back and surfaces its typed error', { timeout: 180_000 }, async () => {
  const room = newRoom('refused')
  const context = await offlineCapableContext()
  const page = await openPage(context, `/?room=${room}&user=ann`, 'ann')
  const warnings = []
  page.on('console', (m) => warnings.push(m.text()))
  await waitFor(async () => (await statusOf(page)) === 'live', 'live')
  const { port, stateDir } = env.server
  await env.server.stop({ keepState: true })
  await waitFor(async () => (await statusOf(page)) !== 'live', 'offline')
  // Over the example's 2,000 characters: the DO will refuse it.
  await send(page, 'x'.repeat(2001))
  await waitFor(async () => (await localCopy(page, room, 'ann')).outbox.length === 1, 'the outbox holds it')
  await page.reload()
  await waitFor(async () => (await pendingCount(page)) === 1, 'shown pending after the reload')

  env.server = await startWrangler({ config: env.config, port, stateDir })
  await waitFor(async () => (await messageTexts(page)).length === 0, 'rolled back once refused', 45_000)
  await waitFor(async () => warnings.some((w) => /RejectedError|UNAUTHORIZED: content must be a string of 1 to 2000/.test(w)), 'the typed error reached onError')
  assert.deepEqual(await serverMessages(room), [], 'nothing applied')
  assert.deepEqual((await localCopy(page, room, 'ann')).outbox, [], 'the refused write left the outbox')
  await context.close()
})

test('5,000 cached rows render before the first socket frame, and the resume transfers only the changed rows', { timeout: 180_000 }, async () => {
  const room = newRoom('cached')
  const ops = Array.from({ length: 5000 }, (_, i) => insertOp(`m${String(i).padStart(5, '0')}`, `row ${i}`, 'ann', i))
  const muts = []
  for (let i = 0; i < ops.length; i += 500) muts.push(ops.slice(i, i + 500))
  await serverWrite(room, muts)

  const context = await env.browser.newContext()
  await context.addInitScript(countFrames, 'messages')
  const first = await openPage(context, `/?room=${room}&user=ann`, 'first')
  await waitFor(async () => (await messageTexts(first)).length === 5000, 'the first visit syncs 5,000', 60_000)
  const cold = await first.evaluate(() => window.__seen)
  assert.equal(cold.snapshotRows, 5000, 'the first visit got a snapshot')
  await waitFor(async () => (await localCopy(first, room, 'ann')).rows.length === 5000, 'the local copy holds 5,000')
  await first.close()

  // While the page is closed: 5 inserts and 2 deletes.
  await serverWrite(room, [
    [1, 2, 3, 4, 5].map((n) => insertOp(`new${n}`, `new ${n}`, 'ann', 10_000 + n)),
    [{ c: 'messages', op: 'delete', k: 'm00000' }, { c: 'messages', op: 'delete', k: 'm00001' }],
  ])

  const again = await openPage(context, `/?room=${room}&user=ann`, 'again')
  await waitFor(async () => (await messageTexts(again)).length === 5003, 'the resumed page holds 5,003', 60_000)
  const warm = await again.evaluate(() => window.__seen)
  assert.equal(warm.heldAtFirstFrame, 5000, 'the collection held the 5,000 cached rows before the first socket frame')
  console.log(`rendered at the first frame: ${warm.renderedAtFirstFrame} of 5,000; resume: ${warm.changes} changes, ${warm.snapshotRows} snapshot rows`)
  assert.equal(warm.snapshotRows, 0, 'no snapshot on resume')
  assert.equal(warm.changes, 7, 'the resume carried exactly the 7 changed rows')
  const server = await serverMessages(room)
  assert.equal(server.length, 5003)
  await waitFor(async () => (await localCopy(again, room, 'ann')).rows.length === 5003, 'the local copy caught up')
  await context.close()
})

test('a DO whose storage was reset while the page was closed replaces the local copy', { timeout: 180_000 }, async () => {
  const room = newRoom('reset')
  const context = await env.browser.newContext()
  const page = await openPage(context, `/?room=${room}&user=ann`, 'ann')
  await waitFor(async () => (await statusOf(page)) === 'live', 'live')
  await send(page, 'from the old storage')
  await waitFor(async () => (await pendingCount(page)) === 0 && (await messageTexts(page)).length === 1, 'confirmed')
  await waitFor(async () => (await localCopy(page, room, 'ann')).rows.length === 1, 'stored')
  const before = await localCopy(page, room, 'ann')
  assert.ok(before.cursor?.epoch, 'the cursor is stored with its epoch')
  await page.close()

  // The same port, a fresh storage directory: a new epoch.
  const { port, stateDir } = env.server
  await env.server.stop({ keepState: true })
  env.server = await startWrangler({ config: env.config, port })
  await serverWrite(room, [[insertOp('after-reset', 'from the new storage', 'ann', 2)]])

  const reopened = await openPage(context, `/?room=${room}&user=ann`, 'reopened')
  await waitFor(async () => {
    const texts = await messageTexts(reopened)
    return texts.length === 1 && texts[0].includes('from the new storage')
  }, 'only the new storage’s row is shown')
  await waitFor(async () => {
    const copy = await localCopy(reopened, room, 'ann')
    return copy.rows.length === 1 && copy.rows[0].id === 'after-reset' && copy.cursor?.epoch !== before.cursor?.epoch
  }, 'the local copy was replaced, under the new epoch')
  assert.deepEqual((await serverMessages(room)).map((r) => r.id), ['after-reset'])
  rmSync(stateDir, { recursive: true, force: true })
  await context.close()
})

test('without IndexedDB the page works in memory after one warning; a copy of another schema version is discarded', { timeout: 180_000 }, async () => {
  const room = newRoom('degrade')
  // A profile whose pages have no IndexedDB (as in some private modes).
  const bare = await env.browser.newContext()
  await bare.addInitScript(() => {
    Object.defineProperty(window, 'indexedDB', { value: undefined })
  })
  const page = await bare.newPage()
  const warnings = []
  page.on('console', (m) => warnings.push(m.text()))
  await page.goto(`${env.server.url}/?room=${room}&user=ann`)
  await waitFor(async () => (await statusOf(page)) === 'live', 'live without IndexedDB')
  assert.equal(await page.evaluate(() => window.seqsync.transport.local), 'memory')
  await send(page, 'in memory')
  await waitFor(async () => (await pendingCount(page)) === 0 && (await messageTexts(page)).length === 1, 'a write confirmed')
  const offWarnings = () => warnings.filter((w) => w.includes('local-first is off'))
  assert.equal(offWarnings().length, 1, 'one warning')
  assert.match(offWarnings()[0], /no IndexedDB/)
  await page.reload()
  await waitFor(async () => (await statusOf(page)) === 'live' && (await messageTexts(page)).length === 1, 'after a reload, from the network')
  assert.equal(offWarnings().length, 2, 'one warning per page load')
  await bare.close()

  // A stored copy whose schema version is not the page's: discarded, then a snapshot.
  const context = await env.browser.newContext()
  await context.addInitScript(countFrames, 'messages')
  const first = await openPage(context, `/?room=${room}&user=ann`, 'first')
  await waitFor(async () => (await localCopy(first, room, 'ann')).cursor?.seq > 0, 'a cursor stored')
  await first.close()
  // Edited from a page of the origin that does not run the app (which would write its cursor back).
  const editor = await openPage(context, '/app.js', 'editor')
  await editor.evaluate((name) => new Promise((resolve) => {
    const req = indexedDB.open(name)
    req.onsuccess = () => {
      const tx = req.result.transaction('meta', 'readwrite')
      const store = tx.objectStore('meta')
      const get = store.get('cursor')
      get.onsuccess = () => store.put({ ...get.result, schemaVersion: 99 }, 'cursor')
      tx.oncomplete = () => resolve(req.result.close())
    }
  }), `seqsync-chat ${room} ann`)
  await editor.close()
  const again = await openPage(context, `/?room=${room}&user=ann`, 'again')
  await waitFor(async () => (await statusOf(again)) === 'live' && (await messageTexts(again)).length === 1, 'live again')
  const seen = await again.evaluate(() => window.__seen)
  assert.equal(seen.heldAtFirstFrame, 0, 'the discarded copy rendered nothing')
  assert.equal(seen.snapshotRows, 1, 'a snapshot replaced it')
  assert.equal((await localCopy(again, room, 'ann')).cursor?.schemaVersion, 1, 'stored again under the page’s version')
  await context.close()
})

async function socketsOnServer(room) {
  const res = await fetch(`${env.server.url}/sync/${room}/stats`, { headers: { cookie: await sessionCookie(env, 'ann') } })
  return (await res.json()).sockets
}

test('tabs of one profile share one socket; the holder closed mid-write loses no write and applies none twice', { timeout: 180_000 }, async () => {
  const room = newRoom('tabs')
  const context = await env.browser.newContext()
  const path = `/?room=${room}&user=ann`
  const [a, b, c] = [await openPage(context, path, 'a'), await openPage(context, path, 'b'), await openPage(context, path, 'c')]
  for (const page of [a, b, c]) await waitFor(async () => (await statusOf(page)) === 'live', 'every tab live')
  assert.equal(await socketsOnServer(room), 1, 'the DO holds one socket for the three tabs')

  await send(b, 'from b')
  await send(c, 'from c')
  for (const page of [a, b, c]) {
    await waitFor(async () => (await messageTexts(page)).length === 2 && (await pendingCount(page)) === 0, 'every tab sees both, confirmed')
  }

  // The holder (the first tab) closes while b has writes in flight through it.
  const burst = 20
  await b.evaluate((n) => {
    for (let i = 0; i < n; i++) {
      window.seqsync.messages.insert({ id: `burst-${String(i).padStart(2, '0')}`, author: 'ann', content: `burst ${i}`, created_at: Date.now() })
    }
  }, burst)
  const closedAt = Date.now()
  await a.close()
  await waitFor(async () => (await pendingCount(b)) === 0 && (await messageTexts(b)).length === 2 + burst, 'b confirmed every write of the burst', 30_000)
  await waitFor(async () => (await statusOf(b)) === 'live' && (await statusOf(c)) === 'live', 'b and c live again')
  console.log(`takeover: b and c live and b's burst confirmed ${Date.now() - closedAt} ms after the holder closed`)
  const rows = await serverMessages(room)
  for (let i = 0; i < burst; i++) {
    assert.equal(rows.filter((r) => r.content === `burst ${i}`).length, 1, `burst ${i} applied once`)
  }
  assert.equal(rows.length, 2 + burst)

  await send(c, 'after the takeover from c')
  await send(b, 'after the takeover from b')
  for (const page of [b, c]) {
    await waitFor(async () => (await messageTexts(page)).length === 4 + burst && (await pendingCount(page)) === 0, 'both keep syncing')
  }
  await waitFor(async () => (await socketsOnServer(room)) === 1, 'one socket again, the new holder’s')
  assert.deepEqual(await messageTexts(b), await messageTexts(c))
  await context.close()
})
