/**
 * The trash as the sync's safety net, on local↔local and local↔SFTP: whatever a run removes or
 * overwrites on a side is moved to `<root>/.rclonesync-trash/<run stamp>/<path>` on that side,
 * keeping its modification time; run folders are purged by their stamp after SYNC_TRASH_DAYS;
 * the trash is never synced, counted or a conflict; a dry run and SYNC_TRASH_DAYS=0 leave none.
 */
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { actionsOf, summaryOf } from '../helpers/logs.ts';
import { useSandbox } from '../helpers/sandbox.ts';
import { minutesAgo, readTree, removeFile, TRASH_FOLDER, writeTree, writeTreeFile } from '../helpers/trees.ts';
import { backendDetail, backendRunEnv, DISK_BACKENDS, currentBackend, useBackend } from '../helpers/backends.ts';

const { sandbox: sb, ok } = useSandbox('rs-trash-', { runEnv: backendRunEnv, failureDetail: backendDetail });
const STAMP = /^\d{8}T\d{6}Z$/;

/** Every file in a side's trash, as `<stamp>/<path>` -> content. */
async function trashOf(dir: string): Promise<Record<string, string>> {
  const trash = join(dir, TRASH_FOLDER);
  const tree = await readTree(trash).catch(() => ({}));
  return tree;
}
const stampsIn = async (dir: string) => (await readdir(join(dir, TRASH_FOLDER)).catch(() => [] as string[])).sort();
/** SFTP keeps modification times to the second. */
const OLD = minutesAgo(60 * 24 * 400, { wholeSeconds: true });

