import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 300_000,
    // Integration tests spawn rclone and servers; two cores do not like many at once.
    maxWorkers: 2,
  },
});
