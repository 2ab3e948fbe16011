// The client's half of flow control (docs/protocol.md §4.6): recv frames
// report what was read, in the DO's unit (UTF-8 bytes), every quarter of the
// welcome's maxUnreadBytesPerSocket, counted from each new socket.
import { afterEach, beforeEach, expect, it } from 'vitest'

import { utf8Length } from '../../worker/src/client/read-credit.js'
import { WebSocketTransport } from '../../worker/src/client/transport.js'
import { FakeSocket, LIMITS } from './fake-socket.js'

let transport: WebSocketTransport | undefined
beforeEach(() => FakeSocket.reset())
afterEach(() => transport?.close())

it('utf8Length counts what TextEncoder would encode', () => {
  for (const text of ['', 'ascii', 'é', '€', '😀', 'a😀b€é', '\ud800x', 'x\udc00']) {
    expect(utf8Length(text)).toBe(new TextEncoder().encode(text).byteLength)
  }
  // Longer than one counting window, with a surrogate pair across each window's edge.
  for (const pad of [0, 1, 2]) {
    const text = `${'a'.repeat(64 * 1024 - 1 + pad)}😀${'é€😀'.repeat(30_000)}\ud800`
    expect(utf8Length(text)).toBe(new TextEncoder().encode(text).byteLength)
  }
})

it('sends recv with the bytes received each quarter of maxUnreadBytesPerSocket', () => {
  transport = new WebSocketTransport({ url: 'ws://do/sync/room', WebSocket: FakeSocket, backoff: { initialMs: 2, maxMs: 4 }, watchNetwork: false })
  const socket = FakeSocket.last
  socket.open()
  const limits = { ...LIMITS, maxUnreadBytesPerSocket: 64 * 1024 }
  const welcome = JSON.stringify({ t: 'welcome', v: 1, epoch: 'e1', seq: 0, limits })
  socket.deliverText(welcome)
  const synced = JSON.stringify({ t: 'synced', seq: 0 })
  const frame = JSON.stringify({ t: 'error', code: 18, error: 'INTERNAL', message: '€'.repeat(1000) })
  let received = utf8Length(welcome)
  while (socket.framesOf('recv').length === 0) {
    socket.deliverText(frame)
    received += utf8Length(frame)
    expect(received).toBeLessThan(16 * 1024 + utf8Length(frame) + 1)
  }
  expect(socket.framesOf('recv')).toEqual([{ t: 'recv', bytes: received }])
  socket.deliverText(synced)
  expect(socket.framesOf('recv')).toHaveLength(1)
})
