/**
 * Pure pieces of the safety net: trash names, exclusions and retention; journal windows that
 * survive a second kill; the sentinels that tell a root that went away from one a person edited.
 */
import { mkdtemp, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readJournal, writeJournal, writeSpan } from '../../src/state/journal.ts';
import { knownAfterPropagation, pickSentinels, rootsStillListed, snapshotAfter } from '../../src/sync/commit.ts';
import { unchangedSince } from '../../src/sync/propagate.ts';
import { distinctStamp } from '../../src/sync/run.ts';
import { compactStamp, expiredStamps, isStamp, stampTime, trashFolders, trashRoot } from '../../src/sync/trash.ts';
import { excludeRuleFor } from '../../src/rclone/rclone.ts';
import type { FileMeta, Listing } from '../../src/model.ts';

const meta = (size: number, mtime: number, hash = ''): FileMeta => ({ size, mtime, hash });

describe('trash', () => {
  it('stamps are the run start in compact UTC and read back to the second', () => {
    const start = new Date('2026-12-01T08:30:00.789Z');
    expect(compactStamp(start)).toBe('20261201T083000Z');
    expect(stampTime('20261201T083000Z')).toBe(Date.parse('2026-12-01T08:30:00Z'));
    expect(isStamp('20261201T083000Z')).toBe(true);
    for (const name of ['photos', '20261201T083000', '2026-12-01T083000Z', '20261201T083000Z.bak', '']) expect(isStamp(name)).toBe(false);
  });

  it('lives in the root unless configured, and is always excluded from the listing', () => {
    expect(trashRoot('/data', undefined)).toBe('/data/.rclonesync-trash');
    expect(trashRoot('gdrive:', undefined)).toBe('gdrive:.rclonesync-trash');
    expect(trashRoot('gdrive:Backup', 'gdrive:Trash')).toBe('gdrive:Trash');
    expect(trashFolders('/data', undefined)).toEqual(['.rclonesync-trash']);
    expect(trashFolders('/data', '/elsewhere/trash')).toEqual(['.rclonesync-trash']);
    // A configured trash inside the root is kept out of the sync too.
    expect(trashFolders('/data', '/data/old [trash]')).toEqual(['.rclonesync-trash', 'old [trash]']);
    expect(trashFolders('s3:bucket/sync', 's3:bucket/sync/.bin/')).toEqual(['.rclonesync-trash', '.bin']);
    // rclone's rule for such a folder escapes its glob characters.
    expect(excludeRuleFor('old [trash]*')).toBe('/old \\[trash\\]\\*/**');
  });

  it('retention goes by the stamp, never by the files inside, and leaves other folders alone', () => {
    const now = Date.parse('2026-12-31T00:00:00Z');
    const names = ['20261130T235959Z', '20261201T000001Z', '20261215T120000Z', 'my-own-folder', '20261301T000000Z'];
    expect(expiredStamps(names, now, 30)).toEqual(['20261130T235959Z']);
    expect(expiredStamps(names, now, 0)).toEqual(['20261130T235959Z', '20261201T000001Z', '20261215T120000Z']);
    expect(expiredStamps(names, now, 365)).toEqual([]);
  });
});

