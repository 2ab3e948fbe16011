// `npm run bench`: seqsync against a plain-JS floor (bench/floor.ts), in one
// run, on local workerd (`wrangler dev` on loopback). Every scenario runs in a
// fresh DO for each of three clients: seqsync (a real TanStack DB collection),
// the floor fed into a TanStack DB collection by a minimal adapter, and a bare
// floor client. Every seqsync figure is printed as a ratio to the floor of the
// same run; results go to test-output/bench.json and (full run)
// docs/benchmarks.md.
//
//   node test-output/bench-build/run.js [--smoke] [--only=writes,fanout,...] [--no-docs]
//     [--wake-hibernated=N]   hibernated DOs to wake per system (default 3, 0 in --smoke)
//
// Bounded: every loop has a count and every wait a deadline; only 127.0.0.1
// is dialled; every process started (wrangler, subscribers) is stopped by PID.
import { fork, type ChildProcess } from 'node:child_process'
import { readFileSync, mkdirSync, writeFileSync, existsSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createServer } from 'node:http'
import { gzipSync } from 'node:zlib'
import { chromium } from 'playwright-core'
import WebSocket from 'ws'

// @ts-expect-error: plain .mjs helper shared with the tests
import { commandLine, cpuMs, processesInGroup, rssBytes } from '../tests/support/proc.mjs'
import { directWorkerdUrl, startWrangler } from '../tests/support/wrangler.mjs'
import { decodeServerFrame } from '../worker/src/client/codec.js'
import { createClient, mean, median, Meter, now, percentile, SeqsyncClient, sleep, until, SYSTEMS, type BenchClient, type Row, type System } from './clients.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const args = process.argv.slice(2)
const SMOKE = args.includes('--smoke')
const ONLY = args.find((a) => a.startsWith('--only='))?.slice(7).split(',')
const WRITE_DOCS = !SMOKE && !args.includes('--no-docs') && !ONLY && !args.includes('--report-only')
const SCENARIOS = ['writes', 'throughput', 'fanout', 'catchup', 'initial', 'wake', 'sizes', 'memory', 'fairness', 'reload', 'presence', 'typed'] as const
type Scenario = (typeof SCENARIOS)[number]
const enabled = (s: Scenario) => (ONLY ? ONLY.includes(s) : !(SMOKE && (s === 'memory')))

const C = SMOKE
  ? { writes: 50, burst: 50, warmup: 10, rounds: 1, tpWriters: 4, tpWrites: 10, tpReps: 1, fanout: [{ subs: 6, rows: 10, gapMs: 20, procs: 2 }], fanoutReps: 1, catchup: 300, catchupReps: 1, catchupWarmup: 0,
      initial: [500, 2000], initialReps: 1, seed: { rows: 500, reps: 1 }, wakeNew: 2, wakeHibernated: 0, memRows: 0, memSockets: 0,
      fairness: { subs: 6, rows: 120, gapMs: 20, procs: 2, pad: 1000, reps: 1 }, reload: { rows: 2000, changed: 20, reps: 1 },
      presence: { subs: 6, updates: 10, gapMs: 60, bytes: 300, reps: 1 }, typedRows: 2000, typedReps: 3 }
  : { writes: 2000, burst: 2000, warmup: 100, rounds: 8,
      // 20 writers on one DO, each with one write in flight: the DO is the bottleneck.
      tpWriters: 20, tpWrites: 150, tpReps: 3,
      // Gaps wide enough that the subscribers' CPU (2 cores for all of them) is not saturated:
      // the latency is the path's, not a queue's.
      fanout: [{ subs: 50, rows: 150, gapMs: 40, procs: 2 }, { subs: 200, rows: 60, gapMs: 150, procs: 4 }],
      // Each figure is the median of the reps: one rep's DO CPU per delivery varies by ±10 %.
      fanoutReps: 3,
      // One catch-up a system first, not recorded: the first compiles the code a
      // large unit takes (its own, and TanStack's large-commit path, which the
      // floor with TanStack shares and would otherwise find compiled by seqsync's).
      catchup: 5000, catchupReps: 5, catchupWarmup: 1, initial: [5000, 50000], initialReps: 3,
      // The server-side write: one seed a rep into a woken DO, systems in turn.
      seed: { rows: 20000, reps: 5 },
      wakeNew: 9, wakeHibernated: 3,
      memRows: 50000, memSockets: 200,
      // One stalled reader among 50, rows of ~1 KB: the bench DO's tight- rooms
      // bound unread bytes at 64 KiB, so it is closed after ~60 rows.
      fairness: { subs: 50, rows: 300, gapMs: 40, procs: 2, pad: 1000, reps: 3 },
      // A page reloaded with a local copy of 50,000 rows, 100 changed while it was away.
      reload: { rows: 50000, changed: 100, reps: 3 },
      // Under the presence rate (20/s a socket): one set every 150 ms, as the 200-subscriber fan-out.
      presence: { subs: 200, updates: 60, gapMs: 150, bytes: 300, reps: 3 },
      typedRows: 20000, typedReps: 9 }

// `--wake-hibernated=N` overrides the number of hibernated DOs (0 in --smoke).
const WAKE_HIBERNATED = args.find((a) => a.startsWith('--wake-hibernated='))
if (WAKE_HIBERNATED) C.wakeHibernated = Number(WAKE_HIBERNATED.slice('--wake-hibernated='.length))

const TIMEOUT = { ready: 30_000, write: 60_000, fanout: 60_000, converge: 60_000, wake: 10_000 }
// Local workerd evicts a DO whose only connections are hibernatable sockets
// once it has been idle ~10 s. The wake sample needs the DO asleep when the
// frame is sent, so nothing may touch it meanwhile: the bench waits this
// long, sends, and then checks that the frame met a new instance (bornAt).
// A DO found awake is waited for again, up to HIBERNATE_ATTEMPTS times,
// then reported as a failure.
const HIBERNATE_IDLE_MS = 14_000
const HIBERNATE_ATTEMPTS = 3

// ---- results ------------------------------------------------------------------

/** metric -> system -> value */
const results: Record<string, Partial<Record<System, number>>> = {}
const extra: Record<string, unknown> = {}
const failures: string[] = []
function record(metric: string, system: System, value: number): void {
  ;(results[metric] ??= {})[system] = value
}
function log(text: string): void {
  process.stdout.write(`[bench] ${text}\n`)
}

// ---- workerd processes: CPU and memory from /proc ---------------------------------

let wranglerPgid = 0
let serverOutput: () => string = () => ''

const workerdPids = (): number[] => processesInGroup(wranglerPgid, 'workerd')

/**
 * `wrangler dev` runs two workerd processes: one serves the entry socket (the
 * dev proxy) and one runs the Worker and its DOs (the one with an inspector).
 * DO CPU is the latter's; the proxy's is reported apart.
 */
function userWorkerdPid(): number | undefined {
  return workerdPids().find((pid) => commandLine(pid).includes('--inspector-addr'))
}

/** CPU of the workerd that runs the DOs, ms (all workerd if it cannot be told apart). */
function workerdCpuMs(): number {
  const user = userWorkerdPid()
  if (user !== undefined) return cpuMs(user)
  return workerdPids().reduce((t, pid) => t + cpuMs(pid), 0)
}

/** CPU of every workerd of the wrangler process group (DOs + dev proxy), ms. */
function allWorkerdCpuMs(): number {
  return workerdPids().reduce((t, pid) => t + cpuMs(pid), 0)
}

/** VmRSS of the workerd running the DOs, bytes. */
function workerdRss(): number {
  const user = userWorkerdPid()
  return Math.max(0, ...(user !== undefined ? [user] : workerdPids()).map(rssBytes))
}

// ---- helpers ---------------------------------------------------------------------

let BASE = ''

/** The bench dials the workerd that runs the DOs, not the dev proxy in front of it. */
async function workerdBase(server: { url: string; pid: number; stop: () => Promise<void> }): Promise<string> {
  const direct = (await directWorkerdUrl(server, '/health')) as string | undefined
  if (direct) return direct
  await server.stop()
  throw new Error('could not find the port of the workerd that runs the DOs')
}
let roomCounter = 0
const runId = Date.now().toString(36)
const freshRoom = (tag: string) => `${tag}-${runId}-${roomCounter++}`
const pathOf = (system: System) => (system === 'seqsync' ? 'sync' : 'floor')

async function admin(system: System, room: string, action: 'seed' | 'state', query = ''): Promise<Record<string, number | string>> {
  const res = await fetch(`${BASE}/admin/${pathOf(system)}/${room}/${action}${query}`, { signal: AbortSignal.timeout(120_000) })
  if (!res.ok) throw new Error(`${action}: ${res.status} ${await res.text()}`)
  return (await res.json()) as Record<string, number | string>
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)
    }),
  ])
}

function clientRow(prefix: string, i: number, content?: string): Row {
  return { id: `${prefix}-${String(i).padStart(6, '0')}`, author: 'bench', content: content ?? `a client message of ordinary length, number ${i}`, created_at: 1_700_000_000_000 + i }
}

async function readyClient(system: System, room: string, meter?: Meter): Promise<BenchClient> {
  const client = createClient({ system, base: BASE, room, meter })
  await withTimeout(client.ready(), TIMEOUT.ready, `${system} ready`)
  return client
}

/** A scenario's figures over its reps, by key and system; each is recorded as its median. */
class Samples {
  #values = new Map<string, Map<System, number[]>>()
  add = (key: string, system: System, value: number): void => {
    const bySystem = this.#values.get(key) ?? new Map<System, number[]>()
    this.#values.set(key, bySystem.set(system, [...(bySystem.get(system) ?? []), value]))
  }
  /** Records every median; returns the last key's samples by system, for the log. */
  recordMedians(): Map<System, number[]> {
    let last = new Map<System, number[]>()
    for (const [key, bySystem] of this.#values) {
      for (const [system, values] of bySystem) record(key, system, median(values))
      last = bySystem
    }
    return last
  }
}

