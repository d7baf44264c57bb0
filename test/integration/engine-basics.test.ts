/**
 * The engine end to end on two local folders, for what the scenarios run on every backend
 * (engine-scenarios.test.ts) leave out: a deletion against a modification, the quiet cases (deleted
 * on both, same change on both), dry run, modtimes to the nanosecond, what size,modtime cannot see,
 * names that turn from file to folder, and two pairs in one state folder.
 */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { conflictCopies } from '../helpers/conflicts.ts';
import { actionsOf, conflictsOf, copiesOf, deletesOf, summaryOf } from '../helpers/logs.ts';
import { dump, runCli } from '../helpers/processes.ts';
import { useSandbox } from '../helpers/sandbox.ts';
import {
  digestTree,
  listFiles,
  minutesAgo,
  mtimeOf,
  readTree,
  readTreeFile,
  removeFile,
  setMtime,
  statTree,
  writeTree,
  writeTreeFile,
} from '../helpers/trees.ts';

const { sandbox: sb, ok, synced } = useSandbox('rs-basics-');

describe('one-sided changes', () => {
  it('restores a file deleted on one side but modified on the other, in both directions', async () => {
    await synced({ 'x.txt': 'x original', 'y.txt': 'y original', 'keep.txt': 'k' });
    await removeFile(sb.path1, 'x.txt');
    await writeTreeFile(sb.path2, 'x.txt', 'x modified on path2', minutesAgo(4));
    await removeFile(sb.path2, 'y.txt');
    await writeTreeFile(sb.path1, 'y.txt', 'y modified on path1', minutesAgo(4));

    const result = await ok({ SYNC_MAX_DELETE: '100' });
    const expected = { 'keep.txt': 'k', 'x.txt': 'x modified on path2', 'y.txt': 'y modified on path1' };
    expect(await readTree(sb.path1)).toEqual(expected);
    expect(await readTree(sb.path2)).toEqual(expected);
    expect(deletesOf(result.logs)).toEqual([]);
    expect(conflictsOf(result.logs)).toEqual([]);
    expect(copiesOf(result.logs).map((l) => `${l.from}:${l.path}:${l.reason}`).sort()).toEqual(['path1:y.txt:restored', 'path2:x.txt:restored']);
  });

  it('does nothing for a file deleted on both sides', async () => {
    await synced({ 'gone.txt': 'g', 'stay.txt': 's', 'other.txt': 'o' });
    await removeFile(sb.path1, 'gone.txt');
    await removeFile(sb.path2, 'gone.txt');
    const result = await ok({ SYNC_MAX_DELETE: '100' });
    expect(actionsOf(result.logs), dump(result)).toEqual([]);
    expect(await readTree(sb.path1)).toEqual({ 'other.txt': 'o', 'stay.txt': 's' });
    expect(await readTree(sb.path2)).toEqual({ 'other.txt': 'o', 'stay.txt': 's' });
    // The snapshot forgot it: it does not come back, and nothing happens next time either.
    const again = await ok();
    expect(actionsOf(again.logs)).toEqual([]);
  });

  it('treats the same change made on both sides as no conflict', async () => {
    await synced({ 'same.txt': 'before', 'other.txt': 'o' });
    // Same new content on both sides, written at different times (different mtimes).
    await writeTreeFile(sb.path1, 'same.txt', 'after, identical on both', minutesAgo(5));
    await writeTreeFile(sb.path2, 'same.txt', 'after, identical on both', minutesAgo(1));
    // And the same new file created on both sides.
    await writeTreeFile(sb.path1, 'both-new.txt', 'twins', minutesAgo(7));
    await writeTreeFile(sb.path2, 'both-new.txt', 'twins', minutesAgo(6));

    const result = await ok();
    expect(conflictsOf(result.logs), dump(result)).toEqual([]);
    expect(copiesOf(result.logs)).toEqual([]);
    expect(conflictCopies(await listFiles(sb.path1))).toEqual([]);
    expect(conflictCopies(await listFiles(sb.path2))).toEqual([]);
    const expected = { 'both-new.txt': 'twins', 'other.txt': 'o', 'same.txt': 'after, identical on both' };
    expect(await readTree(sb.path1)).toEqual(expected);
    expect(await readTree(sb.path2)).toEqual(expected);
    const again = await ok();
    expect(actionsOf(again.logs)).toEqual([]);
  });
});

