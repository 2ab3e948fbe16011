// The Durable Object shell and the wasm core together, in real workerd, over
// real WebSockets. Each test uses a fresh room, hence a fresh DO.
import { env } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'

import malformed from '../vectors/malformed.json'
import { ErrorCode } from '../../worker/src/protocol/index.js'
import type { Env } from './fixture.js'
import { freshRoom, insertMessage, message, TestSocket } from './socket.js'

const testEnv = env as unknown as Env
const room = (name: string) => testEnv.TEST_DO.get(testEnv.TEST_DO.idFromName(name))
const shortRoom = (name: string) => testEnv.SHORT_DO.get(testEnv.SHORT_DO.idFromName(name))

async function subscribed(name: string, user = 'ann', kind: 'sync' | 'short' = 'sync') {
  const { socket, welcome } = await TestSocket.connect(name, user, {}, kind)
  socket.send({ t: 'sub', id: 's1', c: 'messages' })
  const snapshot = await socket.next('snapshot')
  return { socket, welcome, snapshot }
}

describe('writes and confirmation', () => {
  it('insert, update and delete round-trip; the changes arrive before the ack that confirms them', async () => {
    const name = freshRoom()
    const { socket } = await subscribed(name)
    socket.send({ t: 'mut', id: 'm1', ops: [insertMessage('a')] })
    const ack1 = await socket.next('ack', (f) => f.id === 'm1')
    const changes1 = socket.all('changes')
    expect(changes1).toHaveLength(1)
    expect(changes1[0]!.seq).toBe(ack1.seq)
    expect(changes1[0]!.changes).toEqual([{ c: 'messages', k: 'a', row: message('a') }])
    // The changes frame came first.
    expect(socket.frames.indexOf(changes1[0]!)).toBeLessThan(socket.frames.indexOf(ack1))

    const ack2 = await socket.mutate('m2', [{ c: 'messages', op: 'update', k: 'a', cols: { content: 'edited' } }])
    expect(ack2.t).toBe('ack')
    expect((ack2 as { seq: number }).seq).toBeGreaterThan(ack1.seq)
    const upd = await socket.next('changes', (f) => f.seq === (ack2 as { seq: number }).seq)
    expect(upd.changes[0]!.row).toMatchObject({ id: 'a', content: 'edited' })

    const ack3 = await socket.mutate('m3', [{ c: 'messages', op: 'delete', k: 'a' }])
    const del = await socket.next('changes', (f) => f.seq === (ack3 as { seq: number }).seq)
    expect(del.changes).toEqual([{ c: 'messages', k: 'a' }])
    expect(await room(name).rows('messages')).toEqual([])
    socket.close()
  })

  it('two sockets see each other’s writes, as the same bytes', async () => {
    const name = freshRoom()
    const a = await subscribed(name, 'ann')
    const b = await subscribed(name, 'bob')
    await a.socket.mutate('from-ann', [insertMessage('x', 'ann')])
    await b.socket.mutate('from-bob', [insertMessage('y', 'bob')])
    const seenByB = await b.socket.next('changes', (f) => f.changes.some((c) => c.k === 'x'))
    const seenByA = await a.socket.next('changes', (f) => f.changes.some((c) => c.k === 'y'))
    expect(seenByA.changes[0]!.row).toEqual(message('y', 'bob'))
    expect(seenByB.changes[0]!.row).toEqual(message('x', 'ann'))
    const rawA = a.socket.raw.filter((f) => f.startsWith('{"t":"changes"'))
    const rawB = b.socket.raw.filter((f) => f.startsWith('{"t":"changes"'))
    expect(rawA).toHaveLength(2)
    expect(rawA).toEqual(rawB)
    a.socket.close()
    b.socket.close()
  })

  it('a multi-op mutation commits all ops at one confirmation seq', async () => {
    const name = freshRoom()
    const { socket } = await subscribed(name)
    socket.send({ t: 'sub', id: 's2', c: 'tasks' })
    await socket.next('snapshot', (f) => f.sub === 's2')
    const ack = await socket.mutate('multi', [
      insertMessage('m1'),
      { c: 'tasks', op: 'insert', k: 't1', cols: { id: 't1', title: 'one' } },
      insertMessage('m2'),
    ])
    expect(ack.t).toBe('ack')
    const unit = await socket.next('changes', (f) => f.seq === (ack as { seq: number }).seq)
    expect(unit.changes.map((c) => c.k).sort()).toEqual(['m1', 'm2', 't1'])
    socket.close()
  })

  it('afterCommit runs after the ack, with the confirmed seq', async () => {
    const name = freshRoom()
    // Subscribed to notes only: the fixture's afterCommit for an `audit-`
    // message writes a note, so this socket sees when afterCommit ran.
    const { socket } = await TestSocket.connect(name, 'ann', { subs: [{ id: 'n', c: 'notes' }] })
    await socket.next('synced')
    const ack = await socket.mutate('ac', [insertMessage('audit-1')])
    expect(ack).toMatchObject({ t: 'ack', id: 'ac' })
    const seq = (ack as { seq: number }).seq
    const note = await socket.next('changes', (f) => f.changes.some((c) => c.k === 'note-of-audit-1'))
    // The note's changes frame left after the ack: afterCommit ran once the
    // confirmation had gone out, and saw the seq the ack carries.
    expect(socket.frames.indexOf(note)).toBeGreaterThan(socket.frames.indexOf(ack))
    expect(note.seq).toBeGreaterThan(seq)
    expect(note.changes).toEqual([{ c: 'notes', k: 'note-of-audit-1', row: { id: 'note-of-audit-1', body: `committed at ${seq}` } }])
    expect(await room(name).afterCommits()).toEqual([`audit-1@${seq}`])
    socket.close()
  })

  it('a command that writes broadcasts its changes like a mutation', async () => {
    const name = freshRoom()
    const { socket: watcher } = await TestSocket.connect(name, 'bob', { subs: [{ id: 't', c: 'tasks' }] })
    await watcher.next('synced')
    const { socket } = await subscribed(name)
    await socket.mutate('t', [{ c: 'tasks', op: 'insert', k: 'c1', cols: { id: 'c1', title: 'counter', rank: 0 } }])
    socket.send({ t: 'call', id: 'incr-1', name: 'incr', args: { id: 'c1' } })
    const ack = await socket.next('ack', (f) => f.id === 'incr-1')
    expect(ack.result).toEqual({ rank: 1 })
    const change = await watcher.next('changes', (f) => f.seq === ack.seq)
    expect(change.changes[0]!.row).toMatchObject({ id: 'c1', rank: 1 })
    // A failing command rejects and changes nothing.
    socket.send({ t: 'call', id: 'incr-2', name: 'incr', args: { id: 'missing' } })
    expect(await socket.settle('incr-2')).toMatchObject({ t: 'reject', code: 12 })
    watcher.close()
    socket.close()
  })

  it('a 1.5 MB row travels whole, live and in a snapshot', async () => {
    const name = freshRoom()
    const { socket } = await subscribed(name)
    const big = 'b'.repeat(1_500_000)
    const ack = (await socket.mutate('big', [insertMessage('big', 'ann', big)])) as { seq: number }
    const live = await socket.next('changes', (f) => f.seq === ack.seq)
    expect((live.changes[0]!.row as { content: string }).content.length).toBe(big.length)
    const later = await subscribed(name, 'bob')
    expect((later.snapshot.rows[0] as { content: string }).content).toBe(big)
    socket.close()
    later.socket.close()
  })

  it('a named command runs once and returns its result in the ack', async () => {
    const name = freshRoom()
    const { socket } = await subscribed(name)
    socket.send({ t: 'call', id: 'c1', name: 'echo', args: { text: 'hi' } })
    const ack = await socket.next('ack', (f) => f.id === 'c1')
    expect(ack.result).toEqual({ echoed: 'hi', by: 'ann' })
    socket.close()
  })
})