/** Runs `fn` for each system, rotating the order by `round` to spread drift. */
async function eachSystem(round: number, fn: (system: System) => Promise<void>, systems: System[] = SYSTEMS): Promise<void> {
  const order = systems.map((_, i) => systems[(i + round) % systems.length]!)
  for (const system of order) {
    try {
      await fn(system)
    } catch (error) {
      failures.push(`${system}: ${String(error instanceof Error ? error.message : error)}`)
      log(`FAILED ${system}: ${String(error instanceof Error ? error.stack : error)}`)
      log(`wrangler output (tail):\n${serverOutput().slice(-3000)}`)
    }
  }
}

// ---- 1. confirmed writes -----------------------------------------------------------

/**
 * The writes are split into rounds; each round is a fresh DO per system and
 * the systems take turns, so drift on a shared machine hits all alike. The
 * per-insert times are the median of the round means; p99 is over every
 * sample. CPU figures are the mean over all rounds: /proc counts CPU in
 * 10 ms ticks, a few dozen per round, too coarse for a median of rounds.
 */
async function scenarioWrites(): Promise<void> {
  log(`1. confirmed writes: ${C.writes} sequential, ${C.burst} at once (${C.rounds} rounds)`)
  const perRound = Math.ceil(C.writes / C.rounds)
  const burstPerRound = Math.ceil(C.burst / C.rounds)
  const acc: Partial<Record<System, { ms: number[]; lat: number[]; cpu: number[]; ccpu: number[]; bms: number[]; blat: number[]; bcpu: number[]; allcpu: number[]; bytes: ReturnType<Meter['snapshot']>[]; n: number }>> = {}
  for (let round = 0; round < C.rounds; round++) {
    await eachSystem(round, async (system) => {
      const a = (acc[system] ??= { ms: [], lat: [], cpu: [], ccpu: [], bms: [], blat: [], bcpu: [], allcpu: [], bytes: [], n: 0 })
      const meter = new Meter()
      const client = await readyClient(system, freshRoom('seq'), meter)
      try {
        for (let i = 0; i < C.warmup; i++) await withTimeout(client.insert(clientRow('w', i)), TIMEOUT.write, 'warm-up insert')
        const m0 = meter.snapshot()
        const cpu0 = workerdCpuMs()
        const all0 = allWorkerdCpuMs()
        const cl0 = process.cpuUsage()
        const t0 = now()
        const deadline = t0 + TIMEOUT.write
        for (let i = 0; i < perRound; i++) {
          const t = now()
          await withTimeout(client.insert(clientRow('s', i)), TIMEOUT.write, `sequential insert ${i}`).catch((error: unknown) => {
            throw new Error(`${String(error)} (${client.describe()})`)
          })
          a.lat.push(now() - t)
          if (now() > deadline) throw new Error(`sequential inserts exceeded ${TIMEOUT.write} ms`)
        }
        const elapsed = now() - t0
        const cpu = workerdCpuMs() - cpu0
        a.allcpu.push(((allWorkerdCpuMs() - all0) * 1000) / perRound)
        const cl = process.cpuUsage(cl0)
        const m1 = meter.snapshot()
        a.ms.push(elapsed / perRound)
        a.cpu.push((cpu * 1000) / perRound)
        a.ccpu.push((cl.user + cl.system) / perRound)
        a.bytes.push({ framesIn: m1.framesIn - m0.framesIn, payloadIn: m1.payloadIn - m0.payloadIn, framesOut: m1.framesOut - m0.framesOut, payloadOut: m1.payloadOut - m0.payloadOut, read: m1.read - m0.read, written: m1.written - m0.written })
        a.n += perRound
        if (client.size() !== C.warmup + perRound) throw new Error(`sequential: ${client.size()} rows, expected ${C.warmup + perRound}`)
      } finally {
        client.close()
      }

      const burstClient = await readyClient(system, freshRoom('burst'))
      try {
        for (let i = 0; i < C.warmup; i++) await withTimeout(burstClient.insert(clientRow('w', i)), TIMEOUT.write, 'warm-up insert')
        const cpu0 = workerdCpuMs()
        const t0 = now()
        const all: Promise<void>[] = []
        for (let i = 0; i < burstPerRound; i++) {
          const t = now()
          all.push(burstClient.insert(clientRow('b', i)).then(() => { a.blat.push(now() - t) }))
        }
        await withTimeout(Promise.all(all), TIMEOUT.write, 'burst inserts')
        const elapsed = now() - t0
        a.bms.push(elapsed / burstPerRound)
        a.bcpu.push(((workerdCpuMs() - cpu0) * 1000) / burstPerRound)
        if (burstClient.size() !== C.warmup + burstPerRound) throw new Error(`burst: ${burstClient.size()} rows, expected ${C.warmup + burstPerRound}`)
      } finally {
        burstClient.close()
      }
    })
  }
  for (const system of SYSTEMS) {
    const a = acc[system]
    if (!a || a.ms.length === 0) continue
    const sum = (k: keyof ReturnType<Meter['snapshot']>) => a.bytes.reduce((t, b) => t + b[k], 0) / a.n
    record('seq.msPerInsert', system, median(a.ms))
    record('seq.p50', system, percentile(a.lat, 50))
    record('seq.p99', system, percentile(a.lat, 99))
    record('seq.doCpuUsPerInsert', system, mean(a.cpu))
    record('seq.clientCpuUsPerInsert', system, mean(a.ccpu))
    record('seq.allWorkerdCpuUsPerInsert', system, mean(a.allcpu))
    record('seq.bytesOutPerInsert', system, sum('payloadOut'))
    record('seq.bytesInPerInsert', system, sum('payloadIn'))
    record('seq.framesInPerInsert', system, sum('framesIn'))
    record('seq.wireBytesPerInsert', system, sum('read') + sum('written'))
    if (a.bms.length > 0) {
      record('burst.msPerInsert', system, median(a.bms))
      record('burst.p99', system, percentile(a.blat, 99))
      record('burst.doCpuUsPerInsert', system, mean(a.bcpu))
    }
    log(`  ${system.padEnd(15)} sequential ${median(a.ms).toFixed(3)} ms/insert (rounds ${a.ms.map((x) => x.toFixed(2)).join(' ')}), p99 ${percentile(a.lat, 99).toFixed(2)} ms, DO CPU ${mean(a.cpu).toFixed(0)} µs/insert (all workerd ${mean(a.allcpu).toFixed(0)}), client CPU ${mean(a.ccpu).toFixed(0)} µs/insert`)
    if (a.bms.length > 0) log(`  ${system.padEnd(15)} burst      ${median(a.bms).toFixed(3)} ms/insert, p99 ${percentile(a.blat, 99).toFixed(0)} ms, DO CPU ${mean(a.bcpu).toFixed(0)} µs/insert`)
  }
}

// ---- 2. fan-out -------------------------------------------------------------------------

const BUILD_DIR = dirname(fileURLToPath(import.meta.url))

function nextMessage(child: ChildProcess, type: string, ms: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { cleanup(); reject(new Error(`subscriber ${child.pid}: no '${type}' within ${ms} ms`)) }, ms)
    const onMessage = (m: Record<string, unknown>) => {
      if (m.type === type) { cleanup(); resolve(m) } else if (m.type === 'error') { cleanup(); reject(new Error(`subscriber ${child.pid}: ${String(m.message)}`)) }
    }
    const onExit = (code: number | null) => { cleanup(); reject(new Error(`subscriber ${child.pid} exited (${code})`)) }
    const cleanup = () => { clearTimeout(timer); child.off('message', onMessage); child.off('exit', onExit) }
    child.on('message', onMessage)
    child.on('exit', onExit)
  })
}

async function stopChildren(children: ChildProcess[]): Promise<void> {
  await Promise.all(children.map(async (child) => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    try { child.send({ cmd: 'stop' }) } catch { /* gone */ }
    const timer = setTimeout(() => { try { process.kill(child.pid!, 'SIGKILL') } catch { /* gone */ } }, 3000)
    await exited
    clearTimeout(timer)
  }))
}

