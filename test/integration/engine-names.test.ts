/**
 * File names that break naive tools: comment and shell characters, spaces at either end, quotes,
 * brackets and glob characters, backslashes, NFC and NFD forms of the same word, emoji, very long
 * paths, names that look like command-line options, and control characters. Created on both sides, synced, then
 * modified and deleted on one side.
 */
import { readdir } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { conflictCopyPattern } from '../helpers/conflicts.ts';
import { actionsOf, conflictsOf } from '../helpers/logs.ts';
import { dump } from '../helpers/processes.ts';
import { makeSandbox, useSandbox } from '../helpers/sandbox.ts';
import { digestTree, listFiles, minutesAgo, readTree, removeFile, writeTree, writeTreeFile } from '../helpers/trees.ts';

const NFC = 'caf\u00e9';
const NFD = 'cafe\u0301';

/** Can this filesystem hold NFC and NFD spellings of one name as two files? (Not on macOS APFS/HFS+ and some others.) */
async function fsKeepsBothNormalForms(): Promise<boolean> {
  const sb = await makeSandbox('rs-nfprobe-');
  try {
    await writeTreeFile(sb.path1, `${NFC}.txt`, 'nfc');
    await writeTreeFile(sb.path1, `${NFD}.txt`, 'nfd');
    return (await readdir(sb.path1)).length === 2;
  } finally {
    await sb.cleanup();
  }
}
const bothForms = await fsKeepsBothNormalForms();

/** A path of several nested folders, well over 240 characters, each component under 255 bytes. */
function longPath(tag: string): string {
  const component = (i: number) => `level-${i}-${tag}-${'abcdefghij'.repeat(5)}`;
  const path = `${[1, 2, 3, 4, 5].map(component).join('/')}/${'file-'.repeat(20)}${tag}.txt`;
  return path;
}

/** Awkward names; `tag` keeps the two sides' sets apart so the first run is a pure union. */
function awkwardNames(tag: string): string[] {
  const names = [
    `#${tag} starts with a hash`,
    `;${tag} starts with a semicolon`,
    `#${tag}/#inside a hash dir`,
    ` ${tag} leading space`,
    `${tag} trailing space `,
    `  ${tag} both ends  `,
    `${tag} dir with trailing space /file`,
    ` ${tag} dir with leading space/ inner leading`,
    `${tag} it's single 'quoted'`,
    `${tag} say "double"`,
    `${tag} [brackets]`,
    `${tag} {braces,commas}`,
    `${tag} star * here`,
    `${tag} question ? mark`,
    `${tag}*`,
    `${tag}?`,
    `${tag}[a-z]`,
    `${tag} back\\slash`,
    `${tag} ends with backslash\\`,
    `${tag} dollar $HOME and \`tick\``,
    `${tag} percent %20 and & amp | pipe ; semi`,
    `${tag} tab\there`,
    // rclone shows control characters as Unicode symbols (\n as U+240A) and maps them back; a
    // name that really holds the symbol must stay a different file.
    `${tag} line\nbreak`,
    `${tag} line\u240Abreak`,
    `${tag} emoji 😀🎉 and CJK 日本語`,
    `${tag}-${NFC}.txt`,
    `-${tag}`,
    `-rf${tag === 'a' ? '' : `-${tag}`}`,
    `--help${tag === 'a' ? '' : `-${tag}`}`,
    `${tag}/-rf`,
    `${tag}/--help`,
    `${tag}/--files-from=x`,
    `.${tag}-hidden`,
    `${tag}.conflict-path1-20200101T000000Z.txt`,
    longPath(tag),
  ];
  if (bothForms) names.push(`${tag}-${NFD}.txt`);
  return names;
}

/**
 * Log lines carry paths as rclone prints them: the local backend shows a control character c as
 * U+2400+c (\n as '␊') and escapes a literal symbol of that range with '‛'. This maps them back.
 */
function decodeRcloneName(name: string): string {
  return name.replace(/\u201B([\u2400-\u241F])|([\u2400-\u241F])/g, (_, literal: string | undefined, encoded: string | undefined) =>
    literal ?? String.fromCharCode(encoded!.charCodeAt(0) - 0x2400),
  );
}

const contentOf = (name: string, side: string) => `${side} wrote ${JSON.stringify(name)}\n`;

const { sandbox: sb, ok } = useSandbox('rs-names-');

