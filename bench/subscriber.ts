// A fan-out subscriber process (forked by run.ts): holds `count` clients of
// one system, each with its own socket and collection, and records for every
// row written by the bench's writer the time from the writer's send (carried
// in the row's content, on the machine-wide monotonic clock) to the row
// appearing in that client's collection.
import { createClient, Meter, now, type BenchClient, type Row, type System } from './clients.js'

interface Start {
  cmd: 'start'
  system: System
  base: string
  room: string
  count: number
  prefix: string
  rows: number
}

let clients: BenchClient[] = []
let latencies: number[] = []
let meter = new Meter()
let baseline = meter.snapshot()
let complete = 0
let expected = 0
let reported = false
let cpu0 = process.cpuUsage()

function report(converged: boolean): void {
  if (reported) return
  reported = true
  const m = meter.snapshot()
  process.send!({
    type: 'done',
    converged,
    latencies,
    complete,
    clients: clients.length,
    cpuMs: (() => { const c = process.cpuUsage(cpu0); return (c.user + c.system) / 1000 })(),
    bytes: {
      framesIn: m.framesIn - baseline.framesIn,
      payloadIn: m.payloadIn - baseline.payloadIn,
      wireRead: m.read - baseline.read,
    },
  })
}

process.on('message', async (msg: Start | { cmd: 'collect' } | { cmd: 'stop' }) => {
  if (msg.cmd === 'start') {
    expected = msg.rows
    meter = new Meter()
    const seen: number[] = []
    for (let i = 0; i < msg.count; i++) {
      seen.push(0)
      const index = i
      clients.push(createClient({
        system: msg.system,
        base: msg.base,
        room: msg.room,
        meter,
        label: `sub${process.pid}-${i}`,
        onRow: (row: Row) => {
          if (!row.id.startsWith(msg.prefix)) return
          latencies.push(now() - Number(row.content.slice(row.content.indexOf('@') + 1)))
          seen[index] = seen[index]! + 1
          if (seen[index] === expected) {
            complete += 1
            if (complete === clients.length) report(true)
          }
        },
      }))
    }
    try {
      await Promise.all(clients.map((c) => c.ready()))
      baseline = meter.snapshot()
      cpu0 = process.cpuUsage()
      process.send!({ type: 'ready' })
    } catch (error) {
      process.send!({ type: 'error', message: String(error) })
    }
  } else if (msg.cmd === 'collect') {
    report(false)
  } else if (msg.cmd === 'stop') {
    for (const c of clients) c.close()
    clients = []
    setTimeout(() => process.exit(0), 50)
  }
})
