// Self-hosting: the chat example on the open-source workerd (scripts/selfhost.sh,
// no wrangler), its Durable Object storage on local disk. Two real clients
// (WebSocketTransport + TanStack DB collections, in Node) sync; workerd is
// stopped and started again on the same directory; the rows are still there
// and each client resumes from its own cursor: a delta, never a snapshot.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'

import { createCollection } from '@tanstack/db'
import WebSocket from 'ws'

import { doCollectionOptions, WebSocketTransport } from '../../worker/dist/client/index.js'
import { stopProcessGroup } from '../support/proc.mjs'
import { freePort } from '../support/wrangler.mjs'
import { waitFor } from './support.mjs'

const state = mkdtempSync(join(tmpdir(), 'seqsync-selfhost-'))
const port = await freePort()
const url = `http://127.0.0.1:${port}`
let server
const transports = []

after(async () => {
  for (const t of transports) t.close()
  await server?.stop()
  rmSync(state, { recursive: true, force: true })
})

/** Starts workerd through scripts/selfhost.sh on `port`, storing in `state`; resolves once it serves. */
async function startWorkerd() {
  const child = spawn('bash', ['scripts/selfhost.sh', 'chat'], {
    env: { ...process.env, PORT: String(port), SEQSYNC_STATE_DIR: state },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group: stop() ends workerd too
  })
  let output = ''
  child.stdout.on('data', (d) => (output += d))
  child.stderr.on('data', (d) => (output += d))
  const stop = () => stopProcessGroup(child)
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`workerd exited (${child.exitCode}):\n${output}`)
    try {
      return (await fetch(`${url}/`)).ok
    } catch {
      return false
    }
  }, `workerd serves on ${url}`, 90_000)
  return { stop, output: () => output }
}

async function login(user) {
  const res = await fetch(`${url}/auth/login`, { method: 'POST', body: JSON.stringify({ user }) })
  assert.equal(res.status, 200, await res.clone().text())
  return res.headers.get('set-cookie').split(';')[0]
}

/** A client of `room` as `user`: its transport (debug lines kept) and its messages collection. */
async function client(room, user) {
  const cookie = await login(user)
  class SignedInWebSocket extends WebSocket {
    constructor(target) {
      super(target, { headers: { cookie } })
    }
  }
  const lines = []
  const transport = new WebSocketTransport({
    url: `${url.replace('http', 'ws')}/sync/${room}`,
    WebSocket: SignedInWebSocket,
    backoff: { initialMs: 100, maxMs: 500 },
    watchNetwork: false,
    debug: (line) => lines.push(JSON.parse(line)),
  })
  transports.push(transport)
  const messages = createCollection(
    doCollectionOptions({ transport, table: 'messages', getKey: (m) => m.id, id: `messages-${user}-${transports.length}` }),
  )
  await messages.preload()
  return { user, transport, messages, lines }
}

const message = (id, author) => ({ id, author, content: `hello ${id}`, created_at: Date.now() })
const ids = (c) => c.messages.toArray.map((m) => m.id).sort()

test('the chat example on workerd keeps its rows and its clients\' cursors across a restart', { timeout: 180_000 }, async () => {
  server = await startWorkerd()
  const room = `selfhost-${Date.now().toString(36)}`
  const ann = await client(room, 'ann')
  const bob = await client(room, 'bob')
  for (const id of ['a1', 'a2', 'a3']) await ann.messages.insert(message(id, 'ann')).isPersisted.promise
  for (const id of ['b1', 'b2']) await bob.messages.insert(message(id, 'bob')).isPersisted.promise
  const before = ['a1', 'a2', 'a3', 'b1', 'b2']
  await waitFor(() => ids(ann).length === 5 && ids(bob).length === 5, 'both clients hold all five rows')
  await waitFor(() => ann.transport.appliedSeq === 5 && bob.transport.appliedSeq === 5, 'both cursors at 5')
  const epoch = ann.transport.epoch
  assert.equal(bob.transport.epoch, epoch)

  await server.stop()
  await waitFor(() => ann.transport.status !== 'live' && bob.transport.status !== 'live', 'both clients offline')
  const rooms = readdirSync(join(state, 'seqsync-chat-ChatRoom')).filter((f) => /^[0-9a-f]{64}\.sqlite$/.test(f))
  assert.equal(rooms.length, 1, 'the room is one SQLite file on disk (beside workerd\'s metadata.sqlite)')
  // Written while the server is down: it waits, and is sent after the reconnect.
  const offline = ann.messages.insert(message('a4', 'ann'))

  server = await startWorkerd()
  await offline.isPersisted.promise
  await waitFor(() => ids(ann).length === 6 && ids(bob).length === 6, 'both clients hold all six rows', 60_000)
  assert.deepEqual(ids(ann), [...before, 'a4'].sort())
  assert.deepEqual(ids(bob), ids(ann))
  // The seqs went on from where they were: the log survived, not just the rows.
  await waitFor(() => ann.transport.appliedSeq === 6 && bob.transport.appliedSeq === 6, 'both cursors at 6')
  assert.equal(ann.transport.epoch, epoch, 'the same storage, not a new one')

  // Each client's hello after the restart resumed from its cursor (5): a delta, or nothing to send.
  for (const c of [ann, bob]) {
    const resumes = c.lines.filter((l) => l.seqsync === 'resume')
    assert.equal(resumes.length, 2, `${c.user}: one resume per connection`)
    assert.equal(resumes[0].mode, 'snapshot', `${c.user}: the first connection starts from a snapshot`)
    assert.equal(resumes[1].since, 5, `${c.user} resumed from its cursor`)
    assert.ok(['delta', 'none'].includes(resumes[1].mode), `${c.user}: resumed by ${resumes[1].mode}, not a snapshot`)
  }
  // A client with no cursor gets every row from the restarted server.
  const carol = await client(room, 'carol')
  assert.deepEqual(ids(carol), ids(ann))
})
