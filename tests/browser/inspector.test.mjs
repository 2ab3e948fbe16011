// The inspector page (syncInspector, served by the chat example's Worker at
// /sync/<room>/inspect) in real headless Chromium: it shows the room's DO
// live (stats refreshing, the sockets with their redacted identities and
// subscriptions, the recent changes, mutations and refusals), and only to
// the users the app authorizes. Each run saves a screenshot to
// test-output/inspector.png; UPDATE_DOCS=1 writes docs/inspector.png instead
// (a test run leaves the tracked tree as it was).
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { openTab, sessionCookie, startExample, statusOf, waitFor } from './support.mjs'

let env

before(async () => {
  env = await startExample('chat')
})

after(async () => {
  await env?.stop()
})

async function send(page, text) {
  await page.fill('[data-testid=draft]', text)
  await page.click('[data-testid=send]')
}

const cell = (page, id) => page.locator(`[data-testid=${id}]`).innerText()
const stat = (page, name) => page.locator(`[data-stat="${name}"] b`).innerText()

/** A tab signed in as `user` (through the demo login) at `path`. */
async function signedInTab(user, path) {
  const [name, value] = (await sessionCookie(env, user)).split('=')
  const context = await env.browser.newContext({ viewport: { width: 1100, height: 1000 } })
  await context.addCookies([{ name, value, url: env.server.url }])
  const page = await context.newPage()
  page.on('pageerror', (error) => console.error(`[${user}] page error:`, error))
  const response = await page.goto(`${env.server.url}${path}`)
  return { page, response }
}

test('the inspector shows one room live, and only to the users the app names', { timeout: 120_000 }, async () => {
  const room = `inspect-${Date.now().toString(36)}`
  const ann = await openTab(env, `/?room=${room}&user=ann`, 'ann')
  const bob = await openTab(env, `/?room=${room}&user=bob`, 'bob')
  await waitFor(async () => (await statusOf(ann)) === 'live' && (await statusOf(bob)) === 'live', 'both tabs live')
  await send(ann, 'hello from ann')
  await waitFor(async () => (await ann.locator('[data-pending=true]').count()) === 0, "ann's message is confirmed")

  const { page: inspector, response } = await signedInTab('ops', `/sync/${room}/inspect`)
  assert.equal(response.status(), 200)
  assert.match(response.headers()['content-security-policy'], /script-src 'nonce-/)
  await waitFor(async () => (await cell(inspector, 'updated')).startsWith('updated'), 'the first refresh')
  assert.equal(await cell(inspector, 'room'), room)
  assert.equal(await stat(inspector, 'sockets'), '2')
  assert.equal(await stat(inspector, 'mutations'), '1 committed')
  const sockets = await cell(inspector, 'sockets')
  assert.match(sockets, /\{"userId":"ann"\}/, "ann's identity, as redactClaims leaves it")
  assert.match(sockets, /\{"userId":"bob"\}/)
  assert.doesNotMatch(sockets, /seqsync_session/, 'no credential reaches the page')
  assert.match(sockets, /→ messages/, 'the subscriptions')
  assert.match(await cell(inspector, 'changes'), /messages/, 'the change log')

  // Live: a write and a refusal made after the page loaded show up without a reload.
  await send(bob, 'hi ann')
  const refused = await ann.evaluate(async () => {
    const tx = window.seqsync.messages.insert({ id: 'spoofed', author: 'bob', content: 'as bob', created_at: Date.now() })
    try {
      await tx.isPersisted.promise
      return 'accepted'
    } catch (error) {
      return error.message
    }
  })
  assert.match(refused, /UNAUTHORIZED/)
  await waitFor(async () => (await stat(inspector, 'mutations')) === '2 committed', 'the second write appears')
  await waitFor(async () => /UNAUTHORIZED/.test(await cell(inspector, 'refusals')), 'the refusal appears')
  const mutations = await cell(inspector, 'mutations')
  assert.match(mutations, /committed/)
  assert.match(mutations, /UNAUTHORIZED/)
  assert.match(mutations, /\d+ ms/, 'with latency')
  assert.match(await cell(inspector, 'refusals'), /author must be the signed-in user/)
  const shot = process.env.UPDATE_DOCS === '1' ? 'docs/inspector.png' : 'test-output/inspector.png'
  await inspector.screenshot({ path: shot, fullPage: true })

  // Never public: ann is signed in but not named in INSPECTORS; no session at all is refused too.
  const { response: forbidden } = await signedInTab('ann', `/sync/${room}/inspect`)
  assert.equal(forbidden.status(), 403)
  const anonymous = await fetch(`${env.server.url}/sync/${room}/inspect?format=json`)
  assert.equal(anonymous.status, 401)
  const ops = await sessionCookie(env, 'ops')
  const data = await (await fetch(`${env.server.url}/sync/${room}/inspect?format=json`, { headers: { cookie: ops } })).json()
  assert.equal(data.sockets, 2)
  assert.equal(data.mutations.rejected, 1)
})