async function scenarioFanout(): Promise<void> {
  for (const cfg of C.fanout) {
    log(`2. fan-out: 1 writer, ${cfg.subs} subscribers over ${cfg.procs} processes, ${cfg.rows} rows every ${cfg.gapMs} ms (${C.fanoutReps} reps, systems in turn)`)
    const samples = new Samples()
    const sample = samples.add
    for (let rep = 0; rep < C.fanoutReps; rep++) await eachSystem(rep, async (system) => {
      const room = freshRoom('fan')
      const prefix = `f${roomCounter}x`
      const writer = await readyClient(system, room)
      const children: ChildProcess[] = []
      try {
        for (let p = 0; p < cfg.procs; p++) {
          const count = Math.floor(cfg.subs / cfg.procs) + (p < cfg.subs % cfg.procs ? 1 : 0)
          const child = fork(join(BUILD_DIR, 'subscriber.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
          children.push(child)
          child.send({ cmd: 'start', system, base: BASE, room, count, prefix, rows: cfg.rows })
        }
        await Promise.all(children.map((c) => nextMessage(c, 'ready', TIMEOUT.ready)))
        const done = children.map((c) => nextMessage(c, 'done', TIMEOUT.fanout + cfg.rows * cfg.gapMs))
        done.forEach((d) => d.catch(() => {}))
        await sleep(300)
        const cpu0 = workerdCpuMs()
        const sends: Promise<void>[] = []
        for (let r = 0; r < cfg.rows; r++) {
          const t = now()
          sends.push(writer.insert(clientRow(prefix, r, `t@${t.toFixed(4)}`)))
          await sleep(cfg.gapMs)
        }
        await withTimeout(Promise.all(sends), TIMEOUT.write, 'fan-out writes')
        let reports: Record<string, unknown>[]
        try {
          reports = await Promise.all(done)
        } catch (error) {
          for (const c of children) try { c.send({ cmd: 'collect' }) } catch { /* gone */ }
          throw error
        }
        const cpu = workerdCpuMs() - cpu0
        const lat = reports.flatMap((r) => r.latencies as number[])
        const deliveries = cfg.rows * cfg.subs
        const clientCpuMs = reports.reduce((t, r) => t + Number(r.cpuMs), 0)
        sample(`fanout${cfg.subs}.clientCpuUsPerDelivery`, system, (clientCpuMs * 1000) / (cfg.rows * cfg.subs))
        const bytes = reports.reduce<{ payloadIn: number; wireRead: number; framesIn: number }>((t, r) => {
          const b = r.bytes as { payloadIn: number; wireRead: number; framesIn: number }
          return { payloadIn: t.payloadIn + b.payloadIn, wireRead: t.wireRead + b.wireRead, framesIn: t.framesIn + b.framesIn }
        }, { payloadIn: 0, wireRead: 0, framesIn: 0 })
        if (lat.length !== deliveries) throw new Error(`fan-out: ${lat.length} of ${deliveries} deliveries arrived`)
        const key = `fanout${cfg.subs}`
        sample(`${key}.p50`, system, percentile(lat, 50))
        sample(`${key}.p99`, system, percentile(lat, 99))
        sample(`${key}.doCpuUsPerDelivery`, system, (cpu * 1000) / deliveries)
        sample(`${key}.bytesPerDelivery`, system, bytes.payloadIn / deliveries)
        sample(`${key}.wireBytesPerDelivery`, system, bytes.wireRead / deliveries)
        log(`  ${system.padEnd(15)} p50 ${percentile(lat, 50).toFixed(2)} ms, p99 ${percentile(lat, 99).toFixed(2)} ms, DO CPU ${((cpu * 1000) / deliveries).toFixed(1)} µs/delivery, ${(bytes.payloadIn / deliveries).toFixed(0)} B/delivery (${(bytes.wireRead / deliveries).toFixed(0)} on the wire), subscriber CPU ${((clientCpuMs * 1000) / deliveries).toFixed(0)} µs/delivery`)
      } finally {
        writer.close()
        await stopChildren(children)
      }
    })
    samples.recordMedians()
  }
}

// ---- 2b. fairness: one stalled reader among 50 ----------------------------------------

/**
 * 50 subscribers under a steady write stream, with and without one more
 * client that stops reading its socket (TCP backpressure). Runs alternate
 * (without, with, with, without, …) in fresh tight- rooms (64 KiB unread
 * bound). Reported: the 50's p50/p99 in each mode (median over reps), the
 * ratio, the DO process's RSS growth, and that the stalled client was closed
 * SLOW_READER (4008) and, once it reads again, resumed by cursor to every row.
 */
async function scenarioFairness(): Promise<void> {
  const cfg = C.fairness
  log(`2b. fairness: ${cfg.subs} subscribers, ${cfg.rows} rows of ~${cfg.pad} B every ${cfg.gapMs} ms, with and without one stalled reader (${cfg.reps} reps each)`)
  const mode0 = () => ({ p50: [] as number[], p99: [] as number[], rss: [] as number[], cpu: [] as number[] })
  const modes = { without: mode0(), with: mode0() }
  const recoveries: number[] = []
  for (let rep = 0; rep < cfg.reps * 2; rep++) {
    const stalled = rep % 4 === 1 || rep % 4 === 2
    const room = freshRoom('tight-fair')
    const prefix = `fair${roomCounter}x`
    const writer = await readyClient('seqsync', room)
    let slow: SeqsyncClient | undefined
    const children: ChildProcess[] = []
    try {
      if (stalled) {
        slow = createClient({ system: 'seqsync', base: BASE, room }) as SeqsyncClient
        await withTimeout(slow.ready(), TIMEOUT.ready, 'stalled client ready')
        slow.pause()
      }
      for (let p = 0; p < cfg.procs; p++) {
        const count = Math.floor(cfg.subs / cfg.procs) + (p < cfg.subs % cfg.procs ? 1 : 0)
        const child = fork(join(BUILD_DIR, 'subscriber.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
        children.push(child)
        child.send({ cmd: 'start', system: 'seqsync', base: BASE, room, count, prefix, rows: cfg.rows })
      }
      await Promise.all(children.map((c) => nextMessage(c, 'ready', TIMEOUT.ready)))
      const done = children.map((c) => nextMessage(c, 'done', TIMEOUT.fanout + cfg.rows * cfg.gapMs))
      done.forEach((d) => d.catch(() => {}))
      await sleep(300)
      const rss0 = workerdRss()
      let rssMax = rss0
      const cpu0 = workerdCpuMs()
      const sends: Promise<void>[] = []
      const pad = 'x'.repeat(cfg.pad)
      for (let r = 0; r < cfg.rows; r++) {
        sends.push(writer.insert(clientRow(prefix, r, `${pad}t@${now().toFixed(4)}`)))
        if (r % 20 === 0) rssMax = Math.max(rssMax, workerdRss())
        await sleep(cfg.gapMs)
      }
      await withTimeout(Promise.all(sends), TIMEOUT.write, 'fairness writes')
      const reports = await Promise.all(done)
      const cpuUs = ((workerdCpuMs() - cpu0) * 1000) / (cfg.rows * cfg.subs)
      rssMax = Math.max(rssMax, workerdRss())
      const lat = reports.flatMap((r) => r.latencies as number[])
      if (lat.length !== cfg.rows * cfg.subs) throw new Error(`fairness: ${lat.length} of ${cfg.rows * cfg.subs} deliveries arrived`)
      const mode = modes[stalled ? 'with' : 'without']
      mode.p50.push(percentile(lat, 50))
      mode.p99.push(percentile(lat, 99))
      mode.rss.push(rssMax - rss0)
      mode.cpu.push(cpuUs)
      let note = ''
      if (slow) {
        // Reading again: it drains what was queued, meets the 4008, reconnects and resumes.
        const t0 = now()
        slow.resume()
        const all = () => Array.from({ length: cfg.rows }, (_, i) => clientRow(prefix, i).id).every((id) => slow!.has(id))
        await until(() => all() && slow!.closeCodes.includes(4008), TIMEOUT.converge, `the stalled client was closed 4008 and resumed (${slow.describe()}, closes ${slow.closeCodes.join(',')})`)
        recoveries.push(now() - t0)
        note = `; stalled reader closed ${slow.closeCodes.join(',')}, resumed to all ${cfg.rows} rows in ${(now() - t0).toFixed(0)} ms after reading again`
      }
      log(`  ${stalled ? 'with' : 'without'} stalled: p50 ${percentile(lat, 50).toFixed(2)} ms, p99 ${percentile(lat, 99).toFixed(2)} ms, DO CPU ${cpuUs.toFixed(1)} µs/delivery, DO RSS +${((rssMax - rss0) / 2 ** 20).toFixed(1)} MiB${note}`)
    } finally {
      writer.close()
      slow?.close()
      await stopChildren(children)
    }
  }
  for (const key of ['p50', 'p99'] as const) {
    const without = median(modes.without[key])
    const withSlow = median(modes.with[key])
    record(`fair.${key}.without`, 'seqsync', without)
    record(`fair.${key}.with`, 'seqsync', withSlow)
    record(`fair.${key}.ratio`, 'seqsync', withSlow / without)
  }
  record('fair.rssGrowthMiB.without', 'seqsync', median(modes.without.rss) / 2 ** 20)
  record('fair.rssGrowthMiB.with', 'seqsync', median(modes.with.rss) / 2 ** 20)
  record('fair.recoveryMs', 'seqsync', median(recoveries))
  record('fair.doCpuUsPerDelivery.without', 'seqsync', median(modes.without.cpu))
  record('fair.doCpuUsPerDelivery.with', 'seqsync', median(modes.with.cpu))
  const r50 = results['fair.p50.ratio']!.seqsync!
  const r99 = results['fair.p99.ratio']!.seqsync!
  log(`  the ${cfg.subs} with a stalled reader ÷ without: p50 ×${r50.toFixed(3)}, p99 ×${r99.toFixed(3)} (target ≤ 1.10); DO CPU ${median(modes.with.cpu).toFixed(1)} vs ${median(modes.without.cpu).toFixed(1)} µs/delivery; DO RSS growth ${(median(modes.with.rss) / 2 ** 20).toFixed(1)} vs ${(median(modes.without.rss) / 2 ** 20).toFixed(1)} MiB`)
}

// ---- 2c. presence fan-out ---------------------------------------------------------------

/**
 * Presence sets fanned out to `subs` raw sockets that watch presence (and
 * subscribe to messages), beside inserts whose `changes` frame has the same
 * size, to the same sockets: DO CPU per delivery and bytes per delivery of
 * each. The sizes are matched by measuring one frame of each kind first and
 * padding both to `bytes`. Runs alternate (presence, changes, changes,
 * presence, …) in one fresh room per rep.
 */
async function scenarioPresence(): Promise<void> {
  const cfg = C.presence
  log(`2c. presence: ${cfg.subs} watching sockets, ${cfg.updates} presence sets vs ${cfg.updates} inserts of the same frame size (${cfg.bytes} B), one every ${cfg.gapMs} ms (${cfg.reps} reps)`)
  const runs = { presence: { cpu: [] as number[], bytes: [] as number[] }, changes: { cpu: [] as number[], bytes: [] as number[] } }
  for (let rep = 0; rep < cfg.reps; rep++) {
    const room = freshRoom('presence')
    const subs: RawSocket[] = []
    const writer = await RawSocket.open(rawUrl('seqsync', room))
    try {
      writer.send(helloFor('seqsync', false))
      await writer.has('welcome')
      for (let i = 0; i < cfg.subs; i++) {
        const s = await RawSocket.open(rawUrl('seqsync', room))
        s.send(helloFor('seqsync', true))
        s.send({ t: 'presence', watch: true })
        subs.push(s)
      }
      await Promise.all(subs.map((s) => s.has('presence', TIMEOUT.ready)))
      const countOf = (s: RawSocket, t: string) => s.frames.filter((f) => f.t === t && f.data.all !== true).length
      // One frame of each kind with no padding gives each one's overhead.
      const probe = subs[0]!
      const sizeOf = async (t: 'presence' | 'changes', send: () => void) => {
        const before = countOf(probe, t)
        send()
        await until(() => subs.every((s) => countOf(s, t) > before), TIMEOUT.fanout, `the ${t} probe reached every socket`)
        const f = probe.frames.filter((x) => x.t === t).at(-1)!
        return Buffer.byteLength(JSON.stringify(f.data))
      }
      const presenceSet = (i: number, pad: string) => ({ t: 'presence', tab: 'w', state: { i, pad } })
      const insert = (i: number, pad: string) => {
        const row = clientRow(`pr${roomCounter}x${rep}-${i}-`, 0, pad)
        return { t: 'mut', id: `pm${rep}-${i}`, ops: [{ c: 'messages', op: 'insert', k: row.id, cols: row }] }
      }
      const presenceBase = await sizeOf('presence', () => writer.send(presenceSet(100000, '')))
      const changesBase = await sizeOf('changes', () => writer.send(insert(100000, '')))
      const pads = {
        presence: 'x'.repeat(Math.max(0, cfg.bytes - presenceBase)),
        changes: 'x'.repeat(Math.max(0, cfg.bytes - changesBase)),
      }
      const order: Array<'presence' | 'changes'> = rep % 2 === 0 ? ['presence', 'changes'] : ['changes', 'presence']
      for (const kind of order) {
        const before = subs.map((s) => countOf(s, kind))
        const bytesBefore = subs.map((s) => s.frames.length)
        await sleep(300)
        const cpu0 = workerdCpuMs()
        for (let i = 0; i < cfg.updates; i++) {
          writer.send(kind === 'presence' ? presenceSet(i, pads.presence) : insert(i, pads.changes))
          await sleep(cfg.gapMs)
        }
        await until(() => subs.every((s, j) => countOf(s, kind) - before[j]! >= cfg.updates), TIMEOUT.fanout, `every ${kind} delivery arrived`)
        const cpu = workerdCpuMs() - cpu0
        const deliveries = cfg.updates * cfg.subs
        const bytes = subs.reduce((t, s, j) => t + s.frames.slice(bytesBefore[j]).filter((f) => f.t === kind)
          .reduce((u, f) => u + Buffer.byteLength(JSON.stringify(f.data)), 0), 0)
        runs[kind].cpu.push((cpu * 1000) / deliveries)
        runs[kind].bytes.push(bytes / deliveries)
        log(`  ${kind.padEnd(8)} DO CPU ${((cpu * 1000) / deliveries).toFixed(1)} µs/delivery, ${(bytes / deliveries).toFixed(0)} B/delivery (${deliveries} deliveries)`)
      }
    } finally {
      writer.close()
      for (const s of subs) s.close()
    }
  }
  const key = `presence${cfg.subs}`
  record(`${key}.doCpuUsPerDelivery`, 'seqsync', median(runs.presence.cpu))
  record(`${key}.bytesPerDelivery`, 'seqsync', median(runs.presence.bytes))
  record(`${key}.changeDoCpuUsPerDelivery`, 'seqsync', median(runs.changes.cpu))
  record(`${key}.changeBytesPerDelivery`, 'seqsync', median(runs.changes.bytes))
  log(`  presence ÷ change delivery of the same size: DO CPU ${(median(runs.presence.cpu) / median(runs.changes.cpu)).toFixed(2)}×`)
}

// ---- 3. reconnect catch-up --------------------------------------------------------------

async function scenarioCatchup(): Promise<void> {
  log(`3. reconnect catch-up: a client misses ${C.catchup} rows, then reconnects (${C.catchupReps} reps after ${C.catchupWarmup} not recorded, systems in turn)`)
  const state = new Map<System, { room: string; meter: Meter; client: BenchClient; fromDial: number[]; fromRestore: number[]; cpu: number[]; bytes: number[] }>()
  try {
    for (let rep = 0; rep < C.catchupWarmup + C.catchupReps; rep++) {
      const recorded = rep >= C.catchupWarmup
      await eachSystem(rep, async (system) => {
        let s = state.get(system)
        if (!s) {
          const room = freshRoom('cu')
          const meter = new Meter()
          s = { room, meter, client: await readyClient(system, room, meter), fromDial: [], fromRestore: [], cpu: [], bytes: [] }
          state.set(system, s)
        }
        const { client, meter, room } = s
        client.cut()
        await sleep(100)
        const expected = client.size() + C.catchup
        await admin(system, room, 'seed', `?n=${C.catchup}&prefix=cu${rep}`)
        await sleep(100)
        const m0 = meter.snapshot()
        const cpu0 = workerdCpuMs()
        const tRestore = now()
        const dialled = await withTimeout(client.restore(), TIMEOUT.converge, 'redial')
        await until(() => client.size() >= expected, TIMEOUT.converge, `${system} catch-up converges`)
        const t1 = now()
        if (client.size() !== expected) throw new Error(`catch-up: ${client.size()} rows, expected ${expected}`)
        if (!recorded) return
        s.fromDial.push(t1 - dialled)
        s.fromRestore.push(t1 - tRestore)
        s.cpu.push(((workerdCpuMs() - cpu0) * 1000) / C.catchup)
        s.bytes.push((meter.snapshot().payloadIn - m0.payloadIn) / C.catchup)
      })
    }
  } finally {
    for (const s of state.values()) s.client.close()
  }
  for (const system of SYSTEMS) {
    const s = state.get(system)
    if (!s || s.fromDial.length === 0) continue
    record('catchup.ms', system, median(s.fromDial))
    record('catchup.msFromRestore', system, median(s.fromRestore))
    record('catchup.doCpuUsPerRow', system, median(s.cpu))
    record('catchup.bytesPerRow', system, median(s.bytes))
    log(`  ${system.padEnd(15)} ${median(s.fromDial).toFixed(1)} ms from dial (${s.fromDial.map((x) => x.toFixed(0)).join(' ')}), ${median(s.fromRestore).toFixed(1)} ms from restore (incl. reconnect backoff), DO CPU ${median(s.cpu).toFixed(1)} µs/row, ${median(s.bytes).toFixed(0)} B/row`)
  }
}

// ---- 4. initial sync -----------------------------------------------------------------------

async function scenarioInitial(): Promise<void> {
  for (const n of C.initial) {
    log(`4. initial sync of ${n} rows into a fresh client (${C.initialReps} reps, systems in turn)`)
    const state = new Map<System, { room: string; times: number[]; cpu: number[]; bytes: number[] }>()
    for (let rep = 0; rep < C.initialReps; rep++) {
      await eachSystem(rep, async (system) => {
        let s = state.get(system)
        if (!s) {
          const room = freshRoom('init')
          await admin(system, room, 'seed', `?n=${n}&prefix=i`)
          s = { room, times: [], cpu: [], bytes: [] }
          state.set(system, s)
        }
        const meter = new Meter()
        const cpu0 = workerdCpuMs()
        const t0 = now()
        const client = createClient({ system, base: BASE, room: s.room, meter })
        try {
          await withTimeout(client.ready(), TIMEOUT.converge, `${system} initial sync of ${n}`)
          const t1 = now()
          if (client.size() !== n) throw new Error(`initial sync: ${client.size()} rows, expected ${n}`)
          s.times.push(t1 - t0)
          s.cpu.push(((workerdCpuMs() - cpu0) * 1000) / n)
          s.bytes.push(meter.snapshot().payloadIn / n)
        } finally {
          client.close()
        }
        await sleep(100)
      })
    }
    for (const system of SYSTEMS) {
      const s = state.get(system)
      if (!s || s.times.length === 0) continue
      record(`initial${n}.ms`, system, median(s.times))
      record(`initial${n}.doCpuUsPerRow`, system, median(s.cpu))
      record(`initial${n}.bytesPerRow`, system, median(s.bytes))
      log(`  ${system.padEnd(15)} ${median(s.times).toFixed(1)} ms (${s.times.map((x) => x.toFixed(0)).join(' ')}), DO CPU ${median(s.cpu).toFixed(1)} µs/row, ${median(s.bytes).toFixed(0)} B/row`)
    }
  }
  await scenarioSeed()
}

/**
 * The server-side write: C.seed.rows rows in one transaction (seqsync's
 * runSyncedWrite, the floor's transactionSync), timed from the admin request
 * to its answer. The DO is woken first, so its start-up is not counted; the
 * median of C.seed.reps fresh rooms, systems in turn.
 */
async function scenarioSeed(): Promise<void> {
  log(`4a. server-side write of ${C.seed.rows} rows in one transaction (${C.seed.reps} reps, systems in turn)`)
  const samples = new Samples()
  for (let rep = 0; rep < C.seed.reps; rep++) {
    await eachSystem(rep, async (system) => {
      const room = freshRoom('seed')
      await admin(system, room, 'state')
      const t0 = now()
      await admin(system, room, 'seed', `?n=${C.seed.rows}&prefix=s`)
      samples.add('seed.usPerRow', system, ((now() - t0) * 1000) / C.seed.rows)
    })
  }
  for (const [system, us] of samples.recordMedians()) {
    log(`  ${system.padEnd(15)} ${median(us).toFixed(1)} µs/row (${us.map((x) => x.toFixed(1)).join(' ')})`)
  }
}

// ---- 4b. reload from a local copy ----------------------------------------------------------

/**
 * A page (bench/reload-page.ts) in headless Chromium syncs `rows` cold into
 * a local-first collection; it closes, `changed` rows are written while it is
 * away, and the page is opened again in the same profile: it renders from
 * IndexedDB and resumes by cursor. Both visits in one run, one DO.
 */
async function scenarioReload(): Promise<void> {
  const { rows, changed, reps } = C.reload
  log(`4b. reload: ${rows} rows cached in IndexedDB, ${changed} changed while away, beside the cold sync (headless Chromium, ${reps} reps)`)
  const page = readFileSync(join(ROOT, 'test-output/bench-build/reload-page.js'))
  const http = createServer((req, res) => {
    if (req.url?.startsWith('/reload-page.js')) {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(page)
      return
    }
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><script type="module" src="/reload-page.js"></script>')
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  const pagePort = (http.address() as { port: number }).port
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] })
  const samples: Record<'coldMs' | 'coldBytes' | 'firstRenderMs' | 'caughtUpMs' | 'bytes' | 'tanstackWriteMs', number[]> = { coldMs: [], coldBytes: [], firstRenderMs: [], caughtUpMs: [], bytes: [], tanstackWriteMs: [] }
  try {
    for (let rep = 0; rep < reps; rep++) {
      // Each rep: a fresh DO and a fresh browser profile.
      const room = freshRoom('reload')
      const seeded = await admin('seqsync', room, 'seed', `?n=${rows}&prefix=r`)
      const context = await browser.newContext()
      type Result = { scriptMs: number; firstRenderMs: number; caughtUpMs: number; firstFrameMs: number; bytes: number; frames: number; rows: number; local: string; tanstackWriteMs: number }
      const visit = async (query: Record<string, string | number>): Promise<Result> => {
        const tab = await context.newPage()
        const q = new URLSearchParams({ room, ws: `${BASE.replace('http', 'ws')}/sync/${room}`, ...Object.fromEntries(Object.entries(query).map(([k, v]) => [k, String(v)])) })
        await tab.goto(`http://127.0.0.1:${pagePort}/?${q}`)
        const settled = query.cached ? 'tanstackWriteMs' : 'caughtUpMs'
        await tab.waitForFunction((key) => (window as unknown as { benchResult: Record<string, number> }).benchResult[key]! >= 0, settled, { timeout: TIMEOUT.converge, polling: 50 })
        const result = await tab.evaluate(async () => {
          const w = window as unknown as { benchResult: Result; bench: { transport: { flushLocal(): Promise<void> } } }
          await w.bench.transport.flushLocal()
          return w.benchResult
        })
        await tab.close()
        return result
      }
      const cold = await visit({ n: rows, head: Number(seeded.head) })
      if (cold.local !== 'persisted') throw new Error(`the page kept no local copy (${cold.local})`)
      const away = await admin('seqsync', room, 'seed', `?n=${changed}&prefix=away`)
      const warm = await visit({ n: rows + changed, cached: rows, head: Number(away.head) })
      if (warm.rows !== changed) failures.push(`reload: the resume carried ${warm.rows} rows, expected the ${changed} changed`)
      if (!(warm.firstRenderMs < warm.firstFrameMs)) failures.push(`reload: the cached rows rendered at ${warm.firstRenderMs.toFixed(0)} ms, after the first frame at ${warm.firstFrameMs.toFixed(0)} ms`)
      samples.coldMs.push(cold.caughtUpMs)
      samples.coldBytes.push(cold.bytes)
      samples.firstRenderMs.push(warm.firstRenderMs)
      samples.caughtUpMs.push(warm.caughtUpMs)
      samples.bytes.push(warm.bytes)
      samples.tanstackWriteMs.push(warm.tanstackWriteMs)
      ;((extra.reload ??= []) as unknown[]).push({ cold, warm })
      await context.close()
      log(`  cold: script started at ${cold.scriptMs.toFixed(0)} ms, caught up at ${cold.caughtUpMs.toFixed(0)} ms after navigation, ${cold.bytes} B, ${cold.rows} rows`)
      const marks = warm as unknown as Record<string, number>
      log(`  reload: script started at ${warm.scriptMs.toFixed(0)} ms, rows read from IndexedDB at ${marks['seqsync:local-rows-read']?.toFixed(0)} ms, in the collection at ${marks['seqsync:local-rows-applied']?.toFixed(0)} ms, rendered ${rows} from the local copy at ${warm.firstRenderMs.toFixed(0)} ms (first frame at ${warm.firstFrameMs.toFixed(0)} ms), caught up at ${warm.caughtUpMs.toFixed(0)} ms, ${warm.bytes} B, ${warm.rows} rows` +
        ` = ${(warm.caughtUpMs / cold.caughtUpMs).toFixed(2)}× the cold time, ${((100 * warm.bytes) / cold.bytes).toFixed(2)} % of its bytes;` +
        ` TanStack DB alone writes the ${rows + changed} rows in ${warm.tanstackWriteMs.toFixed(0)} ms (${(warm.tanstackWriteMs / cold.caughtUpMs).toFixed(2)}× the cold time)`)
    }
    // Medians of the reps.
    for (const [metric, values] of Object.entries(samples)) record(`reload.${metric}`, 'seqsync', median(values))
  } finally {
    await browser.close()
    http.close()
  }
}

// ---- 5. DO wake ---------------------------------------------------------------------------

type RawSystem = 'seqsync' | 'floor-bare'

function rawUrl(system: RawSystem, room: string): string {
  return `${BASE.replace('http', 'ws')}/${system === 'seqsync' ? 'sync' : 'floor'}/${room}`
}

/** A raw socket that records every frame's type. */
class RawSocket {
  frames: Array<{ t: string; at: number; data: Record<string, unknown> }> = []
  #waiters: Array<{ t: string | undefined; from: number; resolve: (at: number) => void }> = []
  openedAt = 0
  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const at = now()
      const f = JSON.parse(data.toString()) as Record<string, unknown>
      this.#record(f, at)
      // An ack that rode in a changes frame (inlineAcks) is recorded as the ack frame it replaces.
      if (f.t === 'changes' && typeof f.ack === 'string') this.#record({ t: 'ack', id: f.ack, seq: f.seq }, at)
    })
    ws.on('error', () => {})
  }
  #record(f: Record<string, unknown>, at: number): void {
    this.frames.push({ t: String(f.t), at, data: f })
    const i = this.frames.length - 1
    for (const w of [...this.#waiters]) {
      if (i >= w.from && (w.t === undefined || w.t === f.t)) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1)
        w.resolve(at)
      }
    }
  }
  static open(url: string, ms = TIMEOUT.wake): Promise<RawSocket> {
    const ws = new WebSocket(url)
    const s = new RawSocket(ws)
    return withTimeout(new Promise((resolve, reject) => {
      ws.once('open', () => { s.openedAt = now(); resolve(s) })
      ws.once('error', reject)
    }), ms, `open ${url}`)
  }
  /** Resolves with the arrival time of the next frame (of type t) after now. */
  next(t?: string, ms = TIMEOUT.wake): Promise<number> {
    const from = this.frames.length
    return withTimeout(new Promise((resolve) => this.#waiters.push({ t, from, resolve })), ms, `frame ${t ?? 'any'}`)
  }
  /** Resolves once a frame of type t has arrived (now or earlier). */
  has(t: string, ms = TIMEOUT.wake): Promise<number> {
    return this.since(0, t, ms)
  }
  /** Resolves once a frame of type t has arrived at index `from` or later. */
  since(from: number, t: string, ms = TIMEOUT.wake): Promise<number> {
    const f = this.frames.slice(from).find((x) => x.t === t)
    if (f) return Promise.resolve(f.at)
    return withTimeout(new Promise((resolve) => this.#waiters.push({ t, from, resolve })), ms, `frame ${t}`)
  }
  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame))
  }
  close(): void {
    this.ws.close()
  }
}

