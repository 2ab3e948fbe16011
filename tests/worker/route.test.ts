// routeSyncRequest, the Worker half (worker/src/do/route.ts), in front of
// the real DOs of fixture.ts; and the hand-written Worker it replaces.
import { env, exports } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'

import { matchSyncPath } from '../../worker/src/do/route.js'
import type { Env } from './fixture.js'
import { freshRoom, insertMessage, TestSocket } from './socket.js'

const testEnv = env as unknown as Env
const room = (name: string) => testEnv.TEST_DO.get(testEnv.TEST_DO.idFromName(name))

describe('routeSyncRequest', () => {
  it('hands back every request that is not a sync path: the app answers it (404 here)', async () => {
    for (const path of ['/', '/other/x', '/sync', '/sync/', '/sync/bad%20room', `/sync/${'x'.repeat(65)}`, '/sync/x/unknown', '/sync/x/claims/more', '/idFromName/x']) {
      const res = await exports.default.fetch(`http://test${path}?user=ann`, { headers: { Upgrade: 'websocket' } })
      expect(res.status, path).toBe(404)
    }
  })

  it('forwards to the room named in the path, under the route that names the namespace', async () => {
    const name = freshRoom()
    const { socket } = await TestSocket.connect(name, 'ann')
    expect((await socket.mutate('m1', [insertMessage('a', 'ann')])).t).toBe('ack')
    expect(await room(name).rows('messages')).toHaveLength(1)
    // The same room name under another route is another namespace's object.
    const { socket: short } = await TestSocket.connect(name, 'ann', {}, 'short')
    short.send({ t: 'sub', id: 's', c: 'messages' })
    expect((await short.next('snapshot')).rows).toEqual([])
    socket.close()
    short.close()
  })

  it('strips the credential: the DO gets the claims, never the Cookie or Authorization header', async () => {
    const name = freshRoom()
    const socket = await TestSocket.open(name, 'ann', 'sync', { Cookie: 'session=secret', Authorization: 'Bearer secret' })
    socket.send({ t: 'hello', v: 1 })
    await socket.next('welcome')
    expect(await room(name).lastUpgradeCredentials()).toEqual({ cookie: null, authorization: null })
    socket.close()
  })

  it('a refused authenticate is a 4401 close on an upgrade (clients stop) and an HTTP 401 otherwise', async () => {
    const socket = await TestSocket.open(freshRoom(), '')
    await expect.poll(() => socket.closed?.code).toBe(4401)
    const plain = await exports.default.fetch(`http://test/sync/${freshRoom()}?user=`)
    expect(plain.status).toBe(401)
  })

  it('serves an endpoint under the room after the same authentication', async () => {
    const name = freshRoom()
    const res = await exports.default.fetch(`http://test/sync/${name}/claims?user=ann&exp=99`)
    expect(await res.json()).toEqual({ claims: { userId: 'ann', exp: 99 }, room: name, route: 'sync' })
    expect((await exports.default.fetch(`http://test/sync/${name}/claims?user=`)).status).toBe(401)
  })

  it('matchSyncPath reads route, room and endpoint, and nothing else', () => {
    const ns = testEnv.TEST_DO
    expect(matchSyncPath('/sync/r1', { namespace: ns })).toEqual({ route: 'sync', room: 'r1', endpoint: undefined })
    expect(matchSyncPath('/other/r1', { namespace: ns })).toBeNull()
    expect(matchSyncPath('/a/r1', { namespace: { a: ns } })).toEqual({ route: 'a', room: 'r1', endpoint: undefined })
    expect(matchSyncPath('/sync/r1', { namespace: { a: ns } })).toBeNull()
    expect(matchSyncPath('/sync/r1/x', { namespace: ns })).toBeNull()
    expect(matchSyncPath('/sync/r1/x', { namespace: ns, endpoints: { x: () => new Response() } })).toEqual({ route: 'sync', room: 'r1', endpoint: 'x' })
    expect(matchSyncPath('/sync/r1/toString', { namespace: ns, endpoints: {} })).toBeNull()
    expect(matchSyncPath('/sync/ab', { namespace: ns, room: /^a$/ })).toBeNull()
  })
})

describe('a hand-written Worker that forges the claims header itself', () => {
  it('keeps working: its claims reach authorize, and a client-sent header is overwritten', async () => {
    const name = freshRoom()
    const socket = await TestSocket.openPath(`/seed-style/${name}?user=ann`, { 'x-claims': JSON.stringify({ userId: 'mallory' }) })
    socket.send({ t: 'hello', v: 1 })
    await socket.next('welcome')
    expect((await socket.mutate('as-ann', [insertMessage('a', 'ann')])).t).toBe('ack')
    expect(await socket.mutate('as-mallory', [insertMessage('m', 'mallory')])).toMatchObject({ t: 'reject', code: 10 })
    socket.close()
    const refused = await TestSocket.openPath(`/seed-style/${freshRoom()}?user=`)
    await expect.poll(() => refused.closed?.code).toBe(4401)
  })
})
