// `local` where there is no IndexedDB (Node, a Worker doing SSR): the
// transport runs in memory as without it, after one warning.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { WebSocketTransport } from '../../worker/src/client/transport.js'
import type { AppliedUnit } from '../../worker/src/client/transport.js'
import { FakeSocket, until } from './fake-socket.js'

let transports: WebSocketTransport[] = []
beforeEach(() => FakeSocket.reset())
afterEach(() => {
  for (const t of transports) t.close()
  transports = []
  vi.restoreAllMocks()
})

describe('WebSocketTransport: local without IndexedDB', () => {
  it('warns once, runs in memory, and syncs and writes as without it', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const units: AppliedUnit[] = []
    const make = () => {
      const t = new WebSocketTransport({ url: 'ws://do/sync/room', WebSocket: FakeSocket, watchNetwork: false, local: true })
      transports.push(t)
      return t
    }
    const t = make()
    expect(t.local).toBe('loading')
    t.register({ id: 's1', c: 'messages' }, { applyUnit: (u) => units.push(u), onError: () => {} }, { persisted: true })
    await until(() => FakeSocket.instances.length === 1)
    expect(t.local).toBe('memory')
    const ws = FakeSocket.last
    ws.open()
    expect(ws.sent[0]).toEqual({ t: 'hello', v: 1, inlineAcks: true, compactChanges: true, subs: [{ id: 's1', c: 'messages' }] })
    ws.deliver({ t: 'welcome', v: 1, epoch: 'e1', seq: 0, limits: {} as never })
    ws.deliver({ t: 'snapshot', sub: 's1', c: 'messages', seq: 3, rows: [{ id: 'a' }] })
    expect(units).toHaveLength(1)
    expect(t.appliedSeq).toBe(3)
    const write = t.mutate([{ c: 'messages', op: 'delete', k: 'a' }])
    const mut = ws.sent.at(-1) as { t: string; id: string }
    expect(mut.t).toBe('mut')
    ws.deliver({ t: 'ack', id: mut.id, seq: 4 })
    await expect(write).resolves.toEqual({ seq: 4 })

    make() // a second transport with `local` does not warn again
    await until(() => FakeSocket.instances.length === 2)
    const warnings = warn.mock.calls.filter((c) => String(c[0]).includes('local-first is off'))
    expect(warnings).toHaveLength(1)
    expect(String(warnings[0]![0])).toContain('no IndexedDB')
  })
})
