/**
 * Names that differ only in case or unicode normalization, carried to a side whose backend takes
 * them for one name (rclone backend features → CaseInsensitive): neither overwrites the other.
 */
import { describe, expect, it } from 'vitest';
import type { BackendFeatures } from '../../src/rclone/rclone.ts';
import { foldedName, foldsNames, reconcile, type ReconcileInput } from '../../src/sync/reconcile.ts';
import type { ChangeSet } from '../../src/sync/types.ts';
import type { FileMeta, Listing } from '../../src/model.ts';

const features = (caseInsensitive: boolean): BackendFeatures => ({ precisionNs: 1, hashes: ['md5'], serverSideMove: true, canHaveEmptyDirs: true, caseInsensitive });
const meta = (size: number): FileMeta => ({ size, mtime: 1_000, hash: '' });
const newFiles = (listing: Listing): ChangeSet => new Map([...listing].map(([path, now]) => [path, { kind: 'new' as const, now }]));

function input(path1: Listing, path2: Listing, folding: { path1: BackendFeatures; path2: BackendFeatures }, changes?: ReconcileInput['changes']): ReconcileInput {
  return {
    changes: changes ?? { path1: newFiles(path1), path2: new Map() },
    current: { path1, path2 },
    compare: { mtimeToleranceMs: 1, commonHash: false },
    conflictResolve: 'none',
    verifiedSame: new Set(),
    stamp: '20261201T100000Z',
    resync: false,
    foldsNames: foldsNames(folding),
  };
}

describe('case and normalization collisions', () => {
  it('two names differing only in case, towards a case-insensitive side: the second gets a conflict-style name', () => {
    const path1: Listing = new Map([['Report.pdf', meta(1)], ['report.pdf', meta(2)], ['other.txt', meta(3)]]);
    const plan = reconcile(input(path1, new Map(), { path1: features(false), path2: features(true) }));
    expect(plan.actions).toEqual([
      { kind: 'copy', from: 'path1', path: 'Report.pdf', reason: 'new', size: 1 },
      { kind: 'copy', from: 'path1', path: 'other.txt', reason: 'new', size: 3 },
      { kind: 'file-folder-clash', side: 'path1', path: 'report.pdf', to: 'report.conflict-path1-20261201T100000Z.pdf', meta: meta(2), sameNameAs: 'Report.pdf' },
    ]);
  });

  it('a name folding onto one the case-insensitive side already has is renamed, not copied over it', () => {
    const path1: Listing = new Map([['Notes.TXT', meta(1)], ['notes.txt', meta(5)]]);
    const path2: Listing = new Map([['Notes.TXT', meta(1)]]);
    const changes = { path1: new Map([['notes.txt', { kind: 'new' as const, now: meta(5) }]]) as ChangeSet, path2: new Map() as ChangeSet };
    const plan = reconcile(input(path1, path2, { path1: features(false), path2: features(true) }, changes));
    expect(plan.actions).toEqual([expect.objectContaining({ kind: 'file-folder-clash', side: 'path1', path: 'notes.txt', sameNameAs: 'Notes.TXT' })]);
  });

  it('NFC and NFD spellings of one name collide the same way', () => {
    const nfc = 'caf\u00e9.txt';
    const nfd = 'cafe\u0301.txt';
    expect(foldedName(nfc)).toBe(foldedName(nfd));
    const plan = reconcile(input(new Map([[nfc, meta(1)], [nfd, meta(2)]]), new Map(), { path1: features(false), path2: features(true) }));
    expect(plan.actions.map((a) => a.kind).sort()).toEqual(['copy', 'file-folder-clash']);
  });

  it('towards a case-sensitive side both names are plain copies', () => {
    const path1: Listing = new Map([['Report.pdf', meta(1)], ['report.pdf', meta(2)]]);
    const plan = reconcile(input(path1, new Map(), { path1: features(true), path2: features(false) }));
    expect(plan.actions.map((a) => a.kind)).toEqual(['copy', 'copy']);
  });
});
