/**
 * Conflicts end to end: every SYNC_CONFLICT_RESOLVE value, what each side holds afterwards, a
 * repeated conflict on the same file, and the first run (resync) of two differing trees.
 */
import { describe, expect, it } from 'vitest';
import { conflictCopies, conflictCopyPattern } from '../helpers/conflicts.ts';
import { actionsOf, conflictsOf } from '../helpers/logs.ts';
import { useSandbox } from '../helpers/sandbox.ts';
import { listFiles, minutesAgo, readTree, setMtime, writeTree, writeTreeFile } from '../helpers/trees.ts';

const { sandbox: sb, ok, synced } = useSandbox('rs-conflicts-');

const ONE = 'version edited on path1 (older)';
const TWO = 'version edited on path2, the newer one';

/** doc.txt edited differently on both sides; path2's edit is the newer. */
async function conflictingEdits(path = 'dir/doc.txt') {
  await writeTreeFile(sb.path1, path, ONE, minutesAgo(20));
  await writeTreeFile(sb.path2, path, TWO, minutesAgo(10));
}

describe('SYNC_CONFLICT_RESOLVE', () => {
  it('none: both versions get conflict names on both sides and the original name is vacated', async () => {
    await synced({ 'dir/doc.txt': 'base', 'other.txt': 'o' });
    await conflictingEdits();
    const result = await ok({ SYNC_CONFLICT_RESOLVE: 'none' });

    const [line, ...more] = conflictsOf(result.logs);
    expect(more).toEqual([]);
    expect(line).toMatchObject({ path: 'dir/doc.txt', dryRun: false });
    const copy1 = String(line!.path1Copy);
    const copy2 = String(line!.path2Copy);
    expect(copy1).toMatch(conflictCopyPattern('dir/doc.txt', 'path1'));
    expect(copy2).toMatch(conflictCopyPattern('dir/doc.txt', 'path2'));

    const expected = { 'other.txt': 'o', [copy1]: ONE, [copy2]: TWO };
    expect(await readTree(sb.path1)).toEqual(expected);
    expect(await readTree(sb.path2)).toEqual(expected);

    const again = await ok();
    expect(actionsOf(again.logs)).toEqual([]);
  });

  // path2's edit is the newer one.
  it.each([
    { resolve: 'newer', winner: 'path2', loser: 'path1' },
    { resolve: 'older', winner: 'path1', loser: 'path2' },
    { resolve: 'path1', winner: 'path1', loser: 'path2' },
    { resolve: 'path2', winner: 'path2', loser: 'path1' },
    // path2's version is the longer one too.
    { resolve: 'larger', winner: 'path2', loser: 'path1' },
    { resolve: 'smaller', winner: 'path1', loser: 'path2' },
  ] as const)('$resolve: $winner keeps the name, $loser is kept as a conflict copy on both sides', async ({ resolve, winner, loser }) => {
    await synced({ 'dir/doc.txt': 'base', 'other.txt': 'o' });
    await conflictingEdits();
    const result = await ok({ SYNC_CONFLICT_RESOLVE: resolve });

    const lines = conflictsOf(result.logs);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ path: 'dir/doc.txt', winner });
    const loserCopy = String(lines[0]!.loserCopy);
    expect(loserCopy).toMatch(conflictCopyPattern('dir/doc.txt', loser));

    const content = { path1: ONE, path2: TWO };
    const expected = { 'dir/doc.txt': content[winner], [loserCopy]: content[loser], 'other.txt': 'o' };
    expect(await readTree(sb.path1)).toEqual(expected);
    expect(await readTree(sb.path2)).toEqual(expected);

    const again = await ok({ SYNC_CONFLICT_RESOLVE: resolve });
    expect(actionsOf(again.logs)).toEqual([]);
  });

  it('by default the newer version keeps the name and the older is kept beside it on both sides', async () => {
    await synced({ 'dir/doc.txt': 'base', 'other.txt': 'o' });
    await conflictingEdits();
    const result = await ok();
    const [line] = conflictsOf(result.logs);
    expect(line).toMatchObject({ path: 'dir/doc.txt', winner: 'path2' });
    const olderCopy = String(line!.loserCopy);
    expect(olderCopy).toMatch(conflictCopyPattern('dir/doc.txt', 'path1'));
    const expected = { 'dir/doc.txt': TWO, [olderCopy]: ONE, 'other.txt': 'o' };
    expect(await readTree(sb.path1)).toEqual(expected);
    expect(await readTree(sb.path2)).toEqual(expected);
  });

  it('newer with equal modtimes has no winner and keeps both under conflict names', async () => {
    await synced({ 'doc.txt': 'base' });
    const when = minutesAgo(5);
    await writeTreeFile(sb.path1, 'doc.txt', 'edit one', when);
    await writeTreeFile(sb.path2, 'doc.txt', 'edit two!', when);
    const result = await ok({ SYNC_CONFLICT_RESOLVE: 'newer' });
    const [line] = conflictsOf(result.logs);
    expect(line).toBeDefined();
    const expected = { [String(line!.path1Copy)]: 'edit one', [String(line!.path2Copy)]: 'edit two!' };
    expect(await readTree(sb.path1)).toEqual(expected);
    expect(await readTree(sb.path2)).toEqual(expected);
  });
});

