// The chat example in real headless Chromium (Debian's), driven by
// playwright-core, against the example's Worker + DO under `wrangler dev`.
// Two tabs; a message typed in one appears in the other; the server is
// stopped and restarted under them and both converge. Screenshots go to
// test-output/.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { startWrangler } from '../support/wrangler.mjs'
import { openTab, startExample, statusOf, waitFor } from './support.mjs'

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
