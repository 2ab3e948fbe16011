// Soak: 1,000 sockets on one DO over loopback for 3 minutes at a steady
// write rate. Samples the workerd processes' memory and the delivery latency
// (writer's send → a subscriber's changes frame) every interval, prints a
// table and writes test-output/soak.json. It fails (exit 1) unless every
// write is acked, every subscriber received every write exactly once, every
// sample saw deliveries, workerd was found and measured, and its memory
// stayed flat after warm-up.
//   node tests/soak/soak.mjs [--sockets 1000] [--minutes 3] [--rate 5]
import { mkdirSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

import WebSocket from 'ws'

import { processesInGroup, rssBytes } from '../support/proc.mjs'
import { startWrangler } from '../support/wrangler.mjs'

const { values } = parseArgs({
  options: {
    sockets: { type: 'string', default: '1000' },
    minutes: { type: 'string', default: '3' },
    rate: { type: 'string', default: '5' }, // writes per second: 5,000 deliveries/s at 1,000 sockets
    samples: { type: 'string', default: '20' },
  },
})
const SOCKETS = Number(values.sockets)
const DURATION_MS = Number(values.minutes) * 60_000
const RATE = Number(values.rate)
const SAMPLES = Number(values.samples)
const PROBES = 20 // subscribers whose receive times are measured

const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN
}

function connect(url, onFrame) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    const timer = setTimeout(() => reject(new Error(`no snapshot within 15 s from ${url}`)), 15_000)
    ws.once('close', () => reject(new Error(`closed before its snapshot: ${url}`)))
    ws.on('open', () => {
      ws.send(JSON.stringify({ t: 'hello', v: 1 }))
      ws.send(JSON.stringify({ t: 'sub', id: 's', c: 'messages' }))
    })
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data))
      if (frame.t === 'snapshot' && !frame.more) {
        clearTimeout(timer)
        resolve(ws)
      }
      onFrame?.(frame)
    })
    ws.on('error', reject)
  })
}

