import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Rclone } from '../../src/rclone/rclone.ts';
import { readTrashStats, writeTrashStats, type TrashStats } from '../../src/state/trash-stats.ts';
import { tendTrash } from '../../src/sync/tend-trash.ts';

const DAY = 86_400_000;
const now = Date.UTC(2026, 11, 1, 12, 0, 0);
/** A run's stamp, as engine.ts names its trash folder. */
const runStamp = '20261201T120000Z';
const trashRoots = { path1: '/p1/.rclonesync-trash', path2: 'remote:p2/.rclonesync-trash' };

/** Records every call; each trash root holds the named run folders. */
function fakeRclone(folders: Record<string, string[]>) {
  const calls: string[] = [];
  const rclone = {
    folderNames: async (root: string) => {
      calls.push(`names ${root}`);
      return folders[root] ?? [];
    },
    purgeFolders: async (root: string, names: string[]) => {
      calls.push(`purge ${root} ${names.join(',')}`);
      folders[root] = (folders[root] ?? []).filter((n) => !names.includes(n));
    },
    size: async (root: string) => {
      calls.push(`size ${root}`);
      return { files: 10 * (folders[root]?.length ?? 0), bytes: 1000 * (folders[root]?.length ?? 0) };
    },
  };
  return { rclone: rclone as unknown as Rclone, calls };
}

let dir: string;
let statsFile: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tend-trash-'));
  statsFile = join(dir, 'trash-stats.json');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const options = (rclone: Rclone, trashDays = 30) => ({ rclone, logger: pino({ level: 'silent' }), statsFile, trashRoots, trashDays, now });
const fresh = (path1: TrashStats['path1'], path2: TrashStats['path2']): TrashStats => ({ path1, path2, checkedAt: new Date().toISOString() });

describe('tendTrash', () => {
  it('without counts yet, lists, purges what expired and counts both sides', async () => {
    const { rclone, calls } = fakeRclone({ [trashRoots.path1]: ['20261001T000000Z', '20261125T000000Z', 'mine'], [trashRoots.path2]: [] });
    await tendTrash(options(rclone), undefined);
    expect(calls.sort()).toEqual([`names ${trashRoots.path1}`, `names ${trashRoots.path2}`, `purge ${trashRoots.path1} 20261001T000000Z`, `size ${trashRoots.path1}`, `size ${trashRoots.path2}`].sort());
    const stats = (await readTrashStats(statsFile))!;
    expect(stats.path1).toEqual({ files: 20, bytes: 2000, oldestStamp: '20261125T000000Z' });
    expect(stats.path2).toEqual({ files: 0, bytes: 0, oldestStamp: null });
  });

  it('with fresh counts and nothing expired, lists the folders but counts nothing again, adding what the run trashed', async () => {
    await writeTrashStats(statsFile, fresh({ files: 5, bytes: 50, oldestStamp: '20261125T000000Z' }, { files: 0, bytes: 0, oldestStamp: null }));
    const { rclone, calls } = fakeRclone({ [trashRoots.path1]: ['20261125T000000Z', runStamp], [trashRoots.path2]: [runStamp] });
    await tendTrash(options(rclone), { path1: { files: 1, bytes: 10 }, path2: { files: 2, bytes: 20 } });
    expect(calls.sort()).toEqual([`names ${trashRoots.path1}`, `names ${trashRoots.path2}`]);
    const stats = (await readTrashStats(statsFile))!;
    expect(stats.path1).toEqual({ files: 6, bytes: 60, oldestStamp: '20261125T000000Z' });
    expect(stats.path2).toEqual({ files: 2, bytes: 20, oldestStamp: runStamp });
  });

  it('purges an expired folder the counts never saw (put there by hand, or left by a failed run) on the very next run', async () => {
    const old = new Date(now - 31 * DAY).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
    await writeTrashStats(statsFile, fresh({ files: 5, bytes: 50, oldestStamp: '20261130T000000Z' }, { files: 0, bytes: 0, oldestStamp: null }));
    const { rclone, calls } = fakeRclone({ [trashRoots.path1]: [old, '20261130T000000Z'], [trashRoots.path2]: [] });
    await tendTrash(options(rclone), undefined);
    expect(calls).toContain(`purge ${trashRoots.path1} ${old}`);
    const stats = (await readTrashStats(statsFile))!;
    // Purged: counted again.
    expect(stats.path1).toEqual({ files: 10, bytes: 1000, oldestStamp: '20261130T000000Z' });
    expect(stats.path2).toEqual({ files: 0, bytes: 0, oldestStamp: null });
  });

  it('empties a trash that holds folders once it is turned off (SYNC_TRASH_DAYS=0), though nothing has expired', async () => {
    await writeTrashStats(statsFile, fresh({ files: 5, bytes: 50, oldestStamp: '20261130T000000Z' }, { files: 0, bytes: 0, oldestStamp: null }));
    const { rclone, calls } = fakeRclone({ [trashRoots.path1]: ['20261130T000000Z'] });
    await tendTrash(options(rclone, 0), undefined);
    expect(calls.sort()).toEqual([`names ${trashRoots.path1}`, `names ${trashRoots.path2}`, `purge ${trashRoots.path1} 20261130T000000Z`, `size ${trashRoots.path1}`]);
    expect((await readTrashStats(statsFile))!.path1).toEqual({ files: 0, bytes: 0, oldestStamp: null });
  });

  it('lists and counts both sides again once the counts are an hour old', async () => {
    await writeTrashStats(statsFile, { ...fresh({ files: 5, bytes: 50, oldestStamp: null }, { files: 0, bytes: 0, oldestStamp: null }), checkedAt: new Date(Date.now() - 3_700_000).toISOString() });
    const { rclone, calls } = fakeRclone({ [trashRoots.path1]: [], [trashRoots.path2]: ['20261130T000000Z'] });
    await tendTrash(options(rclone), undefined);
    expect(calls.filter((c) => c.startsWith('names')).length).toBe(2);
    const stats = (await readTrashStats(statsFile))!;
    expect(stats.path1).toEqual({ files: 0, bytes: 0, oldestStamp: null });
    expect(stats.path2).toEqual({ files: 10, bytes: 1000, oldestStamp: '20261130T000000Z' });
    expect(Date.now() - Date.parse(stats.checkedAt)).toBeLessThan(60_000);
  });
});
