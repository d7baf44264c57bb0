/**
 * A run killed with SIGKILL in the middle of its moves: the next run converges with no copy, no
 * deletion and no conflict copy — what was moved is recognised as renamed alike on both sides,
 * what was not is moved then.
 */
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { conflictCopies } from '../helpers/conflicts.ts';
import { copiesOf, deletesOf, summaryOf } from '../helpers/logs.ts';
import { dump, spawnCli } from '../helpers/processes.ts';
import { useSandbox } from '../helpers/sandbox.ts';
import { listFiles, readTree, writeTree } from '../helpers/trees.ts';
import { backendDetail, backendRunEnv, currentBackend, DISK_BACKENDS, useBackend } from '../helpers/backends.ts';
import { waitDuringRun } from '../helpers/inject.ts';

const { sandbox: sb, ok } = useSandbox('rs-renames-killed-', { runEnv: backendRunEnv, failureDetail: backendDetail });
const N = 300;

describe.each(DISK_BACKENDS)('SIGKILL during moves ($name)', ({ kind }) => {
  useBackend(kind, () => sb.path2);

  it('the next run converges without copies, deletions or conflicts', { timeout: 300_000 }, async () => {
    const tree: Record<string, string> = {};
    for (let i = 0; i < N; i++) tree[`d${i % 5}/f${i}.txt`] = `file number ${i}`;
    await writeTree(sb.path1, tree);
    await ok();
    for (let i = 0; i < N; i++) await rename(join(sb.path1, `d${i % 5}`, `f${i}.txt`), join(sb.path1, `d${(i + 1) % 5}`, `moved-${i}.txt`));

    const running = spawnCli(['run'], sb.env({ ...backendRunEnv() }));
    // Kill it once some, not all, of the moves are done on path2.
    await waitDuringRun(running, 'the first moves on path2', async () => {
      const files = await listFiles(currentBackend().dir2).catch(() => []);
      return files.some((p) => p.includes('moved-'));
    });
    running.kill('SIGKILL');
    const killed = await running.result;
    const movedBefore = (await listFiles(currentBackend().dir2)).filter((p) => p.includes('moved-')).length;
    expect(killed.exitCode, dump(killed)).not.toBe(0);

    const next = await ok();
    expect(copiesOf(next.logs), dump(next)).toEqual([]);
    // The journal names the moves made before the kill: no content check of them is needed. A kill
    // that lands after the run began committing may find the snapshot written and the journal gone:
    // then the next run has nothing left to move, and says nothing of an interruption.
    const reachedCommit = killed.logs.some((l) => l.msg === 'committing');
    if (movedBefore > 0 && !reachedCommit) expect(next.logs.some((l) => l.msg === 'an earlier run was interrupted while moving these files; they are moved already'), dump(next)).toBe(true);
    expect(next.logs.some((l) => String(l.msg).startsWith('comparing contents'))).toBe(false);
    expect(deletesOf(next.logs)).toEqual([]);
    expect(summaryOf(next.logs)).toMatchObject({ conflicts: 0, copiesToPath1: 0, copiesToPath2: 0, deletesOnPath1: 0, deletesOnPath2: 0 });
    expect(summaryOf(next.logs)!.movesOnPath2).toBe(N - movedBefore);
    const files2 = await readTree(currentBackend().dir2);
    expect(files2).toEqual(await readTree(sb.path1));
    expect(conflictCopies(Object.keys(files2))).toEqual([]);
    expect(Object.keys(files2)).toHaveLength(N);
  });
});
