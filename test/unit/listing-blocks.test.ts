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

function feed(target: { beginChunk(c: Buffer): void; line(c: Buffer, s: number, e: number, f: boolean | undefined): void; endChunk(c: Buffer): void }, chunks: readonly Buffer[], isFile?: (line: string) => boolean) {
  for (const original of chunks) {
    // A copy per chunk, overwritten afterwards: the digester must not keep views into it.
    const chunk = Buffer.from(original);
    target.beginChunk(chunk);
    for (let start = 0, end = 0; start < chunk.length; start = end + 1) {
      end = chunk.indexOf(10, start);
      if (end === -1) end = chunk.length;
      target.line(chunk, start, end, isFile?.(chunk.toString('utf8', start, end)));
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
    expect([...digester.digests.values()].sort()).toEqual([1, 1, 2, 2]);
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
    expect([...skimmed.digests.values()]).toEqual([0, 0, 0, 0]);
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

  async function compare(sides: { path1: Buffer; path2: Buffer }, last: BlockDigests | undefined = expected) {
    let misses = 0;
    const verdict = new PairVerdict(() => misses++);
    const comparisons = { path1: new BlockComparison(last, verdict), path2: new BlockComparison(last, verdict) };
    const skimSide = async (side: 'path1' | 'path2') => {
      const comparison = comparisons[side];
      for (const chunk of chunksOf(sides[side], [2, 5])) if (comparison.skipping) comparison.skim(chunk);
      return comparison.skipping && (await comparison.finishSkimming());
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
    expect(comparison.skipping).toBe(false);
    expect(verdict.missed).toBe(true);
  });

  it('a side whose listing failed does not keep the other waiting', async () => {
    const verdict = new PairVerdict();
    const one = new BlockComparison(expected, verdict);
    const other = new BlockComparison(expected, verdict);
    for (const chunk of chunksOf(listing([root, a, sub, b]))) one.skim(chunk);
    const waiting = one.finishSkimming();
    other.abandon();
    expect(await waiting).toBe(false);
  });

  it('restarts its count and digests when lines are read again from the start', async () => {
    const comparison = new BlockComparison(expected, new PairVerdict());
    for (const chunk of chunksOf(listing([root, a]))) comparison.skim(chunk);
    comparison.restart();
    expect(comparison.skipping).toBe(false);
    expect(comparison.filesMatched).toBe(0);
    feed(comparison.digester, chunksOf(listing([root, a, sub, b])), (line) => line.includes('"IsDir":false'));
    comparison.finish();
    expect(sortedEntries(comparison.digests!)).toEqual(sortedEntries(expected));
  });
});

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}