describe.each(DISK_BACKENDS)('the trash ($name)', ({ kind }) => {
  useBackend(kind, () => sb.path2, 'trashsftp');
  const dir2 = () => currentBackend().dir2;

  it('a carried deletion and an overwritten old version go to that side`s trash, with their own mtimes; emptied folders go', async () => {
    await writeTree(sb.path1, { 'a.txt': 'a', 'b.txt': 'b v1', 'sub/c.txt': 'c', 'keep.txt': 'k' });
    for (const path of ['a.txt', 'b.txt', 'sub/c.txt', 'keep.txt']) await writeTreeFile(sb.path1, path, (await readTree(sb.path1))[path]!, OLD);
    await ok();
    await removeFile(sb.path1, 'a.txt');
    // The folder goes with its file (SYNC_EMPTY_DIRS keeps a folder that path1 still has).
    await rm(join(sb.path1, 'sub'), { recursive: true });
    await writeTreeFile(sb.path1, 'b.txt', 'b v2', minutesAgo(1, { wholeSeconds: true }));
    const run = await ok({ SYNC_MAX_DELETE: '100' });
    // The summary counts what went to each trash; the pair's state says what each trash holds.
    expect(summaryOf(run.logs)).toMatchObject({ trashedOnPath1: 0, trashedOnPath2: 3 });
    const stats = JSON.parse(await readFile(join(await sb.pairDir(), 'trash.json'), 'utf8')) as Record<string, { files: number; bytes: number; oldestStamp: string | null }>;
    expect(stats.path2).toMatchObject({ files: 3, bytes: 1 + 4 + 1 });
    expect(stats.path2!.oldestStamp).toMatch(STAMP);
    expect(stats.path1).toEqual({ files: 0, bytes: 0, oldestStamp: null });

    expect(await readTree(dir2())).toEqual({ 'b.txt': 'b v2', 'keep.txt': 'k' });
    const stamps = await stampsIn(dir2());
    expect(stamps).toHaveLength(1);
    expect(stamps[0]).toMatch(STAMP);
    expect(await trashOf(dir2())).toEqual({ [`${stamps[0]}/a.txt`]: 'a', [`${stamps[0]}/b.txt`]: 'b v1', [`${stamps[0]}/sub/c.txt`]: 'c' });
    const trashed = await stat(join(dir2(), TRASH_FOLDER, stamps[0]!, 'a.txt'));
    expect(Math.abs(trashed.mtimeMs - OLD.getTime())).toBeLessThan(1000);
    // The folder the deletion emptied is gone; path1 has no trash (it removed nothing).
    await expect(stat(join(dir2(), 'sub'))).rejects.toThrow();
    expect(await stampsIn(sb.path1)).toEqual([]);
    // The trash is never synced: the next run has nothing to do.
    expect(actionsOf((await ok()).logs)).toEqual([]);
    expect(await trashOf(sb.path1)).toEqual({});

    // Another run's removal adds to the counts (without counting the trash again), which stay what it holds.
    await removeFile(sb.path1, 'keep.txt');
    await ok({ SYNC_MAX_DELETE: '100' });
    const after = JSON.parse(await readFile(join(await sb.pairDir(), 'trash.json'), 'utf8')) as Record<string, { files: number; bytes: number }>;
    expect(after.path2).toMatchObject({ files: 4, bytes: 1 + 4 + 1 + 1 });
    expect(Object.keys(await trashOf(dir2()))).toHaveLength(4);
  });

  it('a file replaced by a folder of the same name: the file goes to the trash', async () => {
    await writeTree(sb.path1, { x: 'plain file', 'y.txt': 'y' });
    await ok();
    await removeFile(sb.path1, 'x');
    await writeTree(sb.path1, { 'x/inside.txt': 'now a folder' });
    await ok({ SYNC_MAX_DELETE: '100' });
    expect(await readTree(dir2())).toEqual({ 'x/inside.txt': 'now a folder', 'y.txt': 'y' });
    const [stamp] = await stampsIn(dir2());
    expect(await trashOf(dir2())).toEqual({ [`${stamp}/x`]: 'plain file' });
  });

  it('the trash is never counted, copied or a conflict, whatever it holds; emptying it by hand changes nothing', async () => {
    await writeTree(sb.path1, { 'a.txt': 'a', [`${TRASH_FOLDER}/mine/note.txt`]: 'put there by hand' });
    await writeTree(dir2(), { [`${TRASH_FOLDER}/20200101T000000Z/note.txt`]: 'other content' });
    const first = await ok();
    expect(actionsOf(first.logs).map((l) => l.path)).toEqual(['a.txt']);
    expect(await readTree(dir2())).toEqual({ 'a.txt': 'a' });
    await rm(join(sb.path1, TRASH_FOLDER), { recursive: true });
    await rm(join(dir2(), TRASH_FOLDER), { recursive: true, force: true });
    expect(actionsOf((await ok()).logs)).toEqual([]);
    expect(await readTree(sb.path1)).toEqual({ 'a.txt': 'a' });
  });

  it('retention purges run folders by their stamp (not the files` mtimes) and leaves other folders alone', async () => {
    await writeTree(sb.path1, { 'a.txt': 'a', 'b.txt': 'b' });
    await ok();
    const recent = new Date(Date.now() - 2 * 86_400_000).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
    await writeTree(dir2(), {
      [`${TRASH_FOLDER}/20200101T000000Z/expired.txt`]: 'old run',
      [`${TRASH_FOLDER}/${recent}/ancient.txt`]: 'recent run, ancient file',
      [`${TRASH_FOLDER}/keep-me/mine.txt`]: 'not a stamp',
    });
    await writeTreeFile(dir2(), `${TRASH_FOLDER}/${recent}/ancient.txt`, 'recent run, ancient file', OLD);
    await removeFile(sb.path1, 'a.txt');
    await ok({ SYNC_MAX_DELETE: '100' });
    const stamps = await stampsIn(dir2());
    expect(stamps).not.toContain('20200101T000000Z');
    expect(stamps).toContain(recent);
    expect(stamps).toContain('keep-me');
    expect(stamps.filter((s) => STAMP.test(s) && s !== recent)).toHaveLength(1);
  });

  it('retention runs at the end of every successful run, also one that changes nothing', async () => {
    await writeTree(sb.path1, { 'a.txt': 'a' });
    await ok();
    await writeTree(dir2(), { [`${TRASH_FOLDER}/20200101T000000Z/expired.txt`]: 'old run' });
    expect(actionsOf((await ok()).logs)).toEqual([]);
    expect(await stampsIn(dir2())).toEqual([]);
  });

  it('SYNC_TRASH_DAYS=0: removals are final, and the trash is emptied; a dry run touches no trash', async () => {
    await writeTree(sb.path1, { 'a.txt': 'a', 'b.txt': 'b', 'c.txt': 'c', 'keep.txt': 'k' });
    await ok();
    await removeFile(sb.path1, 'a.txt');
    await ok({ SYNC_DRY_RUN: 'true', SYNC_MAX_DELETE: '100' });
    expect(await stampsIn(dir2())).toEqual([]);
    expect(await readTree(dir2())).toEqual({ 'a.txt': 'a', 'b.txt': 'b', 'c.txt': 'c', 'keep.txt': 'k' });

    await removeFile(sb.path1, 'b.txt');
    await ok({ SYNC_MAX_DELETE: '100' });
    expect((await stampsIn(dir2())).filter((s) => STAMP.test(s))).toHaveLength(1);
    await removeFile(sb.path1, 'c.txt');
    await ok({ SYNC_MAX_DELETE: '100', SYNC_TRASH_DAYS: '0' });
    expect(await readTree(dir2())).toEqual({ 'keep.txt': 'k' });
    expect(await stampsIn(dir2())).toEqual([]);
  });
});

describe('trash settings', () => {
  it('a trash path on another remote than its side is a configuration error naming it', async () => {
    await mkdir(sb.path1, { recursive: true });
    const result = await sb.run({ SYNC_TRASH_PATH2: 'other:trash' });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/SYNC_TRASH_PATH2.*same remote/);
    const days = await sb.run({ SYNC_TRASH_DAYS: 'forever' });
    expect(days.exitCode).toBe(2);
    expect(days.stderr).toMatch(/SYNC_TRASH_DAYS/);
  });
});