// A raw seqsync socket says hello as WebSocketTransport does (inline acks, compact changes).
const helloFor = (system: RawSystem, subscribe: boolean) =>
  system === 'seqsync'
    ? { t: 'hello', v: 1, inlineAcks: true, compactChanges: true, ...(subscribe ? { subs: [{ id: 's', c: 'messages' }] } : {}) }
    : { t: 'hello' }
const syncedType = (system: RawSystem, subscribe: boolean) => (system === 'seqsync' ? (subscribe ? 'synced' : 'welcome') : 'synced')

function insertFrame(system: RawSystem, id: string): unknown {
  const row = clientRow(id, 0)
  return system === 'seqsync'
    ? { t: 'mut', id, ops: [{ c: 'messages', op: 'insert', k: row.id, cols: row }] }
    : { t: 'ins', id, row }
}

/** Time from dialling a DO to its first reply to hello, and the open alone. */
async function firstReply(system: RawSystem, room: string): Promise<{ total: number; open: number }> {
  const t0 = now()
  const s = await RawSocket.open(rawUrl(system, room))
  const reply = s.next()
  s.send(helloFor(system, false))
  const t1 = await reply
  s.close()
  return { total: t1 - t0, open: s.openedAt - t0 }
}

async function scenarioWake(): Promise<void> {
  log(`5. DO wake: ${C.wakeNew} new DOs${C.wakeHibernated > 0 ? `, ${C.wakeHibernated} hibernated DOs` : ''} per system`)
  const rawSystems: RawSystem[] = ['seqsync', 'floor-bare']
  const samples: Record<RawSystem, { fresh: number[]; freshOpen: number[]; warm: number[]; hib: number[] }> = {
    seqsync: { fresh: [], freshOpen: [], warm: [], hib: [] },
    'floor-bare': { fresh: [], freshOpen: [], warm: [], hib: [] },
  }
  for (let i = 0; i < C.wakeNew; i++) {
    await eachSystem(i, async (system) => {
      const room = freshRoom('wake')
      const fresh = await firstReply(system as RawSystem, room)
      const warm = await firstReply(system as RawSystem, room)
      const s = samples[system as RawSystem]
      if (system === 'seqsync' && i === 0) {
        const startup = (await admin('seqsync', room, 'state')).startupSql as unknown as string[]
        record('wake.newStartupSql', 'seqsync', startup.length)
        extra.newStartupSql = startup
        log(`  seqsync: a new DO ran ${startup.length} SQL statements in registerSync`)
      }
      s.fresh.push(fresh.total)
      s.freshOpen.push(fresh.open)
      s.warm.push(warm.total)
    }, rawSystems)
  }
  if (C.wakeHibernated > 0) {
    const sockets: Array<{ system: RawSystem; room: string; socket: RawSocket }> = []
    try {
      for (const system of rawSystems) {
        for (let i = 0; i < C.wakeHibernated; i++) {
          const room = freshRoom('hib')
          const socket = await RawSocket.open(rawUrl(system, room))
          socket.send(helloFor(system, true))
          await socket.has(syncedType(system, true))
          sockets.push({ system, room, socket })
        }
      }
      let asleep = sockets
      for (let attempt = 1; attempt <= HIBERNATE_ATTEMPTS && asleep.length > 0; attempt++) {
        log(`  waiting ${HIBERNATE_IDLE_MS / 1000} s for ${asleep.length} idle DO(s) to hibernate (attempt ${attempt} of ${HIBERNATE_ATTEMPTS})`)
        await sleep(HIBERNATE_IDLE_MS)
        const awake: typeof sockets = []
        for (const entry of asleep) {
          const { system, room, socket } = entry
          const wall = Date.now()
          const from = socket.frames.length
          const reply = socket.next()
          const t0 = now()
          socket.send(insertFrame(system, `hib${roomCounter++}`))
          const t1 = await reply
          // The subscription that was live before hibernating must still get the insert.
          const changeType = system === 'seqsync' ? 'changes' : 'row'
          const delivered = await socket.since(from, changeType).then(() => true, () => false)
          if (!delivered) failures.push(`${system}: after the DO woke the subscribed socket got no ${changeType} (frames: ${socket.frames.slice(from).map((f) => f.t).join(',')})`)
          const state = await admin(system, room, 'state')
          if (Number(state.bornAt) < wall - 1) {
            // The frame met the instance that was already running: not a wake.
            log(`  ${system}: room ${room} was still awake after ${HIBERNATE_IDLE_MS / 1000} s idle (bornAt ${state.bornAt} < ${wall}); not a hibernated sample`)
            awake.push(entry)
            continue
          }
          samples[system].hib.push(t1 - t0)
          if (system === 'seqsync' && results['wake.hibernatedStartupSql'] === undefined) {
            const startup = state.startupSql as unknown as string[]
            record('wake.hibernatedStartupSql', 'seqsync', startup.length)
            extra.hibernatedStartupSql = startup
            log(`  seqsync: a woken DO ran ${startup.length} SQL statements in registerSync`)
          }
        }
        asleep = awake
      }
      for (const { system, room } of asleep) {
        const message = `${system}: room ${room} never hibernated in ${HIBERNATE_ATTEMPTS} idle periods of ${HIBERNATE_IDLE_MS / 1000} s: no hibernated-wake sample`
        failures.push(message)
        log(`FAILED ${message}`)
      }
    } finally {
      for (const { socket } of sockets) socket.close()
    }
  }
  for (const system of rawSystems) {
    const s = samples[system]
    // The first new DO of a class in the process also pays the isolate's start; report it apart.
    const steady = s.fresh.length > 1 ? s.fresh.slice(1) : s.fresh
    record('wake.newMs', system, median(steady))
    record('wake.newFirstMs', system, s.fresh[0] ?? NaN)
    record('wake.newOpenMs', system, median(s.freshOpen.length > 1 ? s.freshOpen.slice(1) : s.freshOpen))
    record('wake.warmMs', system, median(s.warm))
    record('wake.newStartMs', system, median(steady) - median(s.warm))
    if (s.hib.length > 0) record('wake.hibernatedMs', system, median(s.hib))
    else if (C.wakeHibernated > 0) failures.push(`${system}: no hibernated-wake sample (wake.hibernatedMs is missing)`)
    log(`  ${system.padEnd(15)} new DO ${median(steady).toFixed(2)} ms (${s.fresh.map((x) => x.toFixed(1)).join(' ')}; first in process ${s.fresh[0]?.toFixed(1)}), awake DO ${median(s.warm).toFixed(2)} ms${s.hib.length ? `, hibernated ${median(s.hib).toFixed(2)} ms (${s.hib.map((x) => x.toFixed(1)).join(' ')})` : ''}`)
  }
}

