// A collection's `where`: what doCollectionOptions accepts, compiled to the
// predicate IR (docs/protocol.md §7), and its client-side evaluation with the
// server's SQLite semantics, so the client can (1) keep a collection with a
// `where` exact when the socket's changes frames also carry rows for other
// subscriptions on the same table, and (2) refuse an insert whose row falls
// outside the collection's `where` before it is sent.
//
// Accepted: a function in TanStack DB's own style, `(row) => eq(row.author,
// 'ann')`, called once with a row whose every property is a TanStack DB
// PropRef (its public expression classes), so the operators from
// `@tanstack/db` build the expression, which is then turned into the IR; a
// predicate IR (plain JSON, or TanStack's expression objects); or an
// equality map `{ col: value }`. Anything else is refused with a message
// naming these.
//
// Semantics, exactly the core's (cpp/include/seqsync/predicate.h): a
// comparison with NULL is unknown (null here); and/or/not are three-valued;
// only `true` matches. Values of different kinds (number, text, BLOB) never
// compare equal or ordered: the comparison is false. Numbers compare as
// numbers, text by code point (= UTF-8 byte order, SQLite's BINARY).
// Booleans are integers 0/1, as SQLite stores them. LIKE applies to text
// only, is case-sensitive, with `%` and `_` wildcards and no escape; NULLs in
// an `in` list never match. The functions are TanStack DB's (its query
// evaluator): ilike and lower fold case with toLowerCase (the core compares
// them only with ASCII text, where its ASCII folding selects the same rows);
// length counts UTF-16 units up to the first NUL, 0 for a non-string;
// coalesce is the first non-null argument; add, subtract, multiply and
// divide count NULL as 0, give NULL for a text operand, NaN or x / 0.

import { IR } from '@tanstack/db'
import type { SubscribeChangesOptions } from '@tanstack/db'
import type { PredicateIR } from '../protocol/index.js'
import { toWireExpression } from './subset.js'

/** A plain equality map `{ col: value }`; `null` means `col IS NULL`. */
export type WhereMap = Record<string, string | number | boolean | null>

/** The row a where function receives: TanStack DB's row ref proxy, as in `subscribeChanges({ where })`. */
export type WhereRow<T extends object> = Parameters<NonNullable<SubscribeChangesOptions<T>['where']>>[0]

/** A where in TanStack DB's style: `(row) => eq(row.author, 'ann')`, with the operators from `@tanstack/db`. */
export type WhereFunction<T extends object = Record<string, unknown>> = (row: WhereRow<T>) => IR.BasicExpression<boolean>

/** What `doCollectionOptions({ where })` accepts. */
export type WhereInput<T extends object = Record<string, unknown>> = WhereFunction<T> | PredicateIR | WhereMap

const ACCEPTED =
  "a function (row) => eq(row.col, value) built with @tanstack/db's eq, gt, gte, lt, lte, like, ilike, inArray, isNull, " +
  'isUndefined, and, or, not, with lower, length, coalesce, add, subtract, multiply or divide of columns; ' +
  'an equality map { col: value } (null for IS NULL); ' +
  'or a predicate IR {type: "func", name, args} (docs/protocol.md §7)'

/** TanStack DB's operator names for the wire's (the wire's `in` is inArray). */
const OPERATORS: Record<string, string> = {
  eq: 'eq', gt: 'gt', gte: 'gte', lt: 'lt', lte: 'lte', like: 'like', ilike: 'ilike', in: 'inArray',
  isNull: 'isNull', isUndefined: 'isUndefined', and: 'and', or: 'or', not: 'not',
  lower: 'lower', length: 'length', coalesce: 'coalesce', add: 'add', subtract: 'subtract', multiply: 'multiply', divide: 'divide',
}

/** The functions that compute a value from a row (the rest are predicates). */
const VALUE_FUNCTIONS = new Set(['lower', 'length', 'coalesce', 'add', 'subtract', 'multiply', 'divide'])

function shapeError(what: string): TypeError {
  return new TypeError(`[seqsync] where: ${what}. Accepted: ${ACCEPTED}`)
}

function describeValue(value: unknown): string {
  if (typeof value === 'function') return 'a function'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'object' && value !== null) return 'an object that is not an expression'
  return JSON.stringify(value) ?? String(value)
}

