// A snapshot read for a server render (docs/protocol.md §5.9): what a
// Worker gets from SyncDurableObject.readSyncSnapshot over RPC, and how it is
// assembled from the frames the core answers the read with. Shared by the
// DO shell (which assembles it), the Worker helper (which checks it) and the
// client (which hydrates from it).

import { ErrorCode } from './codes.js'
import type { ErrorFrame, PredicateIR, ServerFrame, SubBody, SubErrorFrame, WireRow } from './frames.js'

/** One subscription to read: a `sub` body; `id` defaults to `c`. */
export type SnapshotSub = Omit<SubBody, 'id' | 'resume'> & { id?: string }

/** A refusal, as the socket's `sub-error` or `error` frame carries it. */
export interface SnapshotRefusal {
  code: number
  error: string
  message: string
}

/** The rows of one subscription at the read's seq (`where`: the predicate they are, a window's resolved one), or its refusal. */
export type SnapshotEntry =
  | { sub: string; c: string; rows: WireRow[]; where?: PredicateIR }
  | { sub: string; c: string; refused: SnapshotRefusal }

/**
 * Every subscription's rows at one seq: a client holding them is synced at
 * `seq` in `epoch` and resumes from there (hello since/epoch, resume).
 * Or, for the read as a whole, the refusal a socket would have got: an
 * `error` frame's (the list of subs), or a refused upgrade's close code
 * (4401, 4403; `error` is `UNAUTHORIZED` or `FORBIDDEN`).
 */
export type SyncSnapshot =
  | { v: 1; epoch: string; seq: number; subs: SnapshotEntry[] }
  | { v: 1; refused: SnapshotRefusal }

/** The hello frame a read of `subs` is, ids defaulted to the collection. */
export function snapshotHello(subs: readonly SnapshotSub[]): string {
  // Anything else goes as it is, for the core to refuse as a hello's entry.
  const withId = (s: SnapshotSub) => (typeof s === 'object' && s !== null && s.id === undefined ? { ...s, id: s.c } : s)
  return JSON.stringify({ t: 'hello', v: 1, subs: subs.map(withId) })
}

/** The read's result from the frames the core answered it with (snapshots or sub-errors, then synced; or one error). */
export function assembleSnapshot(epoch: string, subs: readonly SnapshotSub[], frames: readonly string[]): SyncSnapshot {
  const requested = new Map(subs.map((s) => [s.id ?? s.c, s]))
  const entries = new Map<string, SnapshotEntry>()
  let seq: number | undefined
  for (const text of frames) {
    const frame = JSON.parse(text) as ServerFrame
    if (frame.t === 'error') return { v: 1, refused: refusalOf(frame) }
    if (frame.t === 'synced') seq = frame.seq
    else if (frame.t === 'sub-error') {
      // Refused, also after some of its rows arrived (a snapshot that failed midway).
      entries.set(frame.sub, { sub: frame.sub, c: requested.get(frame.sub)?.c ?? '', refused: refusalOf(frame) })
    } else if (frame.t === 'snapshot') {
      let entry = entries.get(frame.sub)
      if (!entry) {
        // The predicate the rows are: a window's resolved one, else the sub's own.
        const where = frame.where ?? requested.get(frame.sub)?.where
        entry = { sub: frame.sub, c: frame.c, rows: [], ...(where !== undefined ? { where } : {}) }
        entries.set(frame.sub, entry)
      }
      if (!('rows' in entry)) continue
      for (const row of frame.rows) entry.rows.push(row)
    }
  }
  if (seq === undefined) {
    return { v: 1, refused: { code: ErrorCode.INTERNAL, error: 'INTERNAL', message: 'the snapshot read ended without its seq' } }
  }
  return { v: 1, epoch, seq, subs: [...entries.values()] }
}

function refusalOf(frame: ErrorFrame | SubErrorFrame): SnapshotRefusal {
  return { code: frame.code, error: frame.error, message: frame.message }
}
