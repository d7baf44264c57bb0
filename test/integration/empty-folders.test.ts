/**
 * Folders synced (SYNC_EMPTY_DIRS), on a local path2 and on SFTP: new folders, empty or not, reach
 * the other side; removed ones are removed there once empty, never one that still holds something;
 * folders a rename leaves empty go; a second run has nothing to do.
 */
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { actionsOf, type LogLine } from '../helpers/logs.ts';
import { useSandbox } from '../helpers/sandbox.ts';
import { readTree, writeTree, writeTreeFile } from '../helpers/trees.ts';
import { backendDetail, backendRunEnv, currentBackend, DISK_BACKENDS, useBackend } from '../helpers/backends.ts';

const { sandbox: sb, ok } = useSandbox('rs-folders-', { runEnv: backendRunEnv, failureDetail: backendDetail });
const dir2 = () => currentBackend().dir2;

/** Every folder under root (the trash left out). */
async function foldersOf(root: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string, prefix: string) => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (!entry.isDirectory() || (prefix === '' && entry.name === '.rclonesync-trash')) continue;
      found.push(`${prefix}${entry.name}`);
      await walk(join(dir, entry.name), `${prefix}${entry.name}/`);
    }
  };
  await walk(root, '');
  return found.sort();
}
const folderLines = (logs: readonly LogLine[]) => logs.filter((l) => typeof l.folder === 'string').map((l) => l.msg);
const exists = (path: string) => stat(path).then(() => true, () => false);

describe.each(DISK_BACKENDS)('empty folders ($name)', ({ kind }) => {
  useBackend(kind, () => sb.path2);

  it('new empty folders are made on the other side; removed ones removed; a second run has nothing to do', async () => {
    await writeTree(sb.path1, { 'docs/a.txt': 'a' });
    await mkdir(join(sb.path1, 'empty/deeper'), { recursive: true });
    const first = await ok();
    expect(folderLines(first.logs)).toEqual(['create folder on path2: empty', 'create folder on path2: empty/deeper']);
    expect(await foldersOf(dir2())).toEqual(['docs', 'empty', 'empty/deeper']);
    expect(folderLines((await ok()).logs)).toEqual([]);

    // Made on path2, removed on path2: carried to path1.
    await mkdir(join(dir2(), 'from2'));
    await rm(join(dir2(), 'empty/deeper'), { recursive: true });
    const second = await ok();
    expect(folderLines(second.logs).sort()).toEqual(['create folder on path1: from2', 'remove folder on path1: empty/deeper (if empty)']);
    expect(await foldersOf(sb.path1)).toEqual(['docs', 'empty', 'from2']);
    const third = await ok();
    expect(folderLines(third.logs)).toEqual([]);
    expect(actionsOf(third.logs)).toEqual([]);
  });

  it('a folder removed with its files on one side is removed on the other; one holding a new file stays', async () => {
    // Enough other files that the deletions stay under the default max-delete.
    const others = Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`keep${i}.txt`, `k${i}`]));
    await writeTree(sb.path1, { 'old/a.txt': 'a', 'old/sub/b.txt': 'b', 'busy/c.txt': 'c', ...others });
    await ok();
    await rm(join(sb.path1, 'old'), { recursive: true });
    await rm(join(sb.path1, 'busy'), { recursive: true });
    // Meanwhile path2 put a new file into busy: it and its folder must survive.
    await writeTreeFile(dir2(), 'busy/new.txt', 'new on path2');
    await ok();
    expect(await exists(join(dir2(), 'old'))).toBe(false);
    expect(await readTree(dir2())).toEqual({ 'busy/new.txt': 'new on path2', ...others });
    expect(await readTree(sb.path1)).toEqual({ 'busy/new.txt': 'new on path2', ...others });
    expect(folderLines((await ok()).logs)).toEqual([]);
  });

  it('a renamed folder leaves no empty folder behind on the other side', async () => {
    await writeTree(sb.path1, { 'photos/2026/a.jpg': 'a', 'photos/2026/b.jpg': 'b', 'photos/c.jpg': 'c', 'x.txt': 'x' });
    await mkdir(join(sb.path1, 'photos/empty'));
    await ok();
    await rename(join(sb.path1, 'photos'), join(sb.path1, 'pictures'));
    await ok();
    expect(await foldersOf(dir2())).toEqual(await foldersOf(sb.path1));
    expect(await foldersOf(dir2())).toEqual(['pictures', 'pictures/2026', 'pictures/empty']);
    expect(actionsOf((await ok()).logs)).toEqual([]);
  });

  it('SYNC_EMPTY_DIRS=false: empty folders stay where they are', async () => {
    await writeTree(sb.path1, { 'a.txt': 'a' });
    await mkdir(join(sb.path1, 'lonely'));
    await ok({ SYNC_EMPTY_DIRS: 'false' });
    expect(await foldersOf(dir2())).toEqual([]);
  });
});