/** Checks what the wire can carry of a compiled function: its operators, and refs that name columns. */
function checkCompiled(node: PredicateIR): void {
  if (node.type === 'ref') {
    const col = node.path[0]
    if (node.path.length !== 1 || col === undefined || col.startsWith('$')) {
      throw shapeError(`row.${node.path.join('.')} is not a column of the table (virtual and nested properties are not synced)`)
    }
    return
  }
  if (node.type !== 'func') return
  if (OPERATORS[node.name] === undefined) throw shapeError(`the operator ${node.name} has no wire form`)
  for (const arg of node.args) checkCompiled(arg)
}

/** A function's expression → IR, through TanStack DB's PropRef. */
function compileFunction(where: (row: never) => unknown): PredicateIR {
  const row = new Proxy({}, { get: (_target, prop) => (typeof prop === 'string' ? new IR.PropRef([prop]) : undefined) })
  const expression = (where as (row: unknown) => unknown)(row)
  if (!(expression instanceof IR.Func) && !isIR(expression)) {
    throw shapeError(`the function returned ${describeValue(expression)}, not a TanStack DB expression`)
  }
  // TanStack's operator names other than the wire's (ilike, upper, …) are
  // checked here, with their own name; the conversion would pass them on.
  const check = (e: { type?: unknown; name?: unknown; args?: unknown }): void => {
    if (e.type !== 'func') return
    if (typeof e.name === 'string' && OPERATORS[e.name] === undefined) throw shapeError(`the operator ${e.name} has no wire form`)
    if (Array.isArray(e.args)) for (const a of e.args) check(a as typeof e)
  }
  check(expression as { type?: unknown })
  let ir: PredicateIR
  try {
    ir = toWireExpression(expression)
  } catch (error) {
    throw shapeError(error instanceof Error ? error.message.replace(/^\[seqsync\] on-demand request: /, '') : String(error))
  }
  checkCompiled(ir)
  return ir
}

type Tri = boolean | null

function isIR(value: unknown): value is PredicateIR {
  if (typeof value !== 'object' || value === null) return false
  const v = value as { type?: unknown; name?: unknown; args?: unknown }
  return v.type === 'func' && typeof v.name === 'string' && Array.isArray(v.args)
}

/**
 * The wire IR for `where`: a function is called with a row of PropRefs and
 * its expression compiled; an IR (a `func` node, e.g. TanStack's own
 * expression objects) is passed through as plain JSON; a plain object is an
 * equality map and becomes `and(eq(ref, val)…)` (`isNull` for null).
 * Anything else throws a TypeError naming the accepted shapes.
 */
export function toPredicateIR<T extends object = Record<string, unknown>>(where: WhereInput<T>): PredicateIR {
  if (typeof where === 'function') return compileFunction(where)
  if (isIR(where)) return JSON.parse(JSON.stringify(where)) as PredicateIR
  if (typeof where !== 'object' || where === null || Array.isArray(where)) throw shapeError(`got ${describeValue(where)}`)
  for (const [col, value] of Object.entries(where)) {
    if (value !== null && typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      throw shapeError(`the equality map's ${col} is ${describeValue(value)}, not a string, number, boolean or null`)
    }
  }
  const terms: PredicateIR[] = Object.entries(where as WhereMap).map(([col, value]) => {
    const ref: PredicateIR = { type: 'ref', path: [col] }
    if (value === null) return { type: 'func', name: 'isNull', args: [ref] }
    return { type: 'func', name: 'eq', args: [ref, { type: 'val', value }] }
  })
  if (terms.length === 0) throw new TypeError('[seqsync] where: an empty equality map matches nothing; omit where to sync the whole table')
  if (terms.length === 1) return terms[0] as PredicateIR
  return { type: 'func', name: 'and', args: terms }
}

function resolve(node: PredicateIR | undefined, row: Record<string, unknown>): unknown {
  if (node === undefined) return null
  if (node.type === 'val') return node.value
  if (node.type === 'ref') {
    // A ref path is [col] (or [alias, col] from a TanStack query); the column is last.
    const col = node.path[node.path.length - 1]
    return col === undefined ? null : row[col]
  }
  if (VALUE_FUNCTIONS.has(node.name)) return compute(node, row)
  return evaluate(node, row)
}

/** The text up to its first NUL, as like and length read text (SQLite's rule). */
const beforeNul = (s: string) => s.split('\0')[0]!