describe('dry run', () => {
  it('logs every action, changes nothing on either side and leaves the snapshot byte-identical', async () => {
    await synced({ 'a.txt': 'a', 'b.txt': 'b', 'c.txt': 'c', 'd.txt': 'd', 'conf.txt': 'base' });
    await writeTreeFile(sb.path1, 'new1.txt', 'n1');
    await writeTreeFile(sb.path1, 'a.txt', 'a changed', minutesAgo(3));
    await removeFile(sb.path2, 'b.txt');
    await writeTreeFile(sb.path2, 'new2.txt', 'n2');
    await writeTreeFile(sb.path1, 'conf.txt', 'conf one', minutesAgo(3));
    await writeTreeFile(sb.path2, 'conf.txt', 'conf two!', minutesAgo(2));

    const tree1 = await statTree(sb.path1);
    const tree2 = await statTree(sb.path2);
    const digest1 = await digestTree(sb.path1);
    const digest2 = await digestTree(sb.path2);
    const stateBefore = await sb.stateFiles();

    const dry = await ok({ SYNC_DRY_RUN: 'true', SYNC_MAX_DELETE: '100' });
    const planned = actionsOf(dry.logs).map((l) => `${l.action}:${l.path}`).sort();
    expect(planned).toEqual(['conflict:conf.txt', 'copy:a.txt', 'copy:new1.txt', 'copy:new2.txt', 'delete:b.txt']);
    for (const line of actionsOf(dry.logs)) {
      expect(line.dryRun).toBe(true);
      expect(line.msg).toMatch(/^would /);
    }
    expect(summaryOf(dry.logs)).toMatchObject({ dryRun: true, outcome: 'success' });

    expect(await statTree(sb.path1)).toEqual(tree1);
    expect(await statTree(sb.path2)).toEqual(tree2);
    expect(await digestTree(sb.path1)).toEqual(digest1);
    expect(await digestTree(sb.path2)).toEqual(digest2);

    // Every state file but the run history (which records the dry run) is byte-identical; no journal appeared.
    const stateAfter = await sb.stateFiles();
    const withoutHistory = (files: Record<string, Buffer>) =>
      Object.fromEntries(Object.entries(files).filter(([p]) => !p.endsWith('history.jsonl')).map(([p, b]) => [p, b.toString('base64')]));
    expect(withoutHistory(stateAfter)).toEqual(withoutHistory(stateBefore));
    const history = (await readFile(join(await sb.pairDir(), 'history.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(history.at(-1)).toMatchObject({ dryRun: true, outcome: 'success' });

    // The real run then does exactly what the dry run announced.
    const real = await ok({ SYNC_MAX_DELETE: '100' });
    expect(actionsOf(real.logs).map((l) => `${l.action}:${l.path}`).sort()).toEqual(planned);
    expect(await readTree(sb.path1)).toEqual(await readTree(sb.path2));
  });
});

describe("rclone's partial uploads", () => {
  it('are never synced (`<name>.<8 characters>.partial`, in any folder); other names ending in .partial are', async () => {
    await synced({ 'a.txt': 'a' });
    await writeTree(sb.path1, { 'big.iso.a1b2c3d4.partial': 'half', 'd/e/x.bin.ZZ99yy00.partial': 'half', '.12345678.partial': 'half' });
    await writeTree(sb.path1, { 'notes.partial': 'mine', 'd/e/long.abcdefghi.partial': 'nine characters', 'f/x.abcdefgh.partial/inside.txt': 'a folder so named' });
    const result = await ok();
    expect(copiesOf(result.logs).map((l) => l.path).sort()).toEqual(['d/e/long.abcdefghi.partial', 'f/x.abcdefgh.partial/inside.txt', 'notes.partial']);
    expect(Object.keys(await readTree(sb.path2)).sort()).toEqual(['a.txt', 'd/e/long.abcdefghi.partial', 'f/x.abcdefgh.partial/inside.txt', 'notes.partial']);
  });
});

describe('modification times', () => {
  it('keeps the source modtime on every copy, in both directions', async () => {
    const t1 = new Date('2020-01-02T03:04:05.678Z');
    const t2 = new Date('2019-06-07T08:09:10.123Z');
    const t3 = new Date('2021-11-12T13:14:15.987Z');
    await writeTreeFile(sb.path1, 'from1.txt', 'one', t1);
    await writeTreeFile(sb.path2, 'sub/from2.txt', 'two', t2);
    await ok();
    expect(await mtimeOf(sb.path2, 'from1.txt')).toBe(t1.getTime());
    expect(await mtimeOf(sb.path1, 'sub/from2.txt')).toBe(t2.getTime());

    // A modified file carries its new mtime across too.
    await writeTreeFile(sb.path2, 'from1.txt', 'one, edited on path2', t3);
    await ok();
    expect(await readTreeFile(sb.path1, 'from1.txt')).toBe('one, edited on path2');
    expect(await mtimeOf(sb.path1, 'from1.txt')).toBe(t3.getTime());
    const s1 = await statTree(sb.path1);
    const s2 = await statTree(sb.path2);
    for (const path of Object.keys(s1)) expect(s2[path]!.mtimeNs, path).toBe(s1[path]!.mtimeNs);
  });
});

describe('SYNC_COMPARE', () => {
  const FIXED = new Date('2024-02-03T04:05:06.789Z');
  /** Rewrites a file with different bytes of the same length and puts its (whole-millisecond) mtime back. */
  async function sneakyEdit(root: string, path: string, content: string) {
    const original = (await statTree(root))[path]!;
    expect(original.mtimeMs).toBe(FIXED.getTime());
    expect(Buffer.byteLength(content)).toBe(original.size);
    await writeTreeFile(root, path, content, FIXED);
    const after = (await statTree(root))[path]!;
    expect(after.size).toBe(original.size);
    expect(after.mtimeNs).toBe(original.mtimeNs);
  }

  it('size,modtime (the default) cannot see that change: this is what checksum is for', async () => {
    await writeTree(sb.path1, { 'data.txt': 'AAAA-original-content' });
    await setMtime(sb.path1, 'data.txt', FIXED);
    await ok();
    await sneakyEdit(sb.path1, 'data.txt', 'BBBB-replaced-content');
    const result = await ok();
    expect(actionsOf(result.logs)).toEqual([]);
    expect(await readTreeFile(sb.path2, 'data.txt')).toBe('AAAA-original-content');
  });
});

describe('a name that changes between file and folder', () => {
  it('a file replaced by a folder of the same name, and a folder replaced by a file, both propagate', async () => {
    await synced({ x: 'a file', 'y/a': 'in a folder', 'y/z/b': 'deeper', keep: 'k' });
    await removeFile(sb.path1, 'x');
    await writeTree(sb.path1, { 'x/a': 'now a folder' });
    await rm(join(sb.path1, 'y'), { recursive: true });
    await writeTree(sb.path1, { y: 'now a file' });
    await ok({ SYNC_MAX_DELETE: '100' });
    expect(await readTree(sb.path2)).toEqual({ 'x/a': 'now a folder', y: 'now a file', keep: 'k' });
    expect(actionsOf((await ok()).logs)).toEqual([]);
  });

  it('a file on one side and a folder of the same name on the other: the folder keeps the name, the file is kept beside it', async () => {
    await writeTree(sb.path1, { x: 'a file', other: 'o' });
    await writeTree(sb.path2, { 'x/a': 'in a folder', 'x/deep/b': 'deeper' });
    const first = await ok();
    expect(actionsOf(first.logs).filter((a) => a.action === 'file-folder-clash').map((a) => a.path)).toEqual(['x']);
    const tree1 = await readTree(sb.path1);
    expect(await readTree(sb.path2)).toEqual(tree1);
    const renamed = conflictCopies(Object.keys(tree1));
    expect(renamed).toHaveLength(1);
    expect(tree1).toEqual({ [renamed[0]!]: 'a file', other: 'o', 'x/a': 'in a folder', 'x/deep/b': 'deeper' });
    expect(actionsOf((await ok()).logs)).toEqual([]);
  });
});

describe('two pairs in one state directory', () => {
  it('keep their own snapshots, locks and histories: a run of one neither sees nor blocks the other', async () => {
    const third = join(sb.root, 'path3');
    await writeTree(sb.path1, { 'shared.txt': 'from path1' });
    await writeTree(third, { 'third.txt': 'only in path3' });
    const otherPair = { SYNC_PATH2: third };
    // Both pairs at once: different pairs never wait for each other's lock.
    const [first, second] = await Promise.all([sb.run(), sb.run(otherPair)]);
    expect(first.exitCode, dump(first)).toBe(0);
    expect(second.exitCode, dump(second)).toBe(0);
    expect(await readTree(third)).toEqual({ 'shared.txt': 'from path1', 'third.txt': 'only in path3' });
    expect(await readTree(sb.path1)).toEqual({ 'shared.txt': 'from path1', 'third.txt': 'only in path3' });
    // third.txt reached path1 while the first pair was running; its next run carries it over if that one did not.
    await ok();
    expect(await readTree(sb.path2)).toEqual(await readTree(sb.path1));

    const all = await runCli(['status', '--json'], { SYNC_STATE_DIR: sb.stateDir, LOG_FORMAT: 'json' });
    const pairs = (JSON.parse(all.stdout) as { pairs: { pair: string; runs: unknown[] }[] }).pairs;
    expect(pairs.map((p) => p.runs.length).sort()).toEqual([1, 2]);
    expect(new Set(pairs.map((p) => p.pair)).size).toBe(2);
  });
});
