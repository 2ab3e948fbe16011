// Shared by the browser tests: build an example, serve it under wrangler
// dev, drive Debian's Chromium with playwright-core.
import { execFileSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'

import { chromium } from 'playwright-core'
import WebSocket from 'ws'

import { startWrangler } from '../support/wrangler.mjs'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/** Builds examples/<name>, starts it (with the Worker `vars`) and a browser (with `browserArgs` besides ours). Call stop() when done. */
export async function startExample(name, { browserArgs = [], vars } = {}) {
  execFileSync('bash', ['scripts/build-example.sh', name], { stdio: 'inherit' })
  const config = name === 'chat' ? 'wrangler.toml' : `examples/${name}/wrangler.toml`
  const env = { config, server: await startWrangler({ config, vars }) }
  env.browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', ...browserArgs] })
  mkdirSync('test-output', { recursive: true })
  env.stop = async () => {
    await env.browser?.close()
    await env.server?.stop()
  }
  return env
}

/**
 * Signs `user` in through the examples' demo login (examples/common/auth.ts)
 * and returns the session cookie as a `Cookie` header value.
 */
export async function sessionCookie(env, user) {
  const res = await fetch(`${env.server.url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user }),
  })
  if (!res.ok) throw new Error(`login as ${user}: ${res.status} ${await res.text()}`)
  return res.headers.get('set-cookie').split(';')[0]
}

/**
 * Opens a raw WebSocket to `path` with `headers` and sends `hello`. Resolves
 * to 'welcome' if the Durable Object took the socket, or else to the close
 * that refused it ({ code, reason }).
 */
export function upgrade(env, path, headers = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${env.server.wsUrl}${path}`, { headers })
    ws.on('open', () => ws.send(JSON.stringify({ t: 'hello', v: 1 })))
    ws.on('message', (data) => {
      if (JSON.parse(String(data)).t === 'welcome') resolve('welcome')
      ws.close()
    })
    ws.on('close', (code, reason) => resolve({ code, reason: String(reason) }))
    ws.on('error', reject)
  })
}

/** A new browser context (a separate tab with its own storage) at `path`. */
export async function openTab(env, path, label) {
  const context = await env.browser.newContext({ viewport: { width: 720, height: 900 } })
  const page = await context.newPage()
  page.on('pageerror', (error) => console.error(`[${label}] page error:`, error))
  await page.goto(`${env.server.url}${path}`)
  return page
}

export const statusOf = (page) => page.getAttribute('[data-testid=status]', 'data-status')

export async function waitFor(check, what, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

/**
 * An init script (`context.addInitScript(countFrames, 'messages')`): counts
 * in window.__seen what the page's sockets receive — frames, rows in changes
 * and snapshots — and what window.seqsync[collection] held, and the page
 * showed, when the first frame and the first snapshot arrived (before the
 * transport handled them: this listener is the socket's first).
 */
export function countFrames(collection) {
  const seen = { frames: 0, changes: 0, snapshotRows: 0, heldAtFirstFrame: -1, renderedAtFirstFrame: -1, heldAtFirstSnapshot: -1 }
  window.__seen = seen
  const held = () => window.seqsync?.[collection]?.size ?? 0
  const Native = window.WebSocket
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args)
      this.addEventListener('message', (ev) => {
        if (seen.frames++ === 0) {
          seen.heldAtFirstFrame = held()
          seen.renderedAtFirstFrame = document.querySelectorAll('[data-testid=message]').length
        }
        const frame = JSON.parse(ev.data)
        if (frame.t === 'changes') seen.changes += (frame.changes ?? frame.rows).length
        if (frame.t !== 'snapshot') return
        if (seen.heldAtFirstSnapshot < 0) seen.heldAtFirstSnapshot = held()
        seen.snapshotRows += frame.rows.length
      })
    }
  }
}
