// examples/on-demand in Chromium: only opened categories sync; closing a
// panel releases its rows; a write in one tab appears in another's open panel;
// only the user who added an item may delete it.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { countFrames, openTab, startExample, statusOf, upgrade, waitFor } from './support.mjs'

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

test('after a reload an opened panel renders from the local copy before its snapshot arrives', { timeout: 120_000 }, async () => {
  const room = `cached-${Date.now().toString(36)}`
  const context = await env.browser.newContext()
  await context.addInitScript(countFrames, 'items')
  const first = await context.newPage()
  await first.goto(`${env.server.url}/?room=${room}&user=ann`)
  await waitFor(async () => (await statusOf(first)) === 'live', 'live')
  await first.click('[data-testid=toggle-books]')
  await waitFor(async () => (await itemsIn(first, 'books')) === PER_CATEGORY, 'books load')
  assert.equal(await first.evaluate(() => window.__seen.heldAtFirstSnapshot), 0, 'the first visit had nothing cached')
  await first.evaluate(() => window.seqsync.transport.flushLocal())
  await first.close()

  const again = await context.newPage()
  await again.goto(`${env.server.url}/?room=${room}&user=ann`)
  await waitFor(async () => (await statusOf(again)) === 'live', 'live again')
  await again.click('[data-testid=toggle-books]')
  await waitFor(async () => (await itemsIn(again, 'books')) === PER_CATEGORY, 'books render again')
  await waitFor(async () => (await again.evaluate(() => window.__seen.snapshotRows)) === PER_CATEGORY, 'revalidated by its snapshot')
  assert.equal(await again.evaluate(() => window.__seen.heldAtFirstSnapshot), PER_CATEGORY, 'the books were held from the local copy before the snapshot arrived')
  await syncedReaches(again, PER_CATEGORY, 'still only the books')
  await context.close()
})

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

// What a write from `page` came to: 'accepted', or the rejection's message.
const outcome = (page, write, arg) => page.evaluate(async ([write, arg]) => {
  const { items } = window.seqsync
  const tx = write === 'delete' ? items.delete(arg) : items.insert(arg)
  try {
    await tx.isPersisted.promise
    return 'accepted'
  } catch (error) {
    return error.message
  }
}, [write, arg])

test('only the user who added an item may delete it; the catalog needs a session', { timeout: 60_000 }, async () => {
  assert.deepEqual(await upgrade(env, '/sync/shop'), { code: 4401, reason: 'unauthorized' }, 'no session, no catalog')
  const room = `owners-${Date.now().toString(36)}`
  const ann = await openTab(env, `/?room=${room}&user=ann`, 'ann')
  const bob = await openTab(env, `/?room=${room}&user=bob`, 'bob')
  await waitFor(async () => (await statusOf(ann)) === 'live' && (await statusOf(bob)) === 'live', 'both live')
  await ann.click('[data-testid=toggle-books]')
  await bob.click('[data-testid=toggle-books]')
  await bob.fill('[data-testid=new-books]', 'Bob’s book')
  await bob.click('[data-testid=add-books]')
  const booksText = (page) => page.locator('[data-testid=panel-books]').textContent()
  await waitFor(async () => (await booksText(ann)).includes('Bob’s book'), 'ann sees bob’s book')
  const bobsId = await bob.evaluate(() => window.seqsync.items.toArray.find((i) => i.name === 'Bob’s book').id)

  assert.match(await outcome(ann, 'delete', bobsId), /UNAUTHORIZED: only the owner may delete/, 'not ann’s to delete')
  assert.match(await outcome(ann, 'delete', 'books-001'), /UNAUTHORIZED: only the owner may delete/, 'the seeded items are nobody’s')
  // In a category no panel shows: the page renders only well-typed rows.
  const item = { id: `tools-${Date.now()}`, category: 'tools', name: 'x', price: 1, created_at: Date.now() }
  assert.match(await outcome(ann, 'insert', { ...item, owner: 'bob' }), /UNAUTHORIZED: owner must be the signed-in user/)
  assert.match(await outcome(ann, 'insert', { ...item, owner: 'ann', price: '1' }), /UNAUTHORIZED: price must be a number/)
  assert.ok((await booksText(ann)).includes('Bob’s book'), 'the refused delete rolled back')
  assert.equal(await ann.locator('[data-testid=panel-books] [data-testid=delete]').count(), 0, 'ann gets no delete buttons')

  // Bob deletes his own, with the button on his item.
  await bob.click('[data-testid=panel-books] [data-testid=delete]')
  await waitFor(async () => !(await booksText(ann)).includes('Bob’s book'), 'the delete reaches ann')
})