// ---- 8. sustained throughput ------------------------------------------------------------

const ackType = (system: RawSystem) => (system === 'seqsync' ? 'ack' : 'ok')

/**
 * One DO, C.tpWriters raw sockets, each subscribed (so every write also fans
 * out to all of them) and each sending its next insert as soon as the last
 * is confirmed. Confirmed writes per second of wall time, and DO CPU per write.
 */
async function scenarioThroughput(): Promise<void> {
  log(`8. sustained throughput: ${C.tpWriters} writers on raw sockets to one DO, ${C.tpWrites} confirmed writes each (${C.tpReps} reps, systems in turn)`)
  const rawSystems: RawSystem[] = ['seqsync', 'floor-bare']
  const rates: Record<RawSystem, number[]> = { seqsync: [], 'floor-bare': [] }
  const cpus: Record<RawSystem, number[]> = { seqsync: [], 'floor-bare': [] }
  for (let rep = 0; rep < C.tpReps; rep++) {
    await eachSystem(rep, async (system) => {
      const raw = system as RawSystem
      const room = freshRoom('tp')
      const writers = await Promise.all(Array.from({ length: C.tpWriters }, () => RawSocket.open(rawUrl(raw, room))))
      try {
        for (const w of writers) w.send(helloFor(raw, true))
        await Promise.all(writers.map((w) => w.has(syncedType(raw, true))))
        const confirmed = async (w: RawSocket, id: string) => {
          const from = w.frames.length
          w.send(insertFrame(raw, id))
          await w.since(from, ackType(raw), TIMEOUT.write)
          const ack = w.frames.slice(from).find((f) => f.t === ackType(raw))
          if (ack?.data.id !== id) throw new Error(`throughput: ${id} got ${JSON.stringify(ack?.data)}`)
        }
        const run = (tag: string, n: number) => Promise.all(writers.map(async (w, wi) => {
          for (let i = 0; i < n; i++) await confirmed(w, `${tag}${rep}-${wi}-${i}`)
        }))
        await run('tw', 5)
        const cpu0 = workerdCpuMs()
        const t0 = now()
        await withTimeout(run('tp', C.tpWrites), TIMEOUT.write, 'throughput writes')
        const elapsed = now() - t0
        const writes = C.tpWriters * C.tpWrites
        rates[raw].push((writes * 1000) / elapsed)
        cpus[raw].push(((workerdCpuMs() - cpu0) * 1000) / writes)
        const state = await admin(raw, room, 'state')
        if (Number(state.rows) !== C.tpWriters * (C.tpWrites + 5)) throw new Error(`throughput: ${state.rows} rows, expected ${C.tpWriters * (C.tpWrites + 5)}`)
      } finally {
        for (const w of writers) w.close()
      }
    }, rawSystems)
  }
  for (const system of rawSystems) {
    if (rates[system].length === 0) continue
    record('throughput.writesPerSec', system, median(rates[system]))
    record('throughput.doCpuUsPerWrite', system, median(cpus[system]))
    log(`  ${system.padEnd(15)} ${median(rates[system]).toFixed(0)} confirmed writes/s (${rates[system].map((x) => x.toFixed(0)).join(' ')}), DO CPU ${median(cpus[system]).toFixed(0)} µs/write`)
  }
}

