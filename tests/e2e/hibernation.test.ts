// A real TanStack DB client across the DO's hibernation: local workerd evicts
// a Durable Object whose only connections are hibernatable sockets once it
// has been idle for about 10 s. The client's socket stays open through it;
// the woken instance rebuilds its core from SQLite and the socket
// attachments, and must then serve that same socket both ways.
import { afterEach, expect, it } from 'vitest'

import { changesIn } from '../../worker/src/client/codec.js'
import type { ServerFrame } from '../../worker/src/protocol/index.js'
import { admin, type Client, connectClient, freshRoom, message, rowsOf, serverRows, until } from './harness.js'

const open: Client[] = []
function client(room: string, user: string) {
  const c = connectClient(room, user)
  open.push(c)
  return c
}
afterEach(() => {
  for (const c of open.splice(0)) c.transport.close()
})

const instanceId = async (room: string) => String((await admin('sync', room, 'whoami')).instanceId)

/**
 * Resolves once the room is served by another instance than `before`. Each
 * check is a request to the object, which wakes it (or keeps it awake) and
 * restarts its idle clock, so checks are spaced further apart than the
 * runtime's ~10 s idle timeout; the wait ends on the condition or fails.
 */
async function untilEvicted(room: string, before: string, { spacingMs = 11_000, timeoutMs = 60_000 } = {}) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(spacingMs, deadline - Date.now()))))
    if ((await instanceId(room)) !== before) return
    if (Date.now() >= deadline) throw new Error(`room ${room} was not evicted within ${timeoutMs} ms`)
  }
}

/** `promise`, or a failure naming `what` after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms))),
    ])
  } finally {
    clearTimeout(timer)
  }
}

/** The frames of type `t` that `c` received, parsed. */
const received = (c: Client, t: string) =>
  c.network.received.map((f) => JSON.parse(f) as { t: string; changes?: Array<{ k: string; row?: unknown }> }).filter((f) => f.t === t)

it('a real client’s socket survives the DO’s eviction, then writes and receives changes on that same socket', { timeout: 120_000 }, async () => {
  const room = freshRoom('hibernate')
  const ann = client(room, 'ann')
  const bob = client(room, 'bob')
  await Promise.all([ann.messages.preload(), bob.messages.preload()])
  await ann.messages.insert(message('before', 'ann')).isPersisted.promise
  await until(() => bob.messages.has('before'), 'bob sees the row written before the eviction')
  const before = await instanceId(room)
  expect(received(ann, 'welcome')).toHaveLength(1)

  await untilEvicted(room, before)
  const afterWake = ann.network.received.length

  // Ann writes on the socket that survived: the new instance identifies it
  // from its attachment, commits, confirms it on it, and broadcasts.
  await within(ann.messages.insert(message('after-ann', 'ann')).isPersisted.promise, 10_000, 'ann’s write after the wake is confirmed')
  await until(() => bob.messages.has('after-ann'), 'bob receives ann’s write')
  // Bob writes; ann receives it through her restored subscription.
  await within(bob.messages.insert(message('after-bob', 'bob')).isPersisted.promise, 10_000, 'bob’s write after the wake is confirmed')
  await until(() => ann.messages.has('after-bob'), 'ann receives bob’s write')
  const live = ann.network.received.slice(afterWake).map((f) => JSON.parse(f) as ServerFrame)
  expect(live.some((f) => f.t === 'changes' && changesIn(f).some((c) => c.k === 'after-bob' && c.row !== undefined))).toBe(true)
  expect(live.some((f) => f.t === 'ack')).toBe(true)

  // All of it on the sockets opened before the eviction: neither client reconnected.
  expect(received(ann, 'welcome')).toHaveLength(1)
  expect(received(bob, 'welcome')).toHaveLength(1)
  expect(ann.transport.status).toBe('live')
  const server = (await serverRows(room)).messages
  expect(server.map((m) => m.id)).toEqual(['after-ann', 'after-bob', 'before'])
  expect(rowsOf(ann.messages)).toEqual(server)
  expect(rowsOf(bob.messages)).toEqual(server)
})
