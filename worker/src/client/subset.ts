// From TanStack DB's LoadSubsetOptions to a wire `sub` request
// (docs/protocol.md §4.2, §7), for on-demand collections.
//
// * Expressions: TanStack's PropRef / Value / Func (query/ir.d.ts) become
//   {type:'ref',path:[col]} / {type:'val',value} / {type:'func',name,args}.
//   A ref's collection alias is stripped: ['t','rank'] and ['rank'] both
//   become ['rank'] (tables are flat; the column is the last element). A
//   comparison written value-first (`gt(5, ref)`) is flipped, since the wire
//   wants the ref on the left. Operators outside §7 are passed through: the
//   server refuses them with UNSUPPORTED_PREDICATE, which rejects the load.
// * orderBy: each clause must order by a column; `compareOptions.direction`
//   and `.nulls` travel as `dir` and `nulls` (a locale string sort is not
//   expressible: the server orders text by bytes).
// * `cursor.whereFrom` (keyset paging) is ANDed into `where` and then the
//   request's `offset` is dropped: TanStack sends both, for the adapter to
//   pick one, and applying both would skip rows.
// * orderBy travels only with a limit or an offset (a window); an unbounded
//   ordered request is a plain predicate, so it shares a subscription with
//   the same unordered demand.

import { ErrorCode, canonicalJson } from '../protocol/index.js'
import type { OrderByTerm, PredicateIR, PredicateOp } from '../protocol/index.js'
import { SeqsyncError } from './errors.js'

/** The wire part of one on-demand request: what identifies its subscription. */
export interface SubsetRequest {
  where?: PredicateIR
  orderBy?: OrderByTerm[]
  limit?: number
  offset?: number
}

/** The structural view of TanStack's expression classes this module reads. */
export type ExpressionLike =
  | { type: 'ref'; path: readonly string[]; sourceAlias?: string | undefined }
  | { type: 'val'; value: unknown }
  | { type: 'func'; name: string; args: readonly ExpressionLike[] }

/** The structural view of TanStack's OrderByClause. */
export interface OrderByClauseLike {
  expression: ExpressionLike
  compareOptions?: { direction?: 'asc' | 'desc'; nulls?: 'first' | 'last' } | undefined
}

/** The structural view of TanStack's LoadSubsetOptions. */
export interface LoadSubsetOptionsLike {
  where?: unknown
  orderBy?: readonly unknown[] | undefined
  limit?: number | undefined
  offset?: number | undefined
  cursor?: { whereFrom?: unknown; whereCurrent?: unknown } | undefined
}

/** A request this client cannot express on the wire. Code UNSUPPORTED_PREDICATE. */
function unsupported(message: string): SeqsyncError {
  return new SeqsyncError(ErrorCode.UNSUPPORTED_PREDICATE, `[seqsync] on-demand request: ${message}`)
}

const FLIPPED: Partial<Record<string, PredicateOp>> = { eq: 'eq', gt: 'lt', gte: 'lte', lt: 'gt', lte: 'gte' }

/** The column a TanStack ref names, without the collection alias. */
export function refColumn(ref: { path: readonly string[]; sourceAlias?: string | undefined }): string {
  let path = ref.path
  if (ref.sourceAlias !== undefined && path.length > 1 && path[0] === ref.sourceAlias) path = path.slice(1)
  const col = path[path.length - 1]
  if (path.length === 0 || typeof col !== 'string') throw unsupported('a ref without a column')
  return col
}

/** A constant as JSON: Dates as ISO text, bigints as numbers, undefined as null. */
function wireValue(value: unknown): unknown {
  if (value === undefined) return null
  // A date column holds epoch ms (a column declared `date`, docs/protocol.md
  // §7); a bigint stays exact, tagged as on the wire (§2). A number that is
  // an integer beyond 2^53 was rounded already: refused, never sent.
  if (value instanceof Date) return value.getTime()
  if (typeof value === 'bigint') return { $int: value.toString() } // plain JSON from here on
  if (typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value)) {
    throw unsupported(`the value ${value} is an integer beyond 2^53, rounded by JavaScript: pass a bigint`)
  }
  if (Array.isArray(value)) return value.map(wireValue)
  if (typeof value === 'number' && !Number.isFinite(value)) throw unsupported(`the value ${value} is not a JSON number`)
  if (typeof value === 'object' && value !== null) return JSON.parse(JSON.stringify(value)) as unknown
  return value
}

function isExpression(value: unknown): value is ExpressionLike {
  if (typeof value !== 'object' || value === null) return false
  const type = (value as { type?: unknown }).type
  return type === 'ref' || type === 'val' || type === 'func'
}