// ---- 6. sizes -------------------------------------------------------------------------------

function scenarioSizes(): void {
  log('6. sizes')
  for (const [name, file] of [['wasm', 'worker/build/core.wasm'], ['glue', 'worker/build/core.mjs']] as const) {
    const bytes = readFileSync(join(ROOT, file))
    record(`size.${name}Bytes`, 'seqsync', bytes.length)
    record(`size.${name}GzipBytes`, 'seqsync', gzipSync(bytes, { level: 9 }).length)
    log(`  ${file}: ${bytes.length} B raw, ${gzipSync(bytes, { level: 9 }).length} B gzip`)
  }
}

// ---- 6b. typed columns ----------------------------------------------------------------------

/**
 * The client's cost per row of typed columns (docs/protocol.md §2): a
 * snapshot frame of rows whose bigint, date, boolean and json columns arrive
 * tagged, decoded as the transport decodes it, against the same rows untyped.
 * The DO's side is a CASE per typed column inside the SQL that builds the row.
 */
function scenarioTyped(): void {
  log(`6b. typed columns: decode ${C.typedRows} rows`)
  const frame = (typed: boolean) => {
    const rows = Array.from({ length: C.typedRows }, (_, i) =>
      typed
        ? `{"id":"u${i}","active":true,"createdAt":{"$date":${1767225600000 + i}},"prefs":{"theme":"dark","n":${i}},"visits":{"$int":"${9007199254740993n + BigInt(i)}"}}`
        : `{"id":"u${i}","active":1,"createdAt":${1767225600000 + i},"prefs":"{\\"theme\\":\\"dark\\",\\"n\\":${i}}","visits":${i}}`,
    )
    return `{"t":"snapshot","sub":"s","c":"users","seq":1,"rows":[${rows.join(',')}]}`
  }
  for (const typed of [false, true]) {
    const text = frame(typed)
    const perRow: number[] = []
    for (let rep = 0; rep < C.typedReps + 1; rep++) {
      const start = now()
      const decoded = decodeServerFrame(text)
      if (decoded.error) throw decoded.error
      if (rep > 0) perRow.push(((now() - start) * 1000) / C.typedRows) // the first warms the JIT
    }
    const name = typed ? 'typed' : 'untyped'
    record(`typed.decodeUsPerRow.${name}`, 'seqsync', median(perRow))
    log(`  ${name.padEnd(8)} ${median(perRow).toFixed(2)} µs/row to decode (${text.length / C.typedRows | 0} B/row)`)
  }
}

// ---- 7. memory ------------------------------------------------------------------------------

