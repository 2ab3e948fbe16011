// TanStack DB LoadSubsetOptions → wire `sub` request (on-demand sync).
import {
  BTreeIndex,
  and,
  createCollection,
  createLiveQueryCollection,
  eq,
  gt,
  inArray,
  isNull,
  like,
  not,
  type LoadSubsetOptions,
} from '@tanstack/db'
import { describe, expect, it } from 'vitest'

import { implies, refColumn, subsetKey, toSubsetRequest, toWireExpression, toWireOrderBy } from '../../worker/src/client/subset.js'
import { evaluate } from '../../worker/src/client/where.js'
import type { PredicateIR } from '../../worker/src/protocol/index.js'
import { SeqsyncError } from '../../worker/src/client/errors.js'

// TanStack refs as the query compiler hands them to loadSubset: with the
// collection alias first, or already normalized to the column.
const aliased = (col: string) => ({ type: 'ref' as const, path: ['t', col] })
const bare = (col: string) => ({ type: 'ref' as const, path: [col] })
const explicit = (col: string) => ({ type: 'ref' as const, path: ['t', col], sourceAlias: 't' })
const val = (value: unknown) => ({ type: 'val' as const, value })
const func = (name: string, ...args: unknown[]) => ({ type: 'func' as const, name, args })
const desc = (col: string, nulls: 'first' | 'last' = 'last') => ({
  expression: aliased(col),
  compareOptions: { direction: 'desc' as const, nulls, stringSort: 'lexical' as const },
})

describe('toWireExpression', () => {
  it('strips the collection alias from ref paths', () => {
    expect(toWireExpression(aliased('rank'))).toEqual({ type: 'ref', path: ['rank'] })
    expect(toWireExpression(bare('rank'))).toEqual({ type: 'ref', path: ['rank'] })
    expect(toWireExpression(explicit('rank'))).toEqual({ type: 'ref', path: ['rank'] })
    expect(refColumn({ path: ['category'], sourceAlias: 'category' })).toBe('category')
  })

  it('converts values and nested functions to plain JSON', () => {
    const ir = toWireExpression(
      func('and', func('eq', aliased('category'), val('a')), func('or', func('gt', bare('rank'), val(3)), func('isNull', aliased('rank')))),
    )
    expect(ir).toEqual({
      type: 'func',
      name: 'and',
      args: [
        { type: 'func', name: 'eq', args: [{ type: 'ref', path: ['category'] }, { type: 'val', value: 'a' }] },
        {
          type: 'func',
          name: 'or',
          args: [
            { type: 'func', name: 'gt', args: [{ type: 'ref', path: ['rank'] }, { type: 'val', value: 3 }] },
            { type: 'func', name: 'isNull', args: [{ type: 'ref', path: ['rank'] }] },
          ],
        },
      ],
    })
    expect(JSON.parse(JSON.stringify(ir))).toEqual(ir)
  })

  it('flips a value-first comparison so the ref is on the left', () => {
    expect(toWireExpression(func('gt', val(5), aliased('rank')))).toEqual({
      type: 'func',
      name: 'lt',
      args: [{ type: 'ref', path: ['rank'] }, { type: 'val', value: 5 }],
    })
    expect(toWireExpression(func('lte', val(5), aliased('rank')))).toMatchObject({ name: 'gte' })
  })

  it('passes unknown operators through for the server to refuse, and turns Dates into epoch ms (a date column holds ms)', () => {
    expect(toWireExpression(func('upper', aliased('title')))).toMatchObject({ name: 'upper' })
    const when = new Date('2026-01-02T03:04:05.000Z')
    expect(toWireExpression(val(when))).toEqual({ type: 'val', value: when.getTime() })
    expect(toWireExpression(val(undefined))).toEqual({ type: 'val', value: null })
  })

  it('refuses what is not an expression', () => {
    expect(() => toWireExpression({ type: 'agg', name: 'count', args: [] })).toThrow(SeqsyncError)
    expect(() => toWireExpression(val(Number.NaN))).toThrow(SeqsyncError)
  })
})

