/**
 * Reading a listing's file in chunks of whole lines (growing-file.ts): whatever sizes the writes
 * and the reads come in, the chunks joined are the bytes written, each chunk but the last ends
 * with a newline, and a line longer than the read buffer comes whole. Each chunk is checked
 * before the next is asked for, as the reader's contract says (its memory is then reused).
 */
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LineReads, lineChunksOfGrowingFile, lineChunksOfRanges } from '../../src/rclone/growing-file.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'growing-file-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** Lines of these lengths (some empty), each ended by a newline but maybe the last. */
const textOf = (lengths: readonly number[], lastEnded: boolean) =>
  lengths.map((length, i) => `${String.fromCharCode(97 + (i % 26)).repeat(length)}${i < lengths.length - 1 || lastEnded ? '\n' : ''}`).join('');

/** Every chunk's bytes copied out as it comes, and that it is whole lines (all but the last). */
async function collect(chunks: AsyncGenerator<Buffer>): Promise<{ joined: string; wholeLines: boolean }> {
  const parts: string[] = [];
  for await (const chunk of chunks) parts.push(chunk.toString('latin1'));
  return { joined: parts.join(''), wholeLines: parts.slice(0, -1).every((part) => part.endsWith('\n')) };
}

describe('LineReads', () => {
  it('hands out whole lines and keeps the cut-off start of a line for the next read, doubling for a long line', () => {
    const reads = new LineReads(8);
    const put = (text: string) => {
      const into = reads.target();
      expect(text.length).toBeLessThanOrEqual(into.length);
      into.buffer.write(text, into.offset, 'latin1');
      return reads.lines(text.length)?.toString('latin1');
    };
    expect(put('ab\ncd')).toBe('ab\n');
    expect(put('e\nf')).toBe('cde\n');
    expect(put('ghijklm')).toBeUndefined(); // "fghijklm" fills the buffer: no newline yet
    expect(reads.target().length).toBe(8); // doubled to 16, 8 kept
    expect(reads.lines(0)).toBeUndefined();
    expect(reads.rest()?.toString('latin1')).toBe('fghijklm');
  });
});

describe('lineChunksOfGrowingFile', () => {
  it('gives back exactly what was written, in whole lines, however the writes and reads are cut', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.nat({ max: 40 }), { maxLength: 30 }),
        fc.boolean(),
        fc.array(fc.nat({ max: 50 }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 1, max: 24 }),
        async (lengths, lastEnded, writes, bufferBytes) => {
          const text = textOf(lengths, lastEnded);
          const file = join(dir, `grow-${Math.random()}`);
          const handle = await open(file, 'w');
          // The writer writes in pieces, with pauses, while the reader reads.
          const writer = (async () => {
            let at = 0;
            for (let i = 0; at < text.length; i++) {
              const piece = text.slice(at, at + 1 + writes[i % writes.length]!);
              await handle.write(piece, null, 'latin1');
              at += piece.length;
              await new Promise((resolve) => setTimeout(resolve, i % 3));
            }
            await handle.close();
          })();
          const { joined, wholeLines } = await collect(lineChunksOfGrowingFile(file, writer, bufferBytes));
          expect(joined).toBe(text);
          expect(wholeLines).toBe(true);
          await rm(file);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('lineChunksOfRanges', () => {
  it('gives back exactly the ranges, adjacent ones merged, in whole lines', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat({ max: 30 }), { minLength: 1, maxLength: 30 }), fc.array(fc.boolean()), fc.integer({ min: 1, max: 24 }), async (lengths, picks, bufferBytes) => {
        const text = textOf(lengths, true);
        const file = join(dir, `ranges-${Math.random()}`);
        await writeFile(file, text, 'latin1');
        // Each line a range of its own, some picked: ranges start at a line's start and end after its newline.
        const ranges: { start: number; end: number }[] = [];
        let start = 0;
        lengths.forEach((length, i) => {
          if (picks[i % Math.max(picks.length, 1)] ?? true) ranges.push({ start, end: start + length + 1 });
          start += length + 1;
        });
        const { joined, wholeLines } = await collect(lineChunksOfRanges(file, ranges, bufferBytes));
        expect(joined).toBe(ranges.map((range) => text.slice(range.start, range.end)).join(''));
        expect(wholeLines).toBe(true);
        await rm(file);
      }),
      { numRuns: 60 },
    );
  });
});
