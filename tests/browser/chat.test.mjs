// The chat example in real headless Chromium (Debian's), driven by
// playwright-core, against the example's Worker + DO under `wrangler dev`.
// Two tabs; a message typed in one appears in the other; the server is
// stopped and restarted under them and both converge. Screenshots go to
// test-output/. Then the trust boundary: upgrades without a valid session,
// or into a room the user is not a member of, are refused; so are malformed
// or spoofed writes.
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { after, before, test } from 'node:test'

import { startWrangler } from '../support/wrangler.mjs'
import { openTab, percentile, sessionCookie, startExample, statusOf, upgrade, waitFor } from './support.mjs'

let env

before(async () => {
  env = await startExample('chat')
})

after(async () => {
  await env?.stop()
})

const messageTexts = (page) => page.locator('[data-testid=message]').allTextContents()

async function send(page, text) {
  await page.fill('[data-testid=draft]', text)
  await page.click('[data-testid=send]')
}

test('two tabs chat live, and converge after the server is cut and restored', { timeout: 120_000 }, async () => {
  const room = `browser-${Date.now().toString(36)}`
  const ann = await openTab(env, `/?room=${room}&user=ann`, 'ann')
  const bob = await openTab(env, `/?room=${room}&user=bob`, 'bob')
  await waitFor(async () => (await statusOf(ann)) === 'live' && (await statusOf(bob)) === 'live', 'both tabs live')

  await send(ann, 'hello from ann')
  await waitFor(async () => (await messageTexts(bob)).some((t) => t.includes('hello from ann')), 'bob sees ann')
  await send(bob, 'hi ann')
  await waitFor(async () => (await messageTexts(ann)).some((t) => t.includes('hi ann')), 'ann sees bob')
  await ann.screenshot({ path: 'test-output/chat-ann-live.png' })

  // Cut the server: both tabs notice and go offline.
  const { port, stateDir } = env.server
  await env.server.stop({ keepState: true })
  await waitFor(async () => (await statusOf(ann)) !== 'live' && (await statusOf(bob)) !== 'live', 'both tabs offline')
  // A message written while offline waits in memory.
  await send(ann, 'sent while offline')
  await ann.screenshot({ path: 'test-output/chat-ann-offline.png' })

  // Restore it on the same port with the same storage.
  env.server = await startWrangler({ config: env.config, port, stateDir })
  await waitFor(async () => (await statusOf(ann)) === 'live' && (await statusOf(bob)) === 'live', 'both tabs live again', 45_000)
  await waitFor(async () => (await messageTexts(bob)).some((t) => t.includes('sent while offline')), 'bob sees the offline write', 20_000)
  await send(bob, 'after the restart')
  await waitFor(async () => (await messageTexts(ann)).some((t) => t.includes('after the restart')), 'ann sees bob after restart')

  const annMessages = await messageTexts(ann)
  const bobMessages = await messageTexts(bob)
  assert.deepEqual(annMessages, bobMessages, 'both tabs hold the same messages in the same order')
  assert.equal(annMessages.filter((t) => t.includes('sent while offline')).length, 1, 'the offline write applied once')
  await waitFor(async () => (await ann.locator('[data-pending=true]').count()) === 0, 'no pending writes left')
  await ann.screenshot({ path: 'test-output/chat-ann.png' })
  await bob.screenshot({ path: 'test-output/chat-bob.png' })
})

const onlineUsers = (page) => page.locator('[data-testid=online-user]').allTextContents()