describe('rejections change nothing', () => {
  it('a denied authorize rejects with UNAUTHORIZED and applies nothing', async () => {
    const name = freshRoom()
    const { socket } = await subscribed(name, 'ann')
    const before = await room(name).state()
    const reject = await socket.mutate('forge', [insertMessage('f', 'mallory')])
    expect(reject).toMatchObject({ t: 'reject', id: 'forge', code: 10, error: 'UNAUTHORIZED', message: 'author mismatch' })
    expect(await room(name).rows('messages')).toEqual([])
    expect((await room(name).state()).head).toBe(before.head)
    socket.close()
  })

  it('an async authorize that throws denies the whole mutation', async () => {
    const name = freshRoom()
    const { socket } = await subscribed(name)
    const reject = await socket.mutate('async-deny', [
      insertMessage('ok'),
      { c: 'tasks', op: 'insert', k: 't', cols: { id: 't', title: 'forbidden' } },
    ])
    expect(reject).toMatchObject({ t: 'reject', code: 10 })
    expect(await room(name).rows('messages')).toEqual([])
    socket.close()
  })

  it('an execute that throws rolls back every op of the mutation', async () => {
    const name = freshRoom()
    const { socket } = await subscribed(name)
    const before = await room(name).state()
    const reject = await socket.mutate('boom', [
      insertMessage('first'),
      { c: 'tasks', op: 'insert', k: 't', cols: { id: 't', title: 'explode' } },
    ])
    expect(reject).toMatchObject({ t: 'reject', code: 12, error: 'EXECUTE_FAILED' })
    expect(await room(name).rows('messages')).toEqual([])
    expect(await room(name).rows('tasks')).toEqual([])
    expect((await room(name).state()).head).toBe(before.head)
    expect(socket.all('changes')).toEqual([])
    // The socket is still usable.
    expect((await socket.mutate('after-boom', [insertMessage('second')])).t).toBe('ack')
    socket.close()
  })

  it('an execute that returns a promise is refused and rolled back', async () => {
    const name = freshRoom()
    const { socket } = await subscribed(name)
    socket.send({ t: 'call', id: 'async', name: 'asyncWrite', args: { id: 'n1' } })
    expect(await socket.settle('async')).toMatchObject({ t: 'reject', code: 12 })
    // The execute's continuation after its await (its late write) is a
    // microtask of that frame's handling: it has run before the DO handles
    // the next frame, so one round trip later it has failed or written.
    await socket.barrier()
    expect(await room(name).rows('notes')).toEqual([])
    socket.close()
  })

  for (const vector of malformed.cases as Array<{ name: string; frame: string; code: number; fresh?: boolean; close?: number }>) {
    it(`bad input: ${vector.name} → code ${vector.code}, nothing changes`, async () => {
      const name = freshRoom('bad')
      const stub = room(name)
      const watcher = await subscribed(name, 'bob')
      let socket: TestSocket
      if (vector.fresh) {
        socket = await TestSocket.open(name, 'ann')
      } else {
        socket = (await subscribed(name, 'ann')).socket
      }
      const before = await stub.state()
      const watcherSaw = watcher.socket.raw.length
      socket.send(vector.frame)
      const answer = await socket.nextOf(['error', 'reject', 'sub-error', 'presence-error'])
      expect(answer.code).toBe(vector.code)
      expect(typeof answer.error).toBe('string')
      expect(typeof answer.message).toBe('string')
      const after = await stub.state()
      expect(after.head).toBe(before.head)
      expect(await stub.rows('messages')).toEqual([])
      if (vector.close) {
        await expect.poll(() => socket.closed?.code).toBe(vector.close)
      } else {
        // The socket survives: a valid exchange still works on it.
        // As the client does, wait for the welcome before sending more. (Seen
        // once under load in local workerd: a call pipelined right behind a
        // hello on a socket whose first hello failed was handled before it.)
        if (vector.fresh && !socket.all('welcome').length) {
          socket.send({ t: 'hello', v: 1 })
          await socket.next('welcome')
        }
        socket.send({ t: 'call', id: 'still-alive', name: 'echo', args: { text: 'ok' } })
        await socket.next('ack', (f) => f.id === 'still-alive')
      }
      // Other sockets are unaffected: the watcher received nothing at all (no
      // change, and not the answer meant for the sender). Its own round trip
      // comes after the DO handled the bad frame, so anything sent to it for
      // that frame would have arrived first.
      await watcher.socket.barrier('watcher-barrier')
      expect(watcher.socket.raw.slice(watcherSaw).map((f) => JSON.parse(f) as { t: string; id?: string }))
        .toEqual([expect.objectContaining({ t: 'ack', id: 'watcher-barrier' })])
      expect(watcher.socket.closed).toBeUndefined()
      socket.close()
      watcher.socket.close()
    })
  }

  it('a frame over maxFrameBytes gets TOO_LARGE and the socket survives', async () => {
    const { socket } = await subscribed(freshRoom())
    socket.send(JSON.stringify({ t: 'call', id: 'big', name: 'echo', args: { text: 'x'.repeat(4.5 * 1024 * 1024) } }))
    const error = await socket.next('error')
    expect(error).toMatchObject({ code: 4, error: 'TOO_LARGE' })
    socket.send({ t: 'call', id: 'small', name: 'echo', args: { text: 'y' } })
    expect((await socket.next('ack', (f) => f.id === 'small')).result).toMatchObject({ echoed: 'y' })
    socket.close()
  })

  it('a value over 2 MB gets TOO_LARGE and is not stored', async () => {
    const name = freshRoom()
    const { socket } = await subscribed(name)
    const reject = await socket.mutate('huge', [insertMessage('h', 'ann', 'z'.repeat(2_000_001))])
    expect(reject).toMatchObject({ t: 'reject', code: 4 })
    expect(await room(name).rows('messages')).toEqual([])
    socket.close()
  })

  it('a binary frame that is not UTF-8 is MALFORMED_FRAME', async () => {
    const { socket } = await subscribed(freshRoom())
    socket.ws.send(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]))
    expect(await socket.next('error')).toMatchObject({ code: 1 })
    socket.close()
  })

  it('a client-sent x-claims header is ignored: the Worker overwrites it', async () => {
    const name = freshRoom()
    const socket = await TestSocket.open(name, 'ann', 'sync', { 'x-claims': JSON.stringify({ userId: 'mallory' }) })
    socket.send({ t: 'hello', v: 1 })
    await socket.next('welcome')
    const reject = await socket.mutate('spoof', [insertMessage('s', 'mallory')])
    expect(reject).toMatchObject({ t: 'reject', code: 10 })
    socket.close()
  })

  it('an upgrade without valid credentials is closed with 4401 (terminal); plain HTTP gets 401', async () => {
    const { exports } = await import('cloudflare:workers')
    const socket = await TestSocket.open(freshRoom(), '')
    await expect.poll(() => socket.closed?.code).toBe(4401)
    const res = await exports.default.fetch('http://test/sync/x?user=')
    expect(res.status).toBe(401)
  })
})

