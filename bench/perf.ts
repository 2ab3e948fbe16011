// Where the DO's real CPU goes per confirmed write, by part of the runtime:
// Linux `perf` samples the workerd that runs the DOs while 20 writers on raw
// sockets (scenario 8 of run.ts) write to one DO, each system in turn. Unlike
// V8's profiler (profile.ts) it sees workerd's own code too (V8's runtime and
// builtins, SQLite, zlib for permessage-deflate, kj, the kernel), and it does
// not slow the wasm down.
//
//   bash scripts/bench.sh --perf [seconds per system, default 8]
//
// Needs `perf` (Debian: linux-perf) allowed to sample this user's processes
// (kernel.perf_event_paranoid ≤ 1, or root). Prints µs per write by part.
import { execFileSync, spawn } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

// @ts-expect-error: plain .mjs helper shared with the tests
import { commandLine, processesInGroup } from '../tests/support/proc.mjs'
import { directWorkerdUrl, startWrangler } from '../tests/support/wrangler.mjs'
import { now, openRawWriters, sleep } from './clients.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const OUT = join(ROOT, 'test-output', 'bench-perf')
const SECONDS = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 8)
const WRITERS = 20
const SAMPLE_HZ = 3000
const SYSTEMS = ['seqsync', 'floor-bare'] as const
type RawSystem = (typeof SYSTEMS)[number]

// Parts of the runtime, by the symbol a sample landed in.
const PARTS: Array<[string, (symbol: string, dso: string, kernel: boolean) => boolean]> = [
  ['kernel', (_s, _d, kernel) => kernel],
  ['JS and wasm (JIT code)', (_s, dso) => dso.includes('JIT')],
  ['zlib (permessage-deflate)', (s) => /longest_match|deflate|build_tree|tr_flush|fill_window|compress_block|send_bits|pqdownheap|Cr_z_|adler32|crc32/.test(s)],
  ['SQLite', (s) => /^sqlite3|^wal[A-Z]|^json[A-Z]|^pager|[bB]tree|[vV]dbe/.test(s)],
  ['V8 runtime and builtins', (s) => s.includes('v8::') || s.startsWith('Builtins_')],
  ['kj (event loop, promises, sockets)', (s) => s.startsWith('kj::')],
  ['workerd APIs', (s) => s.startsWith('workerd::')],
  ['tcmalloc', (s) => /tcmalloc|TCMalloc/.test(s)],
  ['libc', (_s, dso) => dso.startsWith('libc')],
]
const OTHER = 'other'

/** Keeps every writer writing until `stop()`; counts confirmed writes. */
async function startLoad(base: string, system: RawSystem): Promise<{ writes: () => number; stop: () => Promise<void> }> {
  const writers = await openRawWriters(base, system, `perf-${system}-${Date.now().toString(36)}`, WRITERS)
  let confirmed = 0
  let stopping = false
  const running = Promise.all(writers.map(async (w, wi) => {
    for (let i = 0; !stopping; i++) {
      await w.write(`p${wi}-${i}`, i)
      confirmed++
    }
    w.close()
  }))
  return { writes: () => confirmed, stop: async () => { stopping = true; await running } }
}

/** Samples per part, from `perf report` over `data`. */
function partsOf(data: string): { samples: Map<string, number>; total: number } {
  const report = execFileSync('perf', ['report', '-i', data, '--stdio', '--no-children', '-n', '--sort', 'dso,symbol', '--percent-limit', '0'], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, stdio: ['ignore', 'pipe', 'ignore'] })
  const samples = new Map<string, number>()
  let total = 0
  for (const line of report.split('\n')) {
    // "  7.54%   1234  workerd  [.] longest_match"
    const m = /^\s*[\d.]+%\s+(\d+)\s+(.+?)\s+\[([.k])\]\s+(.*)$/.exec(line)
    if (!m) continue
    const n = Number(m[1])
    const dso = m[2]!.trim()
    const symbol = m[4]!.trim()
    const part = PARTS.find(([, is]) => is(symbol, dso, m[3] === 'k'))?.[0] ?? OTHER
    samples.set(part, (samples.get(part) ?? 0) + n)
    total += n
  }
  return { samples, total }
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true })
  const perWrite = new Map<RawSystem, Map<string, number>>()
  for (const system of SYSTEMS) {
    // A fresh workerd per system, so one's JIT state and heap do not weigh on the other.
    const server = await startWrangler({ config: join(ROOT, 'bench/wrangler.toml'), readyPath: '/health', timeoutMs: 90_000 })
    try {
      const base = ((await directWorkerdUrl(server, '/health')) as string | undefined) ?? (server.url as string)
      const pid = processesInGroup(server.pid, 'workerd').find((p: number) => commandLine(p).includes('--inspector-addr'))
      if (pid === undefined) throw new Error('no workerd running the Worker')
      const load = await startLoad(base, system)
      await sleep(3000) // warm-up: the JIT tiers up, the log and the tables grow past their first pages
      const data = join(OUT, `${system}.perf.data`)
      const from = load.writes()
      const t0 = now()
      const perf = spawn('perf', ['record', '-F', String(SAMPLE_HZ), '-p', String(pid), '-o', data, '--', 'sleep', String(SECONDS)], { stdio: 'ignore' })
      const code = await new Promise<number | null>((resolve) => perf.once('exit', resolve))
      const writes = load.writes() - from
      const seconds = (now() - t0) / 1000
      await load.stop()
      if (code !== 0) throw new Error(`perf record exited ${code}: is perf installed and allowed (kernel.perf_event_paranoid)?`)
      const { samples, total } = partsOf(data)
      const us = (n: number) => (n / SAMPLE_HZ) * 1e6 / writes
      const parts = new Map([...samples].map(([part, n]) => [part, us(n)]))
      parts.set('total', us(total))
      perWrite.set(system, parts)
      console.log(`${system}: ${writes} confirmed writes in ${seconds.toFixed(1)} s (${(writes / seconds).toFixed(0)}/s), ${total} samples`)
    } finally {
      await server.stop()
    }
  }
  const names = [...PARTS.map(([name]) => name), OTHER, 'total']
  const seq = perWrite.get('seqsync')!
  const floor = perWrite.get('floor-bare')!
  console.log(`\n| part of workerd's CPU, µs per confirmed write | seqsync | floor, bare | difference |\n|---|---:|---:|---:|`)
  for (const name of names) {
    const a = seq.get(name) ?? 0
    const b = floor.get(name) ?? 0
    console.log(`| ${name} | ${a.toFixed(0)} | ${b.toFixed(0)} | ${(a - b >= 0 ? '+' : '') + (a - b).toFixed(0)} |`)
  }
}

main().then(() => process.exit(0), (error) => {
  process.stderr.write(`perf failed: ${String(error instanceof Error ? error.stack : error)}\n`)
  process.exit(1)
})