test('two tabs see who is online and who is typing; a closed tab leaves within a second', { timeout: 120_000 }, async () => {
  const room = `presence-${Date.now().toString(36)}`
  const ann = await openTab(env, `/?room=${room}&user=ann`, 'ann')
  const bob = await openTab(env, `/?room=${room}&user=bob`, 'bob')
  await waitFor(async () => (await onlineUsers(ann)).length === 2 && (await onlineUsers(bob)).length === 2, 'both tabs list both users')
  assert.deepEqual(await onlineUsers(bob), ['ann', 'bob (you)'])

  // Typing in one tab shows in the other, and stops when the draft is sent.
  await ann.fill('[data-testid=draft]', 'hel')
  await waitFor(async () => (await bob.locator('[data-testid=typing]').textContent()) === 'ann typing…', 'bob sees ann typing')
  await bob.screenshot({ path: 'test-output/chat-bob-sees-ann-typing.png' })
  await ann.click('[data-testid=send]')
  await waitFor(async () => (await bob.locator('[data-testid=typing]').textContent()).trim() === '', 'ann stopped typing')

  // Latency: ann's page sets its state (the room allows {typing} only, so
  // each set flips it), bob's page stamps the change it applies (one machine, one clock).
  await bob.evaluate(() => {
    window.presenceSeen = []
    window.seqsync.presence.subscribeChanges((changes) => {
      for (const c of changes) if (c.value?.user === 'ann' && c.type !== 'delete') window.presenceSeen.push({ at: Date.now(), typing: c.value.state.typing })
    })
  })
  const samples = []
  for (let n = 1; n <= 30; n++) {
    const typing = n % 2 === 1
    const from = await bob.evaluate(() => window.presenceSeen.length)
    const sentAt = await ann.evaluate((typing) => {
      const at = Date.now()
      window.seqsync.presence.utils.set({ typing })
      return at
    }, typing)
    const seenOf = () => bob.evaluate(({ from, typing }) => window.presenceSeen.slice(from).find((s) => s.typing === typing)?.at, { from, typing })
    await waitFor(async () => (await seenOf()) !== undefined, `bob sees set ${n}`, 5_000)
    samples.push((await seenOf()) - sentAt)
    // The next set must not fall in the throttle window (100 ms) of this one, or it would measure the throttle.
    await waitFor(async () => Date.now() - sentAt > 100, 'the throttle window passed', 1_000)
  }
  console.log(`presence latency tab to tab: p50 ${percentile(samples, 50)} ms, p90 ${percentile(samples, 90)} ms, max ${Math.max(...samples)} ms (${samples.length} sets)`)

  // Closing a tab removes it from the other's list: within a second, measured.
  const closedAt = Date.now()
  await ann.close()
  await waitFor(async () => (await onlineUsers(bob)).length === 1, 'ann leaves bob’s list', 1_000)
  const left = Date.now() - closedAt
  console.log(`presence: a closed tab left the other's list after ${left} ms`)
  assert.ok(left < 1_000, `a closed tab left after ${left} ms`)
  assert.deepEqual(await onlineUsers(bob), ['bob (you)'])

  // Over the limit: a state too large is refused with a typed error, and nothing changes for bob.
  const refused = await bob.evaluate(() => new Promise((resolve) => {
    window.seqsync.presence.utils.set({ typing: true, blob: 'x'.repeat(4096) })
    const started = Date.now()
    const poll = () => {
      const error = window.presenceErrors?.at(-1)
      if (error) resolve(error)
      else if (Date.now() - started > 5_000) resolve(null)
      else setTimeout(poll, 20)
    }
    poll()
  }))
  assert.deepEqual(refused, { name: 'PresenceError', codeName: 'TOO_LARGE' })
  assert.deepEqual(await onlineUsers(bob), ['bob (you)'])
})

test('tabs sharing one socket each have their own presence; a closed follower tab leaves within a second', { timeout: 120_000 }, async () => {
  const room = `presence-shared-${Date.now().toString(36)}`
  const bob = await openTab(env, `/?room=${room}&user=bob`, 'bob')
  const ann = await openTab(env, `/?room=${room}&user=ann`, 'ann')
  // A second tab of ann's browser: it shares the first one's socket (local-first), under its own presence slot.
  const annAgain = await ann.context().newPage()
  await annAgain.goto(`${env.server.url}/?room=${room}&user=ann`)
  await waitFor(async () => (await onlineUsers(bob)).length === 3, 'bob lists both of ann’s tabs')
  assert.deepEqual(await onlineUsers(bob), ['ann', 'ann', 'bob (you)'])
  const annSockets = await bob.evaluate(() => window.seqsync.presence.toArray.filter((p) => p.user === 'ann').map((p) => p.socket))
  assert.equal(new Set(annSockets).size, 1, 'both of ann’s tabs are on one socket')
  await annAgain.fill('[data-testid=draft]', 'from the second tab')
  await waitFor(async () => (await bob.locator('[data-testid=typing]').textContent()) === 'ann typing…', 'bob sees the second tab typing')
  const closedAt = Date.now()
  await annAgain.close()
  await waitFor(async () => (await onlineUsers(bob)).length === 2, 'the closed tab leaves bob’s list', 1_000)
  console.log(`presence: a closed tab sharing a socket left the other's list after ${Date.now() - closedAt} ms`)
  assert.equal((await bob.locator('[data-testid=typing]').textContent()).trim(), '', 'its typing went with it')
  assert.deepEqual(await onlineUsers(ann), ['ann (you)', 'bob'])
})

