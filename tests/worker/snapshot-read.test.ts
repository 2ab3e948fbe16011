// readSyncSnapshot: a server render's read of a room over RPC
// (docs/protocol.md §5.9), checked against what a real socket of the same
// claims gets from the same DO: the same rows, the same where and window
// rules, the same refusals; and a socket that resumes from the read's
// cursor gets only what changed since.
import { env, exports } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'

import { ClosedError, ProtocolError, SubscriptionError } from '../../worker/src/client/errors.js'
import { readSyncSnapshot } from '../../worker/src/do/route.js'
import { ErrorCode, type PredicateIR, type SnapshotSub } from '../../worker/src/protocol/index.js'
import { type Env, syncRoutes } from './fixture.js'
import { freshRoom, insertMessage, TestSocket } from './socket.js'

const testEnv = env as unknown as Env
const room = (name: string) => testEnv.TEST_DO.get(testEnv.TEST_DO.idFromName(name))

/** The read a page request by `user` makes. */
function read(name: string, subs: SnapshotSub[], user = 'ann', route?: string) {
  const req = new Request(`http://test/chat/${name}?user=${user}`)
  return readSyncSnapshot(req, testEnv, syncRoutes(testEnv), { room: name, subs, ...(route ? { route } : {}) })
}

/** A room with messages by ann and bob, written through a socket. */
async function roomWithMessages(): Promise<string> {
  const name = freshRoom('ssr')
  const { socket } = await TestSocket.connect(name, 'ann')
  const { socket: bob } = await TestSocket.connect(name, 'bob')
  for (let i = 0; i < 4; i++) {
    expect((await socket.mutate(`a${i}`, [{ ...insertMessage(`a${i}`, 'ann'), cols: { id: `a${i}`, author: 'ann', content: `ann ${i}`, created_at: i } }])).t).toBe('ack')
    expect((await bob.mutate(`b${i}`, [{ ...insertMessage(`b${i}`, 'bob'), cols: { id: `b${i}`, author: 'bob', content: `bob ${i}`, created_at: 10 + i } }])).t).toBe('ack')
  }
  socket.close()
  bob.close()
  return name
}

/** What a socket of `user` gets for `sub` on its first hello: the welcome and the snapshot. */
async function socketSnapshot(name: string, sub: Record<string, unknown>, user = 'ann') {
  const { socket, welcome } = await TestSocket.connect(name, user, { subs: [sub] })
  const frame = await socket.nextOf(['snapshot', 'sub-error'])
  socket.close()
  return { welcome, frame }
}

const author = (who: string): PredicateIR => ({ type: 'func', name: 'eq', args: [{ type: 'ref', path: ['author'] }, { type: 'val', value: who }] })

