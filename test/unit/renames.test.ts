/**
 * Rename detection (src/sync/renames.ts), the `move` action in reconciliation, its interplay with
 * changes on the other side, folder-move grouping and the max-delete gate.
 */
import { describe, expect, it } from 'vitest';
import { SafetyStop } from '../../src/errors.ts';
import { emptyCounts, type FileMeta, type Listing } from '../../src/model.ts';
import { stepsOf } from '../../src/sync/propagate.ts';
import { confirmRenames, groupFolderMoves, pathsToHash, renameCandidates } from '../../src/sync/renames.ts';
import { checkMaxDelete } from '../../src/sync/safety.ts';
import { countPlan, type Change, type ChangeSet } from '../../src/sync/types.ts';
import { applyPlan, file, planRun, sidesDiffer, snapshotsOf, type ModelOptions, type ModelSides } from '../helpers/model.ts';

const meta = (size: number, mtime: number, hash = ''): FileMeta => ({ size, mtime, hash });
/** Paths gone and paths new on one side, all of one size and time: candidates by metadata alone. */
const goneAndNew = (gone: string[], added: string[]): ChangeSet =>
  new Map<string, Change>([...gone.map((p): [string, Change] => [p, { kind: 'deleted', before: meta(5, 100) }]), ...added.map((p): [string, Change] => [p, { kind: 'new', now: meta(5, 100) }])]);
const options = (over: Partial<ModelOptions> = {}): ModelOptions => ({
  checksum: false,
  mtimeToleranceMs: 1_000,
  conflictResolve: 'none',
  stamp: '20261201T100000Z',
  resync: false,
  ...over,
});

describe('renameCandidates and confirmRenames', () => {
  const other = (paths: string[]): { changes: ChangeSet; current: Listing } => ({ changes: new Map(), current: new Map(paths.map((p) => [p, meta(1, 1)])) });

  it('a gone path and a new one of the same size and time are one candidate; confirmed by equal content', () => {
    const changes: ChangeSet = new Map([
      ['old.txt', { kind: 'deleted', before: meta(5, 100) }],
      ['new.txt', { kind: 'new', now: meta(5, 100) }],
      ['other.txt', { kind: 'new', now: meta(5, 101) }],
    ]);
    const groups = renameCandidates('path1', changes, other(['old.txt']));
    expect(groups).toEqual([{ side: 'path1', from: ['old.txt'], to: ['new.txt'] }]);
    expect(pathsToHash(groups)).toEqual({ renamed: { path1: ['new.txt'], path2: [] }, kept: { path1: [], path2: ['old.txt'] } });
    const same = confirmRenames(groups, () => 'h');
    expect([...same.path1]).toEqual([['new.txt', 'old.txt']]);
    // Content differs (or is unknown): no rename, copy plus delete as before.
    expect(confirmRenames(groups, (side) => (side === 'path1' ? 'a' : 'b')).path1.size).toBe(0);
    expect(confirmRenames(groups, () => undefined).path1.size).toBe(0);
  });

  it('only renames the other side can follow: its old path unchanged, its new path free', () => {
    const changes: ChangeSet = new Map([
      ['old.txt', { kind: 'deleted', before: meta(5, 100) }],
      ['new.txt', { kind: 'new', now: meta(5, 100) }],
    ]);
    // The other side modified the old path, or holds the new one, or never had the old one.
    expect(renameCandidates('path1', changes, { changes: new Map([['old.txt', { kind: 'modified', now: meta(6, 200), before: meta(5, 100) }]]), current: new Map([['old.txt', meta(6, 200)]]) })).toEqual([]);
    expect(renameCandidates('path1', changes, other(['old.txt', 'new.txt']))).toEqual([]);
    expect(renameCandidates('path1', changes, other([]))).toEqual([]);
  });

  it('ambiguous candidates (several of one size and time) are paired only by content', () => {
    const groups = renameCandidates('path2', goneAndNew(['a', 'b', 'c'], ['x', 'y', 'z']), other(['a', 'b', 'c']));
    expect(groups).toEqual([{ side: 'path2', from: ['a', 'b', 'c'], to: ['x', 'y', 'z'] }]);
    // a's content is now at y, b's at x; z holds something else (a new file after all).
    const content: Record<string, string> = { 'path1:a': 'A', 'path1:b': 'B', 'path1:c': 'C', 'path2:x': 'B', 'path2:y': 'A', 'path2:z': 'Z' };
    const confirmed = confirmRenames(groups, (side, path) => content[`${side}:${path}`]);
    expect(Object.fromEntries(confirmed.path2)).toEqual({ x: 'b', y: 'a' });
  });

  it('files of equal content are interchangeable: paired in name order', () => {
    const confirmed = confirmRenames(renameCandidates('path1', goneAndNew(['a', 'b'], ['x', 'y']), other(['a', 'b'])), () => 'same');
    expect(Object.fromEntries(confirmed.path1)).toEqual({ x: 'a', y: 'b' });
  });

  it('hash-confirmed from the listings: a listed hash that differs is no rename', () => {
    const sides: ModelSides = { path1: new Map([['dir/a.txt', file('alpha', 100)]]), path2: new Map([['dir/a.txt', file('alpha', 100)]]) };
    const snaps = snapshotsOf(sides, true);
    sides.path1.delete('dir/a.txt');
    sides.path1.set('b.txt', file('alpha', 100));
    const run = planRun(sides, snaps, options({ checksum: true }));
    expect(run.plan.actions).toEqual([{ kind: 'move', side: 'path2', from: 'dir/a.txt', path: 'b.txt', meta: expect.objectContaining({ size: 5, mtime: 100 }) }]);
    // Same size and time, other content: copy and delete.
    sides.path1.set('b.txt', file('ALPHA', 100));
    const other2 = planRun(sides, snaps, options({ checksum: true }));
    expect(other2.plan.actions.map((a) => a.kind).sort()).toEqual(['copy', 'delete']);
  });
});

