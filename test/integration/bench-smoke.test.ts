/**
 * The benchmark harness keeps working: a tiny run (200 files, one round, W1 to W3, local only)
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

test('bench runs W1, W2 and W3 on 200 local files and writes a report', { timeout: 60_000 }, async () => {
  const out = join(dir, 'RESULTS.md');
  const bench = join(import.meta.dirname, '..', '..', 'bench', 'run.ts');
  await promisify(execFile)(process.execPath, [bench, '--files', '200', '--rounds', '1', '--workload', 'W1,W2,W3', '--remote', 'local', '--out', out], { maxBuffer: 16 * 2 ** 20 });
  const report = await readFile(out, 'utf8');
  for (const key of ['local-200-W1', 'local-200-W2', 'local-200-W3']) expect(report).toContain(`<!-- bench:${key} -->`);
  for (const tool of ['rclonesync', 'bisync', 'floor']) expect(report).toContain(`| ${tool} |`);
  // Each tool in both modes of rclone's check of each copy only where a run is mostly copies (W3).
  const [w1, w2, w3] = ['W1', 'W2', 'W3'].map((id) => report.split(`<!-- bench:local-200-${id} -->`)[1]!.split('<!-- bench:')[0]!);
  for (const row of ['| rclonesync-unchecked |', '| bisync-checked |', 'rclonesync-unchecked vs bisync (', 'rclonesync vs bisync-checked (']) expect(w3).toContain(row);
  for (const other of [w1, w2]) expect(other).not.toMatch(/unchecked|checked \|/);
});
