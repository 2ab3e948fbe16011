import { add, and, concat, eq, gt, ilike, inArray, isNull, length, like, lower, lt, not, or, upper } from '@tanstack/db'
import { describe, expect, it } from 'vitest'
import { decodeServerFrame, encodeClientFrame } from '../../worker/src/client/codec.js'
import { evaluate, matches, toPredicateIR } from '../../worker/src/client/where.js'
import { toWireExpression } from '../../worker/src/client/subset.js'
import type { ClientFrame } from '../../worker/src/protocol/index.js'
import type { WhereFunction } from '../../worker/src/client/where.js'
import type { PredicateIR } from '../../worker/src/protocol/index.js'

const ref = (col: string): PredicateIR => ({ type: 'ref', path: [col] })
const val = (value: unknown): PredicateIR => ({ type: 'val', value })
const fn = (name: Extract<PredicateIR, { type: 'func' }>['name'], ...args: PredicateIR[]): PredicateIR => ({
  type: 'func',
  name,
  args,
})

describe('toPredicateIR', () => {
  it('turns an equality map into and(eq…), null into isNull', () => {
    expect(toPredicateIR({ author: 'ann' })).toEqual(fn('eq', ref('author'), val('ann')))
    expect(toPredicateIR({ a: 1, b: null })).toEqual(fn('and', fn('eq', ref('a'), val(1)), fn('isNull', ref('b'))))
  })
  it('passes an IR through as plain JSON', () => {
    class Func {
      type = 'func' as const
      constructor(
        public name: string,
        public args: unknown[],
      ) {}
    }
    const ir = new Func('gt', [{ type: 'ref', path: ['n'] }, { type: 'val', value: 2 }]) as unknown as PredicateIR
    const out = toPredicateIR(ir)
    expect(out).toEqual(fn('gt', ref('n'), val(2)))
    expect(out).not.toBeInstanceOf(Func)
  })
  it('refuses an empty map, and any other shape, naming the accepted ones', () => {
    expect(() => toPredicateIR({})).toThrow(/empty/)
    for (const bad of ['author = ann', 42, [], { author: { nested: 1 } }] as unknown[]) {
      expect(() => toPredicateIR(bad as never)).toThrow(/a function \(row\) => eq\(row\.col, value\).*an equality map.*predicate IR/)
    }
  })
})

describe('toPredicateIR with a function (TanStack DB style)', () => {
  type Row = { author: string; n: number; tag: string | null; body: string }
  it("compiles (row) => eq(row.author, 'ann') through TanStack DB's expression classes", () => {
    expect(toPredicateIR<Row>((row) => eq(row.author, 'ann'))).toEqual(fn('eq', ref('author'), val('ann')))
  })
  it('compiles and/or/not, comparisons (value first too), in, isNull and like', () => {
    expect(
      toPredicateIR<Row>((row) => and(or(gt(row.n, 1), lt(5, row.n)), not(isNull(row.tag)), inArray(row.author, ['ann', 'bob']), like(row.body, 'h%'))),
    ).toEqual(
      fn(
        'and',
        fn('or', fn('gt', ref('n'), val(1)), fn('gt', ref('n'), val(5))),
        fn('not', fn('isNull', ref('tag'))),
        fn('in', ref('author'), val(['ann', 'bob'])),
        fn('like', ref('body'), val('h%')),
      ),
    )
  })
  it('answers an operator the wire lacks with the ones it has', () => {
    expect(() => toPredicateIR<Row>((row) => eq(upper(row.author), 'ANN'))).toThrow(/upper.*eq, gt, gte, lt, lte, like, ilike, inArray/)
    expect(() => toPredicateIR<Row>((row) => eq(concat(row.author, row.body), 'x'))).toThrow(/concat/)
  })
  it("compiles ilike and TanStack DB's functions to the wire's names", () => {
    expect(toPredicateIR<Row>((row) => ilike(row.body, 'h%'))).toEqual(fn('ilike', ref('body'), val('h%')))
    expect(toPredicateIR<Row>((row) => like(lower(row.body), '%x%'))).toEqual(fn('like', fn('lower', ref('body')), val('%x%')))
    expect(toPredicateIR<Row>((row) => gt(add(length(row.body), 1), 3))).toEqual(
      fn('gt', fn('add', fn('length', ref('body')), val(1)), val(3)),
    )
  })
  it('answers a function that returns no expression with the accepted shapes', () => {
    // A boolean is a type error already; at run time it is refused too.
    const notAnExpression = ((row: { author: unknown }) => row.author === 'ann') as unknown as WhereFunction<Row>
    expect(() => toPredicateIR<Row>(notAnExpression)).toThrow(/returned false.*\(row\) => eq\(row\.col, value\)/)
  })
})