/** A number operand of arithmetic: NULL counts 0; text, BLOB or object: none. */
function arithmeticOperand(v: unknown): number | undefined {
  if (v === null || v === undefined) return 0
  if (typeof v === 'number') return v
  if (typeof v === 'boolean') return v ? 1 : 0
  if (typeof v === 'bigint') return Number(v)
  return undefined
}

/** The value of a function of the row (VALUE_FUNCTIONS). */
function compute(node: Extract<PredicateIR, { type: 'func' }>, row: Record<string, unknown>): unknown {
  const args = node.args.map((arg) => resolve(arg, row))
  switch (node.name) {
    case 'lower':
      return typeof args[0] === 'string' ? args[0].toLowerCase() : args[0]
    case 'length':
      return typeof args[0] === 'string' ? beforeNul(args[0]).length : 0
    case 'coalesce':
      return args.find((v) => v !== null && v !== undefined) ?? null
  }
  const x = arithmeticOperand(args[0])
  const y = arithmeticOperand(args[1])
  if (x === undefined || y === undefined) return null
  const r = node.name === 'add' ? x + y : node.name === 'subtract' ? x - y : node.name === 'multiply' ? x * y : y === 0 ? NaN : x / y
  return Number.isNaN(r) ? null : r
}

/**
 * SQLite storage class rank: NULL < numeric < text < blob. A typed column's
 * value compares as it is stored: a boolean as 0/1, a Date as epoch ms, a
 * bigint exactly (`big`), a JSON value as its JSON text.
 */
function normalize(v: unknown): { rank: 0 | 1 | 2 | 3; n: number; s: string; big?: bigint } {
  if (v === null || v === undefined) return { rank: 0, n: 0, s: '' }
  if (typeof v === 'boolean') return { rank: 1, n: v ? 1 : 0, s: '' }
  if (typeof v === 'number') return { rank: 1, n: v, s: '' }
  if (typeof v === 'bigint') return { rank: 1, n: Number(v), s: '', big: v }
  if (v instanceof Date) return { rank: 1, n: v.getTime(), s: '' }
  if (typeof v === 'object' && typeof (v as { $int?: unknown }).$int === 'string') {
    // A bigint literal as the wire carries it (docs/protocol.md §2).
    const big = BigInt((v as { $int: string }).$int)
    return { rank: 1, n: Number(big), s: '', big }
  }
  if (typeof v === 'string') return { rank: 2, n: 0, s: v }
  if (typeof v === 'object' && typeof (v as { $hex?: unknown }).$hex === 'string') {
    return { rank: 3, n: 0, s: (v as { $hex: string }).$hex.toLowerCase() }
  }
  // Objects and arrays are stored as their JSON text.
  return { rank: 2, n: 0, s: JSON.stringify(v) }
}

function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]()
  const ib = b[Symbol.iterator]()
  for (;;) {
    const x = ia.next()
    const y = ib.next()
    if (x.done) return y.done ? 0 : -1
    if (y.done) return 1
    const cx = x.value.codePointAt(0) ?? 0
    const cy = y.value.codePointAt(0) ?? 0
    if (cx !== cy) return cx < cy ? -1 : 1
  }
}

/** Exact order of two numbers one of which is a bigint (as the core compares INTEGER with REAL). */
function compareExact(x: { n: number; big?: bigint }, y: { n: number; big?: bigint }): number {
  const a = x.big ?? x.n
  const b = y.big ?? y.n
  if (typeof a === 'number' && !Number.isInteger(a)) return -compareExact(y, x)
  // a is an integer; b a bigint or any number: compare a with floor(b), then the fraction.
  if (typeof b === 'number' && !Number.isFinite(b)) return b > 0 ? -1 : 1
  const whole = typeof b === 'bigint' ? b : BigInt(Math.floor(b))
  const ai = BigInt(a)
  if (ai !== whole) return ai < whole ? -1 : 1
  return typeof b === 'number' && b !== Math.floor(b) ? -1 : 0
}

/** Compare two non-null values; null if either is NULL. */
function compare(a: unknown, b: unknown): number | null {
  const x = normalize(a)
  const y = normalize(b)
  if (x.rank === 0 || y.rank === 0) return null
  if (x.rank !== y.rank) return NaN // different kinds: every comparison is false
  if (x.rank === 1) return x.big !== undefined || y.big !== undefined ? compareExact(x, y) : x.n === y.n ? 0 : x.n < y.n ? -1 : 1
  return compareCodePoints(x.s, y.s)
}

