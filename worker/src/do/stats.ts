// The shapes of syncStats() and syncInspect() (cpp/include/seqsync/core.h,
// Core::StatsJson). The counters are the core's, kept as frames leave and
// started at zero with each instance (a wake or a deploy resets them); the
// sizes are read from SQLite when asked.

/** p50/p99 (nearest rank) over the last 512 mutations, in ms of the clock the shell passes (Date.now()); null before any. */
export interface LatencyPercentiles {
  p50: number | null
  p99: number | null
  samples: number
}

export interface CodeCount {
  code: number
  count: number
}

export interface SyncStats {
  epoch: string
  head: number
  floor: number
  log: {
    rows: number
    /** Its entries' table names and keys, plus 16 bytes each for seq and op. */
    bytes: number
  }
  /** Rows of each registered table. */
  tables: Record<string, number>
  /** The object's whole SQLite file, bytes (ctx.storage.sql.databaseSize). */
  databaseBytes: number
  /** Sockets that said hello. */
  sockets: number
  /** Subscriptions by collection. */
  subscriptions: Record<string, number>
  /** Mutations admitted and not yet acked or rejected. */
  writesInFlight: number
  mutations: {
    committed: number
    /** Reject frames sent: refused at admission, by authorize or execute. */
    rejected: number
    /** Acks answered from the dedup record (a replay of a committed id). */
    replayed: number
  }
  /** error, sub-error and reject frames, by code (the shell's own refusals included). */
  refusals: Array<CodeCount & { error: string }>
  /** Sockets closed by the core, by close code. */
  closes: CodeCount[]
  latencyMs: {
    /** Admission → commit: authorize and execute. */
    execute: LatencyPercentiles
    /** Commit → the ack leaving. */
    commitToAck: LatencyPercentiles
  }
  sent: {
    frames: number
    /** Frames times their recipients. */
    deliveries: number
    bytes: number
  }
  /** When compaction and retention last ran in this instance (ms since the epoch); null: not yet. */
  lastHousekeepingMs: number | null
  /** Housekeeping runs that failed in this instance (each is tried again when next due; nothing is lost). */
  housekeepingFailures: number
  /** The core's wasm heap. */
  wasmMemoryBytes: number
}

/** A JSON value (what crosses RPC and the inspector's JSON as it is). */
export type SyncJson = string | number | boolean | null | SyncJson[] | { [key: string]: SyncJson }

export interface InspectedSocket {
  id: string
  /** What redactClaims(claims) returned. */
  identity: SyncJson
  unreadBytes: number
  /** `where`: the predicate as it went over the wire (docs/protocol.md), null for none. */
  subs: Array<{ id: string; collection: string; where: SyncJson }>
}

/** syncStats() and what the inspector page shows of one object. */
export interface SyncInspection extends SyncStats {
  socketList: InspectedSocket[]
  /** The newest entries of the change log (op: 1 insert, 2 update, 3 delete). */
  recentChanges: Array<{ seq: number; table: string; key: string; op: number }>
  recentMutations: Array<{ id: string; outcome: string; atMs: number; executeMs: number | null; commitToAckMs: number | null }>
  recentRefusals: Array<{ socket: string; code: number; error: string; frame: string; atMs: number }>
}
