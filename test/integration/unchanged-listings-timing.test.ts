/**
 * The no-change shortcut when one side changed and the two listings end at different times,
 * whichever side's listing ends first: a side found unchanged then stands on the snapshot (read in
 * part, with no folder to read); and where its blocks cannot stand for their folders (a folder's
 * name with a quote in it, which the bytes do not tell exactly), it is read whole (the part it
 * skimmed again, then the rest). rclone is wrapped to hold one side's listing back for a while.
 */
import { existsSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { copiesOf, deletesOf, readInPart, tookShortcut } from '../helpers/logs.ts';
import { useSandbox } from '../helpers/sandbox.ts';
import { readTree, writeTree, writeTreeFile } from '../helpers/trees.ts';

const { sandbox: sb, ok } = useSandbox('rs-unchanged-timing-');

function treeOf(folders: number, perFolder: number): Record<string, string> {
  const tree: Record<string, string> = {};
  for (let d = 0; d < folders; d++) for (let f = 0; f < perFolder; f++) tree[`d${d}/f${f}.txt`] = `file ${f} of folder ${d}`;
  return tree;
}

describe('one side changed, the listings end at different times (local↔local)', () => {
  /**
   * rclone, with the lsjson of each root in `held` held back for a while after its first lines:
   * one side's listing is then skimmed to its end (or half-way) before the other shows a change.
   */
  async function slowListings(held: readonly { root: string; lines: number; seconds: number }[]): Promise<string> {
    const wrapper = join(sb.scratch, 'rclone-slow-listings');
    const script = [
      '#!/bin/sh',
      'case "$*" in',
      // The shell's read takes a byte at a time from a pipe, so nothing past the lines is lost.
      ...held.map(
        ({ root, lines, seconds }) =>
          `  *lsjson*" ${root} "*) rclone "$@" | { i=0; while [ $i -lt ${lines} ] && IFS= read -r line; do printf '%s\\n' "$line"; i=$((i+1)); done; sleep ${seconds}; cat; }; exit 0 ;;`,
      ),
      'esac',
      'exec rclone "$@"',
    ].join('\n');
    await writeFile(wrapper, `${script}\n`);
    await chmod(wrapper, 0o755);
    return wrapper;
  }

  const timings = [
    // path1 ends (skimmed whole, unchanged) while path2 is held back before its change shows.
    ['path1 is skimmed to its end before path2 shows a change', [{ side: 'path2', lines: 3, seconds: 2 }]],
    // path1 has skimmed its first chunk when path2 shows its change, and the rest of path1 comes later.
    [
      'path1 is skimmed half-way when path2 shows a change',
      [
        { side: 'path2', lines: 3, seconds: 1 },
        { side: 'path1', lines: 5000, seconds: 3 },
      ],
    ],
  ] as const;
  it.each([
    ...timings.map(([name, held]) => [`${name}: path1 stands on the snapshot, path2 reads the folder that changed`, held, false] as const),
    ...timings.map(([name, held]) => [`${name}, with a folder whose name the bytes do not tell: path1 is read whole`, held, true] as const),
  ])('%s', { timeout: 240_000 }, async (_, held, quoted) => {
    // 9,600 files: a listing of more than one chunk (1 MiB) on each side.
    const tree = { ...treeOf(32, 300), ...(quoted ? { 'say "hi"/x.txt': 'lsjson escapes the quote' } : {}) };
    await writeTree(sb.path1, tree);
    await ok();
    await ok();
    expect(tookShortcut(await ok())).toBe(true);

    const rclone = await slowListings(held.map(({ side, lines, seconds }) => ({ root: side === 'path1' ? sb.path1 : sb.path2, lines, seconds })));
    await writeTreeFile(sb.path2, 'd7/f3.txt', 'edited on path2, longer than before');
    const result = await ok({ SYNC_RCLONE_BINARY: rclone });
    expect(tookShortcut(result)).toBe(false);
    expect(readInPart(result)).toEqual(quoted ? [] : ['path1', 'path2']);
    expect(deletesOf(result.logs)).toEqual([]);
    expect(copiesOf(result.logs).map((l) => `${l.from}:${l.path}`)).toEqual(['path2:d7/f3.txt']);
    const expected = { ...tree, 'd7/f3.txt': 'edited on path2, longer than before' };
    expect(await readTree(sb.path1)).toEqual(expected);
    expect(await readTree(sb.path2)).toEqual(expected);
    // The digests stood for the snapshot this run replaced: they are gone with it.
    expect(existsSync(join(await sb.pairDir(), 'listing-digests.json'))).toBe(false);
  });
});