/** A value's key in an `in` set: equal keys iff compare() is 0 (numbers by value, text, BLOBs by bytes). */
function setKey(v: unknown): string {
  const x = normalize(v)
  if (x.rank === 1) {
    if (Number.isNaN(x.n)) return 'NaN' // NaN equals nothing: no item has this key
    // An integer by its digits (a bigint and the double of the same value agree), any other number by value.
    return x.big !== undefined ? `n${x.big}` : Number.isInteger(x.n) ? `n${BigInt(x.n)}` : `n${x.n}`
  }
  return `${x.rank}${x.s}`
}

/** An `in` list as a set, built once per list: a test costs the same however long the list (as in the core). */
const inSets = new WeakMap<unknown[], Set<string>>()
function inSet(list: unknown[]): Set<string> {
  let set = inSets.get(list)
  if (set === undefined) {
    // NULL items can never make `in` true (the core drops them).
    set = new Set(list.filter((item) => item !== null && item !== undefined).map(setKey))
    set.delete('NaN')
    inSets.set(list, set)
  }
  return set
}

function likeToRegExp(pattern: string): RegExp {
  let src = ''
  for (const ch of pattern) {
    if (ch === '%') src += '[\\s\\S]*'
    else if (ch === '_') src += '[\\s\\S]'
    else src += ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
  }
  return new RegExp(`^${src}$`, 'u')
}

/** Three-valued evaluation of `node` on `row`: true, false or null (unknown). */
export function evaluate(node: PredicateIR, row: Record<string, unknown>): Tri {
  if (node.type === 'val') {
    const v = normalize(node.value)
    return v.rank === 0 ? null : v.rank === 1 ? v.n !== 0 : Number(v.s) !== 0 && !Number.isNaN(Number(v.s))
  }
  if (node.type === 'ref') {
    const v = normalize(resolve(node, row))
    return v.rank === 0 ? null : v.rank === 1 ? v.n !== 0 : false
  }
  const [a, b] = node.args
  switch (node.name) {
    case 'and': {
      let unknown = false
      for (const arg of node.args) {
        const r = evaluate(arg, row)
        if (r === false) return false
        if (r === null) unknown = true
      }
      return unknown ? null : true
    }
    case 'or': {
      let unknown = false
      for (const arg of node.args) {
        const r = evaluate(arg, row)
        if (r === true) return true
        if (r === null) unknown = true
      }
      return unknown ? null : false
    }
    case 'not': {
      const r = a === undefined ? null : evaluate(a, row)
      return r === null ? null : !r
    }
    case 'isNull': {
      const v = resolve(a, row)
      return v === null || v === undefined
    }
    case 'isUndefined':
      // As the server decides: a stored row has every column, so none is undefined.
      return false
    case 'eq':
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte': {
      const c = compare(resolve(a, row), resolve(b, row))
      if (c === null) return null
      switch (node.name) {
        case 'eq':
          return c === 0
        case 'gt':
          return c > 0
        case 'gte':
          return c >= 0
        case 'lt':
          return c < 0
        default:
          return c <= 0
      }
    }
    case 'in': {
      const x = resolve(a, row)
      const list = resolve(b, row)
      if (!Array.isArray(list)) return null
      if (x === null || x === undefined) return null
      return inSet(list).has(setKey(x))
    }
    case 'like':
    case 'ilike': {
      const text = resolve(a, row)
      const pattern = resolve(b, row)
      if (text === null || text === undefined || pattern === null || pattern === undefined) return null
      if (typeof text !== 'string' || typeof pattern !== 'string') return false
      // As in SQLite (and the core), the text ends at its first NUL.
      if (node.name === 'like') return likeToRegExp(pattern).test(beforeNul(text))
      return likeToRegExp(pattern.toLowerCase()).test(beforeNul(text.toLowerCase()))
    }
    default: {
      // A function's value used as a condition: true iff a nonzero number.
      const v = normalize(resolve(node, row))
      return v.rank === 0 ? null : v.rank === 1 ? v.n !== 0 : false
    }
  }
}

/** True iff `row` matches `where` (an absent `where` matches every row). */
export function matches(where: PredicateIR | undefined, row: Record<string, unknown>): boolean {
  return where === undefined || evaluate(where, row) === true
}
