/**
 * A listing made of the snapshot's map (listing-overlay.ts). Read in part: the files under the
 * changed folders swapped for the ones listed there. Read whole: each file held against the
 * snapshot as it comes. Either way the snapshot as it was is still seen, entry by entry and whole,
 * through that listing, and detection over just the changed part finds exactly what it finds over
 * the whole listing.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { FileMeta } from '../../src/model.ts';
import { detectChanges } from '../../src/sync/detect.ts';
import { folderOf } from '../../src/model.ts';
import { overlayListing, WholeListing, type ChangedPart } from '../../src/sync/listing-overlay.ts';

const FOLDERS = ['', 'a/', 'a/b/', 'c/'];
const PATHS = FOLDERS.flatMap((folder) => ['1', '2', '3'].map((name) => `${folder}${name}`));
const meta = (size: number): FileMeta => ({ size, mtime: 1000 + size, hash: '' });
const entries = fc.uniqueArray(fc.tuple(fc.constantFrom(...PATHS), fc.nat(3)), { selector: ([path]) => path });

/** The snapshot as it was is seen through the changed part, and detection over that part is detection over all. */
function expectAsItWas(part: ChangedPart, asItWas: Map<string, FileMeta>, listing: Map<string, FileMeta>): void {
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
}

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
        expectAsItWas(part, asItWas, listing);
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

describe('WholeListing', () => {
  // Listed in any order: a folder's files together and sorted (as lsjson prints them), or not.
  const listedInAnyOrder = fc.tuple(fc.uniqueArray(fc.tuple(fc.constantFrom(...PATHS), fc.nat(3)), { selector: ([path]) => path }), fc.boolean());
  const inListingOrder = (listed: [string, number][], sorted: boolean) => (sorted ? [...listed].sort(([a], [b]) => folderOf(a).localeCompare(folderOf(b)) || (a < b ? -1 : 1)) : listed);

  it('is the snapshot edited into the listing, the snapshot as it was still seen through it; detection over the changed part is detection over all', () => {
    fc.assert(
      fc.property(entries, listedInAnyOrder, fc.boolean(), (baseEntries, [listedEntries, sorted], shareRecords) => {
        const base = new Map(baseEntries.map(([path, size]) => [path, meta(size)]));
        const baseBefore = [...base];
        const whole = new WholeListing(base);
        const listed = new Map<string, FileMeta>();
        for (const [path, size] of inListingOrder(listedEntries, sorted)) {
          const known = base.get(path);
          const record = shareRecords && known?.size === size ? known : meta(size);
          listed.set(path, record);
          whole.add(path, record);
        }
        const { listing, changed, exact } = whole.finish();
        expect(listing).toBe(base);
        expect(listing).toEqual(listed);
        expect(whole.repeated).toBe(false);
        const asItWas = new Map(baseBefore);
        const same = listed.size === asItWas.size && [...listed].every(([path, m]) => asItWas.get(path) !== undefined && m.size === asItWas.get(path)!.size);
        expect(exact).toBe(same);
        expect(changed === undefined).toBe(same);
        // A file listed alike keeps the snapshot's own record, even when the listing's is an equal copy.
        for (const [path, m] of listing) if (asItWas.get(path)?.size === m.size) expect(m).toBe(asItWas.get(path));
        if (changed) expectAsItWas(changed, asItWas, listing);
      }),
      { numRuns: 3000 },
    );
  });

  it('with paths listed twice (in any order): never exact, nothing gone missed, and a version that differs from the snapshot kept', () => {
    const withRepeats = fc.array(fc.tuple(fc.constantFrom(...PATHS), fc.nat(3)), { maxLength: 20 });
    fc.assert(
      fc.property(entries, withRepeats, fc.boolean(), (baseEntries, listedEntries, sorted) => {
        const base = new Map(baseEntries.map(([path, size]) => [path, meta(size)]));
        const asItWas = new Map(base);
        const whole = new WholeListing(base);
        const model = new Map<string, FileMeta>();
        const order = inListingOrder(listedEntries, sorted);
        for (const [path, size] of order) {
          const record = asItWas.get(path)?.size === size ? asItWas.get(path)! : meta(size);
          whole.add(path, record);
          if (record !== asItWas.get(path) || !model.has(path)) model.set(path, record);
        }
        const repeated = new Set(order.map(([path]) => path)).size < order.length;
        const { listing, changed, exact } = whole.finish();
        expect(listing).toEqual(model);
        if (repeated) expect(exact).toBe(false);
        if (changed) expect(detectChanges(changed.before, changed.now, false)).toEqual(detectChanges(asItWas, listing, false));
        else expect(detectChanges(asItWas, listing, false).size).toBe(0);
      }),
      { numRuns: 3000 },
    );
  });

  it('a folder listed whole, then one of its files again: repeated, nothing gone', () => {
    const base = new Map([['a/1', meta(1)], ['a/2', meta(2)]]);
    const whole = new WholeListing(base);
    for (const path of ['a/1', 'a/2', 'a/1']) whole.add(path, base.get(path)!);
    const { listing, changed, exact } = whole.finish();
    expect(whole.repeated).toBe(true);
    expect(exact).toBe(false);
    expect(changed).toBeUndefined();
    expect([...listing.keys()]).toEqual(['a/1', 'a/2']);
  });

  it('finds a file gone from a folder whose other files are all listed, and a folder gone whole', () => {
    const base = new Map([['a/1', meta(1)], ['a/2', meta(2)], ['b/1', meta(1)], ['3', meta(3)]]);
    const whole = new WholeListing(base);
    whole.add('3', meta(3));
    whole.add('a/2', base.get('a/2')!);
    whole.add('a/new', meta(9));
    const { listing, changed } = whole.finish();
    expect([...listing.keys()].sort()).toEqual(['3', 'a/2', 'a/new']);
    expect(detectChanges(changed!.before, changed!.now, false)).toEqual(
      new Map([
        ['a/new', { kind: 'new', now: meta(9) }],
        ['a/1', { kind: 'deleted', before: meta(1) }],
        ['b/1', { kind: 'deleted', before: meta(1) }],
      ]),
    );
  });

  it('a path listed twice is never exact, and cannot hide a file gone beside it', () => {
    const base = new Map([['a/1', meta(1)], ['a/2', meta(2)]]);
    const whole = new WholeListing(base);
    whole.add('a/1', base.get('a/1')!);
    whole.add('a/1', base.get('a/1')!);
    const { listing, changed, exact } = whole.finish();
    expect(exact).toBe(false);
    expect(whole.repeated).toBe(true);
    expect([...listing.keys()]).toEqual(['a/1']);
    expect(detectChanges(changed!.before, changed!.now, false)).toEqual(new Map([['a/2', { kind: 'deleted', before: meta(2) }]]));
  });

  it('a path listed twice, once as the snapshot has it and once changed, keeps the changed version', () => {
    for (const order of [[1, 5], [5, 1]]) {
      const base = new Map([['a/1', meta(1)]]);
      const whole = new WholeListing(base);
      for (const size of order) whole.add('a/1', size === 1 ? base.get('a/1')! : meta(size));
      const { listing, exact } = whole.finish();
      expect(exact).toBe(false);
      expect(listing.get('a/1')).toEqual(meta(5));
    }
  });

  it('the same file listed alike is the snapshot itself, exact', () => {
    const base = new Map([['a/1', meta(1)], ['b', meta(2)]]);
    const whole = new WholeListing(base);
    whole.add('b', meta(2));
    whole.add('a/1', meta(1));
    expect(whole.finish()).toEqual({ listing: base, changed: undefined, exact: true });
  });
});
