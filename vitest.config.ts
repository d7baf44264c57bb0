import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 300_000,
    // Integration tests spawn rclone and servers; two cores do not like many at once.
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'default', include: ['test/**/*.test.ts'], exclude: [...configDefaults.exclude, 'test/container/**'] } },
      // Container tests: the image is built once per run (global setup); they run after the others.
      { extends: true, test: { name: 'container', include: ['test/container/**/*.test.ts'], globalSetup: ['test/container/global-setup.ts'], sequence: { groupOrder: 1 } } },
    ],
  },
});
