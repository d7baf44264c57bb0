/**
 * Per-file work goes through one `rclone rcd` for the whole run, never one rclone process per file:
 * an rclone wrapper (SYNC_RCLONE_BINARY) counts every rclone started.
 */
import { chmod, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { conflictsOf, summaryOf } from '../helpers/logs.ts';
import { useSandbox, type Sandbox } from '../helpers/sandbox.ts';
import { minutesAgo, readTree, writeTree, writeTreeFile } from '../helpers/trees.ts';
import { backendDetail, backendRunEnv, currentBackend, DISK_BACKENDS, useBackend } from '../helpers/backends.ts';

const { sandbox: sb, ok } = useSandbox('rs-perfile-', { runEnv: backendRunEnv, failureDetail: backendDetail });
const RCLONE = execFileSync('sh', ['-c', 'command -v rclone'], { encoding: 'utf8' }).trim();

/** A wrapper that logs each rclone command line, then runs rclone. */
async function countingRclone(sandbox: Sandbox): Promise<{ env: Record<string, string>; started: () => Promise<string[]>; commandLines: () => Promise<string[]> }> {
  const log = join(sandbox.scratch, 'rclone-calls.log');
  const wrapper = join(sandbox.scratch, 'rclone-counting');
  await writeFile(wrapper, `#!/bin/sh\necho "$*" >> '${log}'\nexec '${RCLONE}' "$@"\n`);
  await chmod(wrapper, 0o755);
  await writeFile(log, '');
  const commandLines = async () => (await readFile(log, 'utf8')).split('\n').filter(Boolean);
  return {
    env: { SYNC_RCLONE_BINARY: wrapper },
    // The command: each line's first word.
    started: async () => (await commandLines()).map((line) => line.split(' ')[0]!),
    commandLines,
  };
}

const N = 300;

describe.each(DISK_BACKENDS)('per-file work in one rclone process ($name)', ({ kind }) => {
  useBackend(kind, () => sb.path2);

  it(`a first run with ${N} conflicts starts fewer than 20 rclone processes`, { timeout: 240_000 }, async () => {
    const tree1: Record<string, string> = {};
    for (let i = 0; i < N; i++) tree1[`d${i % 7}/f${i}.txt`] = `one ${i}`;
    await writeTree(sb.path1, tree1);
    for (let i = 0; i < N; i++) await writeTreeFile(currentBackend().dir2, `d${i % 7}/f${i}.txt`, `two two ${i}`, minutesAgo(5, { wholeSeconds: true }));
    const counter = await countingRclone(sb);
    const result = await ok({ ...counter.env, SYNC_CONFLICT_RESOLVE: 'none' });
    expect(conflictsOf(result.logs)).toHaveLength(N);
    const started = await counter.started();
    expect(started.length, started.join(' ')).toBeLessThan(20);
    expect(started.filter((c) => c === 'moveto')).toEqual([]);
    // Local↔local needs none: a local side's renames are made in-process (src/rclone/local-side.ts).
    expect(started.filter((c) => c === 'rcd').length).toBeLessThanOrEqual(kind === 'local' ? 0 : 1);
    expect(Object.keys(await readTree(sb.path1))).toHaveLength(2 * N);
    expect(await readTree(currentBackend().dir2)).toEqual(await readTree(sb.path1));
  });

  it(`${N} renamed files are moved with fewer than 20 rclone processes, nothing copied`, { timeout: 240_000 }, async () => {
    const tree: Record<string, string> = {};
    // Scattered over folders so that they are file moves, not one folder move.
    for (let i = 0; i < N; i++) tree[`d${i % 7}/f${i}.txt`] = `file ${i}`;
    await writeTree(sb.path1, tree);
    await ok();
    for (let i = 0; i < N; i++) await rename(join(sb.path1, `d${i % 7}`, `f${i}.txt`), join(sb.path1, `d${(i + 1) % 7}`, `renamed-${i}.txt`));
    const counter = await countingRclone(sb);
    const result = await ok(counter.env);
    expect(summaryOf(result.logs)).toMatchObject({ movesOnPath2: N, copiesToPath2: 0, deletesOnPath2: 0, bytes: 0 });
    const started = await counter.started();
    expect(started.length, started.join(' ')).toBeLessThan(20);
    expect(started.filter((c) => c === 'moveto' || c === 'copy')).toEqual([]);
    expect(await readTree(currentBackend().dir2)).toEqual(await readTree(sb.path1));
  });
});

describe.each(DISK_BACKENDS)('copies walk or look up the destination by their share of it ($name)', ({ kind }) => {
  useBackend(kind, () => sb.path2);

  it('a first run onto an empty side walks it; two new files in a tree of 40 are looked up (--no-traverse)', { timeout: 120_000 }, async () => {
    const tree: Record<string, string> = {};
    for (let i = 0; i < 40; i++) tree[`d${i % 4}/f${i}.txt`] = `file ${i}`;
    await writeTree(sb.path1, tree);
    const counter = await countingRclone(sb);
    await ok(counter.env);
    const copies = async () => (await counter.commandLines()).filter((line) => line.startsWith('copy '));
    expect(await copies()).toHaveLength(1);
    expect((await copies())[0]).not.toContain('--no-traverse');
    await writeTree(sb.path1, { 'd1/new-a.txt': 'a', 'd2/new-b.txt': 'b' });
    const result = await ok(counter.env);
    expect(summaryOf(result.logs)).toMatchObject({ copiesToPath2: 2 });
    expect(await copies()).toHaveLength(2);
    expect((await copies())[1]).toContain('--no-traverse');
    expect(await readTree(currentBackend().dir2)).toEqual(await readTree(sb.path1));
  });
});

describe('a run with nothing to do, local↔local', () => {
  useBackend('local', () => sb.path2);

  it('starts no rclone (its two listings made here, or by rclone when asked): backend features are remembered, the trash is looked at in-process', { timeout: 120_000 }, async () => {
    await writeTree(sb.path1, { 'a.txt': 'a', 'd/b.txt': 'b' });
    await ok();
    const counter = await countingRclone(sb);
    let seen = 0;
    const startedByRun = async (env: Record<string, string>) => {
      await ok({ ...counter.env, ...env });
      const all = await counter.started();
      return all.slice(seen, (seen = all.length));
    };
    // The first run with this wrapper as the rclone binary asks for features again (another binary).
    expect((await startedByRun({})).filter((c) => c === 'backend')).toHaveLength(2);
    // Both local sides are listed here (SYNC_LOCAL_LISTING=here): no rclone at all.
    expect(await startedByRun({})).toEqual([]);
    expect(await startedByRun({ SYNC_LOCAL_LISTING: 'rclone' })).toEqual(['lsjson', 'lsjson']);
    // Another RCLONE_* setting may change what a backend can do: asked again, by a run that needs
    // to know (one whose listings are the last run's exactly needs nothing of the backends).
    await writeTree(sb.path1, { 'a.txt': 'a changed' });
    expect((await startedByRun({ RCLONE_CHECKERS: '4' })).filter((c) => c === 'backend')).toHaveLength(2);
  });
});
