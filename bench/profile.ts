// CPU profiles of one bench workload, on both sides of the socket, for the
// "where does the time go" notes in docs/benchmarks.md:
//   * the DOs: V8's sampling profiler in the workerd that runs the Worker,
//     through the inspector `wrangler dev` exposes (Chrome DevTools protocol);
//   * the client: the same profiler in this Node process (node:inspector).
// Self time is attributed to source files through the `// path` comments
// esbuild leaves between modules in both bundles.
//
//   bash scripts/bench.sh --profile <inserts|fanout|throughput|initial|catchup|wake|hibernated> [systems]
//
// Writes test-output/bench-profiles/<workload>-<system>-{do,client}.cpuprofile
// (open them in Chrome DevTools) and prints a summary.
import { Session } from 'node:inspector/promises'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'

// @ts-expect-error: plain .mjs helper shared with the tests
import { commandLine } from '../tests/support/proc.mjs'
import { directWorkerdUrl, startWrangler } from '../tests/support/wrangler.mjs'
import { createClient, now, openRawWriters, sleep, until, type BenchClient, type Row, type System } from './clients.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const OUT = join(ROOT, 'test-output', 'bench-profiles')
const args = process.argv.slice(2).filter((a) => a !== '--profile')
const workload = args[0] ?? 'inserts'
const systems = (args[1]?.split(',') ?? ['seqsync', 'floor-tanstack']) as System[]

interface CallFrame { functionName: string; scriptId: string; url: string; lineNumber: number; columnNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; hitCount?: number; children?: number[] }
interface Profile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

/** A minimal Chrome DevTools protocol client over a WebSocket. */
class Cdp {
  #id = 0
  #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  scripts = new Map<string, string>()
  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const msg = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: { message: string }; method?: string; params?: { scriptId: string; url: string } }
      if (msg.id !== undefined) {
        const p = this.#pending.get(msg.id)
        this.#pending.delete(msg.id)
        if (msg.error) p?.reject(new Error(msg.error.message))
        else p?.resolve(msg.result)
      } else if (msg.method === 'Debugger.scriptParsed' && msg.params) {
        this.scripts.set(msg.params.scriptId, msg.params.url)
      }
    })
  }
  static async connect(url: string): Promise<Cdp> {
    const ws = new WebSocket(url)
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
    return new Cdp(ws)
  }
  send<T = unknown>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = ++this.#id
    this.ws.send(JSON.stringify({ id, method, params }))
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`CDP ${method} timed out`)), 30_000)
      this.#pending.set(id, { resolve: (v) => { clearTimeout(timer); resolve(v as T) }, reject: (e) => { clearTimeout(timer); reject(e) } })
    })
  }
  close(): void {
    this.ws.close()
  }
}

