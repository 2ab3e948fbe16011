import { cloudflareTest } from '@cloudflare/vitest-plugin'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  plugins: [cloudflareTest({ wrangler: { configPath: './tests/worker/wrangler.toml' } })],
  resolve: { alias: { seqsync: new URL('../../worker/src/do/index.ts', import.meta.url).pathname } },
  test: {
    include: ['tests/worker/**/*.test.ts'],
    testTimeout: 30_000,
  },
})