describe('toWireOrderBy', () => {
  it('reads direction and nulls from compareOptions', () => {
    expect(
      toWireOrderBy([
        desc('rank'),
        { expression: bare('id'), compareOptions: { direction: 'asc', nulls: 'first' } },
      ]),
    ).toEqual([
      { col: 'rank', dir: 'desc', nulls: 'last' },
      { col: 'id', dir: 'asc', nulls: 'first' },
    ])
  })

  it('refuses an order by an expression', () => {
    expect(() => toWireOrderBy([{ expression: func('lower', aliased('title')), compareOptions: { direction: 'asc', nulls: 'first' } }])).toThrow(
      /order by a column/,
    )
  })
})

describe('toSubsetRequest', () => {
  it('a plain where', () => {
    expect(toSubsetRequest({ where: func('eq', aliased('category'), val('a')), offset: 0 })).toEqual({
      where: { type: 'func', name: 'eq', args: [{ type: 'ref', path: ['category'] }, { type: 'val', value: 'a' }] },
    })
  })

  it('a window carries orderBy, limit and a non-zero offset', () => {
    expect(toSubsetRequest({ orderBy: [desc('rank')], limit: 5, offset: 0 })).toEqual({
      orderBy: [{ col: 'rank', dir: 'desc', nulls: 'last' }],
      limit: 5,
    })
    expect(toSubsetRequest({ orderBy: [desc('rank')], limit: 3, offset: 5 })).toEqual({
      orderBy: [{ col: 'rank', dir: 'desc', nulls: 'last' }],
      limit: 3,
      offset: 5,
    })
  })

  it('an unbounded ordered request is a plain predicate', () => {
    expect(toSubsetRequest({ where: func('eq', aliased('done'), val(0)), orderBy: [desc('rank')] })).toEqual({
      where: { type: 'func', name: 'eq', args: [{ type: 'ref', path: ['done'] }, { type: 'val', value: 0 }] },
    })
  })

  it('ANDs cursor.whereFrom into where and drops the offset TanStack sends beside it', () => {
    const request = toSubsetRequest({
      where: func('eq', aliased('done'), val(0)),
      orderBy: [desc('rank')],
      limit: 10,
      offset: 20,
      cursor: { whereFrom: func('lt', aliased('rank'), val(7)), whereCurrent: func('eq', aliased('rank'), val(7)) },
    })
    expect(request).toEqual({
      where: {
        type: 'func',
        name: 'and',
        args: [
          { type: 'func', name: 'eq', args: [{ type: 'ref', path: ['done'] }, { type: 'val', value: 0 }] },
          { type: 'func', name: 'lt', args: [{ type: 'ref', path: ['rank'] }, { type: 'val', value: 7 }] },
        ],
      },
      orderBy: [{ col: 'rank', dir: 'desc', nulls: 'last' }],
      limit: 10,
    })
  })

  it("ANDs the collection's own where first", () => {
    const base = { type: 'func' as const, name: 'eq' as const, args: [{ type: 'ref' as const, path: ['category'] }, { type: 'val' as const, value: 'a' }] }
    expect(toSubsetRequest({}, base)).toEqual({ where: base })
    expect(toSubsetRequest({ where: func('gt', aliased('rank'), val(1)) }, base).where).toMatchObject({ name: 'and' })
  })

  it('refuses a negative or fractional limit', () => {
    expect(() => toSubsetRequest({ orderBy: [desc('rank')], limit: -1 })).toThrow(SeqsyncError)
    expect(() => toSubsetRequest({ orderBy: [desc('rank')], limit: 1.5 })).toThrow(SeqsyncError)
  })
})

describe('subsetKey', () => {
  it('is equal for equal requests whatever the key order, and differs otherwise', () => {
    const a = toSubsetRequest({ where: func('eq', aliased('category'), val('a')), orderBy: [desc('rank')], limit: 5 })
    const b = toSubsetRequest({ limit: 5, orderBy: [desc('rank')], where: func('eq', bare('category'), val('a')) })
    expect(subsetKey(a)).toBe(subsetKey(b))
    expect(subsetKey({ limit: 5, where: { type: 'val', value: 1 } })).toBe(subsetKey({ where: { type: 'val', value: 1 }, limit: 5 }))
    const c = toSubsetRequest({ where: func('eq', aliased('category'), val('a')), orderBy: [desc('rank')], limit: 6 })
    expect(subsetKey(a)).not.toBe(subsetKey(c))
  })
})

