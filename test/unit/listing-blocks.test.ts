/**
 * Folder blocks of an lsjson listing and their digests (listing-blocks.ts): the same lines give
 * the same blocks whatever order the folders come in and however the bytes are cut into chunks;
 * any change of a file's line changes its block; a folder's time does not count; names the bytes
 * do not tell exactly make the listing unusable for the shortcut; and the two sides' comparisons
 * share one verdict.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BlockComparison, BlockDigester, PairVerdict, type BlockDigests } from '../../src/rclone/listing-blocks.ts';

const file = (path: string, size = 10, time = '2026-01-02T03:04:05.123456789Z') =>
  `{"Path":"${path}","Name":"${path.split('/').at(-1)}","Size":${size},"ModTime":"${time}","IsDir":false}`;
const folder = (path: string, time = '2026-01-02T03:04:05.5Z') => `{"Path":"${path}","Name":"${path.split('/').at(-1)}","Size":-1,"ModTime":"${time}","IsDir":true}`;

/** lsjson's output for these blocks of lines, in this order: "[", entries with commas but the last, "]". */
function listing(blocks: readonly (readonly string[])[]): Buffer {
  const entries = blocks.flat();
  return Buffer.from(`[\n${entries.map((line, i) => (i < entries.length - 1 ? `${line},` : line)).join('\n')}\n]\n`);
}

/** The bytes cut into chunks of whole lines at the given line indexes. */
function chunksOf(bytes: Buffer, cuts: readonly number[] = []): Buffer[] {
  const ends: number[] = [];
  for (let i = bytes.indexOf(10); i !== -1; i = bytes.indexOf(10, i + 1)) ends.push(i + 1);
  const at = [...new Set(cuts.map((c) => ends[c % ends.length]!))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const end of [...at, bytes.length]) {
    if (end > start) chunks.push(bytes.subarray(start, end));
    start = end;
  }
  return chunks;
}

function feed(target: BlockDigester, chunks: readonly Buffer[], isFile?: (line: string) => boolean, folderOf?: (line: string) => string | false) {
  for (const original of chunks) {
    // A copy per chunk, overwritten afterwards: the digester must not keep views into it.
    const chunk = Buffer.from(original);
    target.beginChunk(chunk);
    for (let start = 0, end = 0; start < chunk.length; start = end + 1) {
      end = chunk.indexOf(10, start);
      if (end === -1) end = chunk.length;
      const text = chunk.toString('utf8', start, end);
      target.line(chunk, start, end, isFile?.(text));
      const folder = folderOf?.(text);
      if (folder) target.folderLine(folder);
    }
    target.endChunk(chunk);
    chunk.fill(0x78);
  }
}

function digestsOf(bytes: Buffer, cuts: readonly number[] = [], read = true): BlockDigester {
  const digester = new BlockDigester();
  feed(digester, chunksOf(bytes, cuts), read ? (line) => line.includes('"IsDir":false') : undefined);
  digester.finish();
  return digester;
}

const sortedEntries = (digests: BlockDigests) => [...digests].sort(([a], [b]) => a.localeCompare(b));

const root = [folder('a'), folder('b'), file('top.txt')];
const a = [file('a/1.txt'), file('a/2.txt'), folder('a/sub')];
const sub = [file('a/sub/deep.txt')];
const b = [file('b/x.txt', 20), file('b/y.txt', 30)];

