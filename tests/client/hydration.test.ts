// Hydration's pure parts (worker/src/client/hydration.ts, worker/src/protocol/snapshot.ts):
// a snapshot read's frames assembled, the dehydrated state built from it,
// and the sync metas TanStack DB merges.
import { describe, expect, it } from 'vitest'

import { ClosedError, ProtocolError, SubscriptionError } from '../../worker/src/client/errors.js'
import { dehydrateSnapshot, mergeSeqsyncMeta, resumableMeta, sameWhere } from '../../worker/src/client/hydration.js'
import { assembleSnapshot, type PredicateIR, snapshotHello, type SnapshotSub, type SyncSnapshot } from '../../worker/src/protocol/index.js'

const ann: PredicateIR = { type: 'func', name: 'eq', args: [{ type: 'ref', path: ['author'] }, { type: 'val', value: 'ann' }] }
const frames = (...f: unknown[]) => f.map((x) => JSON.stringify(x))

describe('snapshotHello', () => {
  it('is a hello whose subs default their id to the collection; anything else goes as it is, for the core to refuse', () => {
    expect(JSON.parse(snapshotHello([{ c: 'messages' }, { id: 'x', c: 'tasks', limit: 2 }, null as unknown as SnapshotSub]))).toEqual({
      t: 'hello', v: 1, subs: [{ id: 'messages', c: 'messages' }, { id: 'x', c: 'tasks', limit: 2 }, null],
    })
  })
})

describe('assembleSnapshot', () => {
  it("joins each sub's frames, keeps the request's where, and takes the seq from synced", () => {
    const snapshot = assembleSnapshot('e1', [{ c: 'messages', where: ann }, { id: 'top', c: 'tasks' }], frames(
      { t: 'snapshot', sub: 'messages', c: 'messages', seq: 9, rows: [{ id: 'a' }], more: true },
      { t: 'snapshot', sub: 'messages', c: 'messages', seq: 9, rows: [{ id: 'b' }], more: true },
      { t: 'snapshot', sub: 'top', c: 'tasks', seq: 9, rows: [], more: true, where: ann },
      { t: 'synced', seq: 9 },
    ))
    expect(snapshot).toEqual({
      v: 1, epoch: 'e1', seq: 9, subs: [
        { sub: 'messages', c: 'messages', rows: [{ id: 'a' }, { id: 'b' }], where: ann },
        { sub: 'top', c: 'tasks', rows: [], where: ann },
      ],
    })
  })

  it('a sub-error refuses its sub even after some of its rows came; an error refuses the read', () => {
    const refused = assembleSnapshot('e1', [{ c: 'messages' }], frames(
      { t: 'snapshot', sub: 'messages', c: 'messages', seq: 3, rows: [{ id: 'a' }], more: true },
      { t: 'sub-error', sub: 'messages', code: 18, error: 'INTERNAL', message: 'x' },
      { t: 'synced', seq: 3 },
    ))
    expect(refused).toEqual({ v: 1, epoch: 'e1', seq: 3, subs: [{ sub: 'messages', c: 'messages', refused: { code: 18, error: 'INTERNAL', message: 'x' } }] })
    expect(assembleSnapshot('e1', [], frames({ t: 'error', code: 6, error: 'TOO_MANY', message: 'y' }))).toEqual({ v: 1, refused: { code: 6, error: 'TOO_MANY', message: 'y' } })
    expect(assembleSnapshot('e1', [], [])).toMatchObject({ refused: { error: 'INTERNAL' } })
  })
})

describe('dehydrateSnapshot', () => {
  it('makes one chunk per target: the rows by key, and the cursor that covers them as syncMeta', () => {
    const snapshot: SyncSnapshot = { v: 1, epoch: 'e1', seq: 4, subs: [{ sub: 'messages', c: 'messages', rows: [{ id: 'a', n: 1 }], where: ann }, { sub: 'other', c: 'tasks', rows: [] }] }
    expect(dehydrateSnapshot(snapshot, { messages: { id: 'msgs', getKey: (r: { id: string }) => r.id } })).toEqual({
      collections: [{ collectionId: 'msgs', rows: [{ key: 'a', value: { id: 'a', n: 1 } }], syncMeta: { v: 1, epoch: 'e1', seq: 4, where: ann } }],
    })
  })

  it('throws the typed refusal: a closed upgrade, a refused list, a refused sub', () => {
    expect(() => dehydrateSnapshot({ v: 1, refused: { code: 4403, error: 'FORBIDDEN', message: 'no' } }, {})).toThrow(ClosedError)
    expect(() => dehydrateSnapshot({ v: 1, refused: { code: 6, error: 'TOO_MANY', message: 'no' } }, {})).toThrow(ProtocolError)
    const sub: SyncSnapshot = { v: 1, epoch: 'e', seq: 1, subs: [{ sub: 's', c: 'nope', refused: { code: 7, error: 'UNKNOWN_COLLECTION', message: 'no' } }] }
    expect(() => dehydrateSnapshot(sub, {})).toThrow(SubscriptionError)
  })
})

describe('sync metas', () => {
  it('resumes only from a well-formed cursor', () => {
    expect(resumableMeta({ v: 1, epoch: 'e', seq: 3 })).toEqual({ v: 1, epoch: 'e', seq: 3 })
    for (const bad of [undefined, null, 'x', { v: 2, epoch: 'e', seq: 3 }, { v: 1, seq: 3 }, { v: 1, epoch: 'e', seq: -1 }, { v: 1, epoch: 'e', seq: 1.5 }, { v: 1 }]) {
      expect(resumableMeta(bad)).toBeUndefined()
    }
  })

  it('keeps equal cursors, and merges disagreeing ones into one that resumes nothing', () => {
    const a = { v: 1, epoch: 'e', seq: 3, where: ann }
    expect(mergeSeqsyncMeta(a, { ...a })).toEqual(a)
    expect(resumableMeta(mergeSeqsyncMeta(a, { ...a, seq: 4 }))).toBeUndefined()
    expect(resumableMeta(mergeSeqsyncMeta(a, { ...a, epoch: 'f' }))).toBeUndefined()
    expect(resumableMeta(mergeSeqsyncMeta(a, { v: 1, epoch: 'e', seq: 3 }))).toBeUndefined()
  })

  it('compares wheres canonically', () => {
    const reordered = { args: ann.type === 'func' ? ann.args : [], name: 'eq', type: 'func' } as PredicateIR
    expect(sameWhere({ v: 1, where: ann }, reordered)).toBe(true)
    expect(sameWhere({ v: 1 }, undefined)).toBe(true)
    expect(sameWhere({ v: 1, where: ann }, undefined)).toBe(false)
  })
})