/** Maps bundle lines to the source file esbuild marked with a `// path` comment. */
function moduleIndex(source: string): (line: number) => string {
  const marks: Array<{ line: number; file: string }> = []
  source.split('\n').forEach((text, line) => {
    const m = text.match(/^\/\/ (\S+\.(?:ts|js|mjs|cjs))$/)
    if (m) marks.push({ line, file: m[1]!.replace(/^(\.\.\/)+/, '').replace(/^.*node_modules\//, 'node_modules/') })
  })
  return (line: number) => {
    let file = '(bundle prelude)'
    for (const mark of marks) {
      if (mark.line > line) break
      file = mark.file
    }
    return file
  }
}

function bucketOf(file: string, frame: CallFrame): string {
  if (frame.url.startsWith('wasm://')) return 'seqsync core: wasm'
  if (!frame.url) return frame.functionName.startsWith('(') ? frame.functionName : `(native) ${frame.functionName || 'anonymous'}`
  if (file.includes('worker/build/core.mjs')) return 'seqsync core: embind glue (core.mjs)'
  if (file.includes('worker/src/do/')) return `seqsync shell: ${file.slice(file.lastIndexOf('/') + 1)}`
  if (file.includes('worker/src/client/')) return `seqsync client: ${file.slice(file.lastIndexOf('/') + 1)}`
  if (file.includes('worker/src/protocol/')) return 'seqsync protocol'
  if (file.includes('@tanstack/db')) return 'TanStack DB'
  if (file.includes('node_modules/ws/')) return 'ws'
  if (file.startsWith('node:') || frame.url.startsWith('node:')) return `node: ${frame.url.replace(/^node:/, '')}`
  return file
}

async function summarize(name: string, profile: Profile, sources: (scriptId: string, url: string) => Promise<string | undefined>): Promise<string> {
  writeFileSync(join(OUT, `${name}.cpuprofile`), JSON.stringify(profile))
  // self time per node from the samples
  const self = new Map<number, number>()
  profile.samples.forEach((nodeId, i) => self.set(nodeId, (self.get(nodeId) ?? 0) + (profile.timeDeltas[i] ?? 0)))
  const indexes = new Map<string, (line: number) => string>()
  const buckets = new Map<string, number>()
  const functions = new Map<string, number>()
  let total = 0
  for (const node of profile.nodes) {
    const us = self.get(node.id) ?? 0
    if (us === 0) continue
    const f = node.callFrame
    if (f.functionName === '(idle)') continue
    total += us
    let file = f.url
    if (f.url.includes('/node_modules/')) {
      file = f.url.replace(/^.*\/node_modules\//, 'node_modules/')
    } else if (f.url && !f.url.startsWith('node:') && !f.url.startsWith('wasm://')) {
      if (!indexes.has(f.scriptId)) {
        const src = await sources(f.scriptId, f.url)
        indexes.set(f.scriptId, src ? moduleIndex(src) : () => f.url)
      }
      file = indexes.get(f.scriptId)!(f.lineNumber)
    }
    const bucket = bucketOf(file, f)
    buckets.set(bucket, (buckets.get(bucket) ?? 0) + us)
    const fn = `${f.functionName || '(anonymous)'}  [${bucket}]`
    functions.set(fn, (functions.get(fn) ?? 0) + us)
  }
  const lines = [`== ${name}: ${(total / 1000).toFixed(1)} ms of CPU (idle excluded)`]
  for (const [b, us] of [...buckets].sort((x, y) => y[1] - x[1]).slice(0, 14)) lines.push(`   ${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(1).padStart(8)} ms  ${b}`)
  lines.push('   top functions (self):')
  for (const [fn, us] of [...functions].sort((x, y) => y[1] - x[1]).slice(0, 14)) lines.push(`   ${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(1).padStart(8)} ms  ${fn}`)
  return lines.join('\n')
}

const row = (prefix: string, i: number): Row => ({ id: `${prefix}-${String(i).padStart(6, '0')}`, author: 'bench', content: `a client message of ordinary length, number ${i}`, created_at: 1_700_000_000_000 + i })

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true })
  const server = await startWrangler({ config: join(ROOT, 'bench/wrangler.toml'), readyPath: '/health', timeoutMs: 90_000 })
  // Past the dev proxy, as `npm run bench` dials.
  const base = ((await directWorkerdUrl(server, '/health')) as string | undefined) ?? (server.url as string)
  // npm exec rewrites its title: read the port from the command line as text.
  const inspectorPort = commandLine(server.pid as number).match(/--inspector-port[\s\0]+(\d+)/)?.[1]
  if (!inspectorPort) throw new Error('no --inspector-port on the wrangler command line')
  const session = new Session()
  session.connect()
  const report: string[] = []
  try {
    const cdp = await Cdp.connect(`ws://127.0.0.1:${inspectorPort}/ws`)
    // wrangler turns the V8 debugger on for a DevTools client, and while it
    // is on V8 runs wasm as unoptimized debug code, several times slower:
    // off, until the sources are read after each profile.
    await cdp.send('Debugger.disable')
    await cdp.send('Profiler.enable')
    await cdp.send('Profiler.setSamplingInterval', { interval: 100 })
    await session.post('Profiler.enable')
    await session.post('Profiler.setSamplingInterval', { interval: 100 })
    let room = 0
    const fresh = (tag: string) => `prof-${tag}-${Date.now().toString(36)}-${room++}`
    const path = (s: System) => (s === 'seqsync' ? 'sync' : 'floor')
    const seed = async (s: System, r: string, n: number, prefix: string) => {
      const res = await fetch(`${base}/admin/${path(s)}/${r}/seed?n=${n}&prefix=${prefix}`)
      if (!res.ok) throw new Error(`seed ${res.status}`)
    }
    if (workload === 'sqltrace') {
      // SQL statements the seqsync DO runs per insert, per caught-up row and per synced row.
      const trace = async (r: string, on: boolean) => (await (await fetch(`${base}/admin/sync/${r}/trace-${on ? 'on' : 'off'}`)).json()) as Record<string, number>
      const show = (title: string, counts: Record<string, number>, per: number) => {
        // The rows written, as bench/worker.ts's sqlTrace reports them (ROWS_WRITTEN).
        const { '(rows written)': written = 0, ...statements } = counts
        const total = Object.values(statements).reduce((t, n) => t + n, 0)
        report.push(`== ${title}: ${(total / per).toFixed(2)} statements, ${(written / per).toFixed(2)} rows written (as billed) per unit`)
        for (const [q, n] of Object.entries(statements).sort((a, b) => b[1] - a[1]).slice(0, 20)) report.push(`   ${(n / per).toFixed(3).padStart(8)}  ${q}`)
      }
      const r1 = fresh('trace')
      const c1 = createClient({ system: 'seqsync', base, room: r1 })
      await c1.ready()
      for (let i = 0; i < 20; i++) await c1.insert(row('w', i))
      await trace(r1, true)
      for (let i = 0; i < 200; i++) await c1.insert(row('t', i))
      show('sequential insert (per insert)', await trace(r1, false), 200)
      c1.cut()
      await sleep(100)
      await seed('seqsync', r1, 2000, 'c')
      await trace(r1, true)
      await c1.restore()
      await until(() => c1.size() >= 2220, 30_000, 'catch-up')
      await sleep(200)
      show('catch-up (per row)', await trace(r1, false), 2000)
      c1.close()
      await trace(r1, true)
      const c2 = createClient({ system: 'seqsync', base, room: r1 })
      await c2.ready()
      show(`initial sync of ${c2.size()} rows (per row)`, await trace(r1, false), c2.size())
      c2.close()
      await trace(r1, true)
      await seed('seqsync', r1, 2000, 's')
      show('server-side seed in one runSyncedWrite (per row)', await trace(r1, false), 2000)
    }
    for (const system of workload === 'sqltrace' ? [] : systems) {
      // ---- set up, outside the profile
      let client: BenchClient | undefined
      let measured: () => Promise<void>
      const r = fresh(workload)
      if (workload === 'inserts') {
        client = createClient({ system, base, room: r })
        await client.ready()
        for (let i = 0; i < 200; i++) await client.insert(row('w', i))
        measured = async () => { for (let i = 0; i < 1000; i++) await client!.insert(row('p', i)) }
      } else if (workload === 'fanout') {
        // One writer and 200 subscribers, as scenario 2 at 200: the DO's
        // cost per delivery. Paced, so the subscribers (in this process) keep up.
        const subscribers = Array.from({ length: 200 }, () => createClient({ system, base, room: r }))
        await Promise.all(subscribers.map((s) => s.ready()))
        client = createClient({ system, base, room: r })
        await client.ready()
        const rounds = 100
        measured = async () => {
          for (let i = 0; i < rounds; i++) {
            await client!.insert(row('f', i))
            await sleep(40)
          }
          await until(() => subscribers.every((s) => s.size() >= rounds), 60_000, 'fan-out delivered')
          for (const s of subscribers) s.close()
        }
      } else if (workload === 'throughput') {
        // 20 writers on raw sockets, each subscribed, as scenario 8: every
        // write is confirmed to its writer and delivered to the other 19.
        const writers = await openRawWriters(base, system === 'seqsync' ? 'seqsync' : 'floor-bare', r, 20)
        const run = (tag: string, n: number) => Promise.all(writers.map(async (w, wi) => {
          for (let i = 0; i < n; i++) await w.write(`${tag}-${wi}-${i}`, i)
        }))
        await run('tw', 10)
        measured = async () => {
          await run('tp', 50)
          for (const w of writers) w.close()
        }
      } else if (workload === 'initial') {
        await seed(system, r, 50_000, 'i')
        measured = async () => {
          client = createClient({ system, base, room: r })
          await client.ready()
          if (client.size() !== 50_000) throw new Error(`initial: ${client.size()} rows`)
        }
      } else if (workload === 'catchup') {
        client = createClient({ system, base, room: r })
        await client.ready()
        client.cut()
        await sleep(100)
        await seed(system, r, 5000, 'c')
        measured = async () => {
          await client!.restore()
          await until(() => client!.size() >= 5000, 60_000, 'catch-up')
        }
      } else if (workload === 'wake' || workload === 'hibernated') {
        const rawPath = system === 'seqsync' ? 'sync' : 'floor'
        const hello = JSON.stringify(system === 'seqsync' ? { t: 'hello', v: 1, subs: [{ id: 's', c: 'messages' }] } : { t: 'hello' })
        const open = async (rr: string) => {
          const ws = new WebSocket(`${base.replace('http', 'ws')}/${rawPath}/${rr}`)
          const frames: string[] = []
          ws.on('message', (d: Buffer) => frames.push(d.toString()))
          await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
          ws.send(hello)
          await until(() => frames.some((f) => f.includes('"synced"') || f.includes('"welcome"')), 10_000, 'hello answered')
          return { ws, frames }
        }
        if (workload === 'wake') {
          measured = async () => {
            for (let i = 0; i < 10; i++) (await open(fresh('wake'))).ws.close()
          }
        } else {
          const sockets = await Promise.all(Array.from({ length: 5 }, () => open(fresh('hib'))))
          await sleep(14_000)
          measured = async () => {
            for (const [i, s] of sockets.entries()) {
              const n = s.frames.length
              const rw = row(`h${i}`, 0)
              s.ws.send(JSON.stringify(system === 'seqsync'
                ? { t: 'mut', id: `h${i}`, ops: [{ c: 'messages', op: 'insert', k: rw.id, cols: rw }] }
                : { t: 'ins', id: `h${i}`, row: rw }))
              await until(() => s.frames.length > n, 10_000, 'woken reply')
              s.ws.close()
            }
          }
        }
      } else {
        throw new Error(`unknown workload ${workload}`)
      }
      // ---- profiled
      await sleep(200)
      await cdp.send('Profiler.start')
      await session.post('Profiler.start')
      const t0 = now()
      await measured()
      const elapsed = now() - t0
      const { profile: clientProfile } = (await session.post('Profiler.stop')) as unknown as { profile: Profile }
      const { profile: doProfile } = await cdp.send<{ profile: Profile }>('Profiler.stop')
      client?.close()
      // ---- sources for attribution
      await cdp.send('Debugger.enable')
      const doSources = async (scriptId: string, url: string) => {
        const source = (await cdp.send<{ scriptSource: string }>('Debugger.getScriptSource', { scriptId }).catch(() => ({ scriptSource: '' }))).scriptSource
        if (url.endsWith('worker.js')) writeFileSync(join(OUT, 'worker-bundle.js'), source)
        return source
      }
      await session.post('Debugger.enable')
      const clientSources = async (scriptId: string, url: string) => {
        if (url.startsWith('file://')) return readFileSync(fileURLToPath(url), 'utf8')
        return ((await session.post('Debugger.getScriptSource', { scriptId }).catch(() => ({ scriptSource: '' }))) as { scriptSource: string }).scriptSource
      }
      report.push(`#### ${workload} / ${system}: ${elapsed.toFixed(1)} ms wall`)
      report.push(await summarize(`${workload}-${system}-do`, doProfile, doSources))
      report.push(await summarize(`${workload}-${system}-client`, clientProfile, clientSources))
      await cdp.send('Debugger.disable')
      await session.post('Debugger.disable')
      await sleep(200)
    }
    cdp.close()
  } finally {
    session.disconnect()
    await server.stop()
  }
  const text = report.join('\n')
  process.stdout.write(`${text}\n`)
  writeFileSync(join(OUT, `${workload}.txt`), text)
}

main().then(() => process.exit(0), (error) => {
  process.stderr.write(`profile failed: ${String(error instanceof Error ? error.stack : error)}\n`)
  process.exit(1)
})
