// The frames of protocol v1, field for field as in docs/protocol.md. The C++
// core is the only code that decodes client frames and encodes server frames;
// these types are for the client and for tests.

export const PROTOCOL_VERSION = 1

/** A column value as it travels: JSON scalars, or {"$hex"} for a BLOB. */
export type WireValue = string | number | boolean | null | { $hex: string }
export type WireRow = Record<string, unknown>

/** TanStack DB's expression IR as plain JSON (docs/protocol.md §7). */
export type PredicateIR =
  | { type: 'ref'; path: string[] }
  | { type: 'val'; value: unknown }
  | { type: 'func'; name: PredicateOp; args: PredicateIR[] }

export type PredicateOp =
  | 'eq' | 'gt' | 'gte' | 'lt' | 'lte' | 'like' | 'ilike' | 'in'
  | 'isNull' | 'isUndefined' | 'and' | 'or' | 'not'
  // Functions of the row, in an operand (§7).
  | 'lower' | 'length' | 'coalesce' | 'add' | 'subtract' | 'multiply' | 'divide'

export interface OrderByTerm {
  col: string
  dir?: 'asc' | 'desc'
  nulls?: 'first' | 'last'
}

export interface SubBody {
  id: string
  c: string
  where?: PredicateIR
  orderBy?: OrderByTerm[]
  limit?: number
  offset?: number
  /** Only inside hello.subs: the sub was fully synced at `since`. */
  resume?: boolean
}

export type OpType = 'insert' | 'update' | 'delete'

export interface WireOp {
  c: string
  op: OpType
  k: string
  cols?: Record<string, unknown>
}

// ---- client → server -------------------------------------------------------
export interface HelloFrame {
  t: 'hello'
  v: number
  epoch?: string
  since?: number
  subs?: SubBody[]
  /** The client reads an ack inside the changes frame that ends its write's unit (ChangesFrame.ack). */
  inlineAcks?: boolean
  /** The client reads changes frames in the compact form (CompactChanges). */
  compactChanges?: boolean
}
export interface SubFrame extends SubBody {
  t: 'sub'
}
export interface UnsubFrame {
  t: 'unsub'
  id: string
}
export interface MutFrame {
  t: 'mut'
  id: string
  ops: WireOp[]
}
export interface CallFrame {
  t: 'call'
  id: string
  name: string
  args?: unknown
}
/** Flow control (docs/protocol.md §4.6): `bytes` more of the server's frames were read. */
export interface RecvFrame {
  t: 'recv'
  bytes: number
}
/**
 * Presence (docs/protocol.md §4.7): set one tab's state (null clears it), or
 * start/stop receiving everyone's. Never in the change log.
 */
export type PresenceClientFrame =
  | { t: 'presence'; tab: string; state: unknown }
  | { t: 'presence'; watch: boolean }
/** The boundary a page starts after: the last row's value for each orderBy term, and its key. */
export interface PageCursor {
  values: unknown[]
  k: string
}
/** A one-off ordered read that holds no subscription (docs/protocol.md §4.8). */
export interface PageRequestFrame {
  t: 'page'
  id: string
  c: string
  where?: PredicateIR
  orderBy?: OrderByTerm[]
  /** 1…MAX_PAGE_ROWS rows after the boundary's ties. */
  limit: number
  cursor?: PageCursor
}
export type ClientFrame =
  | HelloFrame | SubFrame | UnsubFrame | MutFrame | CallFrame | RecvFrame | PresenceClientFrame | PageRequestFrame

/** The most rows of one page's limit, and of the boundary's ties it serves first (docs/protocol.md §9.2). */
export const MAX_PAGE_ROWS = 1000

