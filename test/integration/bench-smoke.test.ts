/**
 * The benchmark harness keeps working: a tiny run (200 files, one round, W1 and W2, local only)
 * completes and writes its report to a temporary file. Nothing is timed or compared here:
 * benchmarks are never timed tests.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, test } from 'vitest';

const dir = await mkdtemp(join(tmpdir(), 'rs-bench-smoke-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

test('bench runs W1 and W2 on 200 local files and writes a report', { timeout: 60_000 }, async () => {
  const out = join(dir, 'RESULTS.md');
  const bench = join(import.meta.dirname, '..', '..', 'bench', 'run.ts');
  await promisify(execFile)(process.execPath, [bench, '--files', '200', '--rounds', '1', '--workload', 'W1,W2', '--remote', 'local', '--out', out], { maxBuffer: 16 * 2 ** 20 });
  const report = await readFile(out, 'utf8');
  for (const key of ['local-200-W1', 'local-200-W2']) expect(report).toContain(`<!-- bench:${key} -->`);
  for (const tool of ['rclonesync', 'bisync', 'floor']) expect(report).toContain(`| ${tool} |`);
});
