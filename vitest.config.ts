import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Child processes, not worker threads: a native addon loaded in a worker is
    // unloaded when the worker exits (see docs on napi-rs worker pitfalls).
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
})