/** TanStack expression IR → wire predicate IR (§7). */
export function toWireExpression(expression: unknown): PredicateIR {
  if (!isExpression(expression)) throw unsupported(`not an expression: ${JSON.stringify(expression)}`)
  switch (expression.type) {
    case 'ref':
      return { type: 'ref', path: [refColumn(expression)] }
    case 'val':
      return { type: 'val', value: wireValue(expression.value) }
    case 'func': {
      let name = expression.name
      let args = expression.args.map(toWireExpression)
      const [a, b] = args
      const flipped = FLIPPED[name]
      if (flipped !== undefined && args.length === 2 && a?.type === 'val' && b?.type === 'ref') {
        name = flipped
        args = [b, a]
      }
      return { type: 'func', name: name as PredicateOp, args }
    }
  }
}

/** TanStack OrderBy → wire orderBy terms. */
export function toWireOrderBy(orderBy: readonly unknown[]): OrderByTerm[] {
  return orderBy.map((clause) => {
    const c = clause as OrderByClauseLike
    if (!isExpression(c?.expression) || c.expression.type !== 'ref') {
      throw unsupported('orderBy must order by a column')
    }
    const term: OrderByTerm = { col: refColumn(c.expression) }
    const options = c.compareOptions
    term.dir = options?.direction === 'desc' ? 'desc' : 'asc'
    if (options?.nulls === 'first' || options?.nulls === 'last') term.nulls = options.nulls
    return term
  })
}

function and(left: PredicateIR | undefined, right: PredicateIR | undefined): PredicateIR | undefined {
  if (left === undefined) return right
  if (right === undefined) return left
  return { type: 'func', name: 'and', args: [left, right] }
}

/**
 * The wire request for `options`, with `base` (the collection's own where)
 * ANDed in. Throws a SeqsyncError (UNSUPPORTED_PREDICATE) for what the wire
 * cannot express.
 */
export function toSubsetRequest(options: LoadSubsetOptionsLike, base?: PredicateIR): SubsetRequest {
  const request: SubsetRequest = {}
  let where = and(base, options.where === undefined ? undefined : toWireExpression(options.where))
  const whereFrom = options.cursor?.whereFrom
  if (whereFrom !== undefined) where = and(where, toWireExpression(whereFrom))
  if (where !== undefined) request.where = where
  const limit = options.limit
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) throw unsupported(`limit ${limit}`)
  // With a cursor, the cursor is the start of the page; the offset TanStack
  // also sends (its local row count) would skip rows a second time.
  const offset = whereFrom !== undefined ? undefined : options.offset
  if (offset !== undefined && (!Number.isInteger(offset) || offset < 0)) throw unsupported(`offset ${offset}`)
  const windowed = limit !== undefined || (offset !== undefined && offset > 0)
  if (windowed) {
    if (options.orderBy !== undefined && options.orderBy.length > 0) request.orderBy = toWireOrderBy(options.orderBy)
    if (limit !== undefined) request.limit = limit
    if (offset !== undefined && offset > 0) request.offset = offset
  }
  return request
}

/** The ref-counting key of a request: identical requests share one subscription. */
export function subsetKey(request: SubsetRequest): string {
  return canonicalJson(request)
}

function conjuncts(p: PredicateIR | undefined): PredicateIR[] {
  if (p === undefined) return []
  if (p.type === 'func' && p.name === 'and') return p.args.flatMap(conjuncts)
  return [p]
}

function columnsOf(p: PredicateIR, into: Set<string>): Set<string> {
  if (p.type === 'ref') {
    const col = p.path[p.path.length - 1]
    if (col !== undefined) into.add(col)
  } else if (p.type === 'func') {
    for (const a of p.args) columnsOf(a, into)
  }
  return into
}

/**
 * True only if every row matching `p` matches `q` (sound, not complete):
 * `q`'s and/or structure is walked; a leaf of `q` is implied when it is one of
 * `p`'s conjuncts, or when it reads only columns `p` pins with `eq(col, v)`
 * and holds for those values. Used to serve a request from a live subset
 * that already holds every row it asks for — notably the leading-value tie
 * TanStack DB loads at an ordered window's boundary, which the window's
 * resolved range (ties included) already covers.
 */
export function implies(p: PredicateIR | undefined, q: PredicateIR | undefined, evaluate: (node: PredicateIR, row: Record<string, unknown>) => boolean | null): boolean {
  if (q === undefined) return true
  const known = new Set(conjuncts(p).map((c) => canonicalJson(c)))
  const pinned: Record<string, unknown> = {}
  for (const c of conjuncts(p)) {
    if (c.type !== 'func' || c.name !== 'eq') continue
    const [a, b] = c.args
    if (a?.type !== 'ref' || b?.type !== 'val') continue
    const v = b.value
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') continue
    const col = a.path[a.path.length - 1]
    if (col !== undefined) pinned[col] = v
  }
  const walk = (node: PredicateIR): boolean => {
    if (node.type === 'func' && node.name === 'and') return node.args.every(walk)
    if (node.type === 'func' && node.name === 'or') return node.args.some(walk)
    if (known.has(canonicalJson(node))) return true
    const cols = columnsOf(node, new Set())
    if (cols.size === 0) return false
    for (const col of cols) if (!(col in pinned)) return false
    return evaluate(node, pinned) === true
  }
  return walk(q)
}
