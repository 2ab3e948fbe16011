// Type-checked against the installed package: its exports resolve with types.
import { doCollectionOptions, WebSocketTransport, type WriteResult } from 'seqsync/client'
import type { SyncInspection, SyncStats } from 'seqsync'
import { PROTOCOL_VERSION } from 'seqsync/protocol'

const transport: WebSocketTransport = new WebSocketTransport({ url: 'ws://localhost/sync/r', lazy: true })
const options = doCollectionOptions<{ id: string; body: string }>({ transport, table: 'notes', getKey: (n) => n.id })
const head: SyncStats['head'] = 1
const sockets: SyncInspection['socketList'] = []
const confirmed: WriteResult = { seq: head }
export const checked = [options, sockets, confirmed, PROTOCOL_VERSION satisfies number]
