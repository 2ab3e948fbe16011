// seqsync: the Durable Object side. Extend SyncDurableObject, describe your
// tables and mutations with a SyncRegistry, and call registerSync.
export { SyncDurableObject, SyncRegistrationError, type PresenceContext, type SyncOptions } from './sync-durable-object.js'
export {
  SyncRegistry,
  type AfterCommitContext,
  type AuthorizeContext,
  type CollectionDefinition,
  type ColumnType,
  type CommandContext,
  type CommandDefinition,
  type ExecuteContext,
  type MutationDefinition,
  type OpType,
  type SyncOp,
} from './registry.js'
export { refuseConnection } from './refuse.js'
export {
  CLAIMS_HEADER,
  checkedSnapshot,
  matchSyncPath,
  readSyncSnapshot,
  routeSyncRequest,
  type SnapshotOf,
  type SnapshotRead,
  type Authenticate,
  type RouteSyncOptions,
  type SyncEndpointContext,
  type SyncRouteMatch,
} from './route.js'
export { SyncDenied } from './denied.js'
export { syncInspector, type SyncInspectorOptions } from './inspector.js'
export type { CodeCount, InspectedSocket, LatencyPercentiles, SyncInspection, SyncJson, SyncStats } from './stats.js'
export { ErrorCode, CloseCode } from '../protocol/codes.js'
export type { SnapshotEntry, SnapshotRefusal, SnapshotSub, SyncSnapshot } from '../protocol/snapshot.js'