describe('journal windows', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rs-journal-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps each killed run its own window: a second kill does not hide the first run`s half-written files', async () => {
    const file = join(dir, 'journal.jsonl');
    await writeJournal(file, [
      { startedAt: 1_000_000, lastAliveAt: 1_060_000, copies: [{ to: 'path2', path: 'n24.bin', source: meta(10, 5) }] },
      { startedAt: 2_000_000, lastAliveAt: undefined, copies: [{ to: 'path1', path: 'b.txt', source: meta(3, 7, 'h') }] },
    ]);
    // The live window ends at the heartbeat: the file's mtime.
    await utimes(file, new Date(2_010_000), new Date(2_010_000));
    const windows = await readJournal(file);
    expect(windows).toHaveLength(2);
    expect(windows![0]).toMatchObject({ startedAt: 1_000_000, lastAliveAt: 1_060_000 });
    expect([...windows![0]!.copies]).toEqual([['path2\0n24.bin', meta(10, 5)]]);
    expect(windows![1]).toMatchObject({ startedAt: 2_000_000, lastAliveAt: 2_010_000 });
    expect(writeSpan(windows![0]!)).toEqual({ from: 998_000, to: 1_065_000 });
  });

  it('reads the one-window journal of earlier versions, and treats a torn one as none', async () => {
    const file = join(dir, 'journal.jsonl');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(file, '{"startedAt":5000}\n["path2","a",1,2,""]\n');
    expect((await readJournal(file))![0]!.copies.get('path2\0a')).toEqual(meta(1, 2));
    await writeFile(file, '{"startedAt":5000}\n["path2","a",1,2');
    expect(await readJournal(file)).toBeUndefined();
    expect(await readJournal(join(dir, 'none'))).toBeUndefined();
  });

  it('gives a run a stamp of its own after a killed run in the same second (its trash folder is not this run`s)', async () => {
    const files = { history: join(dir, 'history.jsonl'), journal: join(dir, 'journal.jsonl') };
    const signal = new AbortController().signal;
    const killedAt = Date.UTC(2026, 11, 3, 4, 30, 0, 100);
    const sameSecond = new Date(killedAt + 300);
    // No earlier run: the start stands.
    expect(await distinctStamp(files, sameSecond, signal)).toBe(sameSecond);
    // A SIGKILLed run leaves no history line, only its journal window.
    await writeJournal(files.journal, [{ startedAt: killedAt, lastAliveAt: undefined, copies: [] }]);
    const after = await distinctStamp(files, sameSecond, signal);
    expect(compactStamp(after)).not.toBe(compactStamp(new Date(killedAt)));
    expect(after.getTime()).toBeGreaterThan(killedAt);
  });
});

describe('a root that is still the one listed', () => {
  const listing: Listing = new Map(Array.from({ length: 100 }, (_, i) => [`f${String(i).padStart(3, '0')}`, meta(i, 1000 + i)]));

  it('sentinels are untouched files spread over the listing', () => {
    const touched = new Set(['f000', 'f012']);
    const sentinels = pickSentinels(listing, touched, 8);
    expect(sentinels.length).toBeGreaterThan(0);
    expect(sentinels.length).toBeLessThanOrEqual(8);
    expect(sentinels.some((p) => touched.has(p))).toBe(false);
    expect(pickSentinels(new Map(), new Set(), 8)).toEqual([]);
  });

  it('a person deleting or editing some untouched files is not a vanished root; all of them gone is', () => {
    const sentinels = ['f010', 'f020', 'f030'];
    const relisted: Listing = new Map([['f020', meta(20, 1020)]]);
    expect(rootsStillListed(listing, sentinels, relisted)).toBe(true);
    expect(rootsStillListed(listing, sentinels, new Map())).toBe(false);
    // Same names, other versions: another folder mounted in its place.
    expect(rootsStillListed(listing, sentinels, new Map(sentinels.map((p) => [p, meta(1, 1)])))).toBe(false);
    expect(rootsStillListed(listing, [], new Map())).toBe(true);
  });

  it('a removal or overwrite goes ahead only while the path holds exactly the listed version', () => {
    expect(unchangedSince(meta(1, 2, 'a'), meta(1, 2, 'a'))).toBe(true);
    expect(unchangedSince(meta(1, 2, 'a'), meta(1, 2, ''))).toBe(true);
    expect(unchangedSince(undefined, undefined)).toBe(true);
    expect(unchangedSince(meta(1, 2), meta(1, 3))).toBe(false);
    expect(unchangedSince(meta(1, 2), meta(2, 2))).toBe(false);
    expect(unchangedSince(meta(1, 2, 'a'), meta(1, 2, 'b'))).toBe(false);
    expect(unchangedSince(undefined, meta(1, 2))).toBe(false);
    expect(unchangedSince(meta(1, 2), undefined)).toBe(false);
  });
});

