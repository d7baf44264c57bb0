import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { detectChanges, discountInterruptedCopies } from '../../src/sync/detect.ts';
import { readEntry, readSnapshot, SnapshotCorrupt, writeSnapshot, type Snapshot } from '../../src/state/snapshot.ts';
import type { FileMeta, Listing } from '../../src/model.ts';

const meta = (size: number, mtime: number, hash = ''): FileMeta => ({ size, mtime, hash });
const header = {
  format: 'rclonesync-snapshot' as const,
  version: 1 as const,
  path1: '/a',
  path2: 'remote:b',
  compare: 'size,modtime',
  hashType: '',
  filtersHash: '',
  committedAt: '2026-11-25T00:00:00.000Z',
};

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'snapshot-test-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('snapshot file', () => {
  const snapshot: Snapshot = {
    header,
    path1: new Map([
      ['a.txt', meta(1, 1000)],
      ['dir/#weird ;name\t.txt', meta(2, 2000, 'abc')],
      ['line\nbreak', meta(3, 3000)],
    ]),
    path2: new Map([['café', meta(4, 4000)]]),
  };

  it('round-trips every entry of both sides exactly', async () => {
    const file = join(dir, 'snapshot.jsonl');
    await writeSnapshot(file, snapshot);
    const read = await readSnapshot(file);
    expect(read?.header).toEqual({ ...header, version: 3 });
    expect([...read!.path1]).toEqual([...snapshot.path1]);
    expect([...read!.path2]).toEqual([...snapshot.path2]);
  });

  it("tells the reader the file's size before reading it (the run sizes its heap by it), and nothing when there is none", async () => {
    const file = join(dir, 'snapshot.jsonl');
    const sizes: number[] = [];
    expect(await readSnapshot(file, { onOpen: (bytes) => sizes.push(bytes) })).toBeUndefined();
    expect(sizes).toEqual([]);
    await writeSnapshot(file, snapshot);
    await readSnapshot(file, { onOpen: (bytes) => sizes.push(bytes) });
    expect(sizes).toEqual([(await readFile(file)).length]);
  });

  it('round-trips names that need escapes, lone surrogates (raw bytes), times before 1970 and folders', async () => {
    const file = join(dir, 'snapshot.jsonl');
    const odd: Snapshot = {
      header,
      path1: new Map([
        ['quote"and\\back', meta(1, -1500)],
        ['raw\udcfebyte', meta(2, 0, 'ABC+/=')],
        ['ü/ß', meta(0, 5)],
      ]),
      path2: new Map(),
      folders: { path1: new Set(['ü', 'a\\b']), path2: new Set(['x']) },
    };
    await writeSnapshot(file, odd);
    const read = await readSnapshot(file);
    expect([...read!.path1]).toEqual([...odd.path1]);
    expect(read!.folders).toEqual(odd.folders);
  });

  it.each([
    ['[1,"a/b.txt",12,1764081120123,""]', { side: 'path1', path: 'a/b.txt', meta: meta(12, 1764081120123) }],
    ['[2,"x",0,-5,"0af9"]', { side: 'path2', path: 'x', meta: meta(0, -5, '0af9') }],
    ['[1,"folder/sub"]', { side: 'path1', path: 'folder/sub' }],
    ['[1,"esc\\"aped",1,1,""]', undefined],
    ['[3,"a",1,1,""]', { side: 'both', path: 'a', meta: meta(1, 1) }],
    ['[3,"a/folder"]', { side: 'both', path: 'a/folder' }],
    ['[4,"a",1,1,""]', undefined],
    ['[1,"a",1.5,1,""]', undefined],
    ['[1,"a",01,1,""]', undefined],
    ['[1,"a",1,1,"XYZ"]', undefined],
    ['[1,"a",1,1,""] ', undefined],
    ['{"end":true,"path1":0,"path2":0}', undefined],
    ['[1,"Fotos/Ürlaub/写真 👩‍👩‍👧.jpg",7,1,"ff"]', { side: 'path1', path: 'Fotos/Ürlaub/写真 👩‍👩‍👧.jpg', meta: meta(7, 1, 'ff') }],
    ['[2,"big",123456789012345,-1,""]', { side: 'path2', path: 'big', meta: meta(123456789012345, -1) }],
    ['[2,"too big to be sure of",1234567890123456,1,""]', undefined],
    ['[1,"tab\there",1,1,""]', undefined],
    ['[1,"raw\u0001control",1,1,""]', undefined],
    ['[1,"a",1,1,""', undefined],
    ['[1,"unterminated', undefined],
    ['[1,"a",,1,""]', undefined],
  ])('reads the entry line %s by hand, or leaves it to JSON.parse', (line, expected) => {
    expect(readEntry(Buffer.from(line))).toEqual(expected);
  });

  it('writes a file or folder alike on both sides once, and reads it back as one record for both', async () => {
    const file = join(dir, 'snapshot.jsonl');
    const shared = meta(5, 5000, 'ab');
    const alike: Snapshot = {
      header,
      path1: new Map([['same', shared], ['equal', meta(6, 6000)], ['differs', meta(7, 7000)], ['only1', meta(8, 8000)]]),
      path2: new Map([['same', shared], ['equal', meta(6, 6000)], ['differs', meta(7, 7001)], ['only2', meta(9, 9000)]]),
      folders: { path1: new Set(['both', 'one']), path2: new Set(['both', 'two']) },
    };
    await writeSnapshot(file, alike);
    const lines = (await readFile(file, 'utf8')).split('\n').filter((line) => line.startsWith('['));
    expect(lines.filter((line) => line.startsWith('[3,')).sort()).toEqual(['[3,"both"]', '[3,"equal",6,6000,""]', '[3,"same",5,5000,"ab"]']);
    expect(lines).toHaveLength(9);
    const read = (await readSnapshot(file))!;
    expect(read.header.version).toBe(3);
    expect(read.path1).toEqual(alike.path1);
    expect(read.path2).toEqual(alike.path2);
    expect(read.folders).toEqual(alike.folders);
    expect(read.path1.get('equal')).toBe(read.path2.get('equal'));
  });

  it('writes each line exactly as JSON.stringify would, and reads back both sides, whatever their order and overlap', async () => {
    const file = join(dir, 'snapshot.jsonl');
    const path = fc.oneof(fc.constantFrom('a', 'b/c', 'b/d', 'quote"d', 'back\\slash', 'tab\t', 'ü/ß', 'raw\udcfe', '写真 👩‍👩‍👧'), fc.string({ unit: 'binary', maxLength: 6 }));
    const number = fc.oneof(fc.integer(), fc.constantFrom(0, -0, -1, 1764081120123, 2 ** 53, 1.5, -2.25, 1e21));
    const record = fc.record({ size: number, mtime: number, hash: fc.oneof(fc.constant(''), fc.constantFrom('0af9', 'ABC+/=', 'q"h'), fc.string({ maxLength: 4 })) });
    const side = fc.uniqueArray(fc.tuple(path, record), { selector: ([p]) => p, maxLength: 12 });
    const reference = (tag: number, p: string, m: FileMeta) => JSON.stringify([tag, p, m.size, m.mtime, m.hash]);
    await fc.assert(
      fc.asyncProperty(side, side, fc.boolean(), async (one, two, share) => {
        // Shared paths alike on both sides (one record) when `share`, in path1's order.
        const path1 = new Map(one);
        const path2 = new Map(share ? [...one.slice(0, 6), ...two.filter(([p]) => !path1.has(p))] : two);
        await writeSnapshot(file, { header, path1, path2 });
        const lines = (await readFile(file, 'utf8')).split('\n').filter((line) => line.startsWith('['));
        const alike = (p: string) => path2.has(p) && JSON.stringify(path2.get(p)) === JSON.stringify(path1.get(p));
        const expected = [
          ...[...path1].map(([p, m]) => reference(alike(p) ? 3 : 1, p, m)),
          ...[...path2].filter(([p]) => !alike(p)).map(([p, m]) => reference(2, p, m)),
        ];
        expect(lines.sort()).toEqual(expected.sort());
        const read = (await readSnapshot(file))!;
        const sorted = (m: ReadonlyMap<string, FileMeta>) => JSON.stringify([...m].map(([p, r]) => [p, r.size, r.mtime, r.hash]).sort(([a], [b]) => (a! < b! ? -1 : 1)));
        const sameValues = (a: ReadonlyMap<string, FileMeta>, b: ReadonlyMap<string, FileMeta>) => sorted(a) === sorted(b);
        expect(sameValues(read.path1, path1) && sameValues(read.path2, path2)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a line for both sides in a version 2 file', async () => {
    const file = join(dir, 'snapshot.jsonl');
    await writeFile(file, `${JSON.stringify({ ...header, version: 2 })}\n[3,"a",1,1,""]\n{"end":true,"path1":1,"path2":1}\n`);
    await expect(readSnapshot(file)).rejects.toBeInstanceOf(SnapshotCorrupt);
    await writeFile(file, `${JSON.stringify({ ...header, version: 2 })}\n[1,"a",1,1,""]\n[2,"a",1,1,""]\n{"end":true,"path1":1,"path2":1}\n`);
    expect((await readSnapshot(file))?.path2.get('a')).toEqual(meta(1, 1));
  });

  it('is absent (first run), not corrupt, when the file does not exist', async () => {
    expect(await readSnapshot(join(dir, 'none.jsonl'))).toBeUndefined();
  });

  it('detects a torn file: truncated anywhere, it is reported corrupt instead of read as fewer files', async () => {
    const file = join(dir, 'snapshot.jsonl');
    await writeSnapshot(file, snapshot);
    const full = await readFile(file, 'utf8');
    const lines = full.split('\n');
    for (let keep = 0; keep < lines.length - 2; keep++) {
      await writeFile(file, lines.slice(0, keep + 1).join('\n') + '\n');
      await expect(readSnapshot(file), `kept ${keep + 1} lines`).rejects.toBeInstanceOf(SnapshotCorrupt);
    }
    await writeFile(file, full.slice(0, full.length - 5));
    await expect(readSnapshot(file)).rejects.toBeInstanceOf(SnapshotCorrupt);
    await writeFile(file, '');
    await expect(readSnapshot(file)).rejects.toBeInstanceOf(SnapshotCorrupt);
  });

  it('keeps only the entries `only` accepts, and still checks every line against the end marker', async () => {
    const file = join(dir, 'snapshot.jsonl');
    const both = meta(9, 9000);
    const withFolders: Snapshot = {
      header,
      path1: new Map([...snapshot.path1, ['dir/same', both]]),
      path2: new Map([...snapshot.path2, ['dir/same', both]]),
      folders: { path1: new Set(['dir', 'other']), path2: new Set(['dir']) },
    };
    await writeSnapshot(file, withFolders);
    const only = (path: string) => path === 'dir' || path.startsWith('dir/');
    const read = (await readSnapshot(file, { only }))!;
    expect([...read.path1.keys()].sort()).toEqual(['dir/#weird ;name\t.txt', 'dir/same']);
    expect([...read.path2.keys()]).toEqual(['dir/same']);
    expect(read.folders).toEqual({ path1: new Set(['dir']), path2: new Set(['dir']) });
    const lines = (await readFile(file, 'utf8')).split('\n');
    for (let keep = 0; keep < lines.length - 2; keep++) {
      await writeFile(file, lines.slice(0, keep + 1).join('\n') + '\n');
      await expect(readSnapshot(file, { only }), `kept ${keep + 1} lines`).rejects.toBeInstanceOf(SnapshotCorrupt);
    }
    // An entry not kept still counts: dropping one is caught although the reader never wanted it.
    const dropped = lines.filter((line) => !line.includes('a.txt'));
    await writeFile(file, dropped.join('\n'));
    await expect(readSnapshot(file, { only })).rejects.toBeInstanceOf(SnapshotCorrupt);
  });

  it('refuses a file that lists a path twice, though its counts match', async () => {
    const file = join(dir, 'snapshot.jsonl');
    await writeSnapshot(file, { header, path1: new Map([['a.txt', meta(1, 1)], ['b.txt', meta(2, 2)]]), path2: new Map() });
    const text = await readFile(file, 'utf8');
    const aLine = text.split('\n').find((line) => line.includes('a.txt'))!;
    await writeFile(file, text.split('\n').map((line) => (line.includes('b.txt') ? aLine : line)).join('\n'));
    await expect(readSnapshot(file)).rejects.toThrow(/listed twice/);
  });

  it('leaves no temporary file behind and replaces the old snapshot whole', async () => {
    const file = join(dir, 'snapshot.jsonl');
    await writeSnapshot(file, snapshot);
    await writeSnapshot(file, { header, path1: new Map(), path2: new Map() });
    const read = await readSnapshot(file);
    expect(read!.path1.size + read!.path2.size).toBe(0);
    const { readdir } = await import('node:fs/promises');
    expect(await readdir(dir)).toEqual(['snapshot.jsonl']);
  });
});

describe('detectChanges', () => {
  const before: Listing = new Map([
    ['same', meta(1, 1000, 'h1')],
    ['grown', meta(1, 1000)],
    ['touched', meta(1, 1000)],
    ['rehashed', meta(1, 1000, 'h1')],
    ['gone', meta(1, 1000)],
  ]);
  const now: Listing = new Map([
    ['same', meta(1, 1000, 'h1')],
    ['grown', meta(2, 1000)],
    ['touched', meta(1, 1001)],
    ['rehashed', meta(1, 1000, 'h2')],
    ['born', meta(1, 1000)],
  ]);

  it('reports new, modified and deleted, and nothing for unchanged files', () => {
    const changes = detectChanges(before, now, true);
    expect(Object.fromEntries([...changes].map(([p, c]) => [p, c.kind]))).toEqual({
      grown: 'modified',
      touched: 'modified',
      rehashed: 'modified',
      born: 'new',
      gone: 'deleted',
    });
  });

  it('ignores hashes unless asked to (size,modtime mode, or a different hash type than the snapshot)', () => {
    expect(detectChanges(before, now, false).has('rehashed')).toBe(false);
  });
});

describe('discountInterruptedCopies', () => {
  const source = meta(100, 5000);
  const window = { from: 10_000, to: 20_000 };
  const key = (path: string) => `path2\0${path}`;
  const journal = new Map([[key('f'), source]]);

  function scenario(destination: FileMeta, change: 'new' | 'modified', sourceNow: FileMeta = source) {
    const current: Listing = new Map([['f', destination]]);
    const changes = new Map([['f', change === 'new' ? { kind: 'new' as const, now: destination } : { kind: 'modified' as const, now: destination, before: meta(50, 1000) }]]);
    const redone = [...discountInterruptedCopies(changes, current, new Map([['f', sourceNow]]), journal, key, window).keys()];
    return { redone, changes, current };
  }

  it('a half-written new file written while the dead run was alive is treated as absent', () => {
    const { redone, changes, current } = scenario(meta(40, 15_000), 'new');
    expect(redone).toEqual(['f']);
    expect(changes.size).toBe(0);
    expect(current.has('f')).toBe(false);
  });

  it('a half-overwritten file is treated as its old, unchanged self', () => {
    const { redone, changes, current } = scenario(meta(40, 15_000), 'modified');
    expect(redone).toEqual(['f']);
    expect(changes.size).toBe(0);
    expect(current.has('f')).toBe(true);
  });

  it('a file written after the dead run stopped is a user edit and stays a change', () => {
    expect(scenario(meta(40, 25_000), 'modified').redone).toEqual([]);
  });

  it('a source changed since the journal was written: the bytes there are still nobody`s, the copy is made anew', () => {
    expect(scenario(meta(40, 15_000), 'new', meta(101, 6000)).redone).toEqual(['f']);
  });

  it('a completed copy (the journaled version itself) is not junk', () => {
    expect(scenario(source, 'new').redone).toEqual([]);
  });

  it('a half-written new file whose source is gone is planned for removal, as a deletion on the source side', () => {
    const destination = meta(40, 15_000);
    const current: Listing = new Map([['f', destination]]);
    const changes = new Map([['f', { kind: 'new' as const, now: destination }]]);
    const sourceChanges = new Map();
    const redone = discountInterruptedCopies(changes, current, new Map(), journal, key, window, sourceChanges);
    expect(redone).toEqual(new Map([['f', destination]]));
    expect(current.get('f')).toEqual(destination);
    expect(sourceChanges.get('f')).toEqual({ kind: 'deleted', before: source });
  });
});

describe('detectChanges with a coarse backend', () => {
  it('counts a modtime as changed only beyond the backend precision', () => {
    const before: Listing = new Map([['f', meta(1, 10_000)]]);
    expect(detectChanges(before, new Map([['f', meta(1, 10_900)]]), false, 1000).size).toBe(0);
    expect(detectChanges(before, new Map([['f', meta(1, 11_001)]]), false, 1000).get('f')?.kind).toBe('modified');
    expect(detectChanges(before, new Map([['f', meta(1, 10_001)]]), false, 0).get('f')?.kind).toBe('modified');
  });
});