describe('real TanStack DB requests', () => {
  type Task = { id: string; title: string; done: number; rank: number; category: string }

  /** An on-demand collection whose loader records what TanStack asks for. */
  function recorder() {
    const requests: LoadSubsetOptions[] = []
    const collection = createCollection<Task, string>({
      getKey: (t) => t.id,
      syncMode: 'on-demand',
      autoIndex: 'eager',
      defaultIndexType: BTreeIndex,
      sync: {
        sync: ({ markReady }) => {
          markReady()
          return {
            loadSubset: (options) => {
              requests.push(options)
              return true
            },
          }
        },
      },
    })
    return { collection, requests }
  }

  it('a live query where becomes the wire where', async () => {
    const { collection, requests } = recorder()
    const q = createLiveQueryCollection((b) =>
      b
        .from({ t: collection })
        .where(({ t }) => and(eq(t.category, 'a'), not(like(t.title, 'x%')), inArray(t.done, [0, 1]), not(isNull(t.rank)))),
    )
    await q.preload()
    expect(requests.length).toBeGreaterThan(0)
    expect(toSubsetRequest(requests[0]!)).toEqual({
      where: {
        type: 'func',
        name: 'and',
        args: [
          { type: 'func', name: 'eq', args: [{ type: 'ref', path: ['category'] }, { type: 'val', value: 'a' }] },
          {
            type: 'func',
            name: 'not',
            args: [{ type: 'func', name: 'like', args: [{ type: 'ref', path: ['title'] }, { type: 'val', value: 'x%' }] }],
          },
          { type: 'func', name: 'in', args: [{ type: 'ref', path: ['done'] }, { type: 'val', value: [0, 1] }] },
          { type: 'func', name: 'not', args: [{ type: 'func', name: 'isNull', args: [{ type: 'ref', path: ['rank'] }] }] },
        ],
      },
    })
    await q.cleanup()
  })

  it('an ordered, limited live query becomes a window', async () => {
    const { collection, requests } = recorder()
    const q = createLiveQueryCollection((b) =>
      b
        .from({ t: collection })
        .where(({ t }) => gt(t.rank, 3))
        .orderBy(({ t }) => t.rank, 'desc')
        .limit(5),
    )
    await q.preload()
    const windows = requests.map((r) => toSubsetRequest(r)).filter((r) => r.limit !== undefined)
    expect(windows[0]).toMatchObject({
      where: { type: 'func', name: 'gt', args: [{ type: 'ref', path: ['rank'] }, { type: 'val', value: 3 }] },
      orderBy: [{ col: 'rank', dir: 'desc' }],
    })
    expect(windows[0]!.limit).toBeGreaterThanOrEqual(5)
    expect(windows[0]!.offset).toBeUndefined()
    await q.cleanup()
  })
})

describe('implies (serving a request from a live subset)', () => {
  const r = (col: string): PredicateIR => ({ type: 'ref', path: [col] })
  const v = (value: unknown): PredicateIR => ({ type: 'val', value })
  const f = (name: string, ...args: PredicateIR[]): PredicateIR => ({ type: 'func', name: name as 'eq', args })
  // A desc window with nulls first resolved to: rank >= 36 OR rank IS NULL.
  const window = f('or', f('gte', r('rank'), v(36)), f('isNull', r('rank')))

  it("the boundary tie TanStack asks for is inside a window's resolved range", () => {
    expect(implies(f('eq', r('rank'), v(36)), window, evaluate)).toBe(true)
    expect(implies(f('eq', r('rank'), v(40)), window, evaluate)).toBe(true)
    expect(implies(f('eq', r('rank'), v(35)), window, evaluate)).toBe(false)
  })

  it("a where's conjuncts carry over; anything unproven is not implied", () => {
    const cat = f('eq', r('category'), v('a'))
    const windowed = f('and', cat, window)
    expect(implies(f('and', cat, f('eq', r('rank'), v(37))), windowed, evaluate)).toBe(true)
    expect(implies(f('eq', r('rank'), v(37)), windowed, evaluate)).toBe(false)
    expect(implies(f('and', cat, f('gt', r('rank'), v(20))), cat, evaluate)).toBe(true)
    expect(implies(f('gt', r('rank'), v(20)), f('gt', r('rank'), v(10)), evaluate)).toBe(false) // sound, not complete
    expect(implies(undefined, cat, evaluate)).toBe(false)
    expect(implies(cat, undefined, evaluate)).toBe(true)
  })
})