/** Both sides hold `tree` after a sync; `edit` changes them; returns the plan and the sides after it. */
function scenario(tree: Record<string, string>, edit: (sides: ModelSides) => void, over: Partial<ModelOptions> = {}) {
  const sides: ModelSides = { path1: new Map(), path2: new Map() };
  let t = 1_000_000;
  for (const [path, content] of Object.entries(tree)) {
    const f = file(content, (t += 1_000_000));
    sides.path1.set(path, f);
    sides.path2.set(path, f);
  }
  const snaps = snapshotsOf(sides, false);
  edit(sides);
  const run = planRun(sides, snaps, options(over));
  const after = applyPlan(run.plan, sides);
  return { plan: run.plan, after, counts: countPlan(run.plan), snaps };
}
const rename = (side: Map<string, ReturnType<typeof file>>, from: string, to: string) => {
  side.set(to, side.get(from)!);
  side.delete(from);
};
const contents = (side: Map<string, ReturnType<typeof file>>) => Object.fromEntries([...side].map(([p, f]) => [p, f.content]).sort());

describe('reconcile: renames and their interplay with the other side', () => {
  it('renamed on one side, untouched on the other: one move there, no copy, no deletion', () => {
    const { plan, after, counts } = scenario({ 'a.txt': 'A', 'keep.txt': 'K' }, (s) => rename(s.path1, 'a.txt', 'docs/b.txt'));
    expect(plan.actions).toEqual([expect.objectContaining({ kind: 'move', side: 'path2', from: 'a.txt', path: 'docs/b.txt' })]);
    expect(counts).toMatchObject({ movesOnPath2: 1, deletesOnPath2: 0, copiesToPath2: 0 });
    expect(contents(after.path2)).toEqual({ 'docs/b.txt': 'A', 'keep.txt': 'K' });
  });

  it('with SYNC_TRACK_RENAMES off: a copy plus a deletion, as before', () => {
    const { plan } = scenario({ 'a.txt': 'A' }, (s) => rename(s.path1, 'a.txt', 'b.txt'), { trackRenames: false });
    expect(plan.actions.map((a) => a.kind).sort()).toEqual(['copy', 'delete']);
  });

  it('renamed on one side, modified on the other: both versions survive on both sides', () => {
    const { after } = scenario({ 'a.txt': 'A' }, (s) => {
      rename(s.path1, 'a.txt', 'b.txt');
      s.path2.set('a.txt', file('A modified', 99_000_000));
    });
    expect(sidesDiffer(after)).toEqual([]);
    expect(contents(after.path1)).toEqual({ 'a.txt': 'A modified', 'b.txt': 'A' });
  });

  it('renamed differently on both sides: both names exist on both sides, nothing is lost', () => {
    const { after } = scenario({ 'a.txt': 'A' }, (s) => {
      rename(s.path1, 'a.txt', 'one.txt');
      rename(s.path2, 'a.txt', 'two.txt');
    });
    expect(sidesDiffer(after)).toEqual([]);
    expect(contents(after.path1)).toEqual({ 'one.txt': 'A', 'two.txt': 'A' });
  });

  it('renamed on one side, deleted on the other: the file ends up at the new name on both sides', () => {
    const { after, counts } = scenario({ 'a.txt': 'A', 'z': 'Z' }, (s) => {
      rename(s.path2, 'a.txt', 'b.txt');
      s.path1.delete('a.txt');
    });
    expect(sidesDiffer(after)).toEqual([]);
    expect(contents(after.path1)).toEqual({ 'b.txt': 'A', z: 'Z' });
    expect(counts.deletesOnPath1 + counts.deletesOnPath2).toBe(0);
  });

  it('renamed the same way on both sides: nothing to do', () => {
    const { plan } = scenario({ 'a.txt': 'A' }, (s) => {
      rename(s.path1, 'a.txt', 'b.txt');
      rename(s.path2, 'a.txt', 'b.txt');
    });
    expect(plan.actions).toEqual([]);
  });

  it('renamed onto a name the other side created meanwhile: no move; both versions kept', () => {
    const { plan, after } = scenario({ 'a.txt': 'A' }, (s) => {
      rename(s.path1, 'a.txt', 'b.txt');
      s.path2.set('b.txt', file('other B', 99_000_000));
    });
    expect(plan.actions.some((a) => a.kind === 'move')).toBe(false);
    expect(sidesDiffer(after)).toEqual([]);
    expect(Object.values(contents(after.path1)).sort()).toEqual(['A', 'other B']);
  });

  it('a resync never moves', () => {
    const { plan } = scenario({ 'a.txt': 'A' }, (s) => rename(s.path1, 'a.txt', 'b.txt'), { resync: true });
    expect(plan.actions.some((a) => a.kind === 'move')).toBe(false);
  });
});