describe('BlockDigester', () => {
  it('cuts a block per folder and counts its files', () => {
    const digester = digestsOf(listing([root, a, sub, b]));
    expect([...digester.digests.values()].map((r) => r.files).sort()).toEqual([1, 1, 2, 2]);
    expect([...digester.digests.values()].map((r) => r.parent).sort()).toEqual(['', 'a/', 'a/sub/', 'b/']);
    expect(digester.repeated).toBe(false);
    expect(digester.inexact).toBe(false);
  });

  it('gives the same digests whatever order the folders come in and wherever the chunks are cut', () => {
    const reference = sortedEntries(digestsOf(listing([root, a, sub, b])).digests);
    const blocks = [root, a, sub, b];
    fc.assert(
      fc.property(fc.constantFrom(...permutations(blocks)), fc.array(fc.nat(), { maxLength: 6 }), (order, cuts) => {
        expect(sortedEntries(digestsOf(listing(order), cuts).digests)).toEqual(reference);
      }),
      { numRuns: 300 },
    );
  });

  it('skimmed (lines not read) gives the same digests as read, with no file counts', () => {
    const read = digestsOf(listing([root, a, sub, b]));
    const skimmed = digestsOf(listing([b, sub, a, root]), [3], false);
    expect([...skimmed.digests.keys()].sort()).toEqual([...read.digests.keys()].sort());
    expect([...skimmed.digests.values()].map((r) => r.files)).toEqual([0, 0, 0, 0]);
  });

  it.each([
    ['a size', [file('b/x.txt', 21), file('b/y.txt', 30)]],
    ['a file time, to the nanosecond', [file('b/x.txt', 20, '2026-01-02T03:04:05.123456788Z'), file('b/y.txt', 30)]],
    ['a name', [file('b/x2.txt', 20), file('b/y.txt', 30)]],
    ['a file more', [file('b/x.txt', 20), file('b/y.txt', 30), file('b/z.txt')]],
    ['a file less', [file('b/x.txt', 20)]],
  ])('changes one block when a line changes: %s', (_, changed) => {
    const before = digestsOf(listing([root, a, sub, b])).digests;
    const after = digestsOf(listing([root, a, sub, changed])).digests;
    expect([...after.keys()].filter((digest) => !before.has(digest))).toHaveLength(1);
    expect([...before.keys()].filter((digest) => !after.has(digest))).toHaveLength(1);
  });

  it("leaves a folder's time out (folders are known by their paths)", () => {
    const before = digestsOf(listing([root, a, sub, b])).digests;
    const later = [folder('a', '2027-05-06T07:08:09Z'), folder('b'), file('top.txt')];
    expect(sortedEntries(digestsOf(listing([later, a, sub, b])).digests).map(([d]) => d)).toEqual(sortedEntries(before).map(([d]) => d));
  });

  it.each([
    ['a name lsjson could not print (\\ufffd)', file('b/bad\\ufffd.txt')],
    ['a name holding U+FFFD itself', file('b/odd\uFFFD.txt')],
    ['a name with a line break', file('b/two\\nlines.txt')],
    ['a name with a carriage return', file('b/cr\\r.txt')],
  ])('marks the listing inexact for %s', (_, line) => {
    expect(digestsOf(listing([root, [line]])).inexact).toBe(true);
    // Other escapes (Go writes & < > as \u0026 \u003c \u003e) are exact.
    expect(digestsOf(listing([root, [file('b/Tom \\u0026 Jerry.txt')]])).inexact).toBe(false);
  });

  it('marks a listing that holds one folder block twice as repeated', () => {
    expect(digestsOf(listing([root, b, a, b])).repeated).toBe(true);
  });
});

