/**
 * A listing read in part (listing-overlay.ts): the snapshot's map, with the files under the changed
 * folders swapped for the ones listed there; the snapshot as it was still seen, entry by entry and
 * whole, through that listing; and detection over just the changed part finds exactly what it
 * finds over the whole listing.
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
  it('is the snapshot edited, with the changed folders swapped and the snapshot as it was still seen; detection over the changed part is detection over all', () => {
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
        const model = new Map(baseBefore.filter(([path]) => !changedFolders.has(folderOf(path))));
        for (const [path, m] of listed) model.set(path, m);
        expect(listing).toBe(base);
        expect(listing).toEqual(model);
        expect(new Map(part.before)).toEqual(new Map(baseBefore.filter(([path]) => changedFolders.has(folderOf(path)))));
        const asItWas = new Map(baseBefore);
        expect(new Map(part.snapshot)).toEqual(asItWas);
        const entries = [...part.snapshot.entries()];
        expect([...part.snapshot.keys()]).toEqual(entries.map(([path]) => path));
        expect([...part.snapshot.values()]).toEqual(entries.map(([, m]) => m));
        const visited: [string, FileMeta][] = [];
        part.snapshot.forEach((m, path) => visited.push([path, m]));
        expect(visited).toEqual(entries);
        expect(part.snapshot.size).toBe(asItWas.size);
        for (const path of PATHS) {
          expect(part.snapshot.get(path)).toBe(asItWas.get(path));
          expect(part.snapshot.has(path)).toBe(asItWas.has(path));
        }
        expect(detectChanges(part.before, part.now, false)).toEqual(detectChanges(asItWas, listing, false));
      }),
      { numRuns: 2000 },
    );
  });

  it('with no folder changed, is the snapshot as it was', () => {
    const base = new Map([['a/1', meta(1)], ['2', meta(2)]]);
    const baseBefore = [...base];
    const { listing, changed } = overlayListing(base, new Set(), new Map());
    expect(changed.before.size).toBe(0);
    expect([...listing]).toEqual(baseBefore);
    expect([...changed.snapshot]).toEqual(baseBefore);
    expect(folderOf('a/b/c.txt')).toBe('a/b/');
    expect(folderOf('top.txt')).toBe('');
  });
});
