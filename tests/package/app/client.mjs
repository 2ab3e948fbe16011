// A confirmed round trip with the installed seqsync/client, on the Node the
// test runs it with (Node 22: its global WebSocket): one client inserts and
// waits for the confirmation, a second one reads the row back.
import { createCollection } from '@tanstack/db'
import { doCollectionOptions, WebSocketTransport } from 'seqsync/client'

const url = process.argv[2]
const open = (name) => {
  const transport = new WebSocketTransport({ url, watchNetwork: false })
  const notes = createCollection(doCollectionOptions({ id: name, transport, table: 'notes', getKey: (n) => n.id }))
  return { transport, notes }
}
const writer = open('writer')
await writer.notes.preload()
const tx = writer.notes.insert({ id: 'n1', body: 'hello from the package' })
await tx.isPersisted.promise
const reader = open('reader')
await reader.notes.preload()
console.log(JSON.stringify({ node: process.version, seq: writer.transport.appliedSeq, read: reader.notes.toArray.map(({ id, body }) => ({ id, body })) }))
writer.transport.close()
reader.transport.close()