describe('BlockComparison and PairVerdict', () => {
  const expected = digestsOf(listing([root, a, sub, b])).digests;

  async function compare(sides: { path1: Buffer; path2: Buffer }, last: BlockDigests | undefined = expected, exact = false) {
    let misses = 0;
    const verdict = new PairVerdict(() => misses++);
    const comparisons = { path1: new BlockComparison(last && { blocks: last, exact }, verdict), path2: new BlockComparison(last && { blocks: last, exact }, verdict) };
    const skimSide = async (side: 'path1' | 'path2') => {
      const comparison = comparisons[side];
      skimAll(comparison, chunksOf(sides[side], [2, 5]));
      return comparison.skimming && (await comparison.finishSkimming()).kind === 'unchanged';
    };
    const [unchanged1, unchanged2] = await Promise.all([skimSide('path1'), skimSide('path2')]);
    return { unchanged1, unchanged2, misses, comparisons };
  }

  it('finds both sides unchanged when each holds exactly the expected blocks, counting their files', async () => {
    const result = await compare({ path1: listing([b, a, root, sub]), path2: listing([sub, root, b, a]) });
    expect(result).toMatchObject({ unchanged1: true, unchanged2: true, misses: 0 });
    expect(result.comparisons.path1.filesMatched).toBe(6);
  });

  it.each([
    ['a changed block', listing([root, a, sub, [file('b/x.txt', 99), file('b/y.txt', 30)]])],
    ['a block missing', listing([root, a, b])],
    ['a block more', listing([root, a, sub, b, [file('c/new.txt')]])],
    ['an inexact name', listing([root, a, sub, [...b, file('b/bad\\ufffd.txt')]])],
  ])('one side with %s: neither side is unchanged, and the miss is told once', async (_, changed) => {
    const result = await compare({ path1: listing([root, a, sub, b]), path2: changed });
    expect(result).toMatchObject({ unchanged1: false, unchanged2: false, misses: 1 });
  });

  it('without the last listings, nothing is skipped', async () => {
    const verdict = new PairVerdict();
    const comparison = new BlockComparison(undefined, verdict);
    expect(comparison.skimming).toBe(false);
    expect(verdict.missed).toBe(true);
  });

  it('a side whose listing failed does not keep the other waiting', async () => {
    const verdict = new PairVerdict();
    const one = new BlockComparison({ blocks: expected, exact: false }, verdict);
    const other = new BlockComparison({ blocks: expected, exact: false }, verdict);
    skimAll(one, chunksOf(listing([root, a, sub, b])));
    const waiting = one.finishSkimming();
    other.abandon();
    expect((await waiting).kind).toBe('whole');
  });

  it('restarts its count and digests when lines are read again from the start', async () => {
    const comparison = new BlockComparison({ blocks: expected, exact: false }, new PairVerdict());
    skimAll(comparison, chunksOf(listing([root, a])));
    comparison.restart();
    expect(comparison.skimming).toBe(false);
    expect(comparison.filesMatched).toBe(0);
    feed(comparison.digester, chunksOf(listing([root, a, sub, b])), (line) => line.includes('"IsDir":false'));
    comparison.finish();
    expect(sortedEntries(comparison.digests!)).toEqual(sortedEntries(expected));
  });
});