/** Its own wrangler per system, so neither inherits the other's heap. */
async function scenarioMemory(): Promise<void> {
  log(`7. DO memory: ${C.memSockets} sockets, ${C.memRows} rows (a fresh workerd per system)`)
  const outerPgid = wranglerPgid
  const outerBase = BASE
  try {
    for (const system of ['seqsync', 'floor-bare'] as RawSystem[]) {
      const server = await startWrangler({ config: join(ROOT, 'bench/wrangler.toml'), readyPath: '/health', timeoutMs: 90_000 })
      wranglerPgid = server.pid as number
      BASE = await workerdBase(server)
      const sockets: RawSocket[] = []
      try {
        // Warm the isolate with a throwaway DO of the same class.
        await firstReply(system, freshRoom('memwarm'))
        await sleep(500)
        const rss0 = workerdRss()
        const room = freshRoom('mem')
        await admin(system, room, 'seed', `?n=${C.memRows}&prefix=m`)
        const state = await admin(system, room, 'state')
        const rss1 = workerdRss()
        const hello = system === 'seqsync'
          ? { t: 'hello', v: 1, epoch: state.epoch, since: state.head, subs: [{ id: 's', c: 'messages', resume: true }] }
          : { t: 'hello', since: state.head }
        for (let batch = 0; batch < C.memSockets; batch += 50) {
          const opened = await Promise.all(Array.from({ length: Math.min(50, C.memSockets - batch) }, () => RawSocket.open(rawUrl(system, room))))
          for (const s of opened) {
            s.send(hello)
            sockets.push(s)
          }
          await Promise.all(opened.map((s) => s.has('synced')))
        }
        await sleep(1000)
        const rss2 = workerdRss()
        const after = await admin(system, room, 'state')
        if (Number(after.sockets) !== C.memSockets) throw new Error(`memory: ${after.sockets} sockets, expected ${C.memSockets}`)
        record('mem.rssRowsMB', system, (rss1 - rss0) / 2 ** 20)
        record('mem.rssTotalMB', system, (rss2 - rss0) / 2 ** 20)
        if (system === 'seqsync') record('mem.wasmMB', system, Number(after.wasmMemoryBytes) / 2 ** 20)
        log(`  ${system.padEnd(15)} workerd RSS +${((rss1 - rss0) / 2 ** 20).toFixed(1)} MB after ${C.memRows} rows, +${((rss2 - rss0) / 2 ** 20).toFixed(1)} MB with ${C.memSockets} sockets${system === 'seqsync' ? `; wasm linear memory ${(Number(after.wasmMemoryBytes) / 2 ** 20).toFixed(1)} MB` : ''}`)
      } catch (error) {
        failures.push(`${system} memory: ${String(error)}`)
        log(`FAILED ${system} memory: ${String(error instanceof Error ? error.stack : error)}`)
      } finally {
        for (const s of sockets) s.close()
        await server.stop()
      }
    }
  } finally {
    wranglerPgid = outerPgid
    BASE = outerBase
  }
}

// ---- main ---------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = now()
  extra.loadAtStart = loadavg().map((x) => x.toFixed(2)).join(' ')
  extra.startedAt = `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`
  // A report of a saved run names that run's start and load, not today's.
  if (args.includes('--report-only')) {
    const saved = JSON.parse(readFileSync(join(ROOT, 'test-output', SMOKE ? 'bench-smoke.json' : 'bench.json'), 'utf8')) as { results: typeof results; extra: typeof extra; failures: string[] }
    Object.assign(results, saved.results)
    Object.assign(extra, saved.extra)
    failures.push(...saved.failures)
    report()
    return
  }
  const wasmPath = join(ROOT, 'worker/build/core.wasm')
  if (!existsSync(wasmPath)) throw new Error('worker/build/core.wasm is missing: run `npm run build:wasm` first')
  log(`${SMOKE ? 'smoke' : 'full'} run; starting wrangler dev (bench/wrangler.toml)`)
  const server = await startWrangler({ config: join(ROOT, 'bench/wrangler.toml'), readyPath: '/health', timeoutMs: 90_000 })
  wranglerPgid = server.pid as number
  serverOutput = server.output as () => string
  BASE = await workerdBase(server)
  log(`wrangler dev (pid ${wranglerPgid}; workerd pids ${workerdPids().join(', ')}); dialling workerd directly on ${BASE}, not the dev proxy on ${String(server.url)}`)
  try {
    // A scenario that throws is recorded as a failure; the others still run.
    const scenario = async (name: Scenario, fn: () => Promise<void> | void) => {
      if (!enabled(name)) return
      const pid = userWorkerdPid()
      const outputBefore = serverOutput().length
      try {
        await fn()
      } catch (error) {
        failures.push(`${name}: ${String(error instanceof Error ? error.message : error)}`)
        log(`FAILED ${name}: ${String(error instanceof Error ? error.stack : error)}`)
      }
      // A workerd that restarted mid-scenario (a crash; wrangler brings up a new
      // one) makes every figure of the scenario meaningless.
      const after = userWorkerdPid()
      if (after !== pid) {
        failures.push(`${name}: the workerd running the DOs restarted (pid ${pid} -> ${after}); its figures are void`)
        log(`FAILED ${name}: workerd restarted (pid ${pid} -> ${after}); wrangler output since the scenario began:\n${serverOutput().slice(outputBefore).slice(-4000)}`)
      }
    }
    await scenario('sizes', scenarioSizes)
    await scenario('typed', scenarioTyped)
    await scenario('wake', scenarioWake)
    await scenario('writes', scenarioWrites)
    await scenario('throughput', scenarioThroughput)
    await scenario('fanout', scenarioFanout)
    await scenario('fairness', scenarioFairness)
    await scenario('presence', scenarioPresence)
    await scenario('catchup', scenarioCatchup)
    await scenario('initial', scenarioInitial)
    await scenario('reload', scenarioReload)
  } finally {
    await server.stop()
  }
  if (enabled('memory')) {
    try {
      await scenarioMemory()
    } catch (error) {
      failures.push(`memory: ${String(error)}`)
    }
  }
  extra.durationS = (now() - started) / 1000
  report()
}

// ---- the table ----------------------------------------------------------------------------

type Unit = 'ms' | 'us' | 'B' | 'KB' | 'MB' | 'n' | 'per_s'
interface Line {
  key: string
  label: string
  unit: Unit
  /**
   * ratio: seqsync ÷ floor ≤ max; atLeast: seqsync ÷ floor ≥ min; plus:
   * seqsync − floor ≤ max (in the unit); abs: seqsync ≤ max (in the unit).
   * The floor is floor+TanStack where it was measured, else the bare floor.
   */
  target?:
    | { kind: 'ratio'; max: number }
    | { kind: 'atLeast'; min: number }
    | { kind: 'plus'; max: number }
    | { kind: 'abs'; max: number }
    /** seqsync ÷ seqsync's figure of another measure (`of`) ≤ max: the reload against the cold sync. */
    | { kind: 'of'; of: string; max: number }
}