// A session cookie signed here with the dev key the chat example runs with
// (.dev.vars next to its wrangler.toml), so the test can mint an expired one.
const DEV_SECRET = readFileSync('.dev.vars', 'utf8').match(/^AUTH_SECRET=(.+)$/m)[1]
function signedCookie(user, expiresAtSeconds) {
  const payload = `${user}.${expiresAtSeconds}`
  return `seqsync_session=${payload}.${createHmac('sha256', DEV_SECRET).update(payload).digest('hex')}`
}
const UNAUTHORIZED = { code: 4401, reason: 'unauthorized' }

test('an upgrade without a valid session is refused with a terminal 4401', { timeout: 60_000 }, async () => {
  const room = '/sync/lobby'
  assert.deepEqual(await upgrade(env, room), UNAUTHORIZED, 'no cookie')
  assert.deepEqual(await upgrade(env, room, { 'x-claims': '{"userId":"ann"}' }), UNAUTHORIZED, 'client-sent claims are not a credential')
  const ann = await sessionCookie(env, 'ann')
  assert.equal(await upgrade(env, room, { cookie: ann }), 'welcome', 'a signed-in user gets in')
  assert.deepEqual(await upgrade(env, room, { cookie: ann.replace('=ann.', '=bob.') }), UNAUTHORIZED, "ann's signature does not make her bob")
  const now = Math.floor(Date.now() / 1000)
  assert.equal(await upgrade(env, room, { cookie: signedCookie('ann', now + 60) }), 'welcome', 'the test signs as the Worker does')
  assert.deepEqual(await upgrade(env, room, { cookie: signedCookie('ann', now - 60) }), UNAUTHORIZED, 'an expired session')

  // In the browser, a page of this origin that never signed in is refused too.
  const page = await openTab(env, '/app.js', 'anonymous') // same origin, but the app (and its sign-in) never runs
  const code = await page.evaluate(
    (url) => new Promise((resolve) => { new WebSocket(url).onclose = (e) => resolve(e.code) }),
    `${env.server.wsUrl}${room}`,
  )
  assert.equal(code, 4401)
})

test('a signed-in user who is not a member of the room is refused with 4403', { timeout: 60_000 }, async () => {
  // The demo rule (examples/common/auth.ts): private-ann-bob admits ann and bob only.
  const room = 'private-ann-bob'
  const eve = await sessionCookie(env, 'eve')
  assert.deepEqual(await upgrade(env, `/sync/${room}`, { cookie: eve }), { code: 4403, reason: 'not a member of this room' })
  assert.deepEqual(
    await upgrade(env, `/sync/${room}`, { cookie: await sessionCookie(env, 'ann'), origin: 'https://evil.example' }),
    { code: 4403, reason: 'cross-origin upgrade' },
    "another site cannot open a socket with ann's cookie",
  )

  const ann = await openTab(env, `/?room=${room}&user=ann`, 'ann')
  await waitFor(async () => (await statusOf(ann)) === 'live', 'ann is live in her room')
  await send(ann, 'for bob only')
  await waitFor(async () => (await ann.locator('[data-pending=true]').count()) === 0, 'the message is confirmed')
  const evesTab = await openTab(env, `/?room=${room}&user=eve`, 'eve')
  await waitFor(async () => (await statusOf(evesTab)) === 'closed', "eve's tab is refused for good")
  assert.deepEqual(await messageTexts(evesTab), [], 'eve sees nothing of the room')
})

test('writes with missing, mistyped or spoofed fields are refused with a reason', { timeout: 60_000 }, async () => {
  const room = `checks-${Date.now().toString(36)}`
  const ann = await openTab(env, `/?room=${room}&user=ann`, 'ann')
  await waitFor(async () => (await statusOf(ann)) === 'live', 'ann is live')
  const refusal = (message) => ann.evaluate(async (m) => {
    const tx = window.seqsync.messages.insert({ id: `m${Math.random().toString(36).slice(2)}`, ...m })
    try {
      await tx.isPersisted.promise
      return 'accepted'
    } catch (error) {
      return error.message
    }
  }, message)
  const now = Date.now()
  assert.match(await refusal({ author: 'ann', created_at: now }), /UNAUTHORIZED: content must be a string/, 'no content')
  assert.match(await refusal({ author: 'ann', content: 42, created_at: now }), /UNAUTHORIZED: content must be a string/, 'a number')
  assert.match(await refusal({ author: 'ann', content: 'hi', created_at: 'now' }), /UNAUTHORIZED: created_at must be an integer/)
  assert.match(await refusal({ author: 'bob', content: 'hi', created_at: now }), /UNAUTHORIZED: author must be the signed-in user/)
  assert.equal(await refusal({ author: 'ann', content: 'hi', created_at: now }), 'accepted')
})
