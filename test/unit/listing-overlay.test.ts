/**
 * A listing read in part (listing-overlay.ts): the snapshot's files with those under the changed
 * folders swapped for the ones listed there; the snapshot itself left as it was; and detection
 * over just the changed part finds exactly what it finds over the whole listing.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { FileMeta } from '../../src/model.ts';
import { detectChanges } from '../../src/sync/detect.ts';
import { folderOf, overlayListing } from '../../src/sync/listing-overlay.ts';

const FOLDERS = ['', 'a/', 'a/b/', 'c/'];
const PATHS = FOLDERS.flatMap((folder) => ['1', '2', '3'].map((name) => `${folder}${name}`));
const meta = (size: number): FileMeta => ({ size, mtime: 1000 + size, hash: '' });
const entries = fc.uniqueArray(fc.tuple(fc.constantFrom(...PATHS), fc.nat(3)), { selector: ([path]) => path });

describe('overlayListing', () => {
  it('is the snapshot with the changed folders swapped, and detection over the changed part is detection over all', () => {
    fc.assert(
      fc.property(entries, fc.subarray(FOLDERS), entries, fc.boolean(), (baseEntries, changed, listedEntries, shareRecords) => {
        const base = new Map(baseEntries.map(([path, size]) => [path, meta(size)]));
        const baseBefore = [...base];
        const changedFolders = new Set(changed);
        // Files listed under the changed folders only; a record equal to the snapshot's is its own object when shared.
        const listed = new Map<string, FileMeta>();
        for (const [path, size] of listedEntries) {
          if (!changedFolders.has(folderOf(path))) continue;
          const known = base.get(path);
          listed.set(path, shareRecords && known?.size === size ? known : meta(size));
        }
        const { listing, changed: part } = overlayListing(base, changedFolders, listed);
        const model = new Map([...base].filter(([path]) => !changedFolders.has(folderOf(path))));
        for (const [path, m] of listed) model.set(path, m);
        expect(listing).toEqual(model);
        expect(new Map(part.before)).toEqual(new Map([...base].filter(([path]) => changedFolders.has(folderOf(path)))));
        expect(detectChanges(part.before, part.now, false)).toEqual(detectChanges(base, listing, false));
        expect([...base]).toEqual(baseBefore);
        expect(listing).not.toBe(base);
      }),
      { numRuns: 2000 },
    );
  });

  it('with no folder changed, is a copy of the snapshot', () => {
    const base = new Map([['a/1', meta(1)], ['2', meta(2)]]);
    const { listing, changed } = overlayListing(base, new Set(), new Map());
    expect(changed.before.size).toBe(0);
    expect([...listing]).toEqual([...base]);
    expect(folderOf('a/b/c.txt')).toBe('a/b/');
    expect(folderOf('top.txt')).toBe('');
  });
});
