// seqsync/client: TanStack DB collections synced to a Cloudflare Durable
// Object over one WebSocket. docs/protocol.md is the wire specification.
export { WebSocketTransport } from './transport.js'
export type {
  AppliedUnit,
  PageRequest,
  PageResult,
  SubscriptionHandler,
  SubscriptionSpec,
  TransportUrl,
  WebSocketConstructor,
  WebSocketLike,
  WebSocketTransportOptions,
  WriteOptions,
  WriteResult,
} from './transport.js'
export { doCollectionOptions, doMutationFn, persistTransaction } from './collection.js'
export { dehydrateSnapshot } from './hydration.js'
export type { HydrationTarget, SeqsyncSyncMeta } from './hydration.js'
export type { DoCollectionConfig, DoCollectionOptions, SeqsyncUtils, TransactionLike } from './collection.js'
export { presenceCollectionOptions } from './presence-collection.js'
export type { PresenceCollectionOptions, PresenceRow, PresenceUtils } from './presence-collection.js'
export {
  ClosedError,
  OutcomeUnknownError,
  OutOfScopeError,
  PresenceError,
  PageError,
  ProtocolError,
  RejectedError,
  SeqsyncError,
  SubscriptionError,
  TimeoutError,
} from './errors.js'
export { DEFAULT_BACKOFF, backoffCeiling, backoffDelay } from './connection.js'
export type { BackoffConfig, ConnectionStatus } from './connection.js'
export { evaluate as evaluatePredicate, toPredicateIR } from './where.js'
export type { WhereFunction, WhereInput, WhereMap, WhereRow } from './where.js'
export { CloseCode, ErrorCode, errorName, isTerminalClose } from '../protocol/index.js'
export type { ErrorName, PredicateIR, SnapshotSub, SyncSnapshot, WireOp, WireRow } from '../protocol/index.js'
