import { describe, expect, it } from 'vitest'

import { freshRoom, insertMessage, TestSocket } from './socket.js'

describe('smoke', () => {
  it('hello, subscribe, insert, ack', async () => {
    const { socket, welcome } = await TestSocket.connect(freshRoom())
    expect(welcome.v).toBe(1)
    socket.send({ t: 'sub', id: 's1', c: 'messages' })
    const snap = await socket.next('snapshot')
    expect(snap.rows).toEqual([])
    const ack = await socket.mutate('m1', [insertMessage('a')])
    expect(ack.t).toBe('ack')
    const changes = await socket.next('changes')
    expect(changes.changes[0]?.k).toBe('a')
    socket.close()
  })
})