describe('max-delete counts only real deletions', () => {
  it('a folder holding 60% of the files renamed: moves, not deletions, so the default 50% gate lets it through', () => {
    const tree: Record<string, string> = {};
    for (let i = 0; i < 6; i++) tree[`photos/p${i}.jpg`] = `photo ${i}`;
    for (let i = 0; i < 4; i++) tree[`docs/d${i}.txt`] = `doc ${i}`;
    const { counts, after, snaps } = scenario(tree, (s) => {
      for (let i = 0; i < 6; i++) rename(s.path1, `photos/p${i}.jpg`, `pictures/p${i}.jpg`);
    });
    expect(counts).toMatchObject({ movesOnPath2: 6, deletesOnPath2: 0, copiesToPath2: 0 });
    expect(() => checkMaxDelete(counts, { path1: snaps.path1.size, path2: snaps.path2.size }, 50, false)).not.toThrow();
    expect(sidesDiffer(after)).toEqual([]);
    // The same as copies plus deletions would stop.
    const untracked = scenario(tree, (s) => {
      for (let i = 0; i < 6; i++) rename(s.path1, `photos/p${i}.jpg`, `pictures/p${i}.jpg`);
    }, { trackRenames: false });
    expect(() => checkMaxDelete(untracked.counts, { path1: 10, path2: 10 }, 50, false)).toThrow(SafetyStop);
  });

  it('emptyCounts has the move counters', () => {
    expect(emptyCounts()).toMatchObject({ movesOnPath1: 0, movesOnPath2: 0 });
  });
});

