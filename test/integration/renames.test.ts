/**
 * Renames and moves carried over as moves (SYNC_TRACK_RENAMES), on a local path2 and on SFTP: the
 * moved file keeps its inode on the other side (moved, not copied), the max-delete gate counts only
 * real deletions, and renames interplay with changes on the other side without losing anything.
 */
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { actionsOf, copiesOf, deletesOf, summaryOf } from '../helpers/logs.ts';
import { useSandbox } from '../helpers/sandbox.ts';
import { listFiles, minutesAgo, readTree, statTree, TRASH_FOLDER, writeTree, writeTreeFile } from '../helpers/trees.ts';
import { backendDetail, backendRunEnv, currentBackend, DISK_BACKENDS, useBackend } from '../helpers/backends.ts';

const { sandbox: sb, ok } = useSandbox('rs-renames-', { runEnv: backendRunEnv, failureDetail: backendDetail });
const dir2 = () => currentBackend().dir2;

/** Both sides hold `tree` after a run. */
async function synced(tree: Record<string, string>): Promise<void> {
  await writeTree(sb.path1, tree);
  await ok();
  expect(await readTree(dir2())).toEqual(tree);
}

async function move(root: string, from: string, to: string): Promise<void> {
  await mkdir(dirname(join(root, to)), { recursive: true });
  await rename(join(root, from), join(root, to));
}

const movesOf = (logs: Parameters<typeof actionsOf>[0]) => logs.filter((l) => l.action === 'move');

describe.each(DISK_BACKENDS)('renames and moves ($name)', ({ kind }) => {
  useBackend(kind, () => sb.path2);

  it('a file renamed on path1 is moved on path2: one log line, the same inode, nothing copied or deleted', async () => {
    await synced({ 'docs/report.txt': 'the report', 'other.txt': 'o' });
    const inode = (await statTree(dir2()))['docs/report.txt']!.ino;
    await move(sb.path1, 'docs/report.txt', 'archive/report-2026.txt');
    const result = await ok();
    expect(movesOf(result.logs).map((l) => l.msg)).toEqual(['move on path2: docs/report.txt -> archive/report-2026.txt']);
    expect(copiesOf(result.logs)).toEqual([]);
    expect(deletesOf(result.logs)).toEqual([]);
    expect(summaryOf(result.logs)).toMatchObject({ movesOnPath2: 1, movesOnPath1: 0, deletesOnPath2: 0, bytes: 0 });
    expect(await readTree(dir2())).toEqual({ 'archive/report-2026.txt': 'the report', 'other.txt': 'o' });
    expect((await statTree(dir2()))['archive/report-2026.txt']!.ino).toBe(inode);
    // No trash entry for a move, and the emptied folder is gone.
    expect((await listFiles(dir2(), { withTrash: true })).filter((p) => p.startsWith(TRASH_FOLDER))).toEqual([]);
    expect(actionsOf((await ok()).logs)).toEqual([]);
  });

  it('a folder holding 60% of the files renamed: moved with the default max-delete (exit 0), inodes kept', async () => {
    const tree: Record<string, string> = {};
    for (let i = 0; i < 6; i++) tree[`photos/2026/p${i}.jpg`] = `photo ${i}`;
    for (let i = 0; i < 4; i++) tree[`docs/d${i}.txt`] = `doc ${i}`;
    await synced(tree);
    const before = await statTree(dir2());
    await move(sb.path1, 'photos', 'pictures');
    const result = await ok();
    expect(movesOf(result.logs)).toHaveLength(6);
    expect(deletesOf(result.logs)).toEqual([]);
    expect(copiesOf(result.logs)).toEqual([]);
    expect(summaryOf(result.logs)).toMatchObject({ movesOnPath2: 6, deletesOnPath2: 0 });
    const after = await statTree(dir2());
    for (let i = 0; i < 6; i++) expect(after[`pictures/2026/p${i}.jpg`]!.ino).toBe(before[`photos/2026/p${i}.jpg`]!.ino);
    expect(await readTree(dir2())).toEqual(await readTree(sb.path1));
    expect(Object.keys(after).some((p) => p.startsWith('photos/'))).toBe(false);
    expect(actionsOf((await ok()).logs)).toEqual([]);
  });

  it('a file moved into a new folder on path2 is moved on path1', async () => {
    await synced({ 'inbox/scan.pdf': 'scanned', 'keep.txt': 'k' });
    const inode = (await statTree(sb.path1))['inbox/scan.pdf']!.ino;
    await move(dir2(), 'inbox/scan.pdf', 'filed/2026/scan.pdf');
    const result = await ok();
    expect(movesOf(result.logs).map((l) => l.msg)).toEqual(['move on path1: inbox/scan.pdf -> filed/2026/scan.pdf']);
    expect(await readTree(sb.path1)).toEqual({ 'filed/2026/scan.pdf': 'scanned', 'keep.txt': 'k' });
    expect((await statTree(sb.path1))['filed/2026/scan.pdf']!.ino).toBe(inode);
  });

  it('interplays: renamed + modified, renamed differently on both sides, renamed + deleted: nothing is lost', async () => {
    await synced({ 'a.txt': 'A', 'b.txt': 'B', 'c.txt': 'C', 'keep.txt': 'k' });
    // a: renamed on path1, modified on path2.
    await move(sb.path1, 'a.txt', 'a-renamed.txt');
    await writeTreeFile(dir2(), 'a.txt', 'A modified on path2', minutesAgo(1, { wholeSeconds: true }));
    // b: renamed differently on both sides.
    await move(sb.path1, 'b.txt', 'b-one.txt');
    await move(dir2(), 'b.txt', 'b-two.txt');
    // c: renamed on path2, deleted on path1.
    await move(dir2(), 'c.txt', 'c-renamed.txt');
    await rm(join(sb.path1, 'c.txt'));
    await ok();
    const expected = { 'a.txt': 'A modified on path2', 'a-renamed.txt': 'A', 'b-one.txt': 'B', 'b-two.txt': 'B', 'c-renamed.txt': 'C', 'keep.txt': 'k' };
    expect(await readTree(sb.path1)).toEqual(expected);
    expect(await readTree(dir2())).toEqual(expected);
    expect(actionsOf((await ok()).logs)).toEqual([]);
  });

  it('SYNC_TRACK_RENAMES=false: a rename is a copy plus a deletion, as before', async () => {
    await synced({ 'a.txt': 'A', 'b.txt': 'B', 'c.txt': 'C' });
    await move(sb.path1, 'a.txt', 'z.txt');
    const result = await ok({ SYNC_TRACK_RENAMES: 'false' });
    expect(movesOf(result.logs)).toEqual([]);
    expect(copiesOf(result.logs)).toHaveLength(1);
    expect(deletesOf(result.logs)).toHaveLength(1);
    expect(await readTree(dir2())).toEqual({ 'b.txt': 'B', 'c.txt': 'C', 'z.txt': 'A' });
  });
});