describe('repeated conflicts', () => {
  it('none: a second conflict on the same file in a later run keeps the first conflict copies intact', async () => {
    await synced({ 'doc.txt': 'base' });
    await writeTreeFile(sb.path1, 'doc.txt', 'first round, path1', minutesAgo(30));
    await writeTreeFile(sb.path2, 'doc.txt', 'first round, path2!', minutesAgo(29));
    const first = await ok({ SYNC_CONFLICT_RESOLVE: 'none' });
    const [c1] = conflictsOf(first.logs);
    const firstCopies = { [String(c1!.path1Copy)]: 'first round, path1', [String(c1!.path2Copy)]: 'first round, path2!' };
    expect(await readTree(sb.path1)).toEqual(firstCopies);

    // The file is recreated differently on both sides: a second conflict, right away (same second
    // of the clock or not, the new copies must get names of their own).
    await writeTreeFile(sb.path1, 'doc.txt', 'second round, path1 again', minutesAgo(20));
    await writeTreeFile(sb.path2, 'doc.txt', 'second round, path2 again!!', minutesAgo(19));
    const second = await ok({ SYNC_CONFLICT_RESOLVE: 'none' });
    const [c2] = conflictsOf(second.logs);
    expect(c2).toBeDefined();
    const secondCopies = { [String(c2!.path1Copy)]: 'second round, path1 again', [String(c2!.path2Copy)]: 'second round, path2 again!!' };
    expect(Object.keys(secondCopies).some((p) => p in firstCopies)).toBe(false);

    const expected = { ...firstCopies, ...secondCopies };
    expect(Object.keys(expected)).toHaveLength(4);
    expect(await readTree(sb.path1)).toEqual(expected);
    expect(await readTree(sb.path2)).toEqual(expected);
  });

  it('with a winner: a second conflict adds a second loser copy and keeps the first', async () => {
    await synced({ 'notes.md': 'base' });
    await writeTreeFile(sb.path1, 'notes.md', 'p1 round 1', minutesAgo(30));
    await writeTreeFile(sb.path2, 'notes.md', 'p2 round 1!', minutesAgo(29));
    const first = await ok({ SYNC_CONFLICT_RESOLVE: 'path1' });
    const copy1 = String(conflictsOf(first.logs)[0]!.loserCopy);

    await writeTreeFile(sb.path1, 'notes.md', 'p1 round 2 ...', minutesAgo(20));
    await writeTreeFile(sb.path2, 'notes.md', 'p2 round 2 ......', minutesAgo(19));
    const second = await ok({ SYNC_CONFLICT_RESOLVE: 'path1' });
    const copy2 = String(conflictsOf(second.logs)[0]!.loserCopy);
    expect(copy2).not.toBe(copy1);
    expect(copy2).toMatch(conflictCopyPattern('notes.md', 'path2'));

    const expected = { 'notes.md': 'p1 round 2 ...', [copy1]: 'p2 round 1!', [copy2]: 'p2 round 2 ......' };
    expect(await readTree(sb.path1)).toEqual(expected);
    expect(await readTree(sb.path2)).toEqual(expected);
  });
});