describe('BlockComparison standing in for unchanged folders', () => {
  /** The last run's blocks as a full read records them: with the folders their lines name. */
  const readRecords = (bytes: Buffer): BlockDigests => {
    const digester = new BlockDigester();
    feed(digester, chunksOf(bytes), (line) => line.includes('"IsDir":false'), (line) => /"IsDir":true/.test(line) && JSON.parse(line.replace(/,$/, '')).Path);
    digester.finish();
    return digester.digests;
  };
  // Folders the batches below leave alone: reading in part pays when they hold most of the lines.
  const rest = Array.from({ length: 6 }, (_, i) => Array.from({ length: 5 }, (_, j) => file(`z${i}/${j}.txt`)));
  const rootWithRest = [...root, ...rest.map((_, i) => folder(`z${i}`))];
  const with_ = (...blocks: (readonly string[])[]) => listing([...rest, ...blocks]);
  const last = readRecords(with_(rootWithRest, a, sub, b));

  async function inPart(now: Buffer, other: Buffer = with_(rootWithRest, a, sub, b), blocks: BlockDigests = last, exact = true) {
    const verdict = new PairVerdict();
    const comparisons = [new BlockComparison({ blocks, exact }, verdict), new BlockComparison({ blocks, exact }, verdict)] as const;
    const readings = await Promise.all(
      [now, other].map(async (bytes, i) => {
        const comparison = comparisons[i]!;
        skimAll(comparison, chunksOf(bytes, [1, 4]));
        return comparison.skimming ? await comparison.finishSkimming() : { kind: 'whole' as const };
      }),
    );
    const spans = comparisons[0].spans.map((span) => now.toString('utf8', span.start, span.end));
    return { reading: readings[0]!, other: readings[1]!, spans, comparison: comparisons[0] };
  }

  it('reads only a changed block, and names its folder as changed', async () => {
    const changedB = [file('b/x.txt', 99), file('b/y.txt', 30)];
    const now = with_(sub, rootWithRest, changedB, a);
    const { reading, other, spans, comparison } = await inPart(now);
    expect(reading).toEqual({ kind: 'in-part', changedFolders: new Set(['b/']) });
    // The other side holds the last run's blocks: it is not read at all, its folders all stand.
    expect(other).toEqual({ kind: 'in-part', changedFolders: new Set() });
    expect(spans).toEqual([`${changedB.join(',\n')},\n`]);
    expect([...comparison.foldersOfMatchedBlocks()].sort()).toEqual(['a', 'a/sub', 'b', ...rest.map((_, i) => `z${i}`)]);
    expect(comparison.filesMatched).toBe(4 + 30);
  });

  it('names the folder of a block that is gone, with nothing to read', async () => {
    const { reading, spans } = await inPart(with_(rootWithRest, a, b));
    expect(reading).toEqual({ kind: 'in-part', changedFolders: new Set(['a/sub/']) });
    expect(spans).toEqual([]);
  });

  it('a new folder is a block to read; its parent block changed too', async () => {
    const rootWithC = [folder('a'), folder('b'), folder('c'), file('top.txt'), ...rest.map((_, i) => folder(`z${i}`))];
    const { reading, spans } = await inPart(with_(rootWithC, a, sub, b, [file('c/new.txt')]));
    expect(reading).toEqual({ kind: 'in-part', changedFolders: new Set(['', 'c/']) });
    expect(spans).toHaveLength(2);
  });

  it.each([
    ['the snapshot is not exactly the last listing', last, false],
    ['a block of the last run does not tell its folder', new Map([...last].map(([d, r]) => [d, r.parent === 'b/' ? { ...r, parent: undefined } : r])), true],
    ['two blocks of the last run name one folder', new Map([...last].map(([d, r]) => [d, r.parent === 'b/' ? { ...r, parent: 'a/' } : r])), true],
  ])('reads the whole listing when %s', async (_, blocks, exact) => {
    const { reading } = await inPart(with_(rootWithRest, a, sub, [file('b/x.txt', 99), file('b/y.txt', 30)]), undefined, blocks, exact);
    expect(reading).toEqual({ kind: 'whole' });
  });

  it('reads the whole listing when a folder comes in two blocks, or a path has an escaped quote', async () => {
    expect((await inPart(with_(rootWithRest, a, b, sub, [file('a/3.txt')]))).reading).toEqual({ kind: 'whole' });
    expect((await inPart(with_(rootWithRest, a, sub, [...b, file('b/say \\"hi\\"/x.txt')]))).reading).toEqual({ kind: 'whole' });
  });

  it('reads the whole listing when most of its lines changed', async () => {
    const changed = rest.map((files) => files.map((line) => line.replace('"Size":10', '"Size":11')));
    expect((await inPart(listing([rootWithRest, a, sub, b, ...changed]))).reading).toEqual({ kind: 'whole' });
    expect((await inPart(listing([rootWithRest, a, sub, b, ...changed.slice(0, 2), ...rest.slice(2)]))).reading.kind).toBe('in-part');
  });

  it('knows a folder from escaped bytes', () => {
    const digester = digestsOf(listing([[file('Tom \\u0026 Jerry/x.txt')]]));
    expect([...digester.digests.values()].map((r) => r.parent)).toEqual(['Tom & Jerry/']);
  });

  it("after reading the spans, records each block's files and folders for the next run", async () => {
    const changedRoot = [folder('a'), folder('b'), folder('d'), file('top.txt'), ...rest.map((_, i) => folder(`z${i}`))];
    const now = with_(changedRoot, a, sub, b);
    const { comparison } = await inPart(now);
    comparison.beginSpans();
    for (const span of comparison.spans) {
      const bytes = now.subarray(span.start, span.end);
      feed(comparison.digester, [bytes], (line) => line.includes('"IsDir":false'), (line) => /"IsDir":true/.test(line) && JSON.parse(line.replace(/,$/, '')).Path);
    }
    comparison.endSpans();
    expect(sortedEntries(comparison.digests!)).toEqual(sortedEntries(readRecords(now)));
  });
});

/** Skims chunks while the comparison skims, giving each its offset in the listing. */
function skimAll(comparison: BlockComparison, chunks: readonly Buffer[]): void {
  let offset = 0;
  for (const chunk of chunks) {
    if (comparison.skimming) comparison.skim(chunk, offset);
    offset += chunk.length;
  }
}

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}