// ---- server → client -------------------------------------------------------
export interface Limits {
  maxFrameBytes: number
  maxValueBytes: number
  maxKeyBytes: number
  maxIdBytes: number
  maxJsonDepth: number
  maxOpsPerMutation: number
  maxSubsPerSocket: number
  maxInFlightPerSocket: number
  maxPredicateDepth: number
  maxPredicateNodes: number
  maxJsonValues: number
  maxSubBytesPerSocket: number
  maxInFlightBytesPerSocket: number
  /** Bytes sent and not reported read (recv) before the socket is closed SLOW_READER. */
  maxUnreadBytesPerSocket: number
  maxPredicateLiteralBytes: number
  maxLikePatternBytes: number
  maxLikeWildcards: number
  subRateBurst: number
  subRatePerSecond: number
  /** Bytes of one socket's presence as its attachment stores it ([tab,state] each). */
  maxPresenceBytesPerSocket: number
  maxPresenceTabsPerSocket: number
  presenceRateBurst: number
  presenceRatePerSecond: number
  /** How far back a resume can reach, ms. */
  retentionMs: number
  [other: string]: number
}
export interface WelcomeFrame {
  t: 'welcome'
  v: number
  epoch: string
  seq: number
  limits: Limits
}
/** With `row`: upsert. Without: remove (deleted, moved out, or never held). */
export interface WireChange {
  c: string
  k: string
  row?: WireRow
}
export interface ChangesFrame {
  t: 'changes'
  seq: number
  changes: WireChange[]
  more?: true
  /** To a socket whose hello set inlineAcks: the id of its write this unit confirms, as an AckFrame at `seq` would. */
  ack?: string
}
/**
 * The compact form of a changes frame, to a socket whose hello set
 * compactChanges: the changes of one collection `c`. A row's key is its `pk`
 * column; a string is the key of a row removed. A frame holds each key once.
 */
export interface CompactChangesFrame {
  t: 'changes'
  seq: number
  c: string
  pk: string
  rows: Array<WireRow | string>
  more?: true
  ack?: string
}
export interface SnapshotFrame {
  t: 'snapshot'
  sub: string
  c: string
  seq: number
  rows: WireRow[]
  more?: true
  /** For a window (orderBy/limit/offset): the predicate it resolved to, to resume it with. */
  where?: PredicateIR
}
export interface SyncedFrame {
  t: 'synced'
  seq: number
}
export interface AckFrame {
  t: 'ack'
  id: string
  seq: number
  result?: unknown
}
export interface RejectFrame {
  t: 'reject'
  id: string
  code: number
  error: string
  message: string
}
export interface SubErrorFrame {
  t: 'sub-error'
  sub: string
  code: number
  error: string
  message: string
}
/** The answer to a page (docs/protocol.md §5.12): its rows, read at `seq`; not part of a unit. */
export interface PageFrame {
  t: 'page'
  id: string
  c: string
  seq: number
  rows: WireRow[]
  /** More frames of this page follow. */
  more?: true
  /** The boundary's ties filled MAX_PAGE_ROWS and more remain: ask again from the last row. */
  cut?: true
}
export interface PageErrorFrame {
  t: 'page-error'
  id: string
  code: number
  error: string
  message: string
}
export interface ErrorFrame {
  t: 'error'
  code: number
  error: string
  message: string
}
/** One tab of one socket. Without `state`: it is gone (the tab cleared it, or its socket closed). */
export interface PresenceEntry {
  socket: string
  tab: string
  /** Named by the server from the socket's claims. */
  user: string
  state?: unknown
}
/** Presence changes; with `all`, the whole view (the answer to a watch), `you` naming the receiving socket. */
export interface PresenceFrame {
  t: 'presence'
  entries: PresenceEntry[]
  all?: true
  you?: string
}
export interface PresenceErrorFrame {
  t: 'presence-error'
  /** The tab of the refused set; absent for a watch. */
  tab?: string
  code: number
  error: string
  message: string
}
export type ServerFrame =
  | WelcomeFrame | ChangesFrame | CompactChangesFrame | SnapshotFrame | SyncedFrame
  | AckFrame | RejectFrame | SubErrorFrame | ErrorFrame
  | PresenceFrame | PresenceErrorFrame | PageFrame | PageErrorFrame
/** What a socket whose hello did not set compactChanges can be sent. */
export type FullServerFrame = Exclude<ServerFrame, CompactChangesFrame>
