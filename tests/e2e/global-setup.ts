// Starts the fixture Worker (tests/worker/fixture.ts) under `wrangler dev`
// once for all e2e tests, and stops it by PID afterwards.
import type { TestProject } from 'vitest/node'

// @ts-expect-error: plain .mjs helper shared with the browser tests and benchmarks
import { startWrangler } from '../support/wrangler.mjs'

declare module 'vitest' {
  export interface ProvidedContext {
    baseUrl: string
  }
}

export default async function setup(project: TestProject) {
  const server = await startWrangler({ config: 'tests/worker/wrangler.toml' })
  project.provide('baseUrl', server.url as string)
  return async () => {
    await server.stop()
  }
}
