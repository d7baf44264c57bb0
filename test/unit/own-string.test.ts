/**
 * ownString gives an equal string that does not keep the text it was cut from alive: paths cut
 * from 1 MB chunks of rclone's output used to hold every chunk for the whole run.
 */
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { describe, expect, test } from 'vitest';
import { ownString } from '../../src/own-string.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('ownString', () => {
  test.each([
    ['', 'empty'],
    ['short.txt', 'shorter than a V8 view'],
    ['dir/sub/a rather long file name.txt', 'ASCII'],
    ['Fotos/Ürlaub 2026/straße-φωτογραφία-写真.jpg', 'accents, Greek, CJK'],
    ['emoji/👩‍👩‍👧 family 🎉 party.png', 'astral characters'],
    ['lone \ud800 surrogate in a long name', 'a lone surrogate'],
  ])('%j (%s) comes back equal', (text) => {
    expect(ownString(text)).toBe(text);
  });

  test('a copy cut from a large text does not keep that text in memory, where a plain slice does', () => {
    const held = (cut: (chunk: string) => string): number => {
      gc();
      const before = process.memoryUsage().heapUsed;
      const kept: string[] = [];
      for (let i = 0; i < 40; i++) {
        // 1 MB of text, different each time, as a chunk of a listing is.
        const chunk = `${i}`.padEnd(1 << 20, `{"Path":"d${i}/e${i}/some-file-${i}.txt"}\n`);
        kept.push(cut(chunk));
      }
      gc();
      const grown = process.memoryUsage().heapUsed - before;
      expect(kept).toHaveLength(40);
      return grown;
    };
    const sliced = held((chunk) => chunk.slice(10, 40));
    const owned = held((chunk) => ownString(chunk.slice(10, 40)));
    expect(sliced).toBeGreaterThan(30 << 20);
    expect(owned).toBeLessThan(4 << 20);
  });
});
