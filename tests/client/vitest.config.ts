import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

const root = fileURLToPath(new URL('../..', import.meta.url))

export default defineConfig({
  root,
  test: {
    environment: 'node',
    include: ['tests/client/**/*.test.ts'],
    typecheck: {
      enabled: true,
      include: ['tests/client/**/*.test-d.ts'],
      tsconfig: 'tests/client/tsconfig.json',
    },
  },
})