describe('the upgrade', () => {
  it('a DO that never called registerSync says so, naming registerSync, then closes 1011', async () => {
    const socket = await TestSocket.open(freshRoom(), 'ann', 'unregistered')
    socket.send({ t: 'hello', v: 1 })
    const error = await socket.next('error')
    expect(error.error).toBe('NOT_REGISTERED')
    expect(error.code).toBe(ErrorCode.NOT_REGISTERED)
    expect(error.message).toContain('registerSync')
    await expect.poll(() => socket.closed?.code).toBe(1011)
    expect(socket.closed).toEqual({ code: 1011, reason: 'registerSync was not called' })
  })

  it('a request that is not a WebSocket upgrade gets 426', async () => {
    const res = await room(freshRoom()).fetch('http://test/sync/x', { headers: { 'x-claims': '{"userId":"ann"}' } })
    expect(res.status).toBe(426)
  })

  it('claims that cannot be parsed or stored get a terminal close, not an HTTP status a browser cannot read', async () => {
    const closeOf = async (claims: string) => {
      const res = await room(freshRoom()).fetch('http://test/sync/x', { headers: { Upgrade: 'websocket', 'x-claims': claims } })
      expect(res.status).toBe(101)
      const ws = res.webSocket!
      const closed = new Promise<number>((resolve) => ws.addEventListener('close', (e) => resolve(e.code)))
      ws.accept()
      return closed
    }
    expect(await closeOf('{not json')).toBe(4401) // parseAttachment threw
    // 9,000 characters but 18 KB of UTF-8 once stored (the header itself must be ASCII: \u-escaped).
    const wide = JSON.stringify({ userId: 'ann', blob: 'é'.repeat(9000) }).replace(/é/g, '\\u00e9')
    expect(await closeOf(wide)).toBe(4400)
  })

  it('parseAttachment can refuse with its own Response', async () => {
    const { exports } = await import('cloudflare:workers')
    const res = await exports.default.fetch(`http://test/sync/${freshRoom()}?user=banned`, { headers: { Upgrade: 'websocket' } })
    expect(res.status).toBe(403)
    expect(await res.text()).toBe('banned')
  })

  it('"ping" is answered with "pong" by the runtime', async () => {
    const socket = await TestSocket.open(freshRoom(), 'ann')
    const pong = new Promise<string>((resolve) => socket.ws.addEventListener('message', (e) => resolve(e.data as string), { once: true }))
    socket.ws.send('ping')
    expect(await pong).toBe('pong')
    socket.close()
  })
})

