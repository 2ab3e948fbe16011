// examples/board in Chromium: 5,000 tasks on one DO; the first screen
// transfers only its window; a bumped task moves into the window live in
// another tab; with the firehose on, measures how fast a vote reaches a
// second tab (p50/p99, printed and saved to test-output/board.json).
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { after, before, test } from 'node:test'

import { openTab, percentile, startExample, statusOf, waitFor } from './support.mjs'

let env

before(async () => {
  env = await startExample('board')
})

after(async () => {
  await env?.stop()
})

// The collection's own size: the page's counter is refreshed every 100 ms and could lag.
const loaded = (page) => page.evaluate(() => window.seqsync.tasks.size)
const shown = async (page) => Number(await page.textContent('[data-testid=shown]'))
const topIds = (page, n) => page.$$eval('[data-testid=task]', (els, n) => els.slice(0, n).map((e) => e.dataset.id), n)

test('the board syncs only its window, moves a bumped task in, and stays live under a firehose', { timeout: 180_000 }, async () => {
  const room = `board-${Date.now().toString(36)}`
  const a = await openTab(env, `/?room=${room}&user=ann`, 'a')
  await waitFor(async () => (await statusOf(a)) === 'live' && (await shown(a)) === 20, 'first screen', 30_000)
  const firstScreen = await loaded(a)
  console.log(`board: first screen transferred ${firstScreen} of 5000 rows`)
  assert.ok(firstScreen <= 25, `the first screen holds ${firstScreen} rows, not the whole table`)

  await a.click('[data-testid=more]')
  await waitFor(async () => (await shown(a)) === 40, 'second page')
  assert.ok((await loaded(a)) <= 45, 'paging loads about one more page')

  // Bump a task from far below the window to the top: it moves in.
  const b = await openTab(env, `/?room=${room}&user=bob`, 'b')
  await waitFor(async () => (await statusOf(b)) === 'live' && (await shown(b)) === 20, 'b first screen', 30_000)
  const target = 'task-04321'
  assert.ok(!(await topIds(a, 40)).includes(target))
  await b.evaluate((id) => window.seqsync.transport.call('vote', { id, amount: 100_000 }), target)
  await waitFor(async () => (await topIds(a, 1))[0] === target, 'the bumped task is first in tab a')
  await waitFor(async () => (await topIds(b, 1))[0] === target, 'and in tab b')
  await a.screenshot({ path: 'test-output/board-a.png' })

  // Firehose on in tab b; tab a votes on the top task and we time how long
  // tab b takes to show the new count.
  await b.click('[data-testid=firehose]')
  const latencies = []
  for (let i = 0; i < 30; i++) {
    const before = Number(await b.getAttribute(`[data-id=${target}]`, 'data-votes'))
    const started = performance.now()
    await a.click(`[data-testid=vote-${target}]`)
    await b.waitForFunction(
      ([id, v]) => Number(document.querySelector(`[data-id=${id}]`)?.getAttribute('data-votes')) > v,
      [target, before],
      { polling: 'raf', timeout: 10_000 },
    )
    latencies.push(performance.now() - started)
  }
  await b.click('[data-testid=firehose]')
  const p50 = percentile(latencies, 50)
  const p99 = percentile(latencies, 99)
  console.log(`board: vote → second tab with the firehose on: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms (n=${latencies.length})`)
  writeFileSync('test-output/board.json', JSON.stringify({ firstScreenRows: firstScreen, voteLatencyMs: { p50, p99, n: latencies.length } }, null, 2))
  await b.screenshot({ path: 'test-output/board-b.png' })
  assert.ok((await loaded(b)) < 200, 'the firehose does not drag the whole table into the tab')
})
