// Unit assembly and the cursor (worker/src/client/unit.ts), without a socket.
import { describe, expect, it } from 'vitest'

import { decodeServerFrame } from '../../worker/src/client/codec.js'
import { planDeliveries, UnitAssembler } from '../../worker/src/client/unit.js'
import type { DeliveryTarget } from '../../worker/src/client/unit.js'
import type { PredicateIR } from '../../worker/src/protocol/index.js'

const rankGte: PredicateIR = { type: 'func', name: 'gte', args: [{ type: 'ref', path: ['rank'] }, { type: 'val', value: 7 }] }
const target = (id: string, c: string, synced = true, resolved?: PredicateIR): DeliveryTarget => ({ spec: { id, c }, synced, resolved })

describe('UnitAssembler', () => {
  it('buffers more:true parts, ends the unit on the first frame without more, and leaves the cursor alone', () => {
    const u = new UnitAssembler()
    expect(u.add({ t: 'snapshot', sub: 's1', c: 'm', seq: 5, rows: [{ id: 'a' }], more: true })).toBeUndefined()
    expect(u.add({ t: 'changes', seq: 5, changes: [{ c: 'm', k: 'x' }], more: true })).toBeUndefined()
    expect(u.add({ t: 'snapshot', sub: 's1', c: 'm', seq: 5, rows: [{ id: 'b' }], more: true, where: rankGte })).toBeUndefined()
    expect(u.partial).toBe(true)
    expect(u.appliedSeq).toBe(0)
    const unit = u.add({ t: 'synced', seq: 5 })
    expect(unit).toEqual({
      seq: 5,
      changes: [{ c: 'm', k: 'x' }],
      snapshots: new Map([['s1', [{ id: 'a' }, { id: 'b' }]]]),
      resolved: new Map([['s1', rankGte]]),
    })
    expect(u.partial).toBe(false)
    expect(u.appliedSeq).toBe(0) // only the transport moves it, once the unit is applied
  })

  it('a final changes or snapshot frame ends its unit too; a lone changes frame is used as it came', () => {
    const u = new UnitAssembler()
    const changes = [{ c: 'm', k: 'a', row: { id: 'a' } }]
    expect(u.add({ t: 'changes', seq: 2, changes })?.changes).toBe(changes)
    const snap = u.add({ t: 'snapshot', sub: 's', c: 'm', seq: 3, rows: [] })
    expect(snap?.snapshots.get('s')).toEqual([])
  })

  it('reads changes frames in the compact form: rows keyed by their pk column, strings as removed keys, in order', () => {
    const u = new UnitAssembler()
    const part = decodeServerFrame('{"t":"changes","seq":7,"c":"m","pk":"id","rows":[{"id":"a","n":{"$int":"9007199254740993"}},"gone"],"more":true}')
    const last = decodeServerFrame('{"t":"changes","seq":7,"c":"t","pk":"key","rows":[{"key":"k1","done":true}],"ack":"w1"}')
    expect(part.error).toBeUndefined()
    expect(last.error).toBeUndefined()
    expect(u.add(part.frame as never)).toBeUndefined()
    expect(u.add(last.frame as never)?.changes).toEqual([
      { c: 'm', k: 'a', row: { id: 'a', n: 9007199254740993n } },
      { c: 'm', k: 'gone' },
      { c: 't', k: 'k1', row: { key: 'k1', done: true } },
    ])
    // A unit of one compact frame, as a live write's is.
    const lone = decodeServerFrame('{"t":"changes","seq":8,"c":"m","pk":"id","rows":["a"]}')
    expect(u.add(lone.frame as never)?.changes).toEqual([{ c: 'm', k: 'a' }])
  })

  it('reads a unit whose parts mix the two forms, as a collection with a typed key column is sent', () => {
    const u = new UnitAssembler()
    const compact = decodeServerFrame('{"t":"changes","seq":3,"c":"m","pk":"id","rows":[{"id":"a"}],"more":true}')
    const full = decodeServerFrame('{"t":"changes","seq":3,"changes":[{"c":"t","k":"7","row":{"id":7}},{"c":"t","k":"8"}]}')
    expect(u.add(compact.frame as never)).toBeUndefined()
    expect(u.add(full.frame as never)?.changes).toEqual([
      { c: 'm', k: 'a', row: { id: 'a' } },
      { c: 't', k: '7', row: { id: 7 } },
      { c: 't', k: '8' },
    ])
  })

  it('refuses a compact changes frame whose rows lack a string pk, or that carries both forms', () => {
    for (const text of [
      '{"t":"changes","seq":1,"c":"m","pk":"id","rows":[{"id":5}]}',
      '{"t":"changes","seq":1,"c":"m","pk":"id","rows":[{"name":"no key"}]}',
      '{"t":"changes","seq":1,"c":"m","pk":"id","rows":[7]}',
      '{"t":"changes","seq":1,"c":"m","rows":[{"id":"a"}]}',
      '{"t":"changes","seq":1,"pk":"id","rows":[{"id":"a"}]}',
      '{"t":"changes","seq":1,"c":"m","pk":"id","rows":{}}',
      '{"t":"changes","seq":1,"c":"m","pk":"id","rows":[],"changes":[]}',
    ]) {
      expect(decodeServerFrame(text).error?.message, text).toMatch(/server frame changes/)
    }
  })

  it('the cursor only moves forwards', () => {
    const u = new UnitAssembler()
    expect(u.advance(9)).toBe(true)
    expect(u.advance(4)).toBe(false)
    expect(u.advance(9)).toBe(false)
    expect(u.appliedSeq).toBe(9)
  })

  it('discard drops the partial unit and keeps the cursor; reset (a new epoch) starts the cursor over', () => {
    const u = new UnitAssembler()
    u.advance(10)
    u.add({ t: 'snapshot', sub: 's', c: 'm', seq: 11, rows: [{ id: 'p' }], more: true })
    u.discard()
    expect(u.appliedSeq).toBe(10)
    expect(u.add({ t: 'synced', seq: 11 })).toEqual({ seq: 11, changes: [], snapshots: new Map(), resolved: new Map() })
    u.reset()
    expect(u.appliedSeq).toBe(0)
  })
})