describe('the snapshot a run commits', () => {
  const compare = { mtimeToleranceMs: 0, commonHash: false };
  const copyTo2 = { kind: 'copy', from: 'path1', path: 'new.txt', reason: 'new', size: 1 } as const;

  it('is made in the listings’ own maps, also when a listing is the snapshot’s own map; an action not done there takes back the snapshot’s entries as they were', () => {
    const base = { path1: new Map([['old.txt', meta(1, 1)], ['gone.txt', meta(3, 3)]]), path2: new Map([['old.txt', meta(1, 1)], ['gone.txt', meta(3, 3)]]) };
    // path2 was listed exactly as its snapshot has it: observe hands over the snapshot's own map.
    const current = { path1: new Map([['old.txt', meta(1, 1)], ['new.txt', meta(1, 5)]]), path2: base.path2 };
    // path1 deleted gone.txt; its deletion on path2 did not happen (it is still there), new.txt arrived.
    const removal = { kind: 'delete', side: 'path2', path: 'gone.txt' } as const;
    const relisted = { path1: new Map(), path2: new Map([['new.txt', meta(1, 5)], ['gone.txt', meta(3, 3)]]) };
    const { snapshot, done, incomplete } = snapshotAfter({ actions: [copyTo2, removal], current, base, relisted, compare, propagationSucceeded: false });
    expect(done).toEqual([copyTo2]);
    expect(incomplete).toEqual(['gone.txt']);
    expect(snapshot.path1).toBe(current.path1);
    expect(snapshot.path2).toBe(base.path2);
    expect([...snapshot.path2.keys()].sort()).toEqual(['gone.txt', 'new.txt', 'old.txt']);
    // Taken back on both sides, so the next run sees path1's deletion again.
    expect(snapshot.path1.get('gone.txt')).toEqual(meta(3, 3));
    expect(snapshot.path2.get('gone.txt')).toEqual(meta(3, 3));
  });

  it('an action not done after a done one on the same name takes back the snapshot’s entry as it was before the run, not as the done one left it', () => {
    const base = { path1: new Map([['old.txt', meta(1, 1)]]), path2: new Map([['old.txt', meta(1, 1)]]) };
    const current = { path1: new Map([['old.txt', meta(1, 1)], ['new.txt', meta(1, 5)]]), path2: base.path2 };
    // An action after the copy names new.txt too, and is not done (new.txt is still on path2).
    const removal = { kind: 'delete', side: 'path2', path: 'new.txt' } as const;
    const relisted = { path1: new Map(), path2: new Map([['new.txt', meta(1, 5)]]) };
    const { snapshot, incomplete } = snapshotAfter({ actions: [copyTo2, removal], current, base, relisted, compare, propagationSucceeded: false });
    expect(incomplete).toEqual(['new.txt']);
    expect(snapshot.path2).toBe(base.path2);
    expect(snapshot.path2.has('new.txt')).toBe(false);
    expect(snapshot.path1.has('new.txt')).toBe(false);
  });

  it('an action not done takes the previous snapshot’s entries back on both sides; a done one beside it takes what was listed again', () => {
    const base = { path1: new Map([['a.txt', meta(1, 1)]]), path2: new Map([['a.txt', meta(1, 1)]]) };
    const current = { path1: new Map([['a.txt', meta(2, 9)], ['new.txt', meta(1, 5)]]), path2: new Map([['a.txt', meta(1, 1)]]) };
    const edit = { kind: 'copy', from: 'path1', path: 'a.txt', reason: 'modified', size: 2 } as const;
    // new.txt arrived; a.txt did not (path2 still holds the old version).
    const relisted = { path1: new Map(), path2: new Map([['new.txt', meta(1, 5)], ['a.txt', meta(1, 1)]]) };
    const { snapshot, done, incomplete } = snapshotAfter({ actions: [edit, copyTo2], current, base, relisted, compare, propagationSucceeded: false });
    expect(done).toEqual([copyTo2]);
    expect(incomplete).toEqual(['a.txt']);
    expect(snapshot.path1.get('a.txt')).toEqual(meta(1, 1));
    expect(snapshot.path2.get('a.txt')).toEqual(meta(1, 1));
    expect(snapshot.path2.get('new.txt')).toEqual(meta(1, 5));
  });

  it('after a first run onto an empty side, that side’s snapshot is its relisting, without what was not done', () => {
    const none = { path1: new Map<string, FileMeta>(), path2: new Map<string, FileMeta>() };
    const current = { path1: new Map([['new.txt', meta(1, 5)], ['late.txt', meta(2, 6)]]), path2: new Map<string, FileMeta>() };
    const late = { kind: 'copy', from: 'path1', path: 'late.txt', reason: 'new', size: 2 } as const;
    // late.txt on path2 is not the version path1 listed (someone wrote it there meanwhile).
    const relisted = { path1: new Map<string, FileMeta>(), path2: new Map([['new.txt', meta(1, 5)], ['late.txt', meta(7, 9)]]) };
    const { snapshot, done, incomplete } = snapshotAfter({ actions: [copyTo2, late], current, base: none, relisted, compare, propagationSucceeded: true });
    expect(done).toEqual([copyTo2]);
    expect(incomplete).toEqual(['late.txt']);
    expect(snapshot.path2).toBe(relisted.path2);
    expect([...snapshot.path2]).toEqual([['new.txt', meta(1, 5)]]);
    // Not done: no entry on either side, so the next run sees late.txt as new on both and keeps both.
    expect(snapshot.path1).toBe(current.path1);
    expect([...snapshot.path1.keys()]).toEqual(['new.txt']);
  });
});