function tableLines(): Line[] {
  const lines: Line[] = [
    { key: 'seq.msPerInsert', label: `sequential confirmed insert (${C.writes}), time per insert`, unit: 'ms', target: { kind: 'ratio', max: 1.15 } },
    { key: 'seq.p99', label: 'sequential confirmed insert, p99', unit: 'ms' },
    { key: 'seq.doCpuUsPerInsert', label: 'sequential confirmed insert, DO CPU per insert', unit: 'us', target: { kind: 'ratio', max: 1.3 } },
    { key: 'seq.clientCpuUsPerInsert', label: 'sequential confirmed insert, client CPU per insert', unit: 'us', target: { kind: 'ratio', max: 1.2 } },
    { key: 'burst.msPerInsert', label: `${C.burst} inserts sent at once, time per insert`, unit: 'ms' },
    { key: 'burst.p99', label: `${C.burst} inserts sent at once, p99`, unit: 'ms' },
    { key: 'burst.doCpuUsPerInsert', label: `${C.burst} inserts sent at once, DO CPU per insert`, unit: 'us' },
    { key: 'throughput.writesPerSec', label: `sustained confirmed writes, ${C.tpWriters} writers on raw sockets, one DO`, unit: 'per_s', target: { kind: 'atLeast', min: 0.8 } },
    { key: 'throughput.doCpuUsPerWrite', label: `sustained confirmed writes, DO CPU per write`, unit: 'us' },
  ]
  for (const f of C.fanout) {
    lines.push(
      { key: `fanout${f.subs}.p50`, label: `fan-out to ${f.subs} subscribers, p50 send→in collection`, unit: 'ms', target: { kind: 'ratio', max: 2 } },
      { key: `fanout${f.subs}.p99`, label: `fan-out to ${f.subs} subscribers, p99`, unit: 'ms' },
      { key: `fanout${f.subs}.doCpuUsPerDelivery`, label: `fan-out to ${f.subs} subscribers, DO CPU per delivery`, unit: 'us', target: { kind: 'ratio', max: 1.1 } },
    )
  }
  lines.push({ key: 'catchup.ms', label: `reconnect catch-up of ${C.catchup} rows (dial → converged)`, unit: 'ms', target: { kind: 'ratio', max: 1.1 } })
  for (const n of C.initial) {
    lines.push({ key: `initial${n}.ms`, label: `initial sync of ${n} rows into a fresh client`, unit: 'ms', target: n === C.initial[C.initial.length - 1] ? { kind: 'ratio', max: 1.2 } : undefined })
  }
  lines.push(
    { key: 'reload.coldMs', label: `cold sync of ${C.reload.rows} rows into a local-first page (navigation → caught up)`, unit: 'ms' },
    { key: 'reload.firstRenderMs', label: `reload with ${C.reload.rows} rows cached: navigation → rendered from the local copy`, unit: 'ms' },
    { key: 'reload.caughtUpMs', label: `reload, ${C.reload.changed} changed while away: navigation → caught up`, unit: 'ms', target: { kind: 'of', of: 'reload.coldMs', max: 0.3 } },
    { key: 'reload.tanstackWriteMs', label: `the least a reload can take: TanStack DB writing the same rows into an empty collection, no IndexedDB, no socket`, unit: 'ms' },
    { key: 'reload.coldBytes', label: 'cold sync, bytes received (payload)', unit: 'B' },
    { key: 'reload.bytes', label: 'reload, bytes received (payload)', unit: 'B', target: { kind: 'of', of: 'reload.coldBytes', max: 0.01 } },
  )
  lines.push(
    { key: 'wake.hibernatedMs', label: 'hibernated DO: frame sent → first reply', unit: 'ms', target: { kind: 'plus', max: 2 } },
    { key: 'wake.newStartMs', label: 'new DO: first reply, minus the same to an awake DO', unit: 'ms', target: { kind: 'abs', max: 5 } },
    { key: 'wake.newMs', label: 'new DO: dial → first reply to hello', unit: 'ms' },
    { key: 'wake.warmMs', label: 'awake DO: dial → first reply to hello', unit: 'ms' },
    { key: 'wake.hibernatedStartupSql', label: 'SQL statements registerSync runs when a DO wakes', unit: 'n' },
    { key: `presence${C.presence.subs}.doCpuUsPerDelivery`, label: `presence set fanned out to ${C.presence.subs} sockets, DO CPU per delivery`, unit: 'us' },
    { key: `presence${C.presence.subs}.changeDoCpuUsPerDelivery`, label: `a change of the same frame size to the same ${C.presence.subs} sockets, DO CPU per delivery`, unit: 'us' },
    { key: `presence${C.presence.subs}.bytesPerDelivery`, label: 'bytes per presence delivery (payload)', unit: 'B' },
    { key: `presence${C.presence.subs}.changeBytesPerDelivery`, label: 'bytes per change delivery of the same size (payload)', unit: 'B' },
    { key: 'seq.bytesOutPerInsert', label: 'bytes sent per insert (payload)', unit: 'B' },
    { key: 'seq.bytesInPerInsert', label: 'bytes received by the writer per insert (payload)', unit: 'B' },
    { key: `fanout${C.fanout[C.fanout.length - 1]!.subs}.bytesPerDelivery`, label: 'bytes per changed row, live (payload)', unit: 'B' },
    { key: `fanout${C.fanout[C.fanout.length - 1]!.subs}.wireBytesPerDelivery`, label: 'bytes per changed row, live (TCP, permessage-deflate)', unit: 'B' },
    { key: 'catchup.bytesPerRow', label: 'bytes per changed row, catch-up (payload)', unit: 'B' },
    { key: `initial${C.initial[C.initial.length - 1]}.bytesPerRow`, label: 'bytes per row, initial sync (payload)', unit: 'B' },
    { key: 'seed.usPerRow', label: `server-side write of one row (${C.seed.rows} in one transaction, median of ${C.seed.reps})`, unit: 'us', target: { kind: 'ratio', max: 1.5 } },
    { key: 'typed.decodeUsPerRow.untyped', label: `client decode of a ${C.typedRows}-row snapshot, per row, untyped columns`, unit: 'us' },
    { key: 'typed.decodeUsPerRow.typed', label: 'the same with bigint, date, boolean and json columns (the typed path)', unit: 'us' },
    { key: 'size.wasmBytes', label: 'core.wasm, raw', unit: 'KB' },
    { key: 'size.wasmGzipBytes', label: 'core.wasm, gzip -9', unit: 'KB', target: { kind: 'abs', max: 300 } },
    { key: 'size.glueGzipBytes', label: 'core.mjs (glue), gzip -9', unit: 'KB' },
    { key: 'mem.rssTotalMB', label: `workerd RSS growth, ${C.memRows} rows + ${C.memSockets} sockets`, unit: 'MB' },
    { key: 'mem.wasmMB', label: 'of which the core\'s wasm linear memory', unit: 'MB' },
  )
  return lines.filter((l) => results[l.key] !== undefined)
}

function fmt(value: number | undefined, unit: Unit): string {
  if (value === undefined || !Number.isFinite(value)) return '–'
  switch (unit) {
    case 'ms': return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2)
    case 'us': return value >= 100 ? value.toFixed(0) : value.toFixed(1)
    case 'B': return value.toFixed(0)
    case 'KB': return (value / 1000).toFixed(1)
    case 'MB': return value.toFixed(1)
    case 'n': return value.toFixed(0)
    case 'per_s': return value.toFixed(0)
  }
}
const unitLabel: Record<Unit, string> = { ms: 'ms', us: 'µs', B: 'B', KB: 'KB', MB: 'MB', n: 'count', per_s: '/s' }

interface Verdict { line: Line; ratio?: number; ratioBare?: number; met?: boolean; ofRatio?: number }

function verdicts(): Verdict[] {
  return tableLines().map((line) => {
    const v = results[line.key]!
    const s = v.seqsync
    const ratio = s !== undefined && v['floor-tanstack'] ? s / v['floor-tanstack'] : undefined
    const ratioBare = s !== undefined && v['floor-bare'] ? s / v['floor-bare'] : undefined
    let met: boolean | undefined
    const toFloor = ratio ?? ratioBare
    const floor = v['floor-tanstack'] ?? v['floor-bare']
    if (line.target?.kind === 'ratio' && toFloor !== undefined) met = toFloor <= line.target.max
    if (line.target?.kind === 'atLeast' && toFloor !== undefined) met = toFloor >= line.target.min
    if (line.target?.kind === 'plus' && s !== undefined && floor !== undefined) met = s - floor <= line.target.max
    if (line.target?.kind === 'abs' && s !== undefined) met = (line.unit === 'KB' ? s / 1000 : s) <= line.target.max
    const of = line.target?.kind === 'of' ? results[line.target.of]?.seqsync : undefined
    if (line.target?.kind === 'of' && s !== undefined && of) return { line, ratio, ratioBare, met: s / of <= line.target.max, ofRatio: s / of }
    return { line, ratio, ratioBare, met }
  })
}

function markdownTable(): string {
  const rows = verdicts().map(({ line, ratio, ratioBare, met, ofRatio }) => {
    const v = results[line.key]!
    const t = line.target
    const target = !t
      ? ''
      : t.kind === 'ratio'
        ? `≤ ${t.max}×`
        : t.kind === 'atLeast'
          ? `≥ ${t.min}×`
          : t.kind === 'plus'
            ? `≤ floor + ${t.max} ${unitLabel[line.unit]}`
            : t.kind === 'of'
              ? `≤ ${t.max}× the cold sync's (${ofRatio === undefined ? '–' : ofRatio.toFixed(3)}×)`
              : `≤ ${t.max} ${unitLabel[line.unit]}`
    return `| ${line.label} | ${unitLabel[line.unit]} | ${fmt(v.seqsync, line.unit)} | ${fmt(v['floor-tanstack'], line.unit)} | ${fmt(v['floor-bare'], line.unit)} | ${ratio === undefined ? '–' : ratio.toFixed(2) + '×'} | ${ratioBare === undefined ? '–' : ratioBare.toFixed(2) + '×'} | ${target} | ${met === undefined ? '' : met ? 'met' : '**missed**'} |`
  })
  return [
    '| measure | unit | seqsync | floor + TanStack | floor, bare | seqsync ÷ floor+TanStack | seqsync ÷ bare floor | target | |',
    '|---|---|---:|---:|---:|---:|---:|---|---|',
    ...rows,
  ].join('\n')
}

function machineNote(): string {
  const version = (pkg: string) => {
    try { return (JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version } catch { return '?' }
  }
  const cpu = cpus()
  return `${String(extra.startedAt)} · ${cpu.length} × ${cpu[0]?.model.trim() ?? '?'} · ${(totalmem() / 2 ** 30).toFixed(0)} GiB · ` +
    `Node ${process.versions.node} · wrangler ${version('wrangler')} · workerd ${version('workerd')} · @tanstack/db ${version('@tanstack/db')} · ` +
    `load average at start ${String(extra.loadAtStart ?? '?')} (the machine is shared: other work ran alongside)`
}

function report(): void {
  const outDir = join(ROOT, 'test-output')
  mkdirSync(outDir, { recursive: true })
  const file = join(outDir, SMOKE ? 'bench-smoke.json' : 'bench.json')
  const v = verdicts()
  const targets = v.filter((x) => x.met !== undefined).map((x) => ({ measure: x.line.key, label: x.line.label, ratio: x.ratio, target: x.line.target, met: x.met }))
  writeFileSync(file, JSON.stringify({ smoke: SMOKE, machine: machineNote(), config: C, results, targets, extra, failures }, null, 2))
  const table = markdownTable()
  process.stdout.write(`\n${table}\n\n${machineNote()}\n`)
  log(`wrote ${file}`)
  if (WRITE_DOCS || args.includes('--docs')) {
    const doc = join(ROOT, 'docs/benchmarks.md')
    const start = '<!-- bench:table:start -->'
    const end = '<!-- bench:table:end -->'
    const block = `${start}\n_Latest full run (\`npm run bench\`, ${String(extra.durationS ? Math.round(Number(extra.durationS)) : '?')} s): ${machineNote()}._\n\n${table}\n${end}`
    let text = existsSync(doc) ? readFileSync(doc, 'utf8') : `# Benchmarks\n\n${start}\n${end}\n`
    if (!text.includes(start)) text += `\n${start}\n${end}\n`
    text = text.slice(0, text.indexOf(start)) + block + text.slice(text.indexOf(end) + end.length)
    writeFileSync(doc, text)
    log(`wrote ${doc}`)
  }
}

main().then(
  () => {
    if (failures.length > 0) {
      log(`${failures.length} failure(s):\n  ${failures.join('\n  ')}`)
      process.exit(1)
    }
    process.exit(0)
  },
  (error) => {
    log(`FAILED: ${String(error instanceof Error ? error.stack : error)}`)
    process.exit(1)
  },
)