const server = await startWrangler({ config: 'tests/worker/wrangler.toml' })
const stopAll = async () => server.stop()
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => void stopAll().then(() => process.exit(130)))
try {
  const room = `soak-${Date.now().toString(36)}`
  const url = (user) => `${server.wsUrl}/sync/${room}?user=${user}`
  const sent = new Map() // message id → send time
  const latencies = []
  const sockets = []
  // Rows of the soak's writes each subscriber received (every write inserts one new key).
  const received = new Array(SOCKETS).fill(0)
  for (let i = 0; i < SOCKETS; i++) {
    const probe = i < PROBES
    sockets.push(await connect(url(`u${i}`), (f) => {
      if (f.t !== 'changes') return
      for (const c of f.changes) {
        if (!c.row || !c.k.startsWith('soak-')) continue
        received[i]++
        if (!probe) continue
        const t = sent.get(c.k)
        if (t !== undefined) latencies.push(performance.now() - t)
      }
    }))
    if (i % 100 === 99) console.log(`${i + 1} sockets connected`)
  }
  const outcomes = { acks: 0, rejects: 0 }
  const writer = await connect(url('writer'), (f) => {
    if (f.t === 'ack') outcomes.acks++
    else if (f.t === 'reject') outcomes.rejects++
  })
  const workerd = processesInGroup(server.pid)
  // Without them there is no memory to judge: an RSS of 0 is no measurement, not a flat line.
  if (workerd.length === 0) throw new Error(`no workerd process in wrangler's process group ${server.pid}: memory cannot be measured`)
  console.log(`workerd pids: ${workerd.join(', ')}; ${SOCKETS} subscribers; ${RATE} writes/s for ${DURATION_MS / 60000} min`)

  const samples = []
  const started = performance.now()
  let n = 0
  const interval = DURATION_MS / SAMPLES
  let nextSample = started + interval
  let window = []
  while (performance.now() - started < DURATION_MS) {
    const id = `soak-${n++}`
    sent.set(id, performance.now())
    writer.send(JSON.stringify({ t: 'mut', id: `m-${id}`, ops: [{ c: 'messages', op: 'insert', k: id, cols: { id, author: 'writer', content: `row ${n}`, created_at: n } }] }))
    await new Promise((r) => setTimeout(r, 1000 / RATE))
    if (performance.now() >= nextSample) {
      window = latencies.splice(0)
      const perProcess = workerd.map(rssBytes)
      if (perProcess.length === 0 || perProcess.includes(0)) throw new Error(`a workerd process exited (pids ${workerd.join(', ')})`)
      const sample = {
        minute: +((performance.now() - started) / 60_000).toFixed(2),
        writes: n,
        rssMiB: +(perProcess.reduce((a, b) => a + b, 0) / 2 ** 20).toFixed(1),
        p50ms: +percentile(window, 50).toFixed(2),
        p99ms: +percentile(window, 99).toFixed(2),
        deliveries: window.length,
      }
      samples.push(sample)
      console.log(JSON.stringify(sample))
      nextSample += interval
      for (const key of sent.keys()) if (Number(key.slice(5)) < n - RATE * 30) sent.delete(key)
    }
  }
  // Every write confirmed (nothing lost, nothing refused), then delivered to every subscriber.
  const settleBy = performance.now() + 30_000
  while (outcomes.acks + outcomes.rejects < n && performance.now() < settleBy) await new Promise((r) => setTimeout(r, 100))
  const deliveredBy = performance.now() + 30_000
  while (received.some((r) => r < n) && performance.now() < deliveredBy) await new Promise((r) => setTimeout(r, 100))
  // Memory is judged after warm-up (the first fifth of the run): flat means
  // the last sample is within 5 % of the warm-up sample.
  const rss = samples.map((s) => s.rssMiB)
  const warm = rss[Math.floor(rss.length / 5)] ?? rss[0]
  const growth = rss.at(-1) - warm
  const failures = []
  if (outcomes.acks !== n) failures.push(`${n} writes, ${outcomes.acks} acked, ${outcomes.rejects} rejected`)
  const short = received.filter((r) => r < n).length
  const extra = received.filter((r) => r > n).length
  if (short > 0) failures.push(`${short} of ${SOCKETS} subscribers missed writes (fewest received: ${Math.min(...received)} of ${n})`)
  if (extra > 0) failures.push(`${extra} of ${SOCKETS} subscribers received a write more than once (most: ${Math.max(...received)} of ${n})`)
  const silent = samples.filter((x) => x.deliveries === 0)
  if (silent.length > 0) failures.push(`${silent.length} of ${samples.length} samples saw no delivery to the probes (minutes ${silent.map((x) => x.minute).join(', ')})`)
  if (samples.length === 0) failures.push('no sample was taken')
  if (!(warm > 0)) failures.push(`no workerd memory was measured (warm-up RSS ${warm})`)
  else if (growth > 0.05 * warm) failures.push(`workerd RSS grew ${growth.toFixed(1)} MiB after warm-up (from ${warm} MiB)`)
  const deliveries = received.reduce((a, b) => a + b, 0)
  const summary = { sockets: SOCKETS, minutes: DURATION_MS / 60000, rate: RATE, writes: n, acks: outcomes.acks, deliveries, expectedDeliveries: n * SOCKETS, rssFirstMiB: rss[0], rssWarmMiB: warm, rssLastMiB: rss.at(-1), rssGrowthAfterWarmupMiB: +growth.toFixed(1), failures, samples }
  mkdirSync('test-output', { recursive: true })
  writeFileSync('test-output/soak.json', JSON.stringify(summary, null, 2))
  console.table(samples)
  console.log(`soak: ${n} writes to ${SOCKETS} sockets, ${outcomes.acks} acked, ${deliveries} of ${n * SOCKETS} deliveries; workerd RSS ${rss[0]} → ${warm} (warm) → ${rss.at(-1)} MiB (growth after warm-up ${growth.toFixed(1)} MiB)`)
  for (const ws of sockets) ws.terminate()
  writer.terminate()
  if (failures.length > 0) {
    console.error(`soak FAILED: ${failures.join('; ')}`)
    process.exitCode = 1
  }
} finally {
  await stopAll()
}