describe("evaluate: ilike and the functions, as TanStack DB's evaluator", () => {
  it('folds case with toLowerCase, counts UTF-16 units, passes NULL through coalesce and as 0 in arithmetic', () => {
    expect(evaluate(fn('ilike', ref('a'), val('caf_')), { a: 'CAFÉ' })).toBe(true)
    expect(evaluate(fn('ilike', ref('a'), val('k')), { a: '\u212a' })).toBe(true) // Kelvin sign lowers to k
    expect(evaluate(fn('ilike', ref('a'), val('x')), { a: null })).toBeNull()
    expect(evaluate(fn('eq', fn('lower', ref('a')), val(5)), { a: 5 })).toBe(true) // a non-string passes through
    expect(evaluate(fn('eq', fn('length', ref('a')), val(3)), { a: '😀!' })).toBe(true)
    expect(evaluate(fn('eq', fn('length', ref('a')), val(0)), { a: null })).toBe(true)
    expect(evaluate(fn('eq', fn('coalesce', ref('a'), ref('b'), val(1)), val(1)), { a: null, b: undefined })).toBe(true)
    expect(evaluate(fn('eq', fn('add', ref('a'), val(2)), val(2)), { a: null })).toBe(true)
    expect(evaluate(fn('eq', fn('divide', ref('a'), val(2)), val(3.5)), { a: 7 })).toBe(true)
    expect(evaluate(fn('gt', fn('divide', ref('a'), val(0)), val(0)), { a: 7 })).toBeNull() // x / 0 is NULL
    expect(evaluate(fn('eq', fn('add', ref('a'), val(1)), val(2)), { a: '1' })).toBeNull() // text: NULL, not coercion
  })
})

describe('the wire encoding of typed values', () => {
  it('a bigint travels tagged and exact both ways, a Date as epoch ms out and {$date} in', () => {
    const where = toWireExpression({ type: 'func', name: 'eq', args: [{ type: 'ref', path: ['n'] }, { type: 'val', value: 9007199254740993n }] })
    const text = encodeClientFrame({ t: 'sub', id: 's', c: 'x', where } as ClientFrame)
    expect(where).toEqual({ type: 'func', name: 'eq', args: [{ type: 'ref', path: ['n'] }, { type: 'val', value: { $int: '9007199254740993' } }] })
    expect(text).toContain('{"$int":"9007199254740993"}')
    expect(evaluate(where, { n: 9007199254740993n })).toBe(true)
    expect(evaluate(where, { n: 9007199254740992n })).toBe(false)
    expect(encodeClientFrame({ t: 'mut', id: 'm', ops: [{ c: 'x', op: 'insert', k: 'a', cols: { n: 2n ** 60n } }] } as unknown as ClientFrame)).toContain('{"$int":"1152921504606846976"}')
    expect(encodeClientFrame({ t: 'call', id: 'c', name: 'n', args: { at: new Date(5) } } as unknown as ClientFrame)).toContain('"at":5')
    const frame = decodeServerFrame('{"t":"snapshot","sub":"s","c":"x","seq":1,"rows":[{"id":"a","n":{"$int":"-9007199254740993"},"d":{"$date":7}}]}')
    const row = frame.frame?.t === 'snapshot' ? frame.frame.rows[0] : undefined
    expect(row).toEqual({ id: 'a', n: -9007199254740993n, d: new Date(7) })
  })
  it('refuses a number that is an integer beyond 2^53: it was rounded already', () => {
    expect(() => toWireExpression({ type: 'val', value: 2 ** 53 + 2 })).toThrow(/beyond 2\^53.*bigint/)
  })
})

