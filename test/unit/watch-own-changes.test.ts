import { mkdir, mkdtemp, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { unexplainedChanges } from '../../src/appliance/own-changes.ts';
import { writeSnapshot } from '../../src/state/snapshot.ts';
import type { Listing } from '../../src/model.ts';

let root: string;
let snapshotFile: string;

beforeEach(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rs-own-'));
  root = join(dir, 'path1');
  snapshotFile = join(dir, 'snapshot.jsonl');
  await mkdir(root);
});
afterEach(async () => {
  await rm(join(root, '..'), { recursive: true, force: true });
});

/** Writes a file and returns its snapshot entry as a listing after a run would record it. */
async function file(path: string, content: string): Promise<[string, { size: number; mtime: number; hash: string }]> {
  const absolute = join(root, path);
  await mkdir(join(absolute, '..'), { recursive: true });
  await writeFile(absolute, content);
  // rclone lists local times to the nanosecond; the snapshot keeps whole milliseconds.
  await utimes(absolute, new Date('2026-01-01T10:00:00.123Z'), new Date('2026-01-01T10:00:00.1237Z'));
  const info = await stat(absolute);
  return [path, { size: info.size, mtime: Math.floor(info.mtimeMs), hash: '' }];
}

async function commit(path1: Listing): Promise<void> {
  const header = { format: 'rclonesync-snapshot', version: 1, path1: root, path2: 'remote:x', compare: 'size,modtime', hashType: '', filtersHash: '', committedAt: new Date().toISOString() } as const;
  await writeSnapshot(snapshotFile, { header, path1, path2: new Map() });
}

const check = async (...paths: string[]) => [...(await unexplainedChanges({ path1: new Set(paths) }, snapshotFile, { path1: root })).path1].sort();

describe('unexplainedChanges', () => {
  it('drops files that match the committed snapshot (what the run wrote) and keeps edits and new files', async () => {
    const listing: Listing = new Map([await file('copied-in.txt', 'from the other side'), await file('dir/also.txt', 'x'), await file('edited.txt', 'v1')]);
    await commit(listing);
    await writeFile(join(root, 'edited.txt'), 'v2 by a person');
    await file('new.txt', 'never synced');
    expect(await check('copied-in.txt', 'dir/also.txt', 'edited.txt', 'new.txt')).toEqual(['edited.txt', 'new.txt']);
  });

  it('a person touching a synced file (same size, another time) needs a run', async () => {
    await commit(new Map([await file('a.txt', 'same')]));
    await utimes(join(root, 'a.txt'), new Date(), new Date());
    expect(await check('a.txt')).toEqual(['a.txt']);
  });

  it('a gone path needs a run only when the snapshot still has it or files below it', async () => {
    await commit(new Map([await file('removed-by-person.txt', 'x'), await file('folder/removed/deep.txt', 'y')]));
    await rm(join(root, 'removed-by-person.txt'));
    await rm(join(root, 'folder'), { recursive: true });
    // The run's own removals, renames and scratch files are not in the snapshot.
    expect(await check('removed-by-person.txt', 'folder', 'folder/removed', 'moved-to-trash.txt', 'upload.partial')).toEqual(['folder', 'folder/removed', 'removed-by-person.txt']);
  });

  it('a folder counts by its files: one the run created is explained, one a person moved in is not, an empty one is', async () => {
    const listing: Listing = new Map([await file('made-by-run/a/b.txt', 'b')]);
    await commit(listing);
    await file('moved-in/photo.jpg', 'a person moved this folder in');
    await mkdir(join(root, 'empty'));
    expect(await check('made-by-run', 'made-by-run/a', 'moved-in', 'empty')).toEqual(['moved-in']);
  });

  it('counts every change when there is no snapshot yet', async () => {
    await file('a.txt', 'a');
    expect(await check('a.txt', 'gone.txt')).toEqual(['a.txt', 'gone.txt']);
  });
});