describe('awkward file names', () => {
  it('checks its own fixtures: long paths are long, components fit, names are distinct', () => {
    const path = longPath('a');
    expect(path.length).toBeGreaterThan(240);
    for (const component of path.split('/')) expect(Buffer.byteLength(component)).toBeLessThan(255);
    const all = [...awkwardNames('a'), ...awkwardNames('b')];
    expect(new Set(all).size).toBe(all.length);
  });

  it.skipIf(!bothForms)('the filesystem holds NFC and NFD "café" as two files, and so does the sync', async () => {
    await writeTree(sb.path1, { [`${NFC}.txt`]: 'composed', [`${NFD}.txt`]: 'decomposed' });
    await ok();
    expect(await readTree(sb.path2)).toEqual({ [`${NFC}.txt`]: 'composed', [`${NFD}.txt`]: 'decomposed' });
    // And one of them can change without touching the other.
    await writeTreeFile(sb.path2, `${NFD}.txt`, 'decomposed, edited', minutesAgo(1));
    await ok();
    expect(await readTree(sb.path1)).toEqual({ [`${NFC}.txt`]: 'composed', [`${NFD}.txt`]: 'decomposed, edited' });
    // The same edit of one form on both sides goes through rclone's content check: no conflict.
    await writeTreeFile(sb.path1, `${NFC}.txt`, 'composed, same edit', new Date(Date.now() - 50_000));
    await writeTreeFile(sb.path2, `${NFC}.txt`, 'composed, same edit', new Date(Date.now() - 40_000));
    const same = await ok();
    expect(conflictsOf(same.logs), dump(same)).toEqual([]);
    expect(actionsOf(same.logs)).toEqual([]);
    // Deleting one form deletes exactly that one on the other side.
    await removeFile(sb.path1, `${NFC}.txt`);
    await ok({ SYNC_MAX_DELETE: '100' });
    expect(await readTree(sb.path1)).toEqual({ [`${NFD}.txt`]: 'decomposed, edited' });
    expect(await readTree(sb.path2)).toEqual({ [`${NFD}.txt`]: 'decomposed, edited' });
  });

  it('syncs them both ways byte for byte, then propagates edits and deletions of them', async () => {
    const names1 = awkwardNames('a');
    const names2 = awkwardNames('b');
    await writeTree(sb.path1, Object.fromEntries(names1.map((n) => [n, contentOf(n, 'path1')])));
    await writeTree(sb.path2, Object.fromEntries(names2.map((n) => [n, contentOf(n, 'path2')])));
    expect((await listFiles(sb.path1)).sort()).toEqual([...names1].sort());

    const first = await ok();
    expect(conflictsOf(first.logs)).toEqual([]);
    const tree1 = await readTree(sb.path1);
    const tree2 = await readTree(sb.path2);
    expect(Object.keys(tree1).sort()).toEqual([...names1, ...names2].sort());
    expect(tree2).toEqual(tree1);
    expect(await digestTree(sb.path2)).toEqual(await digestTree(sb.path1));
    for (const n of names1) expect(tree2[n]).toBe(contentOf(n, 'path1'));
    for (const n of names2) expect(tree1[n]).toBe(contentOf(n, 'path2'));

    // A quiet run: the names survive the snapshot round trip.
    const quiet = await ok();
    expect(actionsOf(quiet.logs), dump(quiet)).toEqual([]);

    // Modify half, delete a few, on path1, both of its own names and of those that came from path2.
    const toDelete = [...names1.filter((_, i) => i % 4 === 1), ...names2.filter((_, i) => i % 5 === 1)];
    const toModify = [...names1.filter((_, i) => i % 2 === 0), ...names2.filter((_, i) => i % 3 === 0)].filter((n) => !toDelete.includes(n));
    expect(toModify.length).toBeGreaterThan(20);
    expect(toDelete.length).toBeGreaterThan(10);
    for (const n of toModify) await writeTreeFile(sb.path1, n, `${contentOf(n, 'path1')}edited later\n`, new Date(Date.now() - 30_000));
    for (const n of toDelete) await removeFile(sb.path1, n);

    const result = await ok({ SYNC_MAX_DELETE: '100' });
    expect(conflictsOf(result.logs)).toEqual([]);
    const copied = actionsOf(result.logs).filter((l) => l.action === 'copy').map((l) => decodeRcloneName(l.path)).sort();
    const deleted = actionsOf(result.logs).filter((l) => l.action === 'delete').map((l) => decodeRcloneName(l.path)).sort();
    expect(copied).toEqual([...toModify].sort());
    expect(deleted).toEqual([...toDelete].sort());

    const after1 = await readTree(sb.path1);
    const after2 = await readTree(sb.path2);
    expect(after2).toEqual(after1);
    for (const n of toDelete) expect(after2[n]).toBeUndefined();
    for (const n of toModify) expect(after2[n]).toMatch(/edited later\n$/);
    expect(await ok().then((r) => actionsOf(r.logs))).toEqual([]);
  });
  it.each(['none', 'path1'] as const)('conflicts on awkward names keep both versions under the right names (SYNC_CONFLICT_RESOLVE=%s)', async (resolve) => {
    const names = awkwardNames('a');
    await writeTree(sb.path1, Object.fromEntries(names.map((n) => [n, 'base'])));
    await ok();
    for (const n of names) {
      await writeTreeFile(sb.path1, n, contentOf(n, 'path1'), minutesAgo(1));
      await writeTreeFile(sb.path2, n, `${contentOf(n, 'path2')}longer`, new Date(Date.now() - 30_000));
    }
    const result = await ok({ SYNC_CONFLICT_RESOLVE: resolve });
    const conflicts = conflictsOf(result.logs);
    expect(conflicts.map((c) => decodeRcloneName(c.path)).sort()).toEqual([...names].sort());

    const expected: Record<string, string> = {};
    for (const c of conflicts) {
      const name = decodeRcloneName(c.path);
      if (resolve === 'none') {
        expect(c.path1Copy).toMatch(conflictCopyPattern(c.path, 'path1'));
        expect(c.path2Copy).toMatch(conflictCopyPattern(c.path, 'path2'));
        expected[decodeRcloneName(String(c.path1Copy))] = contentOf(name, 'path1');
        expected[decodeRcloneName(String(c.path2Copy))] = `${contentOf(name, 'path2')}longer`;
      } else {
        expect(c.loserCopy).toMatch(conflictCopyPattern(c.path, 'path2'));
        expected[name] = contentOf(name, 'path1');
        expected[decodeRcloneName(String(c.loserCopy))] = `${contentOf(name, 'path2')}longer`;
      }
    }
    expect(Object.keys(expected)).toHaveLength(names.length * 2);
    expect(await readTree(sb.path1)).toEqual(expected);
    expect(await readTree(sb.path2)).toEqual(expected);
    expect(actionsOf((await ok({ SYNC_CONFLICT_RESOLVE: resolve })).logs)).toEqual([]);
  });
});