describe('groupFolderMoves', () => {
  const listing = (paths: string[]): Listing => new Map(paths.map((p) => [p, meta(1, 1)]));

  it('every file of a folder moved into one new folder: one folder move (the topmost)', () => {
    const moves = [
      { from: 'photos/a.jpg', to: 'pictures/a.jpg' },
      { from: 'photos/2020/b.jpg', to: 'pictures/2020/b.jpg' },
      { from: 'photos/2020/c.jpg', to: 'pictures/2020/c.jpg' },
    ];
    const grouped = groupFolderMoves(moves, listing(['photos/a.jpg', 'photos/2020/b.jpg', 'photos/2020/c.jpg', 'x.txt']), new Set(['photos', 'photos/2020']));
    expect(grouped).toEqual({ folders: [{ from: 'photos', to: 'pictures' }], files: [] });
  });

  it('a folder that keeps a file, or a target that exists, stays file by file; a subfolder may still go whole', () => {
    const moves = [
      { from: 'photos/a.jpg', to: 'pictures/a.jpg' },
      { from: 'photos/2020/b.jpg', to: 'pictures/2020/b.jpg' },
      { from: 'photos/2020/c.jpg', to: 'pictures/2020/c.jpg' },
    ];
    const keeps = groupFolderMoves(moves, listing(['photos/a.jpg', 'photos/2020/b.jpg', 'photos/2020/c.jpg', 'photos/stays.jpg']), new Set());
    expect(keeps).toEqual({ folders: [{ from: 'photos/2020', to: 'pictures/2020' }], files: [{ from: 'photos/a.jpg', to: 'pictures/a.jpg' }] });
    // pictures exists already: photos cannot become it, but photos/2020 can still become pictures/2020.
    const exists = groupFolderMoves(moves, listing(['photos/a.jpg', 'photos/2020/b.jpg', 'photos/2020/c.jpg']), new Set(['pictures']));
    expect(exists).toEqual(keeps);
  });

  it('files of one folder scattered to several folders are file moves', () => {
    const moves = [
      { from: 'in/a', to: 'one/a' },
      { from: 'in/b', to: 'two/b' },
    ];
    expect(groupFolderMoves(moves, listing(['in/a', 'in/b']), new Set())).toEqual({ folders: [], files: moves });
  });

  it('stepsOf lowers moves into folder moves with the files each one stands for', () => {
    const plan = {
      actions: [
        { kind: 'move' as const, side: 'path2' as const, from: 'old/a', path: 'new/a', meta: meta(1, 1) },
        { kind: 'move' as const, side: 'path2' as const, from: 'old/b', path: 'new/b', meta: meta(1, 1) },
        { kind: 'move' as const, side: 'path2' as const, from: 'x', path: 'y', meta: meta(1, 1) },
      ],
    };
    const listings = { path1: listing(['new/a', 'new/b', 'y']), path2: listing(['old/a', 'old/b', 'x']) };
    const steps = stepsOf(plan, { path1: new Set(['new']), path2: new Set(['old']) }, listings);
    expect(steps.folderMoves.path2).toEqual([{ from: 'old', to: 'new', files: [{ from: 'old/a', to: 'new/a' }, { from: 'old/b', to: 'new/b' }] }]);
    expect(steps.moves.path2).toEqual([{ from: 'x', to: 'y' }]);
    expect(steps.copies).toEqual({ path1: [], path2: [] });
    expect(steps.deletes).toEqual({ path1: [], path2: [] });
  });
});

describe('the journal records moves', () => {
  it('a window with moves reads back keyed by side and new name, with both versions', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { journalKey, readJournal, writeJournal } = await import('../../src/state/journal.ts');
    const dir = await mkdtemp(join(tmpdir(), 'rs-journal-moves-'));
    try {
      const file = join(dir, 'journal.jsonl');
      await writeJournal(file, [{ startedAt: 1, lastAliveAt: 2, copies: [], moves: [{ to: 'path2', from: 'a', path: 'b/c', source: meta(3, 4, 'h'), renamed: meta(3, 5) }] }]);
      const [window] = (await readJournal(file))!;
      expect(window!.moves.get(journalKey('path2', 'b/c'))).toEqual({ moved: meta(3, 4, 'h'), renamed: meta(3, 5) });
      expect(window!.copies.size).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