describe('evaluate: typed values', () => {
  it('compares a bigint exactly with bigints and numbers, a Date as its epoch ms', () => {
    const big = 9007199254740993n
    expect(evaluate(fn('eq', ref('a'), val(9007199254740992)), { a: big })).toBe(false)
    expect(evaluate(fn('gt', ref('a'), val(9007199254740992)), { a: big })).toBe(true)
    expect(evaluate(fn('lt', ref('a'), val(9007199254740993.5)), { a: big })).toBe(true)
    expect(evaluate(fn('eq', ref('a'), val(5)), { a: 5n })).toBe(true)
    expect(evaluate(fn('in', ref('a'), val([1n, big])), { a: big })).toBe(true)
    expect(evaluate(fn('in', ref('a'), val([9007199254740992n])), { a: big })).toBe(false)
    expect(evaluate(fn('in', ref('a'), val([5])), { a: 5n })).toBe(true)
    expect(evaluate(fn('gt', ref('d'), val(new Date(1000))), { d: new Date(2000) })).toBe(true)
    expect(evaluate(fn('eq', ref('d'), val(2000)), { d: new Date(2000) })).toBe(true)
    expect(evaluate(fn('eq', ref('b'), val(true)), { b: true })).toBe(true)
  })
})

describe('evaluate (SQLite semantics)', () => {
  it('comparisons with NULL are unknown; only true matches', () => {
    expect(evaluate(fn('eq', ref('a'), val(1)), { a: null })).toBeNull()
    expect(evaluate(fn('not', fn('eq', ref('a'), val(1))), { a: null })).toBeNull()
    expect(matches(fn('not', fn('eq', ref('a'), val(1))), { a: null })).toBe(false)
    expect(evaluate(fn('isNull', ref('a')), { a: null })).toBe(true)
    expect(evaluate(fn('isNull', ref('a')), {})).toBe(true)
    expect(evaluate(fn('isUndefined', ref('a')), {})).toBe(false) // as the server: a stored row has every column
  })
  it('three-valued and/or', () => {
    const unknown = fn('eq', ref('n'), val(1))
    expect(evaluate(fn('and', unknown, val(false)), { n: null })).toBe(false)
    expect(evaluate(fn('and', unknown, val(true)), { n: null })).toBeNull()
    expect(evaluate(fn('or', unknown, val(true)), { n: null })).toBe(true)
    expect(evaluate(fn('or', unknown, val(false)), { n: null })).toBeNull()
  })
  // The core's semantics (cpp/include/seqsync/predicate.h), mirrored by tests/cpp/predicate_test.cc.
  it('values of different kinds never compare; text by code point; booleans as 0/1', () => {
    expect(evaluate(fn('lt', ref('a'), val('0')), { a: 99 })).toBe(false)
    expect(evaluate(fn('gt', ref('a'), val('0')), { a: 99 })).toBe(false)
    expect(evaluate(fn('not', fn('eq', ref('a'), val('99'))), { a: 99 })).toBe(true)
    expect(evaluate(fn('lt', ref('a'), val('a')), { a: 'B' })).toBe(true) // BINARY: 'B' < 'a'
    expect(evaluate(fn('lt', ref('a'), val('\u{1F600}')), { a: '\uFFFF' })).toBe(true) // UTF-8 order
    expect(evaluate(fn('eq', ref('done'), val(1)), { done: true })).toBe(true)
    expect(evaluate(fn('gte', ref('n'), val(2)), { n: 2 })).toBe(true)
    expect(evaluate(fn('gt', ref('n'), val(2)), { n: 2 })).toBe(false)
  })
  it('in, with NULLs in the list', () => {
    expect(evaluate(fn('in', ref('a'), val(['x', 'y'])), { a: 'y' })).toBe(true)
    expect(evaluate(fn('in', ref('a'), val(['x'])), { a: 'z' })).toBe(false)
    expect(evaluate(fn('in', ref('a'), val(['x', null])), { a: 'z' })).toBe(false) // NULL items never match
    expect(evaluate(fn('in', ref('a'), val([])), { a: null })).toBeNull()
    expect(evaluate(fn('in', ref('a'), val([1, 2])), { a: '1' })).toBe(false)
    expect(evaluate(fn('in', ref('a'), val(['x'])), { a: null })).toBeNull()
  })
  it('like: % and _, case-sensitive, text only', () => {
    expect(evaluate(fn('like', ref('s'), val('he%')), { s: 'Hello' })).toBe(false)
    expect(evaluate(fn('like', ref('s'), val('He%')), { s: 'Hello' })).toBe(true)
    expect(evaluate(fn('like', ref('s'), val('h_llo')), { s: 'hallo' })).toBe(true)
    expect(evaluate(fn('like', ref('s'), val('h.llo')), { s: 'hallo' })).toBe(false)
    expect(evaluate(fn('like', ref('s'), val('é')), { s: 'É' })).toBe(false)
    expect(evaluate(fn('like', ref('s'), val('1%')), { s: 12 })).toBe(false)
    expect(evaluate(fn('like', ref('s'), val('%')), { s: null })).toBeNull()
  })
})