describe('exactly-once mutation ids', () => {
  it('a replayed id is not applied twice and gets the original ack', async () => {
    const name = freshRoom()
    const first = await subscribed(name)
    const ack = await first.socket.mutate('once', [insertMessage('o')])
    first.socket.close()
    const second = await subscribed(name)
    second.socket.send({ t: 'mut', id: 'once', ops: [insertMessage('o2')] })
    const replay = await second.socket.next('ack', (f) => f.id === 'once')
    expect(replay).toEqual(ack)
    expect((await room(name).rows('messages')).map((r) => r.id)).toEqual(['o'])
    second.socket.close()
  })

  it('a replay that would apply again runs, is rolled back, and gets the original ack', async () => {
    // Nothing looks the id up before a write: the replay's update succeeds
    // inside its transaction, the outcome's INSERT finds the id recorded,
    // and the shell rolls the transaction back.
    const name = freshRoom()
    const { socket } = await subscribed(name)
    const insert = { c: 'tasks', op: 'insert', k: 'r', cols: { id: 'r', title: 'first' } }
    const ack = await socket.mutate('again', [insert])
    expect(ack.t).toBe('ack')
    const changes = await room(name).count('SELECT COUNT(*) FROM _sync_changes')
    const update = { c: 'tasks', op: 'update', k: 'r', cols: { title: 'changed' } }
    expect(await socket.mutate('again', [update])).toEqual(ack)
    expect((await room(name).rows('tasks')).map((r) => r.title)).toEqual(['first'])
    expect(await room(name).count('SELECT COUNT(*) FROM _sync_changes')).toBe(changes)
    socket.close()
  })

  it('a replay that authorize now refuses gets the original ack, not a reject', async () => {
    const name = freshRoom()
    const { socket } = await subscribed(name)
    const ack = await socket.mutate('was-fine', [{ c: 'tasks', op: 'insert', k: 'f', cols: { id: 'f', title: 'fine' } }])
    expect(ack.t).toBe('ack')
    const now = { c: 'tasks', op: 'insert', k: 'f', cols: { id: 'f', title: 'forbidden' } }
    expect(await socket.mutate('was-fine', [now])).toEqual(ack)
    socket.close()
  })

  it('a replayed rejection gets the identical reject frame', async () => {
    const name = freshRoom()
    const { socket } = await subscribed(name)
    const first = await socket.mutate('deny-once', [insertMessage('d', 'mallory')])
    const again = await socket.mutate('deny-once', [insertMessage('d', 'mallory')])
    expect(again).toEqual(first)
    socket.close()
  })

  it('a duplicate sent while the original is in flight gets the same outcome, applied once', async () => {
    const name = freshRoom()
    const a = await subscribed(name)
    const b = await subscribed(name)
    // A 'held' task's authorize waits for releaseHeld(), so the duplicates
    // surely arrive while the first is in flight.
    const op = { c: 'tasks', op: 'insert', k: 'dup', cols: { id: 'dup', title: 'held' } }
    a.socket.send({ t: 'mut', id: 'race', ops: [op] })
    a.socket.send({ t: 'mut', id: 'race', ops: [op] })
    b.socket.send({ t: 'mut', id: 'race', ops: [op] })
    // A socket's frames are handled in order: its answer to a bad frame
    // means the duplicates before it were seen.
    for (const s of [a.socket, b.socket]) {
      s.send({ t: 'nope' })
      await s.next('error', (f) => f.code === ErrorCode.UNKNOWN_FRAME)
    }
    expect(a.socket.all('ack')).toHaveLength(0)
    // The first one's authorize reaches the gate after a timer: release it once it is there.
    await expect.poll(() => room(name).heldWaiting()).toBe(1)
    await room(name).releaseHeld()
    const acks = [
      await a.socket.next('ack', (f) => f.id === 'race'),
      await b.socket.next('ack', (f) => f.id === 'race'),
    ]
    expect(new Set(acks.map((x) => x.seq)).size).toBe(1)
    // Socket a waits on one id once: one answer, not one per copy it sent.
    await a.socket.mutate('after', [insertMessage('after')])
    expect(a.socket.all('ack').filter((f) => f.id === 'race')).toHaveLength(1)
    expect(await room(name).rows('tasks')).toHaveLength(1)
    a.socket.close()
    b.socket.close()
  })

  it('ids are scoped by identity: bob reusing ann’s id is a separate mutation', async () => {
    const name = freshRoom()
    const ann = await subscribed(name, 'ann')
    const bob = await subscribed(name, 'bob')
    const annAck = (await ann.socket.mutate('shared-id', [insertMessage('from-ann', 'ann')])) as { seq: number }
    const bobAck = (await bob.socket.mutate('shared-id', [insertMessage('from-bob', 'bob')])) as { seq: number }
    expect(bobAck.seq).toBeGreaterThan(annAck.seq)
    expect((await room(name).rows('messages')).map((r) => r.id)).toEqual(['from-ann', 'from-bob'])
    ann.socket.close()
    bob.socket.close()
  })
})

