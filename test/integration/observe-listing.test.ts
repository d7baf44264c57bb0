/**
 * Listing a side with real rclone (observe.ts): the listing is the last snapshot's map, edited. A
 * file listed exactly as the snapshot holds it keeps the snapshot's own metadata object, so a run
 * where little changed does not hold every file's metadata twice; anything that differs in size,
 * time or hash is kept as listed; the snapshot as it was is still seen through `changed.snapshot`.
 */
import { chmod, mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FileMeta, Listing } from '../../src/model.ts';
import { Rclone } from '../../src/rclone/rclone.ts';
import { detectChanges } from '../../src/sync/detect.ts';
import { listSide } from '../../src/sync/observe.ts';

let root: string;
let rclone: Rclone;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'rs-observe-'));
  rclone = new Rclone({ binary: 'rclone', logger: pino({ level: 'silent' }), workDir: join(root, 'work'), env: { RCLONE_CONFIG: '/nonexistent' } });
});
afterEach(async () => {
  await rclone.dispose();
  await rm(root, { recursive: true, force: true });
});

const list = (snapshotted?: Listing, via = rclone) =>
  listSide({ rclone: via, logger: pino({ level: 'silent' }), side: 'path1', root: join(root, 'side'), filtersFile: undefined, hashType: '', excludedFolders: [], folders: new Set(), onListed: () => {}, ...(snapshotted ? { snapshotted: () => snapshotted } : {}) });

describe('listing a side against the last snapshot', () => {
  it('counts a side walked here as it is walked, and the count never goes back as its lines are read', async () => {
    // 30 folders of 1,000: more lines than one chunk of the file holds, so its lines are counted in several batches.
    for (let f = 0; f < 30; f++) {
      await mkdir(join(root, 'side', `f${f}`), { recursive: true });
      await Promise.all(Array.from({ length: 1000 }, (_, i) => writeFile(join(root, 'side', `f${f}`, `${i}.txt`), 'x')));
    }
    const counts: number[] = [];
    const listed = await listSide({ rclone, logger: pino({ level: 'silent' }), side: 'path1', root: join(root, 'side'), filtersFile: undefined, hashType: '', excludedFolders: [], folders: new Set(), onListed: (count) => counts.push(count) });
    expect(listed.listing.size).toBe(30_000);
    expect(counts.at(-1)).toBe(30_000);
    // The walk's own counts come first (every 4096 entries), before a line is read.
    expect(counts[0]).toBeGreaterThan(4000);
    for (let i = 1; i < counts.length; i++) expect(counts[i]).toBeGreaterThanOrEqual(counts[i - 1]!);
  });

  it('shares the snapshot’s object for each file listed exactly as it was, and only for those', async () => {
    const files = ['same.txt', 'deeper/a folder/same as before.txt', 'touched.txt', 'grown.txt', 'new.txt'];
    for (const file of files) {
      await mkdir(join(root, 'side', file, '..'), { recursive: true });
      await writeFile(join(root, 'side', file), 'version one');
    }
    const first = (await list()).listing;
    const snapshot: Listing = new Map([...first].filter(([path]) => path !== 'new.txt').map(([path, meta]) => [path, { ...meta }]));
    await utimes(join(root, 'side', 'touched.txt'), new Date('2020-01-01'), new Date('2020-01-01'));
    await writeFile(join(root, 'side', 'grown.txt'), 'version one, longer');
    await utimes(join(root, 'side', 'grown.txt'), new Date(first.get('grown.txt')!.mtime), new Date(first.get('grown.txt')!.mtime));

    const asItWas = new Map(snapshot);
    const { listing, changed, exact } = await list(snapshot);
    expect(listing).toBe(snapshot);
    expect(exact).toBe(false);
    expect(new Map(changed!.snapshot)).toEqual(asItWas);
    expect([...listing.keys()].sort()).toEqual([...files].sort());
    const sharedWithSnapshot = (path: string) => listing.get(path) === asItWas.get(path);
    expect(files.filter(sharedWithSnapshot).sort()).toEqual(['deeper/a folder/same as before.txt', 'same.txt']);
    expect(listing.get('touched.txt')!.mtime).toBe(Date.parse('2020-01-01'));
    expect(listing.get('grown.txt')).toMatchObject<Partial<FileMeta>>({ size: 'version one, longer'.length });
  });

  it('hands back the snapshot itself when every file is listed exactly as it holds them, so detection has nothing to compare', async () => {
    for (const file of ['a.txt', 'b/c.txt']) {
      await mkdir(join(root, 'side', file, '..'), { recursive: true });
      await writeFile(join(root, 'side', file), file);
    }
    const snapshot: Listing = new Map([...(await list()).listing].map(([path, meta]) => [path, { ...meta }]));
    const { listing, changed, exact } = await list(snapshot);
    expect(listing).toBe(snapshot);
    expect(exact).toBe(true);
    expect(changed).toBeUndefined();
    expect(detectChanges(snapshot, listing, false).size).toBe(0);

    // One file fewer than the snapshot: a deletion to find, in the part that changed.
    const before = snapshot.get('a.txt');
    await rm(join(root, 'side', 'a.txt'));
    const fewer = await list(snapshot);
    expect(fewer.exact).toBe(false);
    expect([...fewer.listing.keys()]).toEqual(['b/c.txt']);
    expect(fewer.changed!.snapshot.get('a.txt')).toBe(before);
    expect([...detectChanges(fewer.changed!.before, fewer.changed!.now, false)]).toEqual([['a.txt', { kind: 'deleted', before }]]);
  });

  it('does not take a listing where a path comes twice for exact (some remotes list duplicates), and keeps the version that changed', async () => {
    const line = (path: string, size: number) => `{"Path":"${path}","Name":"${path}","Size":${size},"ModTime":"2026-12-01T10:00:00Z","IsDir":false},`;
    const output = join(root, 'lsjson.out');
    // The first twice.txt is as snapshotted, the second is not.
    await writeFile(output, ['[', line('twice.txt', 1), line('twice.txt', 2), line('other.txt', 1), ']'].join('\n') + '\n');
    const fake = join(root, 'rclone-duplicates');
    await writeFile(fake, `#!/bin/sh\ncase "$1" in lsjson) cat '${output}' ;; *) exit 9 ;; esac\n`);
    await chmod(fake, 0o755);
    const duplicating = new Rclone({ binary: fake, logger: pino({ level: 'silent' }), workDir: join(root, 'work2') });
    const meta = { size: 1, mtime: Date.parse('2026-12-01T10:00:00Z'), hash: '' };
    const snapshot: Listing = new Map([['twice.txt', { ...meta }], ['other.txt', { ...meta }]]);
    try {
      const before = snapshot.get('twice.txt');
      const { exact, changed } = await list(snapshot, duplicating);
      expect(exact).toBe(false);
      expect([...detectChanges(changed!.before, changed!.now, false)]).toEqual([['twice.txt', { kind: 'modified', before, now: { ...meta, size: 2 } }]]);
    } finally {
      await duplicating.dispose();
    }
  });
});