describe('planDeliveries', () => {
  it('a snapshot supersedes the changes for its sub; synced subs get their table; waiting subs get nothing', () => {
    const u = new UnitAssembler()
    u.add({ t: 'changes', seq: 4, changes: [{ c: 'm', k: 'x' }, { c: 'n', k: 'y' }], more: true })
    const unit = u.add({ t: 'snapshot', sub: 'fresh', c: 'm', seq: 4, rows: [{ id: 'a' }], where: rankGte })!
    const out = planDeliveries(unit, [target('fresh', 'm', false), target('m1', 'm'), target('m2', 'm'), target('n1', 'n'), target('waiting', 'm', false), target('o', 'other')])
    expect(out.map((d) => [d.target.spec.id, d.unit])).toEqual([
      ['fresh', { seq: 4, sub: 'fresh', changes: [], snapshot: [{ id: 'a' }], where: rankGte }],
      ['m1', { seq: 4, sub: 'm1', changes: [{ c: 'm', k: 'x' }], snapshot: undefined }],
      ['m2', { seq: 4, sub: 'm2', changes: [{ c: 'm', k: 'x' }], snapshot: undefined }],
      ['n1', { seq: 4, sub: 'n1', changes: [{ c: 'n', k: 'y' }], snapshot: undefined }],
    ])
    expect(out[1]!.unit.changes).toBe(out[2]!.unit.changes) // one array per table
  })

  it('a window snapshot without where keeps the predicate it resolved to before', () => {
    const unit = new UnitAssembler().add({ t: 'snapshot', sub: 'w', c: 'm', seq: 1, rows: [] })!
    expect(planDeliveries(unit, [target('w', 'm', true, rankGte)])[0]!.unit.where).toEqual(rankGte)
  })

  it('an empty unit (a bare synced) delivers nothing', () => {
    const unit = new UnitAssembler().add({ t: 'synced', seq: 1 })!
    expect(planDeliveries(unit, [target('s', 'm')])).toEqual([])
  })
})