describe('resume', () => {
  it('inside the retention window: a delta of what changed, then synced', async () => {
    const name = freshRoom()
    const first = await subscribed(name)
    const a = (await first.socket.mutate('a', [insertMessage('a')])) as { seq: number }
    const epoch = first.welcome.epoch
    first.socket.close()
    const other = await subscribed(name, 'bob')
    await other.socket.mutate('b', [insertMessage('b', 'bob')])
    await other.socket.mutate('del-a', [{ c: 'messages', op: 'delete', k: 'a' }])
    const { socket, welcome } = await TestSocket.connect(name, 'ann', {
      epoch, since: a.seq, subs: [{ id: 's1', c: 'messages', resume: true }],
    })
    const synced = await socket.next('synced')
    expect(synced.seq).toBe(welcome.seq)
    expect(socket.all('snapshot')).toEqual([])
    const delta = socket.all('changes').flatMap((f) => f.changes)
    expect(delta).toEqual(expect.arrayContaining([
      { c: 'messages', k: 'b', row: message('b', 'bob') },
      { c: 'messages', k: 'a' },
    ]))
    socket.close()
    other.socket.close()
  })

  it('from before the retention window: a snapshot without the rows deleted meanwhile', async () => {
    const name = freshRoom()
    const first = await subscribed(name, 'ann', 'short')
    const a = (await first.socket.mutate('a', [insertMessage('a')])) as { seq: number }
    await first.socket.mutate('b', [insertMessage('b')])
    const epoch = first.welcome.epoch
    first.socket.close()
    const writer = await subscribed(name, 'ann', 'short')
    await writer.socket.mutate('del-a', [{ c: 'messages', op: 'delete', k: 'a' }])
    await writer.socket.mutate('c', [insertMessage('c')])
    // Retention is 1 s: a clock 10 s ahead prunes everything, however the
    // writes fell between the retention marks.
    await shortRoom(name).housekeepAt(Date.now() + 10_000)
    const state = await shortRoom(name).state()
    expect(state.floor).toBe(state.head)
    expect(state.floor).toBeGreaterThan(a.seq)
    const { socket } = await TestSocket.connect(name, 'ann', {
      epoch, since: a.seq, subs: [{ id: 's1', c: 'messages', resume: true }],
    }, 'short')
    await socket.next('synced')
    const rows = socket.all('snapshot').flatMap((f) => f.rows)
    expect(rows.map((r) => r.id).sort()).toEqual(['b', 'c'])
    expect(socket.all('changes')).toHaveLength(0) // a snapshot resume, not a catch-up
    socket.close()
    writer.socket.close()
  })

  it('a filtered subscription catches up with move-ins as rows, move-outs and deletes as removals', async () => {
    const name = freshRoom()
    const byBob = { type: 'func', name: 'eq', args: [{ type: 'ref', path: ['author'] }, { type: 'val', value: 'bob' }] }
    const writer = await subscribed(name, 'bob')
    await writer.socket.mutate('w1', [insertMessage('stays', 'bob'), insertMessage('leaves', 'bob'), insertMessage('deleted', 'bob')])
    const first = await TestSocket.connect(name, 'ann', { subs: [{ id: 'f', c: 'messages', where: byBob }] })
    await first.socket.next('synced')
    const since = first.welcome.seq
    const epoch = first.welcome.epoch
    first.socket.close()
    // While away: one row leaves the filter, one is deleted, one is updated, one unrelated row appears.
    await writer.socket.mutate('w2', [{ c: 'messages', op: 'update', k: 'leaves', cols: { content: 'x' } }])
    await room(name).serverInsertMessage(message('moves-in', 'bob'))
    await writer.socket.mutate('w3', [{ c: 'messages', op: 'delete', k: 'deleted' }])
    await room(name).serverInsertMessage(message('not-bobs', 'carol'))
    const { socket } = await TestSocket.connect(name, 'ann', { epoch, since, subs: [{ id: 'f', c: 'messages', where: byBob, resume: true }] })
    await socket.next('synced')
    expect(socket.all('snapshot')).toEqual([])
    const delta = new Map(socket.all('changes').flatMap((f) => f.changes).map((c) => [c.k, c.row ?? null]))
    expect(delta.get('moves-in')).toEqual(message('moves-in', 'bob'))
    expect(delta.get('deleted')).toBeNull()
    expect(delta.get('leaves')).toMatchObject({ content: 'x' }) // still bob's: an update
    expect(delta.has('not-bobs') ? delta.get('not-bobs') : null).toBeNull() // never sent as a row
    expect(delta.has('stays')).toBe(false)
    socket.close()
    writer.socket.close()
  })

  it('with another epoch: a snapshot', async () => {
    const name = freshRoom()
    const { socket: seed } = await subscribed(name)
    await seed.mutate('x', [insertMessage('x')])
    const { socket } = await TestSocket.connect(name, 'ann', {
      epoch: 'some-other-epoch', since: 1, subs: [{ id: 's1', c: 'messages', resume: true }],
    })
    await socket.next('synced')
    expect(socket.all('snapshot').flatMap((f) => f.rows).map((r) => r.id)).toEqual(['x'])
    socket.close()
    seed.close()
  })
})

