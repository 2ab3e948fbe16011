// The options registerSync takes. Each one is checked by the core (cpp/src/options.cc),
// listed in docs/protocol.md §9.1, and the three are kept equal by tests/wire-tables.test.mjs.

/** Runtime knobs of the core (docs/protocol.md §9). Unknown keys are refused. */
export interface SyncOptions {
  /** Change-log entries older than this are pruned. Default: 2 days. */
  retentionMs?: number
  /** How long committed mutation outcomes are kept for exactly-once replays. Default: 2 days (independent of retentionMs). */
  dedupRetentionMs?: number
  maxFrameBytes?: number
  maxValueBytes?: number
  maxKeyBytes?: number
  maxIdBytes?: number
  maxJsonDepth?: number
  /** Values (scalars, arrays, objects) in one inbound frame. Default 100,000. */
  maxJsonValues?: number
  maxOpsPerMutation?: number
  maxSubsPerSocket?: number
  /** Bytes of one socket's subscription bodies (id, collection, where) together. Default 256 KiB. */
  maxSubBytesPerSocket?: number
  maxInFlightPerSocket?: number
  /** Bytes of one socket's mutations in flight together (one alone is always let in). Default 8 MiB. */
  maxInFlightBytesPerSocket?: number
  /** Bytes sent to one socket and not reported read before it is closed 4008 SLOW_READER. Default 8 MiB, minimum 64 KiB. */
  maxUnreadBytesPerSocket?: number
  maxPredicateDepth?: number
  maxPredicateNodes?: number
  /** Bytes of all literals of one `where` together. Default 64 KiB. */
  maxPredicateLiteralBytes?: number
  /** Bytes of one `like` pattern (default 256) and its `%`/`_` wildcards (default 16). */
  maxLikePatternBytes?: number
  maxLikeWildcards?: number
  /** sub frames per socket: a burst (default 128), then a rate (default 16/s). unsub is not limited. */
  subRateBurst?: number
  subRatePerSecond?: number
  /** Bytes of one socket's presence (all its tabs' states) as its attachment stores them. Default 2 KiB, at most 4 KiB. */
  maxPresenceBytesPerSocket?: number
  /** Tab slots of presence one socket may hold. Default 4, at most 16. */
  maxPresenceTabsPerSocket?: number
  /** presence frames per socket: a burst (default 32), then a rate (default 20/s). */
  presenceRateBurst?: number
  presenceRatePerSecond?: number
  snapshotChunkBytes?: number
  readPageRows?: number
  compactEvery?: number
}
