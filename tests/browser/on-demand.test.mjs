// examples/on-demand in Chromium: only opened categories sync; closing a
// panel releases its rows; a write in one tab appears in another's open panel.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { openTab, startExample, statusOf, waitFor } from './support.mjs'

const PER_CATEGORY = 25
let env

before(async () => {
  env = await startExample('on-demand')
})

after(async () => {
  await env?.stop()
})

// The page refreshes its row count every 100 ms, so a count is awaited, not read once.
const synced = async (page) => Number(await page.textContent('[data-testid=synced-count]'))
const syncedReaches = (page, count, what) => waitFor(async () => (await synced(page)) === count, what)
const itemsIn = (page, category) => page.locator(`[data-testid=panel-${category}] [data-testid=item]`).count()

test('each panel loads only its category; unopened categories never sync', { timeout: 120_000 }, async () => {
  const room = `shop-${Date.now().toString(36)}`
  const a = await openTab(env, `/?room=${room}&user=ann`, 'a')
  const b = await openTab(env, `/?room=${room}&user=bob`, 'b')
  await waitFor(async () => (await statusOf(a)) === 'live' && (await statusOf(b)) === 'live', 'both live')
  assert.equal(await a.evaluate(() => window.seqsync.items.size), 0, 'nothing syncs before a panel opens')

  await a.click('[data-testid=toggle-books]')
  await waitFor(async () => (await itemsIn(a, 'books')) === PER_CATEGORY, 'books load')
  await syncedReaches(a, PER_CATEGORY, 'only the books rows reached the tab')

  await a.click('[data-testid=toggle-games]')
  await waitFor(async () => (await itemsIn(a, 'games')) === PER_CATEGORY, 'games load')
  await syncedReaches(a, 2 * PER_CATEGORY, 'books + games, nothing else')
  const held = await a.evaluate(() => [...new Set(window.seqsync.items.toArray.map((i) => i.category))].sort())
  assert.deepEqual(held, ['books', 'games'])

  // A write in another tab reaches the open panel live.
  await b.click('[data-testid=toggle-books]')
  await waitFor(async () => (await itemsIn(b, 'books')) === PER_CATEGORY, 'b loads books')
  await b.fill('[data-testid=new-books]', 'A brand new book')
  await b.click('[data-testid=add-books]')
  await waitFor(async () => (await a.locator('[data-testid=panel-books]').textContent()).includes('A brand new book'), 'a sees the new book')
  // b holds its books plus the new one, and nothing from the categories it has not opened.
  await syncedReaches(b, PER_CATEGORY + 1, 'b holds books and the new book only')
  const heldByB = await b.evaluate(() => [...new Set(window.seqsync.items.toArray.map((i) => i.category))])
  assert.deepEqual(heldByB, ['books'])
  await a.screenshot({ path: 'test-output/on-demand-a.png' })

  // Closing a panel releases its subset and its rows.
  await a.click('[data-testid=toggle-games]')
  await waitFor(async () => (await synced(a)) === PER_CATEGORY + 1, 'games rows released', 20_000)
})
