/**
 * Folders (SYNC_EMPTY_DIRS): what planFolders makes and removes, and the snapshot's folder lines
 * (version 2) with version 1 snapshots still loading.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Listing, Side } from '../../src/model.ts';
import { readSnapshot, snapshotHeader, writeSnapshot } from '../../src/state/snapshot.ts';
import { foldersAfter, planFolders, type FolderInput } from '../../src/sync/folders.ts';
import type { Action } from '../../src/sync/types.ts';

const files = (...paths: string[]): Listing => new Map(paths.map((p) => [p, { size: 1, mtime: 1, hash: '' }]));
const set = (...paths: string[]) => new Set(paths);
const input = (over: Partial<FolderInput>): FolderInput => ({
  current: { path1: set(), path2: set() },
  base: { path1: set(), path2: set() },
  files: { path1: files(), path2: files() },
  actions: [],
  canHaveEmpty: { path1: true, path2: true },
  resync: false,
  ...over,
});
const none = { path1: [], path2: [] };

describe('planFolders', () => {
  it('a new empty folder is made on the other side, parents first', () => {
    const plan = planFolders(input({ current: { path1: set('a', 'a/b'), path2: set() } }));
    expect(plan).toEqual({ create: { path1: [], path2: ['a', 'a/b'] }, remove: none });
  });

  it('a folder a copied file makes anyway is not made separately', () => {
    const actions: Action[] = [{ kind: 'copy', from: 'path1', path: 'a/f', reason: 'new', size: 1 }];
    const plan = planFolders(input({ current: { path1: set('a'), path2: set() }, files: { path1: files('a/f'), path2: files() }, actions }));
    expect(plan.create).toEqual(none);
  });

  it('a folder removed on one side is removed on the other (deepest first), if unchanged there', () => {
    const plan = planFolders(input({ current: { path1: set(), path2: set('x', 'x/y') }, base: { path1: set('x', 'x/y'), path2: set('x', 'x/y') } }));
    expect(plan).toEqual({ create: none, remove: { path1: [], path2: ['x/y', 'x'] } });
  });

  it('a folder the run empties by deletions goes when the other side has none of that name, stays when it has', () => {
    const actions: Action[] = [
      { kind: 'delete', side: 'path2', path: 'gone/f' },
      { kind: 'delete', side: 'path2', path: 'kept/f' },
    ];
    const plan = planFolders(input({
      current: { path1: set('kept'), path2: set('gone', 'kept') },
      base: { path1: set('gone', 'kept'), path2: set('gone', 'kept') },
      files: { path1: files(), path2: files('gone/f', 'kept/f') },
      actions,
    }));
    expect(plan.remove).toEqual({ path1: [], path2: ['gone'] });
  });

  it('without a record of folders (old snapshot, resync): made, never removed', () => {
    const plan = planFolders(input({ current: { path1: set('a'), path2: set('b') }, base: undefined }));
    expect(plan).toEqual({ create: { path1: ['b'], path2: ['a'] }, remove: none });
    const resync = planFolders(input({ current: { path1: set('a'), path2: set() }, base: { path1: set('a'), path2: set('a') }, resync: true }));
    expect(resync).toEqual({ create: { path1: [], path2: ['a'] }, remove: none });
  });

  it('a backend without empty folders (S3 without markers) gets none made: nothing to do, every run', () => {
    const plan = planFolders(input({ current: { path1: set('empty'), path2: set() }, canHaveEmpty: { path1: true, path2: false } }));
    expect(plan).toEqual({ create: none, remove: none });
    // The next run sees the same: still nothing (no endless "new folder").
    const again = planFolders(input({ current: { path1: set('empty'), path2: set() }, base: { path1: set('empty'), path2: set() }, canHaveEmpty: { path1: true, path2: false } }));
    expect(again).toEqual({ create: none, remove: none });
  });

  it('a folder that vanished from a backend without real folders (its files went) is not removed on the other side', () => {
    const plan = planFolders(input({ current: { path1: set('kept'), path2: set() }, base: { path1: set('kept'), path2: set('kept') }, canHaveEmpty: { path1: true, path2: false } }));
    expect(plan).toEqual({ create: none, remove: none });
  });

  it('a folder that becomes a file is left to the file plan (no rmdir of it or of folders under it)', () => {
    const actions: Action[] = [{ kind: 'copy', from: 'path1', path: 'y', reason: 'new', size: 1 }];
    const plan = planFolders(input({ current: { path1: set(), path2: set('y', 'y/z') }, base: { path1: set('y', 'y/z'), path2: set('y', 'y/z') }, files: { path1: files('y'), path2: files() }, actions }));
    expect(plan.remove).toEqual(none);
  });

  it('a file where the folder would go blocks it (the file-folder clash rules decide)', () => {
    const plan = planFolders(input({ current: { path1: set('x', 'x/y'), path2: set() }, files: { path1: files(), path2: files('x') } }));
    expect(plan.create).toEqual(none);
  });

  it('foldersAfter: listed, plus made, minus removed, plus every folder above a file', () => {
    expect([...foldersAfter(set('a', 'b'), ['c'], ['b'], files('d/e/f'))].sort()).toEqual(['a', 'c', 'd', 'd/e']);
  });
});

describe('snapshot folders', () => {
  const header = snapshotHeader({ path1: '/a', path2: 'r:b', compare: 'size,modtime', hashType: '', filtersHash: '' });
  const listings: Record<Side, Listing> = { path1: files('f'), path2: files('f') };

  it('version 2 and later record folders and read them back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rs-folders-'));
    try {
      const file = join(dir, 'snapshot.jsonl');
      await writeSnapshot(file, { header, ...listings, folders: { path1: set('e', 'e/f'), path2: set('e') } });
      expect(header.version).toBe(3);
      const read = await readSnapshot(file);
      expect(read?.folders).toEqual({ path1: set('e', 'e/f'), path2: set('e') });
      // A version 1 snapshot (no folder lines, no folder counts) still loads; its folders are unknown.
      const v1 = (await readFile(file, 'utf8'))
        .split('\n')
        .filter((line) => !/^\[\d,"[^"]*"\]$/.test(line))
        // A line for both sides (version 3) is a line for each in version 1.
        .flatMap((line) => (line.startsWith('[3,') ? [line.replace('[3,', '[1,'), line.replace('[3,', '[2,')] : [line]))
        .map((line) => line.replace('"version":3', '"version":1').replace(/,"folders1":\d+,"folders2":\d+/, ''))
        .join('\n');
      await writeFile(file, v1);
      const old = await readSnapshot(file);
      expect(old?.header.version).toBe(1);
      expect(old?.folders).toBeUndefined();
      expect(old?.path1.size).toBe(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