describe('what the commit knows without listing again', () => {
  const none = { path1: new Set<string>(), path2: new Set<string>() };
  const listing = (entries: Record<string, FileMeta>): Listing => new Map(Object.entries(entries));

  it('takes moves, then removals, then the copies’ listing, in the order they happen on a side', () => {
    const current = { path1: listing({}), path2: listing({ 'old.txt': meta(3, 1), 'gone.txt': meta(4, 2), 'shared.txt': meta(5, 3) }) };
    const learned = {
      moved: { path1: [], path2: [{ from: 'old.txt', to: 'new.txt' }] },
      // "shared.txt" is a removal whose name a planned move also uses: their order is not known, so it is listed.
      removedFiles: { path1: [], path2: ['gone.txt', 'shared.txt'] },
      listedAfterCopies: { path1: new Map([['a.txt', meta(1, 10)], ['vanished.txt', undefined]]), path2: new Map([['b.txt', meta(2, 20)]]) },
    };
    const touched = {
      otherwise: { path1: new Set(['a.txt', 'vanished.txt']), path2: new Set(['gone.txt', 'shared.txt', 'b.txt']) },
      byMoves: { path1: new Set<string>(), path2: new Set(['old.txt', 'new.txt', 'shared.txt']) },
    };
    const known = knownAfterPropagation(learned, current, touched);
    expect([...known.path1]).toEqual([['a.txt', meta(1, 10)], ['vanished.txt', undefined]]);
    expect(new Map(known.path2)).toEqual(
      new Map<string, FileMeta | undefined>([['old.txt', undefined], ['new.txt', meta(3, 1)], ['gone.txt', undefined], ['b.txt', meta(2, 20)]]),
    );
  });

  it('knows nothing that propagation did not report', () => {
    const current = { path1: listing({ 'x.txt': meta(1, 1) }), path2: listing({ 'x.txt': meta(1, 1) }) };
    const learned = { moved: { path1: [], path2: [] }, removedFiles: { path1: [], path2: [] }, listedAfterCopies: { path1: new Map(), path2: new Map() } };
    const known = knownAfterPropagation(learned, current, { otherwise: none, byMoves: none });
    expect(known.path1.size + known.path2.size).toBe(0);
  });
});