describe('first run (resync) of two differing trees', () => {
  async function differingTrees() {
    await writeTree(sb.path1, {
      'same.txt': 'identical',
      'different-size.txt': 'path1 version',
      'same-size.txt': 'AAAAAAAA',
      'only1.txt': 'one',
      'sub/x.txt': 'x from path1',
    });
    await writeTree(sb.path2, {
      'same.txt': 'identical',
      'different-size.txt': 'the path2 version',
      'same-size.txt': 'BBBBBBBB',
      'only2.txt': 'two',
      'sub/x.txt': 'x from path2, longer',
    });
    // Identical content with different mtimes is not a conflict; same size with different mtimes
    // needs a content check, which finds them different.
    await setMtime(sb.path1, 'same.txt', minutesAgo(50));
    await setMtime(sb.path2, 'same.txt', minutesAgo(40));
    await setMtime(sb.path1, 'same-size.txt', minutesAgo(50));
    await setMtime(sb.path2, 'same-size.txt', minutesAgo(40));
  }

  it('with none, makes a conflict of every file that differs, both under conflict names, and keeps everything else', async () => {
    await differingTrees();
    const result = await ok({ SYNC_CONFLICT_RESOLVE: 'none' });
    const conflicts = conflictsOf(result.logs);
    expect(conflicts.map((c) => c.path).sort()).toEqual(['different-size.txt', 'same-size.txt', 'sub/x.txt']);

    const expected: Record<string, string> = { 'same.txt': 'identical', 'only1.txt': 'one', 'only2.txt': 'two' };
    const originals: Record<string, [string, string]> = {
      'different-size.txt': ['path1 version', 'the path2 version'],
      'same-size.txt': ['AAAAAAAA', 'BBBBBBBB'],
      'sub/x.txt': ['x from path1', 'x from path2, longer'],
    };
    for (const c of conflicts) {
      expect(c.path1Copy).toMatch(conflictCopyPattern(c.path, 'path1'));
      expect(c.path2Copy).toMatch(conflictCopyPattern(c.path, 'path2'));
      expected[String(c.path1Copy)] = originals[c.path]![0];
      expected[String(c.path2Copy)] = originals[c.path]![1];
    }
    expect(await readTree(sb.path1)).toEqual(expected);
    expect(await readTree(sb.path2)).toEqual(expected);
  });

  it('by default the newer version of each differing file keeps its name; the older is kept beside it', async () => {
    await differingTrees();
    // writeTree gives both trees the same times: make path2's versions the newer ones.
    for (const path of ['different-size.txt', 'sub/x.txt']) {
      await setMtime(sb.path1, path, minutesAgo(30));
      await setMtime(sb.path2, path, minutesAgo(20));
    }
    const result = await ok();
    const conflicts = conflictsOf(result.logs);
    expect(conflicts.map((c) => [c.path, c.winner]).sort()).toEqual([
      ['different-size.txt', 'path2'],
      ['same-size.txt', 'path2'],
      ['sub/x.txt', 'path2'],
    ]);
    const expected: Record<string, string> = {
      'same.txt': 'identical',
      'only1.txt': 'one',
      'only2.txt': 'two',
      'different-size.txt': 'the path2 version',
      'same-size.txt': 'BBBBBBBB',
      'sub/x.txt': 'x from path2, longer',
    };
    const older: Record<string, string> = { 'different-size.txt': 'path1 version', 'same-size.txt': 'AAAAAAAA', 'sub/x.txt': 'x from path1' };
    for (const c of conflicts) {
      expect(c.loserCopy).toMatch(conflictCopyPattern(c.path, 'path1'));
      expected[String(c.loserCopy)] = older[c.path]!;
    }
    expect(await readTree(sb.path1)).toEqual(expected);
    expect(await readTree(sb.path2)).toEqual(expected);
  });

  it('with a winner configured, the loser is still kept as a conflict copy (never a silent win)', async () => {
    await differingTrees();
    const result = await ok({ SYNC_CONFLICT_RESOLVE: 'path1' });
    const conflicts = conflictsOf(result.logs);
    expect(conflicts.map((c) => c.path).sort()).toEqual(['different-size.txt', 'same-size.txt', 'sub/x.txt']);
    const tree1 = await readTree(sb.path1);
    expect(tree1).toEqual(await readTree(sb.path2));
    expect(tree1['different-size.txt']).toBe('path1 version');
    expect(tree1['same-size.txt']).toBe('AAAAAAAA');
    expect(tree1['sub/x.txt']).toBe('x from path1');
    for (const c of conflicts) expect(tree1[String(c.loserCopy)]).toBeDefined();
    expect(Object.values(tree1).sort()).toEqual(
      ['AAAAAAAA', 'BBBBBBBB', 'identical', 'one', 'path1 version', 'the path2 version', 'two', 'x from path1', 'x from path2, longer'].sort(),
    );
    expect(conflictCopies(await listFiles(sb.path1))).toHaveLength(3);
  });
});