describe('server-side writes and schema evolution', () => {
  it('runSyncedWrite broadcasts to subscribers', async () => {
    const name = freshRoom()
    const { socket } = await subscribed(name)
    await room(name).serverInsertMessage(message('srv', 'agent'))
    const changes = await socket.next('changes')
    expect(changes.changes).toEqual([{ c: 'messages', k: 'srv', row: message('srv', 'agent') }])
    socket.close()
  })

  it('ALTER TABLE ADD COLUMN flows to clients with no re-wiring', async () => {
    const name = freshRoom()
    const { socket } = await subscribed(name)
    await socket.mutate('a', [insertMessage('a')])
    await room(name).addColumn()
    const changes = await socket.next('changes', (f) => f.changes.some((c) => c.row && 'mood' in c.row))
    expect(changes.changes[0]!.row).toMatchObject({ id: 'a', mood: 'happy' })
    socket.close()
  })
})

describe('registration', () => {
  const probe = (name: string) => testEnv.PROBE_DO.get(testEnv.PROBE_DO.idFromName(name))

  it('rejects an INTEGER primary key, saying why and what to do', async () => {
    const error = await probe(freshRoom()).tryRegister('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)', 't', 'id')
    expect(error).toMatch(/TEXT/)
    expect(error).toMatch(/id/)
  })

  it('rejects a BLOB primary key', async () => {
    expect(await probe(freshRoom()).tryRegister('CREATE TABLE t (id BLOB PRIMARY KEY, v TEXT)', 't', 'id')).toMatch(/TEXT/)
  })

  it('rejects a composite primary key', async () => {
    const error = await probe(freshRoom()).registrationError('CREATE TABLE t (a TEXT, b TEXT, PRIMARY KEY (a, b))', 't', 'a')
    expect(error).toMatchObject({ name: 'SyncRegistrationError', code: ErrorCode.SCHEMA })
    expect(error!.message).toMatch(/'a' must be the sole PRIMARY KEY of 't' \(composite keys are not supported\)/)
  })

  it('rejects a missing table', async () => {
    expect(await probe(freshRoom()).tryRegister('SELECT 1', 'nope', 'id')).toMatch(/nope/)
  })

  it('is idempotent, keeps user triggers, removes triggers of unregistered tables', async () => {
    const p = probe(freshRoom())
    expect(await p.tryRegister('CREATE TABLE a (id TEXT PRIMARY KEY)', 'a', 'id')).toBeNull()
    await p.exec("CREATE TRIGGER user_audit AFTER INSERT ON a BEGIN SELECT 1; END")
    expect(await p.tryRegister('SELECT 1', 'a', 'id')).toBeNull()
    const once = await p.triggers()
    expect(once).toContain('user_audit')
    expect(once.filter((t) => t.includes('_a_'))).toHaveLength(3)
    expect(await p.tryRegister('CREATE TABLE b (id TEXT PRIMARY KEY)', 'b', 'id')).toBeNull()
    const after = await p.triggers()
    expect(after.filter((t) => t.startsWith('_sync_changes_a_'))).toEqual([])
    expect(after.filter((t) => t.startsWith('_sync_changes_b_'))).toHaveLength(3)
    expect(after).toContain('user_audit')
  })
})
