// Convergence under faults: `npm run chaos` (full) and a short mode in
// `npm test` (CHAOS_MODE=short). Runs against the fixture DO under wrangler dev.
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    environment: 'node',
    include: ['tests/chaos/**/*.test.ts'],
    globalSetup: ['tests/e2e/global-setup.ts'],
    testTimeout: 600_000,
    hookTimeout: 90_000,
  },
})