describe('readSyncSnapshot', () => {
  it('reads the rows a socket of the same claims gets, at the seq and epoch of its welcome', async () => {
    const name = await roomWithMessages()
    const snapshot = await read(name, [{ c: 'messages' }])
    const { welcome, frame } = await socketSnapshot(name, { id: 's', c: 'messages' })
    expect(frame.t).toBe('snapshot')
    expect(snapshot.epoch).toBe(welcome.epoch)
    expect(snapshot.seq).toBe(welcome.seq)
    expect(snapshot.seq).toBeGreaterThan(0)
    const [entry] = snapshot.subs
    expect(entry && 'rows' in entry && entry.rows).toEqual((frame as { rows: unknown[] }).rows)
    expect((frame as { rows: unknown[] }).rows).toHaveLength(8)
  })

  it('applies the same where and window rules: never more rows than that socket sees', async () => {
    const name = await roomWithMessages()
    const window = { c: 'messages', orderBy: [{ col: 'created_at', dir: 'desc' as const }], limit: 3 }
    const snapshot = await read(name, [{ id: 'mine', c: 'messages', where: author('ann') }, { id: 'top', ...window }])
    const mine = await socketSnapshot(name, { id: 'mine', c: 'messages', where: author('ann') })
    const top = await socketSnapshot(name, { id: 'top', ...window })
    const [readMine, readTop] = snapshot.subs
    // The predicate the rows are comes back with them, to resume with.
    expect(readMine).toEqual({ sub: 'mine', c: 'messages', rows: (mine.frame as { rows: unknown[] }).rows, where: author('ann') })
    expect((mine.frame as unknown as { rows: Array<{ author: string }> }).rows.map((r) => r.author)).toEqual(['ann', 'ann', 'ann', 'ann'])
    // The window resolves to the same range, and says so, to resume it with.
    expect(readTop).toEqual({ sub: 'top', c: 'messages', rows: (top.frame as { rows: unknown[] }).rows, where: (top.frame as { where: unknown }).where })
    expect(readTop && 'rows' in readTop && readTop.rows.map((r) => r.id).sort()).toEqual(['b1', 'b2', 'b3'])
  })

  it('holds nothing: a read registers no socket or subscription, and writes no row', async () => {
    const name = await roomWithMessages()
    const counts = async () => ({
      subs: await room(name).count('SELECT COUNT(*) AS n FROM _sync_subs'),
      sockets: await room(name).count('SELECT COUNT(*) AS n FROM _sync_sockets'),
      changes: await room(name).count('SELECT COUNT(*) AS n FROM _sync_changes'),
    })
    const before = await counts()
    await read(name, [{ c: 'messages' }, { c: 'tasks' }])
    expect(await counts()).toEqual(before)
  })

  it('a socket that resumes from the read receives only the delta, never a second snapshot', async () => {
    const name = await roomWithMessages()
    const snapshot = await read(name, [{ id: 'm', c: 'messages' }])
    const { socket: writer } = await TestSocket.connect(name, 'ann')
    expect((await writer.mutate('late', [insertMessage('late', 'ann')])).t).toBe('ack')
    const { socket, welcome } = await TestSocket.connect(name, 'ann', {
      epoch: snapshot.epoch, since: snapshot.seq, subs: [{ id: 'm', c: 'messages', resume: true }],
    })
    const synced = await socket.next('synced')
    expect(synced.seq).toBe(welcome.seq)
    expect(socket.all('snapshot')).toEqual([])
    const changes = socket.all('changes').flatMap((f) => f.changes)
    expect(changes.map((c) => c.k)).toEqual(['late'])
    socket.close()
    writer.close()
  })

  it('refuses an unknown collection or a bad where with the code the socket gets', async () => {
    const name = await roomWithMessages()
    const bad: Array<Record<string, unknown>> = [
      { c: 'nope' },
      { c: 'messages', where: { type: 'func', name: 'eq', args: [{ type: 'ref', path: ['nope'] }, { type: 'val', value: 1 }] } },
      { c: 'messages', where: { type: 'func', name: 'upper', args: [{ type: 'ref', path: ['author'] }] } },
      { c: 'messages', orderBy: [{ col: 'created_at', dir: 'sideways' }], limit: 2 },
    ]
    const codes: number[] = []
    for (const sub of bad) {
      const { frame } = await socketSnapshot(name, { id: 's', ...sub })
      expect(frame.t).toBe('sub-error')
      const refused = await read(name, [sub as SnapshotSub]).catch((e: unknown) => e)
      expect(refused).toBeInstanceOf(SubscriptionError)
      expect((refused as SubscriptionError).code).toBe((frame as { code: number }).code)
      codes.push((refused as SubscriptionError).code)
    }
    expect(codes).toEqual([ErrorCode.UNKNOWN_COLLECTION, ErrorCode.UNKNOWN_COLUMN, ErrorCode.UNSUPPORTED_PREDICATE, ErrorCode.INVALID_FIELD])
  })

  it('refuses a list a hello could not carry (an id twice, too many subs) as the hello is refused', async () => {
    const name = freshRoom('ssr')
    const twice = await read(name, [{ c: 'messages' }, { c: 'messages' }]).catch((e: unknown) => e)
    expect(twice).toBeInstanceOf(ProtocolError)
    expect((twice as ProtocolError).code).toBe(ErrorCode.INVALID_FIELD)
    const many = Array.from({ length: 65 }, (_, i) => ({ id: `s${i}`, c: 'messages' }))
    const tooMany = await read(name, many).catch((e: unknown) => e)
    expect((tooMany as ProtocolError).code).toBe(ErrorCode.TOO_MANY)
  })

  it('refuses claims that cannot read the room as the upgrade is refused: 4401 unauthenticated, 4403 forbidden by the DO', async () => {
    const name = await roomWithMessages()
    const socket = await TestSocket.open(name, '')
    await expect.poll(() => socket.closed?.code).toBe(4401)
    // The fixture DO's parseAttachment throws a 403 Response for 'banned': the upgrade gets it as it is.
    const banned = await exports.default.fetch(`http://test/sync/${name}?user=banned`, { headers: { Upgrade: 'websocket' } })
    expect(banned.status).toBe(403)
    for (const [user, code] of [['', 4401], ['banned', 4403]] as const) {
      const refused = await read(name, [{ c: 'messages' }], user).catch((e: unknown) => e)
      expect(refused).toBeInstanceOf(ClosedError)
      expect((refused as ClosedError).closeCode).toBe(code)
    }
  })

  it('a DO that never called registerSync says so', async () => {
    const refused = await read(freshRoom('ssr'), [{ c: 'messages' }], 'ann', 'unregistered').catch((e: unknown) => e)
    expect(refused).toBeInstanceOf(ProtocolError)
    expect((refused as ProtocolError).code).toBe(ErrorCode.NOT_REGISTERED)
  })
})
