// The transport over a real socket from the `ws` package (what Node users pass).
import WebSocket, { WebSocketServer } from 'ws'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCollection } from '@tanstack/db'
import { WebSocketTransport, doCollectionOptions } from '../../worker/src/client/index.js'
import type { ClientFrame, ServerFrame } from '../../worker/src/protocol/index.js'
import { LIMITS, until } from './fake-socket.js'

type Row = { id: string; n: number }

let server: WebSocketServer
let url: string
const received: ClientFrame[] = []
let seq = 0

beforeAll(async () => {
  server = new WebSocketServer({ port: 0 })
  await new Promise<void>((r) => server.once('listening', () => r()))
  url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/sync/x`
  server.on('connection', (socket) => {
    const send = (f: ServerFrame) => socket.send(JSON.stringify(f))
    socket.on('message', (data) => {
      const frame = JSON.parse(String(data)) as ClientFrame
      received.push(frame)
      if (frame.t === 'hello') {
        send({ t: 'welcome', v: 1, epoch: 'e1', seq, limits: LIMITS })
        for (const sub of frame.subs ?? []) {
          send({ t: 'snapshot', sub: sub.id, c: sub.c, seq, rows: [{ id: 'a', n: 1 }], more: true })
        }
        send({ t: 'synced', seq })
      } else if (frame.t === 'mut') {
        seq += 1
        send({
          t: 'changes',
          seq,
          changes: frame.ops.map((op) => (op.op === 'delete' ? { c: op.c, k: op.k } : { c: op.c, k: op.k, row: op.cols ?? {} })),
        })
        send({ t: 'ack', id: frame.id, seq })
      }
    })
  })
})
afterAll(async () => {
  for (const c of server.clients) c.terminate()
  await new Promise((r) => server.close(r))
})

describe('WebSocketTransport over ws', () => {
  it('syncs, writes and confirms', async () => {
    const transport = new WebSocketTransport({ url, WebSocket })
    const rows = createCollection(doCollectionOptions<Row>({ transport, table: 'rows', getKey: (r) => r.id }))
    await rows.preload()
    expect(transport.status).toBe('live')
    expect(rows.get('a')?.n).toBe(1)
    await rows.insert({ id: 'b', n: 2 }).when('settled')
    expect(transport.appliedSeq).toBe(1)
    expect(rows.get('b')?.$hasPendingWrites).toBe(false)
    expect(received.map((f) => f.t)).toEqual(['hello', 'mut'])
    transport.close()
    await until(() => server.clients.size === 0)
  })
})
